"""The command line: thin commands that call the library and turn its errors into one line.

Touches: what its commands touch; it adds no state of its own.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from debrief import __version__
from debrief.cliutil import ModelsOpt, PlaybookOpt, cli_errors
from debrief.errors import EXIT_CODES, DebriefError, describe


class Engine(str, Enum):
    """Transcription engines (debrief.whisper_models.ENGINES), as --engine choices."""

    faster = "faster"
    openai = "openai"


class Channel(str, Enum):
    """Which channel of a stereo call recording is the rep."""

    left = "left"
    right = "right"


class Device(str, Enum):
    """Where Whisper runs (debrief.transcription.DEVICES), as --device choices."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


EXIT_HELP = "Exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items()) + "."

app = typer.Typer(
    help="debrief: talk through a sales call; get the one step to fix.",
    epilog=EXIT_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"debrief {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what the library does.")] = False,
) -> None:
    """debrief: talk through a sales call; get the one step to fix."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(name)s: %(message)s")


@app.command()
def analyze(
    inputs: Annotated[list[str], typer.Argument(
        help="Recordings (wav, flac, mp3, m4a, ogg, webm...) or transcripts (.txt, or - for standard input).",
        show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per input.")] = False,
    speak: Annotated[bool, typer.Option("--speak", help="Say the fix and the question aloud.")] = False,
    speak_to: Annotated[Optional[Path], typer.Option(
        "--speak-to", help="Write what would be said to this WAV file instead of the speaker.",
        dir_okay=False, show_default=False)] = None,
    model: Annotated[str, typer.Option("--model", help="Whisper model: a name (tiny.en, base.en...) or a folder.")] = "tiny.en",
    beam_size: Annotated[int, typer.Option("--beam-size", min=1, max=10, help="Beam width; 1 is greedy.")] = 5,
    engine: Annotated[Optional[Engine], typer.Option(
        "--engine", help="Transcription engine; openai needs the openai extra and `debrief models import`.",
        envvar="DEBRIEF_ENGINE", show_default="faster")] = None,
    device: Annotated[Device, typer.Option(
        "--device", help="Where Whisper runs: auto takes a CUDA GPU (float16) when there is one.")] = Device.auto,
    rep_channel: Annotated[Channel, typer.Option(
        "--rep-channel", help="In a stereo call recording, the channel that is the rep.")] = Channel.left,
    rep: Annotated[Optional[str], typer.Option("--rep", help="The rep, for the history.", show_default=False)] = None,
    deal: Annotated[Optional[str], typer.Option("--deal", help="The deal, for the history.", show_default=False)] = None,
    date: Annotated[Optional[str], typer.Option(
        "--date", help="When the call was (YYYY-MM-DD), for the history.", show_default=False)] = None,
    save: Annotated[bool, typer.Option(
        "--save/--no-save", help="Keep each result in the history (history, prep --deal and report read it).")] = True,
    playbook: PlaybookOpt = None,
    models: ModelsOpt = None,
) -> None:
    """Find where each call got off track, and the ONE step to fix next time."""
    from rich.console import Console

    from debrief import output, paths
    from debrief.pipeline import Analyzer
    from debrief.store import keep_result, parse_date

    with cli_errors():
        recorded_at = parse_date(date, "--date") if date else None
        analyzer = Analyzer(paths.playbook_dir(playbook, models), model=model, models=models, beam_size=beam_size,
                            engine=engine.value if engine else None, device=device.value)
    # A pipe or a file gets long lines rather than quotes wrapped at 80 columns.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    first_failure = 0
    for index, source in enumerate(inputs):
        try:
            result = analyzer.analyze(source, rep_channel=rep_channel.value)
            if as_json:
                typer.echo(json.dumps(output.to_dict(result), ensure_ascii=False))
            else:
                output.render(result, console)
            if speak or speak_to:
                _say(output.spoken(result.diagnosis), speak_to, index if len(inputs) > 1 else None)
            if save:  # after the output: a history that cannot be written loses no result
                keep_result(source, output.to_dict(result), rep=rep, deal=deal, recorded_at=recorded_at)
        except Exception as exc:  # noqa: BLE001 - one bad input must not stop the others
            if os.environ.get("DEBRIEF_DEBUG") and not isinstance(exc, DebriefError):
                raise
            message, code = describe(exc)
            if as_json:
                typer.echo(json.dumps(output.error_dict(source, message, code), ensure_ascii=False))
            typer.echo(f"debrief: error: {message}", err=True)
            first_failure = first_failure or code
    if first_failure:
        raise typer.Exit(first_failure)


def _say(text: str, speak_to: Path | None, index: int | None) -> None:
    from debrief import speech

    if speak_to is None:
        speech.speak(text)
        return
    target = speak_to if index is None else speak_to.with_name(f"{speak_to.stem}-{index + 1}{speak_to.suffix}")
    speech.save_speech(text, target)



def _register_command_groups() -> None:
    """Every module in `debrief.commands` adds its commands to the app with `register(app)`."""
    import importlib
    import pkgutil

    from debrief import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"debrief.commands.{info.name}").register(app)


_register_command_groups()
