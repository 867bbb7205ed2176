"""Stage 1, audio in: decode any audio file to 16 kHz float32 samples for Whisper.

Decoding runs in-process with PyAV, which bundles the FFmpeg libraries, so no system
`ffmpeg` is needed. Every failure a user can cause (missing, empty, not audio...) is
raised as `InputError` with a one-line message that names the file.

Touches: the input file (read only). No models, no network.
"""

from __future__ import annotations

import gc
import io
import os
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np

from debrief.errors import InputError

SAMPLE_RATE = 16000
BLOCK_SECONDS = 0.1
"""The rate Whisper expects, in Hz."""

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".m4a", ".ogg", ".opus", ".webm", ".aac", ".mp4")
"""File suffixes (as `Path.suffix` gives them, lowercase) accepted as audio."""

Source = Union[str, os.PathLike, BinaryIO, bytes, bytearray, memoryview]

# Decoded frames are grouped before resampling: one resampler call per 500,000 input
# samples (11 s at 44.1 kHz) instead of one per codec frame is much faster.
_GROUP_SAMPLES = 500_000


def decode_audio(source: Source, *, name: str | None = None) -> np.ndarray:
    """Decode `source` to mono float32 samples at 16 kHz, in [-1, 1].

    `source` is a path (str or Path), a binary file object or the file's bytes; any
    sample rate is resampled and stereo is downmixed. `name` labels the input in error
    messages (default: the path, or the file object's name).

    Raises:
      InputError: the file is missing, a directory, empty, not audio, has no audio
        stream or decodes to no samples.
    """
    # Downmix here rather than in the resampler: FFmpeg's stereo-to-mono matrix for float
    # output is (L + R) / sqrt(2), which clips loud correlated speech (jfk.flac: 93 samples).
    return _decode(source, name).mean(axis=0)


def decode_channels(source: Source, *, name: str | None = None) -> np.ndarray:
    """Decode `source` to float32 samples at 16 kHz with its channels kept apart.

    Returns an array of shape (channels, samples): a stereo call recording gives the
    left and right channels as rows 0 and 1. Accepts the same sources and raises the
    same `InputError`s as `decode_audio`.
    """
    return _decode(source, name)


def duration(audio: np.ndarray) -> float:
    """The length in seconds of 16 kHz samples, mono (n,) or per channel (channels, n)."""
    return audio.shape[-1] / SAMPLE_RATE


def _decode(source: Source, name: str | None) -> np.ndarray:
    """Decode to (channels, n) float32 at 16 kHz in [-1, 1], or raise InputError."""
    import av  # here, not at the top: a typed transcript needs no FFmpeg (PyAV takes ~0.1 s to import)

    label = _label(source, name)
    stream_input = _open_input(source, label)
    try:
        with av.open(stream_input, mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise _error(label, "has no audio stream")
            chunks = _read_chunks(container, container.streams.audio[0])
    except InputError:
        raise
    except (av.error.FFmpegError, OSError, ValueError, EOFError) as exc:
        raise _error(label, f"not audio, or cannot be decoded ({_reason(exc)})") from exc
    finally:
        # PyAV's resampler keeps FFmpeg buffers alive until a garbage collection:
        # https://github.com/SYSTRAN/faster-whisper/issues/390
        gc.collect()

    if not chunks or sum(chunk.shape[1] for chunk in chunks) == 0:
        raise _error(label, "no audio samples decoded")
    audio = np.concatenate(chunks, axis=1)
    # Lossy codecs (mp3, aac) can overshoot full scale slightly; Whisper expects [-1, 1].
    return np.clip(audio, -1.0, 1.0, out=audio)


def _read_chunks(container, stream) -> list[np.ndarray]:
    """Decode, group and resample every frame of `stream`, flushing the resampler at the end.

    Planar float keeps each channel a row of the (channels, n) arrays returned; the
    layout is left as the input's so that no channel is mixed into another.
    """
    import av

    resampler = av.AudioResampler(format="fltp", layout=None, rate=SAMPLE_RATE)
    fifo = av.AudioFifo()
    chunks = []
    for frame in _valid_frames(container.decode(stream)):
        frame.pts = None  # the FIFO only needs samples, not timestamps
        fifo.write(frame)
        if fifo.samples >= _GROUP_SAMPLES:
            chunks += [f.to_ndarray() for f in resampler.resample(fifo.read())]
    if fifo.samples:
        chunks += [f.to_ndarray() for f in resampler.resample(fifo.read())]
    chunks += [f.to_ndarray() for f in resampler.resample(None)]
    return [chunk.astype(np.float32, copy=False) for chunk in chunks]


def _valid_frames(frames):
    """Yield decoded frames, skipping the corrupt ones a damaged file may contain."""
    import av

    iterator = iter(frames)
    while True:
        try:
            yield next(iterator)
        except StopIteration:
            return
        except av.error.InvalidDataError:
            continue


def _open_input(source: Source, label: str) -> str | BinaryIO:
    """Check `source` before FFmpeg sees it, so common mistakes get a precise message."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise _error(label, "is empty (0 bytes)")
        return io.BytesIO(bytes(source))
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        try:
            if not path.exists():
                raise _error(label, "no such file")
            if path.is_dir():
                raise _error(label, "is a directory, not an audio file")
            if path.stat().st_size == 0:
                raise _error(label, "is empty (0 bytes)")
        except OSError as exc:
            raise _error(label, f"cannot read ({_reason(exc)})") from exc
        if not os.access(path, os.R_OK):
            raise _error(label, "cannot read (permission denied)")
        return str(path)
    if not hasattr(source, "read"):
        kind = type(source).__name__
        raise TypeError(f"decode_audio: expected a path, a binary file or bytes, got {kind}")
    if _remaining_bytes(source) == 0:
        raise _error(label, "is empty (0 bytes)")
    return source


def _remaining_bytes(fileobj: BinaryIO) -> int | None:
    """Bytes left to read in a seekable file object, or None when it cannot tell."""
    try:
        if not fileobj.seekable():
            return None
        here = fileobj.tell()
        end = fileobj.seek(0, io.SEEK_END)
        fileobj.seek(here)
        return end - here
    except (AttributeError, OSError, ValueError):
        return None


def _label(source: Source, name: str | None) -> str:
    """How the input is named in error messages."""
    if name:
        return str(name)
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    file_name = getattr(source, "name", None)
    if isinstance(file_name, (str, os.PathLike)):
        return str(file_name)
    return "<audio bytes>" if isinstance(source, (bytes, bytearray, memoryview)) else "<audio stream>"


def _reason(exc: BaseException) -> str:
    """A short description of a low-level error, without FFmpeg's errno noise."""
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(reason)


def _error(label: str, problem: str) -> InputError:
    """An InputError whose message is exactly one line: '<file>: <problem>'."""
    return InputError(" ".join(f"{label}: {problem}".splitlines()))
