"""`debrief report`: per rep, the step that keeps going wrong, from the history."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from debrief.cliutil import ModelsOpt, PlaybookOpt, cli_errors


def register(app: typer.Typer) -> None:
    app.command()(report)


def report(
    rep: Annotated[Optional[str], typer.Option("--rep", help="Only this rep.", show_default=False)] = None,
    since: Annotated[Optional[str], typer.Option(
        "--since", help="Only calls on or after this date (YYYY-MM-DD).", show_default=False)] = None,
    html: Annotated[Optional[Path], typer.Option(
        "--html", help="Also write a page with a chart per rep to FILE.", dir_okay=False,
        show_default=False)] = None,
    playbook: PlaybookOpt = None,
    models: ModelsOpt = None,
) -> None:
    """Per rep: the step that keeps going wrong, and whether coaching it worked.

    From the history that `batch` fills: the step to fix most often and the fixes per base.

    "Fix that, move on": whether the last coached step stopped coming back in the calls since.

    --html adds a page with a bar per step for each rep.
    """
    import sys

    from rich.console import Console

    from debrief import paths
    from debrief import report as reporting
    from debrief.playbook import load_playbook
    from debrief.store import Store, parse_date

    with cli_errors():
        if since is not None:
            parse_date(since, "--since")
        book = load_playbook(paths.playbook_dir(playbook, models))
        with Store() as store:
            entries = store.history(rep=rep, since=since)
        reports = reporting.build_report(entries, book)
    if not reports:
        who = f" for rep {rep}" if rep else ""
        typer.echo(f"debrief: no calls in the history{who}{' since ' + since if since else ''}; "
                   "add some with `debrief batch DIR`", err=True)
        raise typer.Exit(0)
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 220)
    reporting.render(reports, book, console)
    if html is not None:
        filters = ", ".join(f for f in (f"rep {rep}" if rep else "", f"since {since}" if since else "") if f)
        with cli_errors():
            reporting.write_html(html, reporting.to_html(reports, book, filters=filters))
        typer.echo(f"chart: {html}")
