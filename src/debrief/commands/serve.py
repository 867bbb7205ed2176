"""`debrief serve`: the coach's web desk."""

from __future__ import annotations

import socket
from enum import Enum
from typing import Annotated, Optional

import typer

from debrief.cliutil import ModelsOpt, PlaybookOpt, cli_errors, fail


class Channel(str, Enum):
    left = "left"
    right = "right"


def register(app: typer.Typer) -> None:
    app.command()(serve)


def serve(
    host: Annotated[str, typer.Option(
        help="Address to listen on. Anything but a loopback address needs an access token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    token: Annotated[Optional[str], typer.Option(
        "--token", envvar="DEBRIEF_TOKEN", show_default=False,
        help="Access token every page and API call must carry (16+ characters). Prefer the environment "
             "variable: an option shows in the process list.")] = None,
    max_upload_mb: Annotated[int, typer.Option(
        "--max-upload-mb", min=1, help="The most one upload may carry, in MB.")] = 200,
    model: Annotated[str, typer.Option("--model", help="Whisper model: a name (tiny.en, base.en...) or a folder.")] = "tiny.en",
    beam_size: Annotated[int, typer.Option("--beam-size", min=1, max=10, help="Beam width; 1 is greedy.")] = 5,
    rep_channel: Annotated[Channel, typer.Option(
        "--rep-channel", help="In a stereo call recording, the channel that is the rep.")] = Channel.left,
    playbook: PlaybookOpt = None,
    models: ModelsOpt = None,
) -> None:
    """Serve the coach's web desk: upload recordings, see the walk and the fix, and each rep's history.

    Uploads are analyzed in the background, one at a time, with the models loaded once.

    The queue and the results live in the history store ($DEBRIEF_HOME), so a restart loses nothing.
    """
    try:
        import uvicorn

        from debrief.web.access import AccessError, check_bind
        from debrief.web.app import Settings, create_app
    except ImportError as exc:
        fail(f"the web desk needs its extra ({exc.name} is missing): pip install 'debrief[web]'", 1)
    try:
        check_bind(host, token)
    except AccessError as exc:
        fail(str(exc), 2)

    from debrief import paths
    from debrief.pipeline import Analyzer

    with cli_errors():
        analyzer = Analyzer(paths.playbook_dir(playbook, models), model=model, models=models, beam_size=beam_size)
        analyzer.transcriber.load()  # a missing model fails here, not at the first upload
        settings = Settings(data=paths.data_dir(), host=host, token=token,
                            max_upload_bytes=max_upload_mb * 1_000_000, rep_channel=rep_channel.value)
        app = create_app(analyzer, settings)

    shown = socket.gethostname() if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
    url = f"http://{shown}:{port}/"
    typer.echo(f"debrief: the desk is at {url} (Ctrl-C stops it)")
    if token:
        typer.echo(f"debrief: open {url}?token={token} once in each browser; API calls send "
                   "'Authorization: Bearer <token>'")
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False,
                timeout_graceful_shutdown=5)
