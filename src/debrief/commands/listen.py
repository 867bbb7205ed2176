"""`debrief listen` and `debrief devices`: the companion in the car, voice in and voice out."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from debrief.cliutil import ModelsOpt, PlaybookOpt, cli_errors


def register(app: typer.Typer) -> None:
    app.command()(listen)
    app.command()(devices)


def listen(
    guided: Annotated[bool, typer.Option(
        "--guided", help="Walk back question by question: 'Where did you end up?', then "
                         "'What happened before that?' until the walk finds where it got off track.")] = False,
    inputs: Annotated[Optional[list[str]], typer.Option(
        "--input", "-i", help="Replay this recording instead of the microphone; repeat it for one file "
                              "per answer (the next ones answer --guided's questions and the "
                              "questions about a step you did not mention).", show_default=False)] = None,
    pace: Annotated[bool, typer.Option(
        "--pace/--no-pace", help="Replay at real-time pace, or as fast as possible.")] = True,
    speak: Annotated[bool, typer.Option(
        "--speak/--no-speak", help="Say the prompts and the fix aloud (they are always printed).")] = True,
    speak_to: Annotated[Optional[Path], typer.Option(
        "--speak-to", help="Write every prompt and the fix to numbered WAV files in this folder "
                           "instead of the speaker.", file_okay=False, show_default=False)] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print only the result, as the JSON object of `analyze --json`.")] = False,
    microphone: Annotated[Optional[str], typer.Option(
        "--microphone", help="Microphone: an index or part of a name (see `debrief devices`).",
        show_default="the system's")] = None,
    device: Annotated[Optional[str], typer.Option(
        "--device", help="Where Whisper runs: auto, cpu or cuda (as in `analyze`).", show_default="auto")] = None,
    output_device: Annotated[Optional[str], typer.Option(
        "--output-device", help="Speaker: an index or part of a name.", show_default="the system's")] = None,
    rep: Annotated[Optional[str], typer.Option("--rep", help="Who is debriefing; saved with it.")] = None,
    deal: Annotated[Optional[str], typer.Option(
        "--deal", help="The deal; saved with it, for `debrief prep --deal`.")] = None,
    silence: Annotated[float, typer.Option(
        "--silence", min=0.5, max=30.0, help="Seconds of silence that end an answer.")] = 2.5,
    max_length: Annotated[float, typer.Option(
        "--max-length", min=1.0, help="The longest answer, in seconds.")] = 600.0,
    wait: Annotated[float, typer.Option(
        "--wait", min=1.0, help="Seconds to wait for the first word before giving up on an answer.")] = 10.0,
    max_turns: Annotated[int, typer.Option(
        "--max-turns", min=1, max=50, help="The most answers a guided walk asks for.")] = 8,
    model: Annotated[str, typer.Option(
        "--model", help="Whisper model: a name (tiny.en, base.en...) or a folder.")] = "tiny.en",
    beam_size: Annotated[int, typer.Option("--beam-size", min=1, max=10, help="Beam width; 1 is greedy.")] = 5,
    playbook: PlaybookOpt = None,
    models: ModelsOpt = None,
) -> None:
    """Talk through a call, hands free, and hear the ONE step to fix.

    Says a short prompt, records until you stop talking (or press Enter, or Ctrl-C: what you said
    is kept), then says the step to fix and the question to lead with next time. The recording is
    written to the data folder ($DEBRIEF_HOME) as you speak, and kept with its result:
    `debrief history` lists them, `debrief analyze FILE` takes one again.
    """
    from debrief import conversation, paths
    from debrief.audio import decode_audio
    from debrief.pipeline import Analyzer
    from debrief.devices import input_device, parse_device
    from debrief.recording import EnterKey, Limits
    from debrief.speech import Voice

    from debrief.transcription import DEVICES

    if device is not None and device not in DEVICES:
        # The old spelling: `--device` named the microphone before it meant CPU or GPU everywhere.
        typer.echo(f"debrief: notice: --device {device} means the microphone here; it is now "
                   f"--microphone {device} (--device is auto, cpu or cuda)", err=True)
        microphone, device = microphone or device, None
    echo = None if as_json else _echo
    with cli_errors():
        microphone = parse_device(microphone)
        # Everything a user can get wrong is checked before the models load and before the prompt.
        audios = [decode_audio(path) for path in inputs or ()]
        if not audios:
            input_device(microphone)
        voice = Voice(to_dir=speak_to, speak=speak, device=parse_device(output_device))
        analyzer = Analyzer(paths.playbook_dir(playbook, models), model=model, models=models, beam_size=beam_size,
                            device=device or "auto")
        companion = conversation.Companion(
            analyzer, voice, Limits(silence, max_length, wait), enter=EnterKey(), max_turns=max_turns, echo=echo)
        companion.warm_up()
        takes = conversation.replayed(audios, pace=pace) if audios else conversation.from_microphone(microphone)
        debrief = companion.run(takes, guided=guided, rep=rep, deal=deal)
    if as_json:
        typer.echo(json.dumps(conversation.to_dict(debrief.result, debrief.turns), ensure_ascii=False))
        return
    from rich.console import Console

    from debrief import output

    typer.echo()
    output.render(debrief.result, Console(highlight=False, width=None if sys.stdout.isatty() else 120))
    typer.echo(f"Saved: {debrief.recording}")


def _echo(who: str, text: str) -> None:
    typer.echo(f"{who}: {text}")


def devices(
    as_json: Annotated[bool, typer.Option("--json", help="Print the devices as a JSON list.")] = False,
) -> None:
    """List the microphones and speakers this machine has, for --microphone and --output-device."""
    from dataclasses import asdict

    from debrief.devices import devices as list_devices

    with cli_errors():
        found = list_devices()
    if as_json:
        typer.echo(json.dumps([asdict(d) for d in found]))
        return
    if not any(d.inputs for d in found):
        typer.echo("No microphone found: `debrief listen --input FILE` replays a recording instead.")
    if not any(d.outputs for d in found):
        typer.echo("No speaker found: `--speak-to DIR` writes what would be said to WAV files.")
    for d in found:
        kinds = "/".join(k for k, n in (("in", d.inputs), ("out", d.outputs)) if n)
        default = " ".join(k for k, on in (("default-in", d.default_input), ("default-out", d.default_output)) if on)
        typer.echo(f"{d.index:>3}  {d.name}  [{d.api}, {kinds}, {d.rate:.0f} Hz]  {default}".rstrip())
