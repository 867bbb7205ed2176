"""Stereo call recordings: the rep on one channel, the prospect on the other, merged by time.

The call is `samples/call-budget.txt` rendered with the Piper voice, each line on its speaker's
channel (the prospect a little slower, so the two sides do not sound the same), greedy decoding.
"""

import wave

import numpy as np
import pytest

from conftest import REPO
from debrief.audio import SAMPLE_RATE
from debrief.calls import find_turns, is_call

SCRIPT = [tuple(line.split(": ", 1)) for line in (REPO / "samples" / "call-budget.txt").read_text().splitlines()
          if line.strip()]
SPEAKERS = [speaker for speaker, _ in SCRIPT]
GAP = 0.6  # seconds between turns


def write_wav(path, channels):
    """16-bit PCM WAV with one channel per row of `channels`."""
    channels = np.atleast_2d(channels)
    frames = (np.clip(channels.T, -1, 1) * 32767).round().astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels.shape[0])
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(frames.tobytes())
    return path


@pytest.fixture(scope="session")
def call_channels():
    """(rep, prospect) rows: each line of the script on its speaker's row, silence on the other."""
    from debrief import speech

    rows = {"REP": [], "PROSPECT": []}
    for speaker, text in SCRIPT:
        audio, rate = speech.synthesize_piper(text, length_scale=1.0 if speaker == "REP" else 1.15)
        audio = speech.resample(audio, rate, SAMPLE_RATE)
        gap = np.zeros(int(GAP * SAMPLE_RATE), np.float32)
        other = "PROSPECT" if speaker == "REP" else "REP"
        rows[speaker] += [audio, gap]
        rows[other] += [np.zeros_like(audio), gap]
    return np.stack([np.concatenate(rows["REP"]), np.concatenate(rows["PROSPECT"])])


@pytest.fixture(scope="session")
def call_wav(call_channels, tmp_path_factory):
    return write_wav(tmp_path_factory.mktemp("calls") / "call.wav", call_channels)


@pytest.fixture(scope="module")
def analyzer(playbook):
    from debrief.pipeline import Analyzer

    return Analyzer(playbook, beam_size=1)


def labels(transcript_text):
    return [line.split(":", 1)[0] for line in transcript_text.splitlines()]


# --------------------------------------------------------------------------- which audio is a call


def test_two_independent_channels_are_a_call():
    rng = np.random.default_rng(0)
    assert is_call(rng.standard_normal((2, 16000)).astype(np.float32))


@pytest.mark.parametrize("shape", ["mono", "same", "one silent", "three channels"])
def test_other_audio_is_not_a_call(shape):
    voice = np.random.default_rng(1).standard_normal(16000).astype(np.float32)
    audio = {"mono": voice[None, :], "same": np.stack([voice, voice * 0.9]),
             "one silent": np.stack([voice, np.zeros_like(voice)]),
             "three channels": np.stack([voice, -voice, voice])}[shape]
    assert not is_call(audio)


def test_turns_follow_the_script(call_channels):
    turns = find_turns(call_channels, "left")
    assert [turn.speaker for turn in turns] == SPEAKERS
    assert all(a.end <= b.start for a, b in zip(turns, turns[1:]))


def test_the_rep_channel_can_be_the_right_one(call_channels):
    swapped = {"REP": "PROSPECT", "PROSPECT": "REP"}
    assert [turn.speaker for turn in find_turns(call_channels, "right")] == [swapped[s] for s in SPEAKERS]


def test_the_other_side_leaking_across_is_not_a_turn(call_channels):
    rep, prospect = call_channels
    # Each side hears the other at -20 dB, as on a line with echo.
    leaky = np.stack([rep + 0.1 * prospect, prospect + 0.1 * rep])
    assert [turn.speaker for turn in find_turns(leaky, "left")] == SPEAKERS


# --------------------------------------------------------------------------- transcribed and walked


@pytest.mark.slow
def test_a_stereo_call_comes_back_labelled_and_the_fix_uses_the_labels(analyzer, call_wav, call_channels):
    result = analyzer.analyze(call_wav, rep_channel="left")
    lines = result.transcript.text.splitlines()
    assert labels(result.transcript.text) == SPEAKERS
    assert "cost" in lines[2] and "budget" in lines[9]  # the rep's question, the prospect's answer
    fix = result.diagnosis.fix
    assert fix.step.id == "third.budget"
    assert {e.speaker for e in fix.evidence} == {"PROSPECT"}  # it was the prospect who had no budget
    assert all(s.text.startswith(("REP: ", "PROSPECT: ")) for s in result.transcript.segments)
    assert result.transcript.duration == pytest.approx(call_channels.shape[1] / SAMPLE_RATE, abs=0.01)
    assert result.timings["transcribe"] > 0


@pytest.mark.slow
def test_with_the_rep_on_the_right_the_labels_swap(analyzer, call_wav):
    result = analyzer.analyze(call_wav, rep_channel="right")
    assert labels(result.transcript.text) == ["PROSPECT" if s == "REP" else "REP" for s in SPEAKERS]
    assert {e.speaker for e in result.diagnosis.fix.evidence} == {"REP"}


@pytest.mark.slow
def test_a_mono_recording_of_the_call_stays_unlabelled_and_equals_analyze(analyzer, call_channels, tmp_path):
    from debrief.output import to_dict

    mono = write_wav(tmp_path / "mono.wav", call_channels.sum(axis=0))
    result = analyzer.analyze(mono)
    assert "REP:" not in result.transcript.text and "\n" not in result.transcript.text
    assert result.diagnosis.fix.step.id == "third.budget"
    from debrief.audio import decode_audio

    plain = analyzer.analyze_audio(decode_audio(mono), source=str(mono))  # the downmixed path
    strip = lambda r: {k: v for k, v in to_dict(r).items() if k != "timings"}  # noqa: E731
    assert strip(result) == strip(plain)


def test_a_typed_transcript_goes_straight_to_the_classifier(analyzer):
    result = analyzer.analyze(REPO / "samples" / "call-budget.txt")
    assert labels(result.transcript.text) == SPEAKERS
    assert result.diagnosis.fix.step.id == "third.budget"
