"""One place that resolves where models and user data live.

Touches: the environment and the folders it names (created when asked for); `write_whole` writes
the derived files that other modules put in the cache folder.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

MODELS_ENV = "DEBRIEF_MODELS"
HOME_ENV = "DEBRIEF_HOME"
CACHE_ENV = "DEBRIEF_CACHE"
DEFAULT_PLAYBOOK = "baseline"

log = logging.getLogger(__name__)

_PACKAGE_DIR = Path(__file__).resolve().parent


def models_dir(override: str | Path | None = None) -> Path:
    """The models folder: `override`, else $DEBRIEF_MODELS, else the one shipped with debrief.

    From a source checkout that is `<repo>/models`; from an installed wheel it is the copy
    packed inside the package (`debrief/models`).
    """
    if override:
        return Path(override).expanduser()
    if os.environ.get(MODELS_ENV):
        return Path(os.environ[MODELS_ENV]).expanduser()
    return packaged_models_dir()


def packaged_models_dir() -> Path:
    """The models folder shipped with debrief: packed in the wheel, or `<repo>/models` in a checkout."""
    packed = _PACKAGE_DIR / "models"
    if packed.is_dir():
        return packed
    return _PACKAGE_DIR.parents[1] / "models"


def playbook_dir(playbook: str | Path | None = None, models: str | Path | None = None) -> Path:
    """A playbook folder: an explicit path, else `<models>/<name>`, default `baseline`."""
    if playbook is not None:
        candidate = Path(playbook).expanduser()
        if candidate.is_dir() or os.sep in str(playbook):
            return candidate
        return models_dir(models) / str(playbook)
    return models_dir(models) / DEFAULT_PLAYBOOK


def whisper_cache(models: str | Path | None = None) -> Path:
    """Where local Whisper models live: `<models>/whisper/<name>/`."""
    return models_dir(models) / "whisper"


def data_dir() -> Path:
    """Where debrief keeps what users record and their history: $DEBRIEF_HOME or the user data dir."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("debrief", appauthor=False))


def cache_dir() -> Path:
    """Where derived files live (the learned reader's heads and sentence vectors): $DEBRIEF_CACHE
    or the user cache dir. Everything there can be deleted; it is rebuilt when needed."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("debrief", appauthor=False))


def write_whole(path: Path, write: Callable[[BinaryIO], None], what: str) -> None:
    """Write a derived file in the cache whole or not at all: `write` fills a sibling file that is
    then renamed over `path`. A cache that cannot be written is only a slower start, so a failure
    is one warning naming `what` ("the reader's cache"), and nothing half-written is left."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb") as out:
            write(out)
        os.replace(partial, path)
    except OSError as exc:
        log.warning("%s: cannot save %s (%s); it will be made again next time", path, what, exc.strerror or exc)
        try:
            partial.unlink(missing_ok=True)
        except OSError:
            pass
