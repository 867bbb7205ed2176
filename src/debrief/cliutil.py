"""What every command shares: one-line errors with their exit codes, and the common options.

Touches: standard error and the exit code only.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

from debrief.errors import DebriefError, describe

ModelsOpt = Annotated[Optional[Path], typer.Option(
    "--models", help="Folder with playbooks and Whisper models [env: DEBRIEF_MODELS].", show_default=False)]
PlaybookOpt = Annotated[Optional[str], typer.Option(
    "--playbook", help="A playbook folder, or the name of one under the models folder.", show_default="baseline")]


def fail(message: str, code: int) -> None:
    """Print one line on standard error and leave with `code`."""
    typer.echo(f"debrief: error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def cli_errors():
    """Turn any failure into one line on standard error and its exit code; never a traceback."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the last line of defence against a traceback
        if os.environ.get("DEBRIEF_DEBUG") and not isinstance(exc, DebriefError):
            raise
        fail(*describe(exc))
    except KeyboardInterrupt as exc:
        fail(*describe(exc))
