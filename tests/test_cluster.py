"""`debrief batch --cluster`: the batch on Ray actors, on a real one-machine Ray cluster.

`--cluster local` starts Ray here, listening on 127.0.0.1 only, with no dashboard and no usage
statistics. The recordings are the rendered ones of `batch_helpers.clips_dir`; greedy decoding
keeps the tests light, and the real tiny.en model does every transcription.
"""

import importlib.util
import json
import os
import shutil
import signal
import sys
import threading
import time
from collections import Counter

import pytest
from typer.testing import CliRunner

from batch_helpers import GREEDY, clips_dir, debrief, rows, settings  # noqa: F401
from conftest import REPO
from debrief.batch import discover, run_batch
from debrief.cli import app
from debrief.store import Store

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="Ray is not installed (pip install '.[cluster]')")
WORKER_TITLE = "ray::BatchWorker.run"  # the process title Ray gives an actor while it runs a file
# What must be the same whichever scheduler ran the batch: everything but when, and how long.
RESULT_COLUMNS = "r.hash, r.path, r.rep, r.deal, r.recorded_at, r.duration, " \
                 "s.status, s.transcript, s.outcome, s.endpoint, s.fix, s.error, s.exit_code, s.result"


@pytest.fixture(scope="module")
def twelve_dir(clips_dir, tmp_path_factory):  # noqa: F811 - the fixture imported above
    """12 of the rendered recordings: all of dana's, two of lee's."""
    root = tmp_path_factory.mktemp("twelve")
    for path in sorted(clips_dir.glob("dana/*.wav")) + sorted(clips_dir.glob("lee/*.wav"))[:2]:
        (root / path.parent.name).mkdir(exist_ok=True)
        shutil.copy(path, root / path.parent.name / path.name)
    return root


def history(home):
    """Every stored recording and result, by hash, with the timings taken out."""
    stored = {}
    for row in rows(home, f"SELECT {RESULT_COLUMNS} FROM recordings r JOIN results s ON s.hash = r.hash"):
        result = json.loads(row[-1])
        result.pop("timings", None)
        stored[row[0]] = (*row[1:-1], result)
    return stored


@needs_ray
@pytest.mark.slow
def test_local_stores_exactly_what_none_stores(twelve_dir, tmp_path):
    # Ray gives each 1-CPU actor OMP_NUM_THREADS=1 and a none worker's numpy takes every core; the
    # transcriber computes the features on one BLAS thread, so that the two say the same words.
    none = debrief("batch", twelve_dir, "--workers", "2", *GREEDY, home=tmp_path / "none")
    local = debrief("batch", twelve_dir, "--cluster", "local", "--workers", "2", *GREEDY, home=tmp_path / "local")
    for run in (none, local):
        assert run.returncode == 0, run.stderr
        assert f"12 files under {twelve_dir}: 12 analyzed, 0 already done, 0 failed" in run.stdout
    assert "with 2 workers" in local.stdout  # two Ray actors, each with one CPU
    stored = history(tmp_path / "local")
    assert len(stored) == 12
    assert stored == history(tmp_path / "none")


@needs_ray
@pytest.mark.slow
def test_a_worker_killed_mid_file_is_restarted_and_every_file_stored_once(clips_dir, tmp_path,  # noqa: F811
                                                                             monkeypatch):
    from debrief.cluster import RayPool

    # RayPool sets these for Ray in this process; monkeypatch puts them back afterwards.
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    jobs = discover(clips_dir / "lee")[:4]
    finished = Counter()

    def count(event):
        if event.kind == "finished":
            finished[event.job.path] += 1

    killed = []
    threading.Thread(target=_kill_a_worker_mid_file, args=(killed,), daemon=True).start()
    with Store(tmp_path / "h.db") as store:
        summary = run_batch(jobs, settings(), store, workers=2, scheduler=RayPool("local", max_retries=2),
                            on_event=count)
        assert killed, "no worker was caught in the middle of a file"
        assert (summary.analyzed, summary.failures) == (4, [])
        assert finished == Counter({job.path: 1 for job in jobs})
        assert all(store.done(job.hash) for job in jobs)


def _kill_a_worker_mid_file(killed: list, timeout: float = 120) -> None:
    """SIGKILL the first Ray worker process seen running a file; its pid goes into `killed`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    title = f.read().split(b"\0")[0].decode(errors="replace")
            except OSError:
                continue
            if title == WORKER_TITLE:
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
                return
        time.sleep(0.01)


# A worker that dies on one file, put in by the test itself (tests/crashing_worker/sitecustomize.py).
CRASHING_WORKER = os.pathsep.join([str(REPO / "tests" / "crashing_worker"), *filter(None, [os.environ.get("PYTHONPATH")])])


@needs_ray
@pytest.mark.slow
def test_a_file_that_crashes_its_worker_every_time_is_one_error_row(clips_dir, tmp_path):  # noqa: F811
    folder = tmp_path / "calls"
    folder.mkdir()
    for name, clip in (("a-good", "signed"), ("b-crasher", "front-desk"), ("d-good", "no-ask")):
        shutil.copy(clips_dir / "dana" / f"{clip}.wav", folder / f"{name}.wav")
    (folder / "c-corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt " + os.urandom(3000))
    run = debrief("batch", folder, "--cluster", "local", "--max-retries", "1", *GREEDY,
                  home=tmp_path / "home", CRASH_ON_FILE="b-crasher.wav", PYTHONPATH=CRASHING_WORKER)
    assert run.returncode == 1, run.stderr  # the crash: the first failure in folder order
    assert f"4 files under {folder}: 2 analyzed, 0 already done, 2 failed" in run.stdout
    assert sorted(run.stderr.splitlines()) == [
        f"debrief: error: {folder}/b-crasher.wav: the worker analyzing it crashed on each of 2 tries",
        f"debrief: error: {folder}/c-corrupt.wav: not audio, or cannot be decoded "
        "(Invalid data found when processing input)",
    ]
    stored = {os.path.basename(path): (status, code) for path, status, code in rows(
        tmp_path / "home", "SELECT r.path, s.status, s.exit_code FROM recordings r JOIN results s ON s.hash = r.hash")}
    # The corrupt file is its own error, on the first try: only a dead worker is worth another.
    assert stored == {"a-good.wav": ("done", 0), "b-crasher.wav": ("error", 1), "c-corrupt.wav": ("error", 3),
                      "d-good.wav": ("done", 0)}


@needs_ray
@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has a GPU")
def test_a_worker_that_cannot_fit_this_machine_is_a_usage_error_not_a_wait(tmp_path):
    (tmp_path / "won.txt").write_text((REPO / "samples" / "won.txt").read_text())
    run = debrief("batch", tmp_path, "--cluster", "local", "--gpus-per-worker", "1", home=tmp_path / "home")
    assert run.returncode == 2
    assert run.stderr.splitlines()[-1] == "debrief: error: --cluster local: a worker asks for 1 CPU and 1 GPU; " \
                                          f"this machine has {len(os.sched_getaffinity(0))} CPU and 0 GPU"


def test_without_ray_the_cluster_is_one_line_that_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` does when it is not installed
    result = CliRunner().invoke(app, ["batch", str(tmp_path), "--cluster", "local"])
    assert result.exit_code == 2
    assert result.stderr == "debrief: error: --cluster local needs Ray, which is not installed: " \
                            "pip install 'debrief[cluster]'\n"


@pytest.mark.parametrize("args, message", [
    (["--cluster", "ray://head"], "--cluster 'ray://head': use none, local, auto or ray://HOST:PORT"),
    (["--cluster", "yarn"], "--cluster 'yarn': use none, local, auto or ray://HOST:PORT"),
    (["--max-retries", "3"], "--max-retries needs --cluster local, auto or ray://HOST:PORT"),
    (["--gpus-per-worker", "1"], "--gpus-per-worker needs --cluster local, auto or ray://HOST:PORT"),
])
def test_cluster_options_are_checked_before_any_work(tmp_path, args, message):
    result = CliRunner().invoke(app, ["batch", str(tmp_path), *args])
    assert result.exit_code == 2
    assert result.stderr == f"debrief: error: {message}\n"
