"""What the batch tests share: a folder of rendered recordings, and running `debrief` as a user does.

The folder holds 20 recordings: the 10 labelled debriefs of `tests/data/batch_clips.jsonl`
rendered with the Piper voice at two paces, one rep each (`<dir>/<rep>/<id>.wav`). It is
rendered once per test session, however many test modules ask for it.
"""

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from conftest import REPO
from debrief.batch import Settings

CLIPS = [json.loads(line) for line in (REPO / "tests" / "data" / "batch_clips.jsonl").read_text().splitlines()]
LABELS = {clip["id"]: clip for clip in CLIPS}
PACES = {"dana": 1.0, "lee": 1.2}  # each rep's recordings at their own pace: 20 different files
GREEDY = ["--beam-size", "1"]
DEBRIEF = [sys.executable, "-m", "debrief"]


@pytest.fixture(scope="session")
def clips_dir(tmp_path_factory):
    """The 20 rendered recordings, `<dir>/<rep>/<id>.wav`."""
    from debrief import speech

    # A fixture imported into two modules is two fixtures to pytest; the marker file makes the
    # second one find the first one's folder instead of rendering it again.
    root = tmp_path_factory.getbasetemp() / "batch-calls"
    rendered = root / ".rendered"
    if not rendered.exists():
        for rep, pace in PACES.items():
            (root / rep).mkdir(parents=True, exist_ok=True)
            for clip in CLIPS:
                audio, rate = speech.synthesize_piper(clip["text"], length_scale=pace)
                speech.write_wav(root / rep / f"{clip['id']}.wav", audio, rate, rate=16000)
        rendered.touch()
    return root


def settings(**overrides):
    return Settings(str(REPO / "models" / "baseline"), beam_size=1, cpu_threads=1, **overrides)


def debrief(*args, home, **env):
    """`python -m debrief ...` as a user runs it, with its own history (and `env` added)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DEBRIEF_HOME": str(home), **env}
    return subprocess.run([*DEBRIEF, *map(str, args)], capture_output=True, text=True, env=env, timeout=600)


def rows(home, sql):
    db = sqlite3.connect(home / "debrief.db")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def count_done(home):
    try:
        return rows(home, "SELECT count(*) FROM results WHERE status = 'done'")[0][0]
    except sqlite3.Error:  # not created yet
        return 0
