"""The sound devices: which microphones and speakers this machine has (`devices`, for `debrief
devices`), finding the one a user named (`--microphone`, `--output-device`), and the microphone as
a source of 16 kHz mono blocks (`microphone`). The only module that talks to PortAudio
(sounddevice); a machine without it, or without a device, gets a one-line `DeviceError`.

Touches: PortAudio through sounddevice; nothing on disk.
"""

from __future__ import annotations
import logging
import queue
from collections.abc import Iterator
from dataclasses import dataclass
import numpy as np
from debrief.audio import BLOCK_SECONDS, SAMPLE_RATE
from debrief.errors import InputError, OutputError

log = logging.getLogger(__name__)

NO_MICROPHONE_HINT = "pick one with --microphone (see: debrief devices), or replay a file with --input FILE"


class DeviceError(InputError):
    """The microphone is missing, cannot be opened, or stopped delivering audio (exit code 3)."""


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
    """A --microphone or --output-device value: a number is a device index, anything else part of a name."""
    if value is None or not value.strip():
        return None
    return int(value) if value.strip().isdigit() else value


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
