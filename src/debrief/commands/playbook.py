"""`debrief playbook train`: the learned reader of a playbook, built from its examples."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from debrief.cliutil import ModelsOpt, cli_errors

playbook_app = typer.Typer(help="A playbook's learned reader and its examples.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the `playbook` command group to the debrief app."""
    app.add_typer(playbook_app, name="playbook")


@playbook_app.command("train")
def train(
    folder: Annotated[Optional[str], typer.Argument(
        help="A playbook folder, or the name of one under the models folder.", show_default="baseline")] = None,
    force: Annotated[bool, typer.Option("--force", help="Train again even if the cached reader is current.")] = False,
    models: ModelsOpt = None,
) -> None:
    """Train the playbook's reader from its examples.jsonl (encoding each example once, cached).

    It is also built by itself the first time a playbook is used, and again whenever its examples,
    patterns or the encoder change; this command does it ahead of time, with a progress bar.
    """
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from debrief.classification import Classifier
    from debrief.encoder import load_encoder
    from debrief.paths import playbook_dir
    from debrief.playbook import load_playbook
    from debrief.reader import load_reader

    with cli_errors():
        book = load_playbook(playbook_dir(folder, models))
        if not book.examples:
            typer.echo(f"{book.source}: no labelled examples (examples.jsonl); it reads with the rules alone")
            return
        started = time.perf_counter()
        rules = Classifier(book, reader=None)
        encoder = load_encoder()
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, transient=True) as progress:
            task = progress.add_task(f"encoding {len(book.examples)} examples", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            reader = load_reader(book, encoder, rule_terms=rules.rule_terms, progress=advance, force=force)
    how = "is current (cached)" if reader.from_cache else f"trained in {time.perf_counter() - started:.1f} s"
    typer.echo(f"{book.source}: reader on {len(book.examples)} examples, {len(reader.classes)} classes, {how}")
