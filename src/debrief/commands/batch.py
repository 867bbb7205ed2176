"""`debrief batch DIR`: a folder of recordings and transcripts into the history store."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from debrief.cliutil import ModelsOpt, PlaybookOpt, cli_errors, fail


class Channel(str, Enum):
    left = "left"
    right = "right"


def register(app: typer.Typer) -> None:
    app.command()(batch)


def batch(
    folder: Annotated[Path, typer.Argument(
        help="Folder of recordings and transcripts, searched recursively; DIR/<rep>/<file> names the rep.",
        exists=True, file_okay=False, show_default=False)],
    workers: Annotated[Optional[int], typer.Option(
        "--workers", "-w", min=1,
        help="Worker processes (Ray actors with --cluster), each loading the models once (about 0.6 GB each).",
        show_default="one per core, at most 8; on a cluster, as many as it has room for")] = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", help="Also write every file's result to FILE: .jsonl (the analyze --json objects) or .csv.",
        dir_okay=False, show_default=False)] = None,
    rep: Annotated[Optional[str], typer.Option("--rep", help="The rep for every file.", show_default=False)] = None,
    deal: Annotated[Optional[str], typer.Option("--deal", help="The deal for every file.", show_default=False)] = None,
    manifest: Annotated[Optional[Path], typer.Option(
        "--manifest", help="CSV with file,rep,deal,date per file.",
        exists=True, dir_okay=False, show_default="DIR/manifest.csv if there")] = None,
    rep_channel: Annotated[Channel, typer.Option(
        "--rep-channel", help="In a stereo call recording, the channel that is the rep.")] = Channel.left,
    retry_failed: Annotated[bool, typer.Option(
        "--retry-failed", help="Analyze again files that failed before (corrupt, silent...).")] = False,
    model: Annotated[str, typer.Option("--model", help="Whisper model: a name (tiny.en, base.en...) or a folder.")] = "tiny.en",
    beam_size: Annotated[int, typer.Option("--beam-size", min=1, max=10, help="Beam width; 1 is greedy.")] = 5,
    cluster: Annotated[str, typer.Option(
        "--cluster", metavar="none|local|auto|ray://HOST:PORT",
        help="Where the workers run: none (processes here), local (a Ray cluster on this machine), auto "
             "(the Ray cluster this runs in, as a Ray Job) or ray://HOST:PORT (Ray Client, interactive use "
             "only). Needs Ray: pip install 'debrief\\[cluster]'.")] = "none",
    cpus_per_worker: Annotated[Optional[int], typer.Option(
        "--cpus-per-worker", min=1, help="With --cluster: CPUs for each worker, and its transcriber's threads.",
        show_default="1")] = None,
    gpus_per_worker: Annotated[Optional[float], typer.Option(
        "--gpus-per-worker", min=0, help="With --cluster: GPUs for each worker; 0.5 puts two on one GPU.",
        show_default="0")] = None,
    max_retries: Annotated[Optional[int], typer.Option(
        "--max-retries", min=0, help="With --cluster: how many times a file is run again after its worker died "
                                     "mid-file, before it is recorded as failed.", show_default="2")] = None,
    playbook: PlaybookOpt = None,
    models: ModelsOpt = None,
) -> None:
    """Analyze every recording and transcript under a folder into the history.

    Files are known by their content: a second run skips what is done; a stopped run picks up where it was.

    A file that fails is recorded with its error and the batch goes on; the exit code is the first failure's.

    Stereo call recordings are transcribed per channel and labelled REP / PROSPECT. See it all with `debrief report`.

    With --cluster the workers are Ray actors (here, in the Ray cluster this runs in, or through the Ray Client); this process alone writes the history.
    """
    from rich.console import Console

    from debrief import paths
    from debrief.batch import Settings, default_workers, discover, run_batch, usable_cores
    from debrief.playbook import load_playbook
    from debrief.store import Store
    from debrief.whisper_models import resolve_model

    if out is not None and out.suffix.lower() not in (".jsonl", ".csv"):
        fail(f"{out}: --out must end in .jsonl or .csv", 2)
    with cli_errors():
        pool = _ray_pool(cluster, cpus_per_worker, gpus_per_worker, max_retries)
    if pool is None:
        workers = workers or default_workers()
    elif cluster == "local":
        workers = workers or max(1, default_workers() // pool.cpus_per_worker)
    else:
        # None: as many as the cluster has room for, which the pool counts once connected. Workers
        # on other machines find the files by the same absolute path, on shared storage.
        folder = folder.absolute()
    with cli_errors():
        # Checked here, once, so a bad playbook or a missing model is one line, not one per file.
        playbook_dir = paths.playbook_dir(playbook, models)
        load_playbook(playbook_dir)
        resolve_model(model, models)
        jobs = discover(folder, rep=rep, deal=deal, manifest=manifest)
        store = Store()
    if not jobs:
        typer.echo(f"debrief: nothing to do: no recordings or transcripts under {folder}", err=True)
        raise typer.Exit(0)
    settings = Settings(str(playbook_dir), str(models) if models else None, model, beam_size,
                        rep_channel.value, cpu_threads=max(1, usable_cores() // (workers or 1)))
    console = Console(stderr=True, highlight=False)
    with cli_errors(), _Progress(console, folder) as progress:
        summary = run_batch(jobs, settings, store, workers=workers or 0, retry_failed=retry_failed,
                            scheduler=pool, on_event=progress.update)
    if pool is not None:
        workers = pool.workers  # what it ran, which on a cluster only Ray knew
    with cli_errors():
        if out is not None:
            from debrief.batch import write_results

            write_results(store, jobs, out)
    _print_summary(summary, folder, workers, store.path, out)
    store.close()
    if summary.interrupted:
        fail(f"interrupted: {summary.analyzed + summary.skipped} of {summary.total} files done; "
             "run the same command again to finish", 130)
    raise typer.Exit(summary.exit_code)


def _ray_pool(cluster: str, cpus_per_worker, gpus_per_worker, max_retries):
    """The Ray scheduler for --cluster, or None for the local worker processes."""
    from debrief.cluster import ClusterError, RayPool  # Ray itself is imported only for a cluster

    asked = [name for name, value in (("--cpus-per-worker", cpus_per_worker), ("--gpus-per-worker", gpus_per_worker),
                                      ("--max-retries", max_retries)) if value is not None]
    if cluster == "none":
        if asked:
            raise ClusterError(f"{asked[0]} needs --cluster local, auto or ray://HOST:PORT")
        return None
    return RayPool(cluster, cpus_per_worker=cpus_per_worker or 1, gpus_per_worker=gpus_per_worker or 0.0,
                   max_retries=2 if max_retries is None else max_retries)


class _Progress:
    """A rich progress bar on standard error: the current file, counts, and the time left.

    The bar advances by bytes, so that a long recording moves it more than a short one and the
    time left is closer to true; failures are printed above it as they happen.
    """

    def __init__(self, console, folder: Path) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.console, self.folder = console, folder
        self.bar = Progress(TextColumn("{task.fields[counts]}"), BarColumn(), TimeRemainingColumn(),
                            TextColumn("{task.fields[current]}", style="dim"), console=console,
                            disable=not console.is_terminal)
        self.task = None

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def update(self, event) -> None:
        summary = event.summary
        if event.kind == "planned":
            self.task = self.bar.add_task("batch", total=summary.pending_bytes or 1, counts="",
                                          current="")
        elif event.kind == "started":
            self.bar.update(self.task, current=self._name(event.job.path))
        elif event.kind == "finished":
            self.bar.advance(self.task, event.job.size)
            if "error" in event.result:
                # Above the bar on a terminal; one unwrapped line each in a log.
                self.console.print(f"debrief: error: {event.result['error']}", markup=False, highlight=False,
                                   soft_wrap=True)
        if self.task is not None:
            done = summary.analyzed + len(summary.failures) - summary.failed_before
            self.bar.update(self.task, counts=f"{done}/{summary.pending} files, {len(summary.failures)} failed")

    def _name(self, path: str) -> str:
        try:
            return str(Path(path).relative_to(self.folder))
        except ValueError:
            return path


def _print_summary(summary, folder: Path, workers: int, store_path: Path, out: Path | None) -> None:
    failed_now = len(summary.failures) - summary.failed_before
    parts = [f"{summary.analyzed} analyzed", f"{summary.skipped} already done", f"{failed_now} failed"]
    if summary.failed_before:
        parts.append(f"{summary.failed_before} failed before (--retry-failed to try them again)")
    typer.echo(f"{summary.total} files under {folder}: " + ", ".join(parts))
    if summary.audio_seconds:
        rate = summary.audio_seconds / summary.wall_seconds if summary.wall_seconds else 0.0
        typer.echo(f"{_duration(summary.audio_seconds)} of audio in {_duration(summary.wall_seconds)} "
                   f"with {workers} worker{'s' if workers > 1 else ''}: {rate:.1f} hours of audio per hour")
    typer.echo(f"history: {store_path}" + (f"; results: {out}" if out else ""))


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"
