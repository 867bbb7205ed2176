"""Audio in, live: blocks of samples from a microphone or a replayed file, saved as they arrive.

One code path whatever the source. A source is an iterator of float32 16 kHz mono blocks: the
microphone's (`microphone`) or a decoded file cut into the same blocks, at real-time pace or as
fast as possible (`replay`). `record` writes every block to the recording file in the data folder
before anything else looks at it, so nothing said is lost, and stops at the end of speech (the
Silero VAD that faster-whisper ships, with a configurable trailing silence), on Enter, on Ctrl-C
(keeping what was said), at a maximum length, when nobody starts talking, or when the source ends.
"""

from __future__ import annotations

import logging
import os
import queue
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
from debrief.audio import SAMPLE_RATE
from debrief.errors import InputError, OutputError
from debrief.speech import to_pcm16

log = logging.getLogger(__name__)

BLOCK_SECONDS = 0.1
"""What a source delivers at a time: a microphone callback's worth, and a replay's block."""
WINDOW = 512  # samples the Silero model judges at once (32 ms at 16 kHz)
CONTEXT = 64  # samples of the previous window the model sees with each window
RECORDINGS = "recordings"  # the folder, in the data folder, that holds what was recorded

# Why a take stopped.
END_OF_SPEECH = "end of speech"
ENTER = "enter"
INTERRUPTED = "interrupted"
MAX_LENGTH = "max length"
NO_SPEECH = "no speech"
END_OF_INPUT = "end of input"

NO_MICROPHONE_HINT = "pick one with --device (see: debrief devices), or replay a file with --input FILE"


class DeviceError(InputError):
    """The microphone is missing, cannot be opened, or stopped delivering audio (exit code 3)."""


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


class SpeechDetector:
    """Streaming voice-activity detection: has speech started, where are the pauses, has it ended.

    Silero (the v6 model faster-whisper ships) judges each 32 ms window. Its LSTM state and the 64
    samples of context are carried from block to block, so blocks of any size give exactly the
    probabilities of faster-whisper's whole-file pass. As in faster-whisper, a window at or above
    `threshold` is speech, silence starts at the first window below `threshold - 0.15` and only a
    speech window ends it: a breath or a soft consonant does not restart the count.

    It also marks `cuts`: places where what was said since the last cut can be transcribed on its
    own while the rep goes on talking. A cut falls in a pause after speech: a short one (`pause`)
    once the piece is `piece` seconds long, a longer one (`long_pause`) whatever its length, so the
    last words are usually transcribed before the trailing silence has run out.
    """

    def __init__(self, trailing_silence: float = 2.5, *, threshold: float = 0.5, min_speech: float = 0.25,
                 pause: float = 0.3, long_pause: float = 1.0, piece: float = 4.0) -> None:
        from faster_whisper.vad import get_vad_model

        self._session = get_vad_model().session
        self.threshold = threshold
        self.neg_threshold = max(threshold - 0.15, 0.01)
        self.trailing = int(trailing_silence * SAMPLE_RATE)
        self.min_speech = int(min_speech * SAMPLE_RATE)  # a click or a cough does not start a take
        self.pause, self.long_pause = int(pause * SAMPLE_RATE), int(long_pause * SAMPLE_RATE)
        self.piece = int(piece * SAMPLE_RATE)
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(CONTEXT, np.float32)
        self._pending = np.zeros(0, np.float32)
        self._silence_from: int | None = None
        self.position = 0  # samples judged so far
        self.speech_samples = 0
        self.speech_end: int | None = None  # where the last speech window ended, in samples
        self.cuts: list[int] = []  # positions (in samples) where a piece ends

    @property
    def started(self) -> bool:
        return self.speech_samples >= self.min_speech

    @property
    def silence(self) -> int:
        """Samples of silence since the last speech (0 while speaking or before any speech)."""
        return 0 if self._silence_from is None else self.position - self._silence_from

    @property
    def ended(self) -> bool:
        return self.started and self.silence >= self.trailing

    def feed(self, block: np.ndarray) -> None:
        """Judge the whole windows in `block` (plus what was left over from the last one)."""
        audio = np.concatenate([self._pending, np.asarray(block, np.float32)])
        whole = len(audio) // WINDOW * WINDOW
        self._pending = audio[whole:]
        if whole:
            for probability in self._probabilities(audio[:whole]):
                self._step(float(probability))

    def _probabilities(self, audio: np.ndarray) -> np.ndarray:
        windows = audio.reshape(-1, WINDOW)
        context = np.vstack([self._context[None], windows[:-1, -CONTEXT:]])
        out, self._h, self._c = self._session.run(
            None, {"input": np.concatenate([context, windows], axis=1), "h": self._h, "c": self._c})
        self._context = windows[-1, -CONTEXT:].copy()
        return out.reshape(-1)

    def _step(self, probability: float) -> None:
        self.position += WINDOW
        if probability >= self.threshold:
            self.speech_samples += WINDOW
            self.speech_end = self.position
            self._silence_from = None
        elif probability < self.neg_threshold and self.speech_end is not None and self._silence_from is None:
            self._silence_from = self.position - WINDOW
        last_cut = self.cuts[-1] if self.cuts else 0
        if self.started and self._silence_from is not None and self.speech_end > last_cut:
            long_enough = self._silence_from - last_cut >= self.piece
            if self.silence >= (self.pause if long_enough else self.long_pause):
                self.cuts.append(self.position)


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


def microphone(device: int | str | None = None, *, block_seconds: float = BLOCK_SECONDS,
               timeout: float = 2.0) -> Iterator[np.ndarray]:
    """Blocks from an input device (default: the system's), open while iterated, closed after.

    A device that does not take 16 kHz is opened at its own rate and resampled as it goes.

    Raises:
      DeviceError: no PortAudio, no such device, it cannot be opened, or it stops delivering
        audio for `timeout` seconds (unplugged, taken by another program).
    """
    sd = sounddevice()
    info = input_device(device)
    name = info["name"]
    rate = SAMPLE_RATE
    try:
        sd.check_input_settings(device=device, channels=1, dtype="float32", samplerate=SAMPLE_RATE)
    except (sd.PortAudioError, ValueError):
        rate = int(info["default_samplerate"])
    resample = StreamResampler(rate) if rate != SAMPLE_RATE else None
    blocks: queue.Queue = queue.Queue()

    def callback(indata, frames, time_info, status) -> None:  # on PortAudio's thread: be quick
        if status:
            log.debug("microphone: %s", status)
        blocks.put(indata[:, 0].copy())

    try:
        stream = sd.InputStream(device=device, channels=1, samplerate=rate, dtype="float32",
                                blocksize=int(rate * block_seconds), callback=callback)
    except (sd.PortAudioError, ValueError) as exc:
        raise DeviceError(f"microphone {name!r}: cannot open it ({_one_line(exc)})") from None
    try:
        with stream:
            while True:
                try:
                    block = blocks.get(timeout=timeout)
                except queue.Empty:
                    raise DeviceError(f"microphone {name!r}: stopped delivering audio") from None
                yield resample(block) if resample else block
    except sd.PortAudioError as exc:
        raise DeviceError(f"microphone {name!r}: failed ({_one_line(exc)})") from None


class StreamResampler:
    """Streaming resampling to 16 kHz: one libswresample context, so block edges leave no seams."""

    def __init__(self, rate: int) -> None:
        import av

        self.rate = rate
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)

    def __call__(self, block: np.ndarray) -> np.ndarray:
        import av

        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block, np.float32).reshape(1, -1),
                                           format="flt", layout="mono")
        frame.sample_rate = self.rate
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out) if out else np.zeros(0, np.float32)


# --------------------------------------------------------------------------- devices


def sounddevice(what: str = "microphone"):
    """The sounddevice module, or a DeviceError naming `what` when PortAudio or sounddevice is missing."""
    try:
        import sounddevice as sd
    except OSError:  # "PortAudio library not found"
        raise DeviceError(f"{what}: PortAudio is not installed (install libportaudio2), "
                          "or replay a file with --input FILE") from None
    except ImportError:
        raise DeviceError(f"{what}: sounddevice is not installed (pip install sounddevice)") from None
    return sd


def input_device(device: int | str | None = None) -> dict:
    """The input device `device` (default: the system's) as sounddevice describes it.

    Raises:
      DeviceError: there is none, or it has no input channels.
    """
    sd = sounddevice()
    try:
        info = sd.query_devices(device, kind="input")
    except (sd.PortAudioError, ValueError):
        info = None
    if not info or info.get("max_input_channels", 0) < 1:
        which = "no input device found" if device is None else f"no input device {device!r}"
        raise DeviceError(f"microphone: {which}; {NO_MICROPHONE_HINT}")
    return info


def output_device(device: int | str | None = None) -> dict:
    """The output device `device` (default: the system's), or an OutputError saying how to do without."""
    try:
        sd = sounddevice()
    except DeviceError:
        raise OutputError("cannot play audio: PortAudio is not installed (install libportaudio2, "
                          "or use --speak-to DIR, or --no-speak)") from None
    try:
        info = sd.query_devices(device, kind="output")
    except (sd.PortAudioError, ValueError):
        info = None
    if not info or info.get("max_output_channels", 0) < 1:
        which = "no output device" if device is None else f"no output device {device!r}"
        raise OutputError(f"cannot play audio: {which} (use --speak-to DIR, or --no-speak)")
    return info


@dataclass(frozen=True)
class Device:
    index: int
    name: str
    api: str
    inputs: int
    outputs: int
    rate: float
    default_input: bool
    default_output: bool


def devices() -> list[Device]:
    """Every audio device PortAudio sees, with which are the defaults (an empty list when none)."""
    sd = sounddevice("audio devices")
    try:
        found = sd.query_devices()
        apis = [api["name"] for api in sd.query_hostapis()]
        default_in, default_out = (_default_index(sd, kind) for kind in ("input", "output"))
    except sd.PortAudioError as exc:
        raise DeviceError(f"audio devices: cannot list them ({_one_line(exc)})") from None
    return [Device(d["index"], d["name"], apis[d["hostapi"]] if d["hostapi"] < len(apis) else "?",
                   d["max_input_channels"], d["max_output_channels"], d["default_samplerate"],
                   d["index"] == default_in, d["index"] == default_out) for d in found]


def _default_index(sd, kind: str) -> int | None:
    try:
        return sd.query_devices(kind=kind)["index"]
    except (sd.PortAudioError, ValueError):
        return None


def parse_device(value: str | None) -> int | str | None:
    """A --device value: a number is a device index, anything else part of a device name."""
    if value is None or not value.strip():
        return None
    return int(value) if value.strip().isdigit() else value


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
