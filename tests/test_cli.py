"""The CLI as a user runs it: a real subprocess for the exit codes, CliRunner for the output."""

import json
import os
import shutil
import subprocess
import sys
import wave

import pytest
from typer.testing import CliRunner

from conftest import REPO
from debrief.cli import app

SAMPLES = REPO / "samples"
STALLED = SAMPLES / "stalled-after-demo.txt"
DEBRIEF = [sys.executable, "-m", "debrief"]


def run(*args, stdin=None, env=None):
    """Run `python -m debrief ...` as a user would, offline."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([*DEBRIEF, *map(str, args)], capture_output=True, text=True, input=stdin,
                          env=full_env, timeout=300)


def assert_one_line_error(result, code, *fragments):
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("debrief: error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def write_silence(path, seconds=3.0, rate=16000):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * int(seconds * rate))


# --- bad input: one line, a documented exit code, no traceback --------------------------------

def test_missing_file():
    assert_one_line_error(run("analyze", "no/such/debrief.wav"), 3, "no/such/debrief.wav", "no such file")


def test_not_audio(tmp_path):
    fake = tmp_path / "notes.mp3"
    fake.write_text("this is not audio at all")
    assert_one_line_error(run("analyze", fake), 3, "notes.mp3", "not audio")


def test_empty_audio_file(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert_one_line_error(run("analyze", empty), 3, "empty.wav", "empty")


def test_empty_transcript(tmp_path):
    blank = tmp_path / "blank.txt"
    blank.write_text("   \n")
    assert_one_line_error(run("analyze", blank), 4, "blank.txt", "no words")


@pytest.mark.slow
def test_silence_says_so_and_invents_nothing(tmp_path):
    silence = tmp_path / "silence.wav"
    write_silence(silence)
    assert_one_line_error(run("analyze", silence), 4, "silence.wav", "no speech")
    result = run("analyze", "--json", silence)
    assert json.loads(result.stdout)["error"].startswith(str(silence))


def test_broken_playbook(tmp_path):
    broken = tmp_path / "team"
    shutil.copytree(REPO / "models" / "baseline", broken)
    with open(broken / "patterns.jsonl", "a") as f:
        f.write('{"label": "second.pain", "pattern": "pain"}\n')
    n = len((broken / "patterns.jsonl").read_text().splitlines())
    assert_one_line_error(run("analyze", "--playbook", broken, STALLED), 5,
                          f"patterns.jsonl:{n}", "unknown label 'second.pain'")


def test_missing_playbook(tmp_path):
    assert_one_line_error(run("analyze", "--playbook", tmp_path / "nothing", STALLED), 5, "not found")


def test_unknown_model_offline():
    wav = SAMPLES / "won.wav"
    assert_one_line_error(run("analyze", "--model", "small.en", wav), 6, "small.en", "not available locally")


def test_speak_to_an_unwritable_place(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert_one_line_error(run("analyze", STALLED, "--speak-to", blocker / "out.wav"), 7, "out.wav")


def test_usage_error_is_exit_2():
    assert run("analyze").returncode == 2


def test_help_documents_exit_codes():
    result = run("--help")
    assert result.returncode == 0
    assert "Exit codes" in result.stdout and "3 an input file is missing" in " ".join(result.stdout.split())


# --- output ------------------------------------------------------------------------------------

def test_text_output_names_the_walk_and_the_one_fix():
    result = run("analyze", STALLED)
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())
    assert "Where it ended up: stalled" in out
    assert "The one step to fix: what the problem costs them (second base) [second.impact]" in out
    assert "What is that costing you, in money or in time?" in out
    # The walk names the steps in words, from where it ended up back to the fix; ids only as a tag.
    assert out.index("asking for the decision") < out.index("the presentation") < out.index("what the problem costs them")
    assert out.count("home.commit") == 0


def test_json_contract():
    result = CliRunner().invoke(app, ["analyze", "--json", str(STALLED)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["source"] == str(STALLED)
    assert data["outcome"] == "stalled" and data["endpoint"] == "home.commit"
    assert data["fix"]["step"] == "second.impact" and data["fix"]["base"] == "second"
    assert data["fix"]["question"] == "What is that costing you, in money or in time?"
    assert data["fix"]["evidence"][0]["text"] in data["transcript"]
    walk = [w["step"] for w in data["walk"]]
    assert walk[0] == "home.commit" and walk[-1] == "second.impact"
    assert set(data["steps"]) >= {"first.contact", "home.commit"}
    for evidence in data["fix"]["evidence"]:
        assert data["transcript"][evidence["start"]:evidence["end"]] == evidence["text"]
    assert set(data["timings"]) == {"decode", "transcribe", "classify", "walk"}


def test_several_inputs_in_order_and_a_bad_one_does_not_stop_the_rest(tmp_path):
    missing = tmp_path / "gone.txt"
    result = CliRunner().invoke(app, ["analyze", "--json", str(STALLED), str(missing), str(SAMPLES / "won.txt")])
    assert result.exit_code == 3
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["source"] for o in objects] == [str(STALLED), str(missing), str(SAMPLES / "won.txt")]
    assert objects[1]["error"] == f"{missing}: no such file" and objects[1]["exit_code"] == 3
    assert objects[0]["fix"]["step"] == "second.impact" and objects[2]["fix"] is None


def test_standard_input_is_a_transcript():
    result = run("analyze", "--json", "-", stdin=STALLED.read_text())
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["fix"]["step"] == "second.impact"


def test_models_folder_from_the_environment(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(REPO / "models" / "baseline", models / "baseline")
    toml = models / "baseline" / "playbook.toml"
    toml.write_text(toml.read_text().replace(
        "Put a number on the problem: ask what it costs them before you show anything.",
        "Ask what the problem costs, every time."))
    result = run("analyze", STALLED, env={"DEBRIEF_MODELS": str(models)})
    assert "Ask what the problem costs, every time." in " ".join(result.stdout.split())
    result = run("analyze", "--models", models, STALLED)
    assert "Ask what the problem costs, every time." in " ".join(result.stdout.split())


@pytest.mark.slow
def test_speak_to_writes_the_fix_and_question_as_speech(tmp_path):
    from debrief.audio import decode_audio
    from debrief.transcription import Transcriber

    target = tmp_path / "fix.wav"
    result = run("analyze", STALLED, "--speak-to", target)
    assert result.returncode == 0, result.stderr
    heard = Transcriber(beam_size=1).transcribe(decode_audio(target)).text.lower()
    assert "costing you" in heard and "money" in heard


@pytest.mark.slow
def test_speak_without_a_sound_device_says_so():
    result = run("analyze", STALLED, "--speak")
    assert result.returncode in (0, 7)
    if result.returncode == 7:  # no PortAudio or no output device here (CI): one clear line
        assert "cannot play audio" in result.stderr.strip().splitlines()[-1]


# --- rules 6 and 7, and every debrief kept (issue 12) -----------------------------------------------

QUIET = "They went quiet after the demo. I never asked about their budget."


def test_a_silent_fix_is_unconfirmed_and_names_then():
    result = run("analyze", "-", "--json", "--no-save", stdin=QUIET)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["status"] == "fix"
    assert data["fix"]["status"] == "silent" and data["fix"]["confirmed"] is False
    assert data["fix"]["check"].endswith("?")
    assert data["then"]["step"] == "third.budget" and data["then"]["status"] == "missed"
    assert [e["text"] for e in data["then"]["evidence"]] == ["I never asked about their budget."]
    said = " ".join(run("analyze", "-", "--no-save", stdin=QUIET).stdout.split())
    assert "You didn't say whether" in said
    assert 'the one to fix is the money: you said "I never asked about their budget."' in said


def test_an_admitted_miss_is_a_confirmed_fix():
    data = json.loads(run("analyze", STALLED, "--json", "--no-save").stdout)
    assert data["status"] == "fix" and data["fix"]["status"] == "missed"
    assert data["fix"]["confirmed"] is True and data["then"] is None


def test_hello_is_not_enough_to_coach():
    result = run("analyze", "-", "--json", "--no-save", stdin="hello")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["status"], data["fix"], data["outcome"]) == ("not_enough", None, "unknown")
    text = run("analyze", "-", "--no-save", stdin="hello").stdout
    assert "not enough to coach" in text and "Nothing to fix" not in text


def test_analyze_keeps_every_result_in_the_history(tmp_path):
    home = {"DEBRIEF_HOME": str(tmp_path / "kept")}
    for _ in range(2):  # the same file twice is one entry
        saved = run("analyze", STALLED, "--rep", "dana", "--deal", "Acme", "--date", "2026-11-30", env=home)
        assert saved.returncode == 0, saved.stderr
    assert run("analyze", "-", "--no-save", stdin=QUIET, env=home).returncode == 0
    [entry] = [json.loads(line) for line in run("history", "--json", env=home).stdout.splitlines()]
    assert (entry["rep"], entry["deal"], entry["date"], entry["file"]) == ("dana", "Acme", "2026-11-30", STALLED.name)
    assert entry["fix"] == "second.impact" and entry["words"] == len(STALLED.read_text().split())
    line = run("history", env=home).stdout.strip()
    assert line.startswith("2026-11-30  dana  Acme  stalled-after-demo.txt  ")
    assert line.endswith("stalled; fix: what the problem costs them")


def test_a_date_that_is_no_date_is_refused():
    assert_one_line_error(run("analyze", STALLED, "--date", "30/11/2026"), 2, "--date", "YYYY-MM-DD")


def test_analyze_history_prep_and_report_keep_hello_apart(tmp_path):
    # Every debrief kept by analyze reaches history, prep --deal and report; "hello" is not
    # enough to coach in each of them, and counts in no statistic.
    home = {"DEBRIEF_HOME": str(tmp_path / "kept")}
    hello = tmp_path / "hello.txt"
    hello.write_text("hello")
    assert run("analyze", STALLED, "--rep", "dana", "--deal", "Acme", "--date", "2026-11-02", env=home).returncode == 0
    said = run("analyze", hello, "--rep", "dana", "--deal", "Acme", "--date", "2026-11-03", "--json", env=home)
    assert said.returncode == 0 and json.loads(said.stdout)["status"] == "not_enough"

    entries = [json.loads(line) for line in run("history", "--json", env=home).stdout.splitlines()]
    assert [(e["file"], e["diagnosis"]) for e in entries] == [("stalled-after-demo.txt", "fix"), ("hello.txt", "not_enough")]
    assert run("history", env=home).stdout.splitlines()[1].endswith("not enough to coach")

    prep = json.loads(run("prep", "--deal", "Acme", "--json", env=home).stdout)
    assert len(prep["sources"]) == 2 and prep["outcome"] == "stalled"  # the hello adds nothing to it

    report = run("report", env=home)
    [row] = [" ".join(line.split()) for line in report.stdout.splitlines() if line.strip().startswith("dana")]
    # calls 1, failed 0, not enough 1, the fix of the one call that counts
    assert row.startswith("dana 1 0 1 what the problem costs them (1)"), row
