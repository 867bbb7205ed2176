"""Audio in, live: end of speech on real audio, the WAV written as it records, every way to stop.

Speech is the real Silero model on real recordings (tests/data/audio) and on Piper renders with
pauses in them, fed through `replay`, the path the microphone's blocks take. The microphone
itself is the real sounddevice module: on a machine with no input device it must say so in one line.
"""

import os
import time
import wave

import numpy as np
import pytest

from conftest import SPEECH
from debrief.audio import SAMPLE_RATE, decode_audio
from debrief.devices import DeviceError, StreamResampler, input_device, microphone
from debrief.recording import (END_OF_INPUT, END_OF_SPEECH, ENTER, MAX_LENGTH, NO_SPEECH, EnterKey, Limits,
                               RecordingFile, record, replay)
from debrief.voice_activity import SpeechDetector
from voices import answer, seconds

FIRST = "I walked them through the demo and the pricing."
SECOND = "Then they said they would think about it."
NEVER = "This part should never be recorded."


@pytest.fixture(scope="module")
def transcriber():
    from debrief.transcription import Transcriber

    return Transcriber()


@pytest.fixture(scope="module")
def jfk():
    return decode_audio(SPEECH / "jfk.flac")


def take_of(audio, folder, limits=Limits(), **kwargs):
    with RecordingFile.create(folder) as recording:
        return record(replay(audio, pace=False), recording, SpeechDetector(limits.trailing_silence, **kwargs),
                      limits)


# --- end of speech ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_one_second_pause_goes_on_and_trailing_silence_ends_it(tmp_path, transcriber):
    audio = answer(FIRST, 1.0, SECOND, 3.0, NEVER, lead=0.5, tail=1.0)
    take = take_of(audio, tmp_path)
    assert take.reason == END_OF_SPEECH and take.heard_speech
    said = 0.5 + seconds(FIRST, 1.0, SECOND)
    # It stops 2.5 s after the last word (give or take the VAD's view of where a word ends).
    assert said + 2.2 < take.seconds < said + 2.9, (take.seconds, said)
    assert abs(take.speech_end - said) < 0.4
    text = transcriber.transcribe(take.audio).text.lower()
    assert "demo" in text and "think about it" in text and "never" not in text, text


@pytest.mark.slow
def test_the_trailing_silence_is_configurable(tmp_path):
    audio = answer(FIRST, 1.0, SECOND, tail=3.0)
    take = take_of(audio, tmp_path, Limits(trailing_silence=0.8))
    assert take.reason == END_OF_SPEECH
    assert take.seconds < 0.5 + seconds(FIRST) + 1.0, "a 0.8 s trailing silence ends at the 1 s pause"


def test_real_speech_with_natural_pauses_is_heard_to_the_end(tmp_path, jfk):
    # JFK pauses for up to a second between phrases; 2.5 s of silence after him ends the take.
    audio = np.concatenate([jfk, np.zeros(3 * SAMPLE_RATE, np.float32), jfk])
    take = take_of(audio, tmp_path)
    assert take.reason == END_OF_SPEECH
    assert len(jfk) / SAMPLE_RATE + 1.5 < take.seconds < len(jfk) / SAMPLE_RATE + 2.6
    short = take_of(audio, tmp_path, Limits(trailing_silence=0.7))
    assert short.seconds < len(jfk) / SAMPLE_RATE - 2, "his pauses are longer than 0.7 s"


def test_blocks_of_any_size_give_faster_whispers_whole_file_judgement(jfk):
    from faster_whisper.vad import get_vad_model

    whole = len(jfk) // 512 * 512
    reference = get_vad_model()(jfk[:whole]).reshape(-1)
    results = []
    for size in (160, 512, 1600, 7 * 512 + 100, whole):
        detector = SpeechDetector()
        for at in range(0, whole, size):
            detector.feed(jfk[at:min(at + size, whole)])
        results.append((detector.position, detector.speech_samples, detector.speech_end, tuple(detector.cuts)))
    assert len(set(results)) == 1, results
    assert results[0][1] == 512 * int(np.sum(reference >= 0.5))


def test_cuts_fall_in_pauses_so_pieces_can_be_transcribed_while_talking(jfk):
    from faster_whisper.vad import get_vad_model

    detector = SpeechDetector()
    detector.feed(jfk)
    assert detector.cuts, "his second-long pauses are places to cut"
    probabilities = get_vad_model()(jfk[:len(jfk) // 512 * 512]).reshape(-1)
    for cut in detector.cuts:
        assert (probabilities[cut // 512 - 9:cut // 512] < 0.5).all(), "the 0.3 s before a cut are not speech"


# --- the other ways to stop ----------------------------------------------------------------------

def test_nobody_talking_stops_after_the_wait(tmp_path):
    quiet = np.random.default_rng(1).normal(0, 0.0005, 20 * SAMPLE_RATE).astype(np.float32)
    take = take_of(quiet, tmp_path, Limits(wait_for_speech=3.0))
    assert (take.reason, take.heard_speech, take.speech_end) == (NO_SPEECH, False, None)
    assert take.seconds == pytest.approx(3.0, abs=0.1)


def test_the_maximum_length_stops_a_long_answer(tmp_path, jfk):
    take = take_of(jfk, tmp_path, Limits(max_seconds=4.0))
    assert take.reason == MAX_LENGTH and take.seconds == pytest.approx(4.0, abs=0.1)


def test_running_out_of_input_stops_and_keeps_everything(tmp_path, jfk):
    take = take_of(jfk, tmp_path)
    assert take.reason == END_OF_INPUT and len(take.audio) == len(jfk)


def test_enter_on_standard_input_stops_the_take(tmp_path, jfk):
    read, write = os.pipe()
    with os.fdopen(read, "rb") as stream:
        enter = EnterKey(stream)

        def blocks():
            for index, block in enumerate(replay(jfk, pace=False)):
                if index == 20:
                    os.write(write, b"\n")
                    deadline = time.monotonic() + 2
                    while not enter.pressed() and time.monotonic() < deadline:
                        time.sleep(0.01)
                yield block

        with RecordingFile(tmp_path / "take.wav") as recording:
            take = record(blocks(), recording, SpeechDetector(), enter=enter)
        os.close(write)
    assert take.reason == ENTER and 2.0 <= take.seconds <= 2.2


def test_end_of_standard_input_is_not_enter():
    read, write = os.pipe()
    os.write(write, b"no newline")
    os.close(write)
    with os.fdopen(read, "rb") as stream:
        enter = EnterKey(stream)
        time.sleep(0.2)
        assert not enter.pressed()


# --- nothing said is lost -----------------------------------------------------------------------

def test_every_block_is_in_a_playable_wav_before_the_next_is_heard(tmp_path, jfk):
    path = tmp_path / "take.wav"
    checked = []

    def blocks():
        for block in replay(jfk, pace=False):
            if os.path.exists(path):
                with wave.open(str(path)) as wav:  # what a crash right now would leave
                    checked.append(wav.getnframes())
            yield block

    with RecordingFile(path) as recording:
        take = record(blocks(), recording, SpeechDetector())
    block = int(0.1 * SAMPLE_RATE)
    assert checked == [min(n * block, len(jfk)) for n in range(len(checked))]
    saved = decode_audio(path)
    assert len(saved) == len(take.audio) == len(jfk)
    assert np.abs(saved - jfk).max() < 2 / 32767


def test_a_microphone_that_fails_keeps_what_was_recorded(tmp_path, jfk):
    def dying_microphone():  # what `microphone` raises when the device stops delivering
        for index, block in enumerate(replay(jfk, pace=False)):
            if index == 30:
                raise DeviceError("microphone 'USB': stopped delivering audio")
            yield block

    with RecordingFile(tmp_path / "take.wav") as recording:
        with pytest.raises(DeviceError) as caught:
            record(dying_microphone(), recording, SpeechDetector())
    message = str(caught.value)
    assert "\n" not in message and "stopped delivering audio" in message
    assert "3.0 s recorded so far are kept in" in message and str(tmp_path / "take.wav") in message
    assert caught.value.exit_code == 3
    assert len(decode_audio(tmp_path / "take.wav")) == 30 * 1600


def test_recordings_made_in_the_same_second_get_their_own_files(tmp_path):
    first, second = RecordingFile.create(tmp_path), RecordingFile.create(tmp_path)
    first.close(), second.close()
    assert first.path != second.path and first.path.parent == tmp_path
    assert RecordingFile.create().path.parent.name == "recordings"  # in the data folder by default


# --- the microphone -------------------------------------------------------------------------------

def _has_input_device() -> bool:
    try:
        input_device()
        return True
    except DeviceError:
        return False


def _has_portaudio() -> bool:
    try:
        import sounddevice  # noqa: F401
        return True
    except OSError:
        return False


def test_no_microphone_is_one_clear_line():
    if _has_input_device():
        pytest.skip("this machine has a microphone")
    for device, which in ((None, "no input device found;"), (7, "no input device 7;")):
        if not _has_portaudio():  # .ci/run installs it; say so clearly where it could not
            which = "PortAudio is not installed (install libportaudio2)"
        with pytest.raises(DeviceError) as caught:
            next(microphone(device))
        message = str(caught.value)
        assert message.startswith(f"microphone: {which}") and "--input FILE" in message
        assert "\n" not in message and caught.value.exit_code == 3


def test_a_device_without_16_khz_is_resampled_block_by_block():
    from debrief.speech import resample

    rate = 44100
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(2 * rate) / rate)).astype(np.float32)
    streamed = StreamResampler(rate)
    out = np.concatenate([streamed(tone[at:at + 4410]) for at in range(0, len(tone), 4410)])
    whole = resample(tone, rate, SAMPLE_RATE)
    assert abs(len(out) - len(whole)) < 64
    n = min(len(out), len(whole)) - 64
    assert np.abs(out[:n] - whole[:n]).max() < 1e-3, "no seams at block edges"
