"""`debrief batch`: a folder of rendered recordings into the history, resumable and in parallel.

The folder holds 20 recordings (`batch_helpers.clips_dir`: 10 labelled debriefs rendered with
the Piper voice at two paces, one rep each). Greedy decoding keeps the tests light; the real
tiny.en model does every transcription.
"""

import json
import os
import shutil
import signal
import subprocess
import time
import wave

import pytest
from typer.testing import CliRunner

from batch_helpers import DEBRIEF, GREEDY, LABELS, clips_dir, count_done, debrief, rows, settings  # noqa: F401
from conftest import REPO
from debrief import batch as batch_module
from debrief.batch import Job, discover, read_manifest, run_batch, run_job
from debrief.cli import app
from debrief.errors import InputError
from debrief.store import Store


# --------------------------------------------------------------------------- killed, resumed, re-run


@pytest.fixture(scope="module")
def resumed(clips_dir, tmp_path_factory):
    """A batch killed (SIGKILL) after a few files, then run again to the end."""
    home = tmp_path_factory.mktemp("home")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DEBRIEF_HOME": str(home)}
    killed = subprocess.Popen([*DEBRIEF, "batch", str(clips_dir), "--workers", "2", *GREEDY], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while count_done(home) < 5 and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    before = dict(rows(home, "SELECT hash, result FROM results"))
    orphans = rows(home, "SELECT count(*) FROM recordings r LEFT JOIN results s ON s.hash = r.hash "
                         "WHERE s.hash IS NULL")[0][0]
    out = home / "results.jsonl"
    finished = debrief("batch", clips_dir, "--workers", "2", *GREEDY, "--out", out, home=home)
    return {"home": home, "before": before, "orphans": orphans, "run": finished, "out": out}


@pytest.mark.slow
def test_a_killed_batch_leaves_whole_rows_only(resumed):
    assert 5 <= len(resumed["before"]) < 20
    assert resumed["orphans"] == 0


@pytest.mark.slow
def test_the_restarted_batch_does_each_file_exactly_once(resumed):
    run, before = resumed["run"], resumed["before"]
    assert run.returncode == 0, run.stderr
    assert "20 files under" in run.stdout
    assert f"{20 - len(before)} analyzed, {len(before)} already done, 0 failed" in run.stdout
    after = dict(rows(resumed["home"], "SELECT hash, result FROM results WHERE status = 'done'"))
    assert len(after) == 20
    assert all(after[h] == result for h, result in before.items())  # finished work was not redone
    assert rows(resumed["home"], "SELECT count(*) FROM recordings")[0][0] == 20


@pytest.mark.slow
def test_a_second_run_does_no_work(resumed, clips_dir, monkeypatch):
    scheduled = []

    def no_work(jobs, settings, workers):
        scheduled.extend(jobs)
        return iter(())

    monkeypatch.setenv("DEBRIEF_HOME", str(resumed["home"]))
    monkeypatch.setattr(batch_module, "local_pool", no_work)
    result = CliRunner().invoke(app, ["batch", str(clips_dir), *GREEDY])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"20 files under {clips_dir}: 0 analyzed, 20 already done, 0 failed"
    assert scheduled == []


@pytest.mark.slow
def test_the_results_equal_analyze_on_each_file_and_the_labels(resumed, clips_dir):
    records = [json.loads(line) for line in resumed["out"].read_text().splitlines()]
    paths = sorted(str(p) for p in clips_dir.rglob("*.wav"))
    assert [r["source"] for r in records] == paths
    analyzed = debrief("analyze", *paths, "--json", *GREEDY, home=resumed["home"])
    assert analyzed.returncode == 0, analyzed.stderr
    for record, line in zip(records, analyzed.stdout.splitlines(), strict=True):
        expected = json.loads(line)
        assert {k: v for k, v in record.items() if k not in ("timings", "hash", "rep", "deal", "date")} == \
               {k: v for k, v in expected.items() if k != "timings"}
        clip = LABELS[os.path.basename(record["source"])[:-4]]
        assert (record["fix"] or {}).get("step") == clip["fix"], record["transcript"]
        assert record["outcome"] == clip["outcome"]
        assert record["rep"] == os.path.basename(os.path.dirname(record["source"]))


# --------------------------------------------------------------------------- bad files among good ones


@pytest.fixture
def mixed_dir(clips_dir, tmp_path):
    root = tmp_path / "mixed"
    root.mkdir()
    for name in ("signed", "no-ask"):
        shutil.copy(clips_dir / "dana" / f"{name}.wav", root / f"{name}.wav")
    (root / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt " + os.urandom(3000))
    (root / "empty.wav").write_bytes(b"")
    (root / "gone.m4a").symlink_to(root / "nowhere.m4a")  # unreadable: a link to nothing
    with wave.open(str(root / "silent.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\x00\x00" * 16000 * 3)
    (root / "typed.txt").write_text((REPO / "samples" / "no-close.txt").read_text())
    return root


BAD = {"corrupt.wav": 3, "empty.wav": 3, "gone.m4a": 3, "silent.wav": 4}


@pytest.mark.slow
def test_bad_files_are_recorded_and_the_good_ones_finish(mixed_dir, tmp_path):
    out = tmp_path / "mixed.csv"
    run = debrief("batch", mixed_dir, "--workers", "2", *GREEDY, "--out", out, home=tmp_path / "home")
    assert run.returncode == 3  # corrupt.wav, the first failure in folder order
    assert "Traceback" not in run.stderr
    errors = run.stderr.strip().splitlines()
    assert len(errors) == len(BAD) and all(line.startswith("debrief: error: ") for line in errors)
    assert "7 files under" in run.stdout and "3 analyzed, 0 already done, 4 failed" in run.stdout

    import csv

    table = {os.path.basename(r["file"]): r for r in csv.DictReader(out.open())}
    assert {name: int(r["exit_code"]) for name, r in table.items() if r["status"] == "error"} == BAD
    assert table["silent.wav"]["error"].endswith("the transcript is empty")
    assert (table["no-ask.wav"]["fix"], table["typed.txt"]["fix"], table["signed.wav"]["fix"]) == \
           ("home.commit", "home.commit", "")

    again = debrief("batch", mixed_dir, *GREEDY, home=tmp_path / "home")
    assert again.returncode == 3
    assert "0 analyzed, 3 already done, 0 failed, 4 failed before" in again.stdout

    retried = debrief("batch", mixed_dir, "--retry-failed", "--workers", "1", *GREEDY, home=tmp_path / "home")
    assert retried.returncode == 3
    assert "0 analyzed, 3 already done, 4 failed" in retried.stdout  # tried again, and failed again


@pytest.mark.slow
def test_a_worker_that_dies_costs_only_its_file(clips_dir, tmp_path):
    import multiprocessing

    jobs = discover(clips_dir / "dana")[:3]
    killed = []

    def kill_the_first_worker(event):
        if event.kind == "started" and not killed:
            (worker,) = [p for p in multiprocessing.active_children() if p.name == batch_module.WORKER_NAME]
            os.kill(worker.pid, signal.SIGKILL)
            killed.append(event.job)

    with Store(tmp_path / "h.db") as store:
        summary = run_batch(jobs, settings(), store, workers=1, on_event=kill_the_first_worker)
        assert summary.analyzed == 2
        (path, message, code), = summary.failures
        assert path == killed[0].path and code == 1
        assert message.endswith("the worker analyzing it crashed (killed by signal 9)")
        assert not store.done(killed[0].hash)


def test_a_missing_model_is_one_line_before_any_file(clips_dir):
    result = CliRunner().invoke(app, ["batch", str(clips_dir), "--model", "no-such-model"])
    assert result.exit_code == 6
    assert result.stderr.startswith("debrief: error: Whisper model 'no-such-model': not available locally")
    assert result.stdout == ""


def test_out_must_be_jsonl_or_csv(tmp_path):
    result = CliRunner().invoke(app, ["batch", str(tmp_path), "--out", str(tmp_path / "r.txt")])
    assert result.exit_code == 2 and "--out must end in .jsonl or .csv" in result.stderr


def test_an_empty_folder_is_nothing_to_do(tmp_path):
    result = CliRunner().invoke(app, ["batch", str(tmp_path)])
    assert result.exit_code == 0 and "nothing to do" in result.stderr


# --------------------------------------------------------------------------- which files, whose


def test_discover_finds_recordings_and_transcripts_and_the_rep_from_the_layout(tmp_path):
    for name in ("dana/a.txt", "dana/deep/b.wav", "c.md", ".hidden/d.txt", "dana/._e.wav", "notes.csv"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    jobs = discover(tmp_path)
    assert [(os.path.relpath(j.path, tmp_path), j.rep) for j in jobs] == [
        ("c.md", None), ("dana/a.txt", "dana"), ("dana/deep/b.wav", "dana")]
    assert all(len(j.hash) == 64 and j.recorded_at and j.size for j in jobs)


def test_options_beat_the_manifest_which_beats_the_layout(tmp_path):
    (tmp_path / "dana").mkdir()
    for name in ("dana/a.txt", "dana/b.txt"):
        (tmp_path / name).write_text(name)
    (tmp_path / "manifest.csv").write_text("file,rep,deal,date\ndana/a.txt,lee,acme,2026-10-01\n")
    by_name = {os.path.basename(j.path): j for j in discover(tmp_path)}
    assert (by_name["a.txt"].rep, by_name["a.txt"].deal, by_name["a.txt"].recorded_at) == ("lee", "acme", "2026-10-01")
    assert (by_name["b.txt"].rep, by_name["b.txt"].deal) == ("dana", None)
    forced = {os.path.basename(j.path): j for j in discover(tmp_path, rep="kim", deal="zenith")}
    assert {(j.rep, j.deal) for j in forced.values()} == {("kim", "zenith")}


@pytest.mark.parametrize("content, message", [
    ("name,rep\na.txt,lee\n", "manifest.csv:1: a manifest needs a header with a 'file' column"),
    ("file,rep,date\na.txt,lee,last tuesday\n", "manifest.csv:2: 'last tuesday' is not a date"),
])
def test_a_bad_manifest_names_its_line(tmp_path, content, message):
    (tmp_path / "manifest.csv").write_text(content)
    with pytest.raises(InputError, match=message):
        read_manifest(tmp_path / "manifest.csv")


def in_process(jobs, settings, workers):
    """The plainest scheduler: run_job in this process, one job after another."""
    for job in jobs:
        yield "started", job, None
        yield "finished", job, run_job(job, settings)


def test_the_same_content_twice_is_analyzed_once(tmp_path):
    text = (REPO / "samples" / "won.txt").read_text()
    for name in ("a/one.txt", "b/two.txt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    with Store(tmp_path / "h.db") as store:
        summary = run_batch(discover(tmp_path), settings(), store, scheduler=in_process)
        assert (summary.analyzed, summary.skipped) == (1, 1)
        assert len(store.history()) == 1


def test_run_job_turns_a_bad_file_into_an_error_object(tmp_path):
    (tmp_path / "blank.txt").write_text("   \n")
    job = Job(str(tmp_path / "blank.txt"), "h")
    assert run_job(job, settings()) == {"source": job.path, "error": f"{job.path}: the transcript has no words",
                                        "exit_code": 4}
