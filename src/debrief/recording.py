"""Recording a take: blocks of samples from a source, saved as they arrive, until the answer ends.

One code path whatever the source. A source is an iterator of float32 16 kHz mono blocks: the
microphone's (`devices.microphone`) or a decoded file cut into the same blocks, at real-time
pace or as fast as possible (`replay`). `record` writes every block to the recording file in the
data folder (`RecordingFile`, a WAV that is valid after every block) before anything else looks
at it, so nothing said is lost, and stops at the end of speech (`voice_activity.SpeechDetector`,
with a configurable trailing silence), on Enter (`EnterKey`), on Ctrl-C (keeping what was said),
at a maximum length, when nobody starts talking, or when the source ends.

Touches: the recordings folder in the data folder (the WAV being written) and, for Enter, the terminal.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from debrief import paths
from debrief.audio import BLOCK_SECONDS, SAMPLE_RATE
from debrief.devices import DeviceError
from debrief.errors import OutputError
from debrief.speech import to_pcm16
from debrief.voice_activity import SpeechDetector

log = logging.getLogger(__name__)

"""What a source delivers at a time: a microphone callback's worth, and a replay's block."""
RECORDINGS = "recordings"  # the folder, in the data folder, that holds what was recorded

# Why a take stopped.
END_OF_SPEECH = "end of speech"
ENTER = "enter"
INTERRUPTED = "interrupted"
MAX_LENGTH = "max length"
NO_SPEECH = "no speech"
END_OF_INPUT = "end of input"


@dataclass(frozen=True)
class Limits:
    """When a take stops by itself, in seconds."""

    trailing_silence: float = 2.5
    max_seconds: float = 600.0
    wait_for_speech: float = 10.0


@dataclass
class Take:
    """One stretch of recording: its audio, where it starts in the file, and why it stopped."""

    audio: np.ndarray
    offset: float
    reason: str
    heard_speech: bool
    speech_end: float | None  # seconds into the take where the last speech ended
    stopped_at: float  # time.perf_counter() when the stop was decided

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


# --------------------------------------------------------------------------- end of speech


# --------------------------------------------------------------------------- where it is saved


class RecordingFile:
    """A 16-bit 16 kHz mono WAV in the data folder that grows block by block.

    The wave module rewrites the header after every block, each block reaches the operating
    system at once and the disk every couple of seconds: a crash or a kill leaves a WAV that plays,
    and that `debrief analyze` takes, up to the last block or so.
    """

    SYNC_SECONDS = 2.0

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.frames = 0
        self._synced = 0
        try:
            self._file = open(self.path, "xb")  # never overwrite an earlier recording
            self._wav = wave.open(self._file, "wb")
            self._wav.setnchannels(1)
            self._wav.setsampwidth(2)
            self._wav.setframerate(SAMPLE_RATE)
            self._wav.writeframes(b"")  # the header now: even an empty recording is a valid WAV
            self._file.flush()
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    @classmethod
    def create(cls, folder: str | Path | None = None) -> RecordingFile:
        """A new recording named for the local time, in `folder` (default: <data folder>/recordings)."""
        folder = Path(folder) if folder else paths.data_dir() / RECORDINGS
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot write {folder}: {exc.strerror or exc}") from None
        stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        for n in range(1, 100):
            path = folder / (f"{stamp}.wav" if n == 1 else f"{stamp}-{n}.wav")
            if not path.exists():
                try:
                    return cls(path)
                except OutputError:
                    if not path.exists():  # a race with another recorder is the only excuse
                        raise
        raise OutputError(f"cannot write {folder}: too many recordings named {stamp}")

    @property
    def seconds(self) -> float:
        return self.frames / SAMPLE_RATE

    def write(self, block: np.ndarray) -> None:
        """Append samples in [-1, 1]; they are on disk before this returns."""
        try:
            self._wav.writeframes(to_pcm16(block))
            self._file.flush()
            self.frames += len(block)
            if self.frames - self._synced >= self.SYNC_SECONDS * SAMPLE_RATE:
                os.fsync(self._file.fileno())
                self._synced = self.frames
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            self._wav.close()
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        finally:
            self._file.close()

    def __enter__(self) -> RecordingFile:
        return self

    def __exit__(self, *_) -> None:
        self.close()


# --------------------------------------------------------------------------- the recording loop


def record(blocks: Iterator[np.ndarray], recording: RecordingFile, detector: SpeechDetector,
           limits: Limits = Limits(), *, enter: EnterKey | None = None,
           on_cut: Callable[[np.ndarray, int], None] | None = None) -> Take:
    """Record one take from `blocks` into `recording` until something stops it.

    At each of the detector's cuts, `on_cut(piece, start)` gets the samples since the previous cut
    and where they start in this take, while recording goes on, so that they can be transcribed
    at once. What follows the last cut is the end of `Take.audio`.

    Raises:
      DeviceError: the microphone failed; its message says where the audio recorded so far is.
    """
    offset = recording.seconds
    chunks: list[np.ndarray] = []
    piece: list[np.ndarray] = []  # the blocks since the last cut
    total, cuts, piece_start, reason = 0, 0, 0, END_OF_INPUT
    if enter is not None:
        enter.clear()  # an Enter pressed during the prompt must not cut the answer short
    try:
        for block in blocks:
            recording.write(block)  # first: on disk before anything else can fail
            chunks.append(block)
            piece.append(block)
            total += len(block)
            detector.feed(block)
            for cut in detector.cuts[cuts:]:
                joined = np.concatenate(piece)
                if on_cut is not None:
                    on_cut(joined[:cut - piece_start], piece_start)
                piece, piece_start = [joined[cut - piece_start:]], cut
            cuts = len(detector.cuts)
            reason = _stop_reason(detector, total, limits, enter)
            if reason:
                break
        else:
            reason = END_OF_INPUT
    except KeyboardInterrupt:
        reason = INTERRUPTED
    except DeviceError as exc:
        kept = recording.seconds
        if kept:
            raise DeviceError(f"{exc}; the {kept:.1f} s recorded so far are kept in {recording.path}") from None
        raise
    finally:
        close = getattr(blocks, "close", None)
        if close is not None:
            close()  # stops the microphone now, not when the generator is collected
    stopped_at = time.perf_counter()
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    log.debug("take of %.1f s stopped by %s", total / SAMPLE_RATE, reason)
    end = detector.speech_end
    return Take(audio, offset, reason, detector.started, None if end is None else min(end, total) / SAMPLE_RATE,
                stopped_at)


def _stop_reason(detector: SpeechDetector, total: int, limits: Limits, enter: EnterKey | None) -> str | None:
    if detector.ended:
        return END_OF_SPEECH
    if enter is not None and enter.pressed():
        return ENTER
    if total >= limits.max_seconds * SAMPLE_RATE:
        return MAX_LENGTH
    if not detector.started and total >= limits.wait_for_speech * SAMPLE_RATE:
        return NO_SPEECH
    return None


class EnterKey:
    """Watches standard input for Enter on a daemon thread; end of input just ends the watch.

    It reads the file descriptor directly: a thread blocked in `sys.stdin.readline()` holds a lock
    that Python's shutdown then waits on.
    """

    def __init__(self, stream=None) -> None:
        self._pressed = threading.Event()
        try:
            fd = (stream or sys.stdin).fileno()
            if os.isatty(fd) and os.tcgetpgrp(fd) != os.getpgrp():
                return  # run in the background (`debrief listen &`): reading would stop the process
        except (AttributeError, OSError, ValueError):  # no real standard input (a test runner's)
            return
        threading.Thread(target=self._watch, args=(fd,), name="debrief-enter", daemon=True).start()

    def _watch(self, fd: int) -> None:
        while True:
            try:
                data = os.read(fd, 1024)
            except OSError:
                return
            if not data:
                return
            if b"\n" in data or b"\r" in data:
                self._pressed.set()

    def pressed(self) -> bool:
        return self._pressed.is_set()

    def clear(self) -> None:
        self._pressed.clear()


# --------------------------------------------------------------------------- sources


def replay(audio: np.ndarray, *, pace: bool = True, block_seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """Feed 16 kHz samples block by block as a microphone would: at real-time pace, or at once."""
    size = int(block_seconds * SAMPLE_RATE)
    started = time.monotonic()
    for index, at in enumerate(range(0, len(audio), size)):
        if pace:  # a microphone hands over a block once it has been spoken
            delay = started + (index + 1) * block_seconds - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        yield audio[at:at + size]


# --------------------------------------------------------------------------- devices


