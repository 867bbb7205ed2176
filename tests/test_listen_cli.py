"""`debrief listen` and `debrief devices` as a rep runs them: real processes, real models, real signals.

Answers are rendered with the Piper voice and replayed through the microphone's code path
(`--input FILE`); what debrief says goes to numbered WAV files (`--speak-to DIR`), which are
transcribed back with the real tiny.en model. The microphone and the speaker are the real
sounddevice module: on a machine without them (CI) the command must say so in one line.
"""

import json
import os
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest

from conftest import REPO
from debrief.audio import decode_audio
from voices import answer, write

DEBRIEF = [sys.executable, "-m", "debrief"]
SAMPLE = REPO / "samples" / "stalled-after-demo.wav"
ENDED = "They said they would think about it and get back to me."
DEMO = "Before that I gave them the full demo and went over the pricing."
ISSUES = "Before that we talked about their problem with late shipments, but I never asked what it was costing them."


def run(*args, timeout=300):
    return subprocess.run([*DEBRIEF, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def start(*args, stdin=subprocess.DEVNULL):
    return subprocess.Popen([*DEBRIEF, *map(str, args)], stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def one_line_error(result, code, *fragments):
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("debrief: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def recordings() -> Path:
    return Path(os.environ["DEBRIEF_HOME"]) / "recordings"


def wait_for_recorded(seconds, timeout=120) -> Path:
    """The recording being written, once it holds `seconds` of audio (read as a crash would leave it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in recordings().glob("*.wav") if recordings().is_dir() else ():
            try:
                with wave.open(str(path)) as wav:
                    if wav.getnframes() >= seconds * wav.getframerate():
                        return path
            except (EOFError, wave.Error):
                pass
        time.sleep(0.05)
    raise AssertionError(f"nothing recorded in {timeout} s")


@pytest.fixture(scope="module")
def answers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("answers")
    return [write(folder / f"answer-{n}.wav", answer(text)) for n, text in enumerate([ENDED, DEMO, ISSUES], 1)]


@pytest.fixture(scope="module")
def whisper():
    from debrief.transcription import Transcriber

    return Transcriber()


# --- the guided walk, by voice -----------------------------------------------------------------------

@pytest.mark.slow
def test_a_guided_walk_by_voice_says_the_right_step_and_question(answers, whisper, tmp_path):
    said = tmp_path / "said"
    inputs = [arg for path in answers for arg in ("--input", path)]
    result = run("listen", "--guided", *inputs, "--no-pace", "--speak-to", said, "--json", "--rep", "sam",
                 "--deal", "Acme")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["fix"]["step"] == "second.impact" and found["outcome"] == "stalled"
    assert [turn["stopped_by"] for turn in found["conversation"]] == ["end of speech"] * 3
    assert Path(found["source"]).parent == recordings()

    files = sorted(said.iterdir())
    assert [f.name for f in files] == ["01-prompt.wav", "02-prompt.wav", "03-prompt.wav", "04-fix.wav"]
    heard = [whisper.transcribe(decode_audio(f)).text.lower() for f in files]
    assert "where" in heard[0] and "end up" in heard[0], heard
    assert all("before that" in text for text in heard[1:3]), heard
    fix = heard[3]
    # The step, in plain words (Piper's voice varies from run to run: Whisper has heard "costs" as "cost").
    assert "second base" in fix and "problem cost" in fix and "number on the problem" in fix, fix
    assert "what is that costing you" in fix and "money" in fix, fix  # the question to lead with


@pytest.mark.slow
def test_a_replayed_debrief_is_kept_listed_and_prepared_from(tmp_path):
    result = run("listen", "--input", SAMPLE, "--no-pace", "--no-speak", "--json", "--rep", "sam", "--deal", "Acme")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["fix"]["step"] == "second.impact" and found["conversation"][0]["stopped_by"] == "end of input"

    listed = [json.loads(line) for line in run("history", "--json").stdout.splitlines()]
    assert [(e["rep"], e["deal"], e["fix"], e["path"]) for e in listed] == [
        ("sam", "Acme", "second.impact", found["source"])]
    again = json.loads(run("analyze", found["source"], "--json").stdout)
    assert again["fix"]["step"] == "second.impact"

    prep = json.loads(run("prep", "--deal", "Acme", "--json").stdout)
    assert prep["next_base"]["id"] == "second" and prep["no_close"] and prep["close"] is None
    assert "second.impact" in [n["step"] for n in prep["need_to_know"]]


@pytest.mark.slow
def test_replayed_answers_answer_the_question_about_a_step_nobody_mentioned(tmp_path):
    debriefed = write(tmp_path / "debrief.wav", answer("They went quiet after the demo. I never asked about their budget."))
    unsure = write(tmp_path / "unsure.wav", answer("I don't know."))
    result = run("listen", "--input", debriefed, "--input", unsure, "--no-pace", "--speak-to", tmp_path / "said",
                 "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert [c["next"] for c in found["conversation"]][1:] == ["check second.issues: no answer"]
    assert found["conversation"][1]["prompt"] == "Did you find out what their problem is, in their words?"
    assert (found["status"], found["fix"]["step"], found["fix"]["confirmed"]) == ("fix", "second.issues", False)
    assert found["then"]["step"] == "third.budget"
    assert sorted(p.name for p in (tmp_path / "said").iterdir()) == ["01-prompt.wav", "02-check.wav", "03-fix.wav"]


def test_text_output_shows_the_conversation_and_where_it_is_saved(answers):
    result = run("listen", "--input", answers[0], "--no-pace", "--no-speak")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "debrief: Tell me about the call, starting with where you ended up."
    assert lines[1].startswith("you: They said they would think about it")
    assert lines[-1].startswith(f"Saved: {recordings()}")


# --- stopping: Enter, Ctrl-C, a kill ----------------------------------------------------------------

@pytest.mark.slow
def test_ctrl_c_stops_the_recording_and_the_fix_comes_from_what_was_said():
    process = start("listen", "--input", SAMPLE, "--no-speak", "--json")  # at real-time pace
    wait_for_recorded(6.0)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    found = json.loads(out)
    assert found["conversation"][0]["stopped_by"] == "interrupted"
    assert 6.0 <= found["duration"] < 12.0
    assert "it over" in found["transcript"] and found["outcome"] == "stalled"


@pytest.mark.slow
def test_enter_stops_the_recording():
    process = start("listen", "--input", SAMPLE, "--no-speak", "--json", stdin=subprocess.PIPE)
    wait_for_recorded(4.0)
    process.stdin.write("\n")
    process.stdin.flush()
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    found = json.loads(out)
    assert found["conversation"][0]["stopped_by"] == "enter" and 4.0 <= found["duration"] < 9.0


@pytest.mark.slow
def test_a_killed_listen_leaves_a_recording_analyze_can_take():
    process = start("listen", "--input", SAMPLE, "--no-speak")
    path = wait_for_recorded(6.0)
    process.kill()
    process.communicate(timeout=60)
    kept = decode_audio(path)
    assert len(kept) >= 6.0 * 16000
    again = run("analyze", path, "--json")
    assert again.returncode == 0, again.stderr
    assert "it over" in json.loads(again.stdout)["transcript"]


# --- when there is nothing to hear, or nothing to hear it with ----------------------------------------

def test_silence_is_no_speech_and_the_recording_is_kept(tmp_path):
    quiet = write(tmp_path / "quiet.wav", answer(lead=0, tail=4.0))
    one_line_error(run("listen", "--input", quiet, "--no-pace", "--no-speak"), 4, "no speech heard",
                   "the recording is kept")
    [entry] = [json.loads(line) for line in run("history", "--json").stdout.splitlines()]
    assert entry["status"] == "error" and Path(entry["path"]).is_file()


def _portaudio() -> bool:
    try:
        import sounddevice  # noqa: F401
        return True
    except OSError:  # .ci/run installs libportaudio2; where it could not, the messages say so
        return False


def _has(kind: str) -> bool:
    if not _portaudio():
        return False
    import sounddevice

    try:
        return sounddevice.query_devices(kind=kind)[f"max_{kind}_channels"] > 0
    except (sounddevice.PortAudioError, ValueError):
        return False


def test_no_microphone_is_one_clear_line_before_anything_is_said(tmp_path):
    if _has("input"):
        pytest.skip("this machine has a microphone")
    missing = "no input device found" if _portaudio() else "PortAudio is not installed"
    one_line_error(run("listen", "--speak-to", tmp_path / "said"), 3, f"microphone: {missing}", "--input FILE")
    seven = "no input device 7" if _portaudio() else "PortAudio is not installed"
    one_line_error(run("listen", "--guided", "--microphone", "7", "--no-speak"), 3, seven)
    # The old spelling, --device for the microphone, still works, with a one-line notice first.
    old = run("listen", "--guided", "--device", "7", "--no-speak")
    notice, error = old.stderr.strip().splitlines()
    assert notice.startswith("debrief: notice: --device 7 means the microphone here; it is now --microphone 7")
    assert old.returncode == 3 and error.startswith("debrief: error: ") and seven in error
    assert not (tmp_path / "said").exists() or not any((tmp_path / "said").iterdir())
    assert not recordings().exists()


def test_no_speaker_is_one_clear_line_before_anything_is_recorded(answers):
    if _has("output"):
        pytest.skip("this machine has a speaker")
    one_line_error(run("listen", "--input", answers[0]), 7, "cannot play audio: ", "--speak-to DIR", "--no-speak")
    assert not recordings().exists()


def test_devices_lists_what_there_is():
    result = run("devices")
    if not _portaudio():
        one_line_error(result, 3, "audio devices: PortAudio is not installed")
        return
    assert result.returncode == 0, result.stderr
    if not _has("input"):
        assert "No microphone found" in result.stdout
    assert isinstance(json.loads(run("devices", "--json").stdout), list)


def test_usage_and_input_errors(tmp_path):
    one_line_error(run("listen", "--input", tmp_path / "missing.wav", "--no-speak"), 3, "missing.wav", "no such file")
    assert "hands free" in run("listen", "--help").stdout
