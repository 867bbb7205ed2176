"""Stage 1: decoding real speech from files, bytes and streams, and refusing bad input."""

from __future__ import annotations

import io
import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import SPEECH

from debrief.audio import AUDIO_SUFFIXES, SAMPLE_RATE, decode_audio, decode_channels, duration
from debrief.errors import InputError

CLIPS = ["jfk.flac", "1272-141231-0002.flac", "1272-128104-0004-8k.wav"]

# (suffix, encoder): what a rep's phone or browser may hand us. Opus only runs at
# 8/12/16/24/48 kHz, so the 44.1 kHz clip is written at 48 kHz in webm/ogg.
FORMATS = [
    ("wav", "pcm_s16le"),
    ("flac", "flac"),
    ("mp3", "libmp3lame"),
    ("ogg", "libopus"),
    ("webm", "libopus"),
    ("m4a", "aac"),
]
OPUS_RATES = {8000, 12000, 16000, 24000, 48000}
AAC_FRAME = 1024  # samples; an AAC stream ends on a whole frame, padded with silence


@pytest.fixture(scope="module")
def speech() -> Path:
    return SPEECH


def load_native(path: Path, rate: int, layout: str, seconds: float) -> np.ndarray:
    """The first `seconds` of `path` as planar float (channels, n) at `rate`, via PyAV."""
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    with av.open(str(path)) as container:
        frames = [out for frame in container.decode(audio=0) for out in resampler.resample(frame)]
    frames += resampler.resample(None)
    return np.concatenate([f.to_ndarray() for f in frames], axis=1)[:, : int(seconds * rate)]


def write_audio(path: Path, audio: np.ndarray, rate: int, codec: str) -> None:
    """Encode planar float `audio` (channels, n) at `rate` into `path` with PyAV."""
    layout = "stereo" if audio.shape[0] == 2 else "mono"
    out_rate = 48000 if codec == "libopus" and rate not in OPUS_RATES else rate
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio, dtype=np.float32), format="fltp", layout=layout)
    frame.sample_rate = rate
    # A timestamp lets the muxer record the encoder delay (AAC priming) for the decoder to trim.
    frame.pts, frame.time_base = 0, Fraction(1, rate)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=out_rate, layout=layout)
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def metadata_seconds(path: Path) -> float:
    """The audio stream's duration as the file itself declares it."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return float(stream.duration * stream.time_base)


def assert_one_line_naming(error: pytest.ExceptionInfo, name: str) -> str:
    message = str(error.value)
    assert name in message
    assert "\n" not in message and "\r" not in message
    assert error.value.exit_code == 3
    return message


# --- real clips -----------------------------------------------------------------------


@pytest.mark.parametrize("clip", CLIPS)
def test_decodes_speech_clip_to_16k_mono_float(speech, clip):
    path = speech / clip
    audio = decode_audio(path)

    assert audio.dtype == np.float32 and audio.ndim == 1
    assert duration(audio) == pytest.approx(metadata_seconds(path), rel=0.01)
    assert np.abs(audio).max() <= 1.0
    assert np.sqrt(np.mean(audio**2)) > 0.01, "speech should not decode to near-silence"


def test_downmix_is_the_mean_of_the_channels_and_does_not_clip(speech):
    channels = decode_channels(speech / "jfk.flac")
    mono = decode_audio(speech / "jfk.flac")

    assert channels.shape == (2, mono.shape[0])
    np.testing.assert_allclose(mono, channels.mean(axis=0), atol=1e-6)
    assert np.abs(mono).max() < 0.999


def test_decode_channels_keeps_mono_as_one_row(speech):
    channels = decode_channels(speech / "1272-128104-0004-8k.wav")

    assert channels.shape[0] == 1 and channels.dtype == np.float32
    assert duration(channels) == pytest.approx(29.4, rel=0.01)


def test_decode_channels_keeps_left_and_right_apart(speech, tmp_path):
    speech = load_native(speech / "jfk.flac", 44100, "mono", 3.0)[0]
    path = tmp_path / "call.wav"
    write_audio(path, np.stack([speech, np.zeros_like(speech)]), 44100, "pcm_s16le")

    rep, prospect = decode_channels(path)

    assert np.sqrt(np.mean(rep**2)) > 0.05
    assert np.abs(prospect).max() < 1e-4


@pytest.mark.parametrize("suffix,codec", FORMATS)
@pytest.mark.parametrize("rate,layout", [(44100, "stereo"), (8000, "mono")])
def test_decodes_each_format_back_to_the_same_length(speech, tmp_path, suffix, codec, rate, layout):
    seconds = 5.0
    path = tmp_path / f"clip-{rate}.{suffix}"
    write_audio(path, load_native(speech / "jfk.flac", rate, layout, seconds), rate, codec)

    audio = decode_audio(path)

    assert f".{suffix}" in AUDIO_SUFFIXES
    assert audio.dtype == np.float32 and audio.ndim == 1
    # AAC pads the last frame with silence and the file keeps it, so allow one frame more.
    allowance = 0.01 * seconds + (AAC_FRAME / rate if codec == "aac" else 0.0)
    assert abs(duration(audio) - seconds) <= allowance
    assert np.sqrt(np.mean(audio**2)) > 0.01


def test_decodes_bytes_and_file_objects(speech):
    path = speech / "1272-141231-0002.flac"
    from_path = decode_audio(path)

    with open(path, "rb") as handle:
        from_file = decode_audio(handle)
    from_bytes = decode_audio(path.read_bytes())
    from_buffer = decode_audio(io.BytesIO(path.read_bytes()))

    for audio in (from_file, from_bytes, from_buffer):
        np.testing.assert_array_equal(audio, from_path)
    assert decode_channels(path.read_bytes()).shape == (1, from_path.shape[0])


def test_decodes_str_paths(speech):
    assert decode_audio(str(speech / "jfk.flac")).shape == (11 * SAMPLE_RATE,)


def test_duration_counts_seconds_at_16k():
    assert duration(np.zeros(24000, dtype=np.float32)) == 1.5
    assert duration(np.zeros((2, 8000), dtype=np.float32)) == 0.5


# --- bad input ------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(InputError) as error:
        decode_audio(tmp_path / "debrief-monday.wav")
    message = assert_one_line_naming(error, "debrief-monday.wav")
    assert message.endswith(": no such file")


def test_directory(tmp_path):
    folder = tmp_path / "recordings.wav"
    folder.mkdir()
    with pytest.raises(InputError) as error:
        decode_audio(folder)
    assert "directory" in assert_one_line_naming(error, "recordings.wav")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.m4a"
    path.touch()
    with pytest.raises(InputError) as error:
        decode_channels(path)
    assert "empty" in assert_one_line_naming(error, "empty.m4a")


@pytest.mark.parametrize(
    "content",
    [b"Call with Acme went well, they want a demo next week.\n", bytes(range(256)) * 40],
    ids=["text", "binary"],
)
def test_file_that_is_not_audio(tmp_path, content):
    path = tmp_path / "notes.mp3"
    path.write_bytes(content)
    with pytest.raises(InputError) as error:
        decode_audio(path)
    assert "not audio" in assert_one_line_naming(error, "notes.mp3")


def test_truncated_file(speech, tmp_path):
    path = tmp_path / "cut-off.flac"
    path.write_bytes((speech / "jfk.flac").read_bytes()[:64])
    with pytest.raises(InputError) as error:
        decode_audio(path)
    assert_one_line_naming(error, "cut-off.flac")


def test_video_without_audio_stream(tmp_path):
    path = tmp_path / "screen.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(5):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)

    with pytest.raises(InputError) as error:
        decode_audio(path)
    assert "no audio stream" in assert_one_line_naming(error, "screen.mp4")


def test_audio_file_with_no_samples(tmp_path):
    path = tmp_path / "nothing.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
    assert path.stat().st_size > 0

    with pytest.raises(InputError) as error:
        decode_audio(path)
    assert "no audio samples" in assert_one_line_naming(error, "nothing.wav")


def test_bad_bytes_and_streams_use_the_given_name():
    with pytest.raises(InputError) as error:
        decode_audio(b"", name="upload.webm")
    assert "empty" in assert_one_line_naming(error, "upload.webm")

    with pytest.raises(InputError) as error:
        decode_audio(b"not audio at all" * 10, name="upload.webm")
    assert_one_line_naming(error, "upload.webm")

    with pytest.raises(InputError) as error:
        decode_audio(io.BytesIO(b""), name="stdin")
    assert_one_line_naming(error, "stdin")


def test_file_object_is_named_by_its_path(tmp_path):
    path = tmp_path / "garbage.ogg"
    path.write_bytes(b"\x00\x01garbage" * 100)
    with open(path, "rb") as handle, pytest.raises(InputError) as error:
        decode_audio(handle)
    assert_one_line_naming(error, "garbage.ogg")
