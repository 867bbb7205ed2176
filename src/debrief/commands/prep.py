"""`debrief prep` and `debrief history`: getting ready for a call from what was said about the deal."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from debrief.cliutil import ModelsOpt, PlaybookOpt, cli_errors, fail


def register(app: typer.Typer) -> None:
    app.command()(prep)
    app.command()(history)


def prep(
    notes: Annotated[Optional[list[str]], typer.Argument(
        help="Notes about the deal: text files, or - for standard input.", show_default=False)] = None,
    deal: Annotated[Optional[str], typer.Option(
        "--deal", help="Start from the saved debriefs of this deal (`debrief listen --deal`).")] = None,
    text: Annotated[Optional[list[str]], typer.Option(
        "--text", help="Notes given right here, in quotes (repeatable).", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the prep as one JSON object.")] = False,
    speak: Annotated[bool, typer.Option("--speak", help="Read it aloud.")] = False,
    speak_to: Annotated[Optional[Path], typer.Option(
        "--speak-to", help="Write what would be read aloud to this WAV file instead of the speaker.",
        dir_okay=False, show_default=False)] = None,
    playbook: PlaybookOpt = None,
    models: ModelsOpt = None,
) -> None:
    """Get ready for a call: what we know, what we need to know, and the questions to lead with.

    Works from the saved debriefs of a deal (oldest first) and any notes (read last, as the
    freshest). Never scripts the close while we don't know why they would buy (second base).
    """
    from debrief import paths
    from debrief import prep as preparing
    from debrief.classification import Classifier
    from debrief.errors import InputError
    from debrief.pipeline import STDIN, read_transcript
    from debrief.playbook import load_playbook
    from debrief.store import Store

    if not (deal or notes or text):
        fail("say what to prepare from: --deal NAME, a notes file, or --text 'NOTES'", 2)
    with cli_errors():
        sources: list[tuple[str, str]] = []
        if deal:
            with Store() as store:
                saved = [e for e in store.history(deal=deal) if e.status == "done" and e.result]
            if not saved and not (notes or text):
                raise InputError(f"deal {deal!r}: no saved debriefs (debrief listen --deal {deal!r} saves one)")
            sources += [(e.path, e.result["transcript"]) for e in saved]
        for name in notes or ():
            sources.append((name, sys.stdin.read() if name == STDIN else read_transcript(Path(name))))
        sources += [("--text", words) for words in text or ()]
        book = load_playbook(paths.playbook_dir(playbook, models))
        classifier = Classifier(book)
        result = preparing.prepare(book, [classifier.classify(words) for _, words in sources],
                                   [name for name, _ in sources])
        if as_json:
            typer.echo(json.dumps(preparing.to_dict(result), ensure_ascii=False))
        else:
            _render(result, deal)
        if speak or speak_to:
            from debrief import speech

            said = preparing.spoken(result)
            speech.save_speech(said, speak_to) if speak_to else speech.speak(said)


def _render(result, deal: str | None) -> None:
    from rich.console import Console
    from rich.text import Text

    from debrief.playbook import base_name

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    title = f"Prep for {deal}" if deal else "Prep"
    console.print(Text(f"{title}  (from {len(result.sources)} source{'s' * (len(result.sources) != 1)})",
                       style="bold"))
    if result.outcome != "unknown":
        ended = f"Last time: {result.outcome.replace('_', ' ')}"
        console.print(ended + (f'  "{result.outcome_evidence}"' if result.outcome_evidence else ""))
    console.print(Text("What we know", style="bold"))
    if not result.known:
        console.print("  nothing yet")
    for k in result.known:
        shown = f'"{k.evidence}"' if k.evidence else "implied by later steps"
        console.print(Text.assemble(f"  {k.step.plain}: {shown}", (f"  [{k.step.id}]", "dim")))
    if result.next_base is None:
        console.print(Text("What we need to know: nothing; every base is earned.", style="bold"))
    else:
        base = result.next_base
        console.print(Text(f"What we need to know, for {base.name.lower()} ({base.goal})", style="bold"))
        for n in result.needed:
            why = f'missed: "{n.evidence}"' if n.missed else ("not known yet" if n.step.required else "optional")
            where = f", {base_name(n.step.base)}, past this base" if n.beyond else ""
            console.print(Text.assemble(f"  {n.step.plain} ({why}{where})", (f"  [{n.step.id}]", "dim")))
    console.print(Text("Lead with, then drill down", style="bold"))
    for number, question in enumerate(result.questions, start=1):
        console.print(f'  {number}. "{question}"')
    if result.no_close:
        console.print(Text(result.no_close, style="yellow"))
    else:
        console.print(f'The close, when it is time: "{result.close}"')


def history(
    rep: Annotated[Optional[str], typer.Option("--rep", help="Only this rep's debriefs.")] = None,
    deal: Annotated[Optional[str], typer.Option("--deal", help="Only this deal's debriefs.")] = None,
    since: Annotated[Optional[str], typer.Option(
        "--since", help="Only those recorded on or after this date (YYYY-MM-DD).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per debrief.")] = False,
) -> None:
    """List the saved debriefs, oldest first: when, who, which deal, where it ended up, the fix."""
    from debrief.store import Store

    with cli_errors():
        with Store() as store:
            entries = store.history(rep=rep, deal=deal, since=since)
    for e in entries:
        shown = _history_row(e)
        if as_json:
            typer.echo(json.dumps({"hash": e.hash, "path": e.path, "file": shown["file"], "rep": e.rep,
                                   "deal": e.deal, "date": shown["date"], "recorded_at": e.recorded_at,
                                   "duration": e.duration, "words": shown["words"], "status": e.status,
                                   "diagnosis": shown["diagnosis"], "outcome": e.outcome, "fix": e.fix,
                                   "error": e.error}, ensure_ascii=False))
            continue
        typer.echo("  ".join((shown["date"], e.rep or "-", e.deal or "-", shown["file"], shown["length"],
                              shown["said"])))
    if not entries and not as_json:
        typer.echo("No saved debriefs" + (" match." if rep or deal or since else " yet: `debrief listen` saves them."))


def _history_row(e) -> dict:
    """What `history` shows of one entry: one date format (YYYY-MM-DD), the file's name, its length
    (minutes of audio, or words of a transcript) and the result in plain words."""
    result = e.result or {}
    words = len(result["transcript"].split()) if result.get("transcript") else None
    length = f"{e.duration / 60:.1f} min" if e.duration else f"{words} word{'s' * (words != 1)}" if words is not None else "?"
    diagnosis = result.get("status") or ("fix" if e.fix else "nothing_to_fix" if e.status == "done" else None)
    if e.status == "error":
        said = f"error: {e.error}"
    elif e.status != "done":
        said = "not analyzed"
    elif diagnosis == "not_enough":
        said = "not enough to coach"
    else:
        from debrief.output import fix_words

        fix = result.get("fix") or ({"step": e.fix} if e.fix else None)
        said = f"{(e.outcome or 'unknown').replace('_', ' ')}; " + (f"fix: {fix_words({'fix': fix})}" if fix else "nothing to fix")
    return {"date": (e.recorded_at or e.added_at or "?")[:10], "file": Path(e.path).name if e.path != "-" else "-",
            "words": words, "length": length, "diagnosis": diagnosis, "said": said}
