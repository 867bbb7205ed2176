"""A folder of recordings and transcripts, analyzed into the history store: resumable, in parallel.

Three parts, kept apart so that another scheduler (a cluster) can replace the middle one:

* `discover` walks the folder: which files, their content hashes, and each one's rep, deal and
  date (from options, a CSV manifest, or the layout `DIR/<rep>/<file>`).
* `run_job(job, settings)` analyzes one file and returns a plain dict, the `analyze --json`
  object or an error object. It is a top-level function of picklable arguments and loads the
  models once per process, so any pool of processes can call it.
* `run_batch` skips what the store already has, hands the rest to a scheduler (by default
  `local_pool`, worker processes on this machine), and commits each result as it arrives in one
  transaction, so a kill loses nothing that finished and leaves no half-written rows. It reports
  progress as `Event`s; drawing them is the CLI's job.

Touches: the input files (read only), the history store, the output file (`--out`), worker processes.
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from multiprocessing.connection import wait
from pathlib import Path

from debrief.audio import AUDIO_SUFFIXES
from debrief.errors import (DebriefError, InputError, ModelError, NoSpeechError, OutputError, PlaybookError,
                            describe)
from debrief.store import Store, bytes_hash, file_hash

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".text", ".md")  # as debrief.pipeline reads them (not imported: it loads numpy)
MANIFEST = "manifest.csv"
# Failures that come from a file's content: the same bytes fail the same way, so a re-run skips
# them unless asked (--retry-failed). A missing model or a crash is worth another try.
CONTENT_ERRORS = (InputError.exit_code, NoSpeechError.exit_code)
CRASHED = 1
MAX_DEFAULT_WORKERS = 8  # each holds its own models, about 0.6 GB: 8 is already 5 GB
WORKER_NAME = "debrief-batch-worker"


@dataclass(frozen=True)
class Settings:
    """How every file of a batch is analyzed; the same in every worker."""

    playbook: str
    models: str | None = None
    model: str = "tiny.en"
    beam_size: int = 5
    rep_channel: str = "left"
    cpu_threads: int = 0


@dataclass(frozen=True)
class Job:
    """One file to analyze, keyed by the SHA-256 of its bytes."""

    path: str
    hash: str
    rep: str | None = None
    deal: str | None = None
    recorded_at: str | None = None
    size: int = 0


@dataclass(frozen=True)
class Event:
    """What a batch just did: `planned` (counts known), `skipped`, `started` or `finished` a job."""

    kind: str
    job: Job | None = None
    result: dict | None = None
    summary: Summary | None = None


@dataclass
class Summary:
    """Counts for a batch; `failures` also holds the files that failed in an earlier run."""

    total: int = 0
    analyzed: int = 0
    skipped: int = 0
    pending: int = 0
    pending_bytes: int = 0
    failures: list[tuple[str, str, int]] = field(default_factory=list)
    failed_before: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        """0 when every file is analyzed, else the exit code of the first failure (as `analyze`)."""
        return self.failures[0][2] if self.failures else 0


# --------------------------------------------------------------------------- which files


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def default_workers() -> int:
    """One worker per core, up to MAX_DEFAULT_WORKERS."""
    return min(usable_cores(), MAX_DEFAULT_WORKERS)


def discover(root: str | Path, *, rep: str | None = None, deal: str | None = None,
             manifest: str | Path | None = None) -> list[Job]:
    """Every recording and transcript under `root` (recursively, hidden files left out), in order.

    Rep, deal and date: an option given here wins, then the file's row in the manifest
    (`manifest`, else `root/manifest.csv` when there is one), then the folder layout for the rep
    (`root/<rep>/...`); the date falls back to the file's modification time.

    Raises:
      InputError: the manifest is unreadable or malformed (the message names file and line).
    """
    root = Path(root)
    if manifest is None and (root / MANIFEST).is_file():
        manifest = root / MANIFEST
    rows = read_manifest(manifest) if manifest is not None else {}
    jobs = []
    for path in _files(root):
        relative = path.relative_to(root)
        row = rows.get(_key(path), {})
        layout_rep = relative.parts[0] if len(relative.parts) > 1 else None
        try:
            stat = path.stat()
            digest = file_hash(path)
        except OSError:
            # Unreadable: keyed by its path so that it is still recorded, with the error
            # that reading it gives (run_job reports it).
            stat, digest = None, "path:" + bytes_hash(str(path.resolve()).encode())
        jobs.append(Job(
            path=str(path), hash=digest,
            rep=rep or row.get("rep") or layout_rep,
            deal=deal or row.get("deal"),
            recorded_at=row.get("date") or (_iso(stat.st_mtime) if stat else None),
            size=stat.st_size if stat else 0,
        ))
    return jobs


def read_manifest(path: str | Path) -> dict[str, dict[str, str]]:
    """A CSV manifest (`file,rep,deal,date`; only `file` required), by each file's resolved path.

    `file` is relative to the manifest's folder, or absolute; empty cells are left out.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "file" not in [n.strip().lower() for n in reader.fieldnames]:
                raise InputError(f"{path}:1: a manifest needs a header with a 'file' column (file,rep,deal,date)")
            rows = {}
            for row in reader:
                row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k}
                if not row.get("file"):
                    raise InputError(f"{path}:{reader.line_num}: no file named")
                if row.get("date"):
                    _check_date(row["date"], f"{path}:{reader.line_num}")
                rows[_key(path.parent / row["file"])] = {k: v for k, v in row.items() if v and k != "file"}
    except FileNotFoundError:
        raise InputError(f"{path}: no such manifest") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read the manifest ({exc})") from None
    return rows


def _files(root: Path) -> Iterator[Path]:
    suffixes = AUDIO_SUFFIXES + TEXT_SUFFIXES
    for folder, subfolders, names in os.walk(root):  # symlinked folders are not followed: no loops
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in sorted(names):
            # Dot files include macOS's "._call.wav" resource forks, which are not audio.
            if not name.startswith(".") and Path(name).suffix.lower() in suffixes:
                yield Path(folder) / name


def _key(path: Path) -> str:
    return str(path.expanduser().resolve())


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


def _check_date(text: str, where: str) -> None:
    try:
        (date if len(text) == 10 else datetime).fromisoformat(text)
    except ValueError:
        raise InputError(f"{where}: '{text}' is not a date (use YYYY-MM-DD)") from None


# --------------------------------------------------------------------------- one file


@functools.lru_cache(maxsize=1)
def analyzer_for(settings: Settings):
    """The Analyzer for `settings`, loaded once per process, Whisper included (so a missing
    model fails before the first file, not on every one)."""
    from debrief.pipeline import Analyzer

    analyzer = Analyzer(settings.playbook, model=settings.model, models=settings.models,
                        beam_size=settings.beam_size, cpu_threads=settings.cpu_threads)
    analyzer.transcriber.load()
    return analyzer


def run_job(job: Job, settings: Settings) -> dict:
    """Analyze one file: its `analyze --json` object, or `{source, error, exit_code}`.

    Never raises for a bad file; only KeyboardInterrupt and the like get through.
    """
    from debrief import output

    try:
        result = analyzer_for(settings).analyze(job.path, rep_channel=settings.rep_channel)
        return output.to_dict(result)
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop a batch
        message, code = describe(exc)
        log.debug("%s failed", job.path, exc_info=True)
        return output.error_dict(job.path, message, code)


# --------------------------------------------------------------------------- results out

CSV_COLUMNS = ("file", "rep", "deal", "date", "duration", "status", "outcome", "endpoint", "fix", "base",
               "error", "exit_code", "hash")


def write_results(store: Store, jobs: Iterable[Job], path: str | Path) -> None:
    """Write each job's stored result to `path`, in the jobs' order: .jsonl or .csv.

    JSON lines are the `analyze --json` objects (or error objects) with `hash`, `rep`, `deal`
    and `date` added. Taken from the store, so a resumed batch writes every file, not only the
    last run's. Written to a temporary file and renamed: never half a file.

    Raises:
      OutputError: the file cannot be written.
    """
    path = Path(path)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f) if path.suffix.lower() == ".csv" else None
            if writer:
                writer.writerow(CSV_COLUMNS)
            for job in jobs:
                entry = store.get(job.hash)
                if entry is None or entry.result is None:
                    continue  # not reached before an interruption
                if writer:
                    writer.writerow(_csv_row(job, entry))
                else:
                    extra = {"hash": job.hash, "rep": entry.rep, "deal": entry.deal, "date": entry.recorded_at}
                    f.write(json.dumps({**entry.result, "source": job.path, **extra}, ensure_ascii=False) + "\n")
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write the results ({exc.strerror or exc})") from None


def _csv_row(job: Job, entry) -> list:
    fix = (entry.result or {}).get("fix") or {}
    return [job.path, entry.rep, entry.deal, entry.recorded_at, entry.duration, entry.status, entry.outcome,
            entry.endpoint, entry.fix, fix.get("base"), entry.error, (entry.result or {}).get("exit_code", 0),
            job.hash]


# --------------------------------------------------------------------------- scheduling

Scheduler = Callable[[list[Job], Settings, int], Iterator[tuple[str, Job, dict | None]]]


def run_batch(jobs: Iterable[Job], settings: Settings, store: Store, *, workers: int = 1,
              retry_failed: bool = False, scheduler: Scheduler | None = None,
              on_event: Callable[[Event], None] | None = None) -> Summary:
    """Analyze every job the store has not done, committing each result as it arrives.

    A file done before is skipped (its rep, deal and date are refreshed); one that failed on its
    content before is skipped unless `retry_failed`; a second file with the same bytes is a
    duplicate and skipped. Ctrl-C stops the batch cleanly: `summary.interrupted` is set and
    whatever finished is kept.
    """
    started = time.perf_counter()
    jobs = list(jobs)
    emit = on_event or (lambda event: None)
    summary = Summary()
    pending: list[Job] = []
    seen: set[str] = set()
    for job in jobs:
        summary.total += 1
        if job.hash in seen:  # the same bytes under another name: one analysis, one row
            summary.skipped += 1
            emit(Event("skipped", job, None, summary))
            continue
        seen.add(job.hash)
        entry = store.get(job.hash)
        if entry is not None and entry.status == "done":
            # A manifest fixed since the last run still reaches the history.
            store.add_recording(job.hash, job.path, rep=job.rep, deal=job.deal, recorded_at=job.recorded_at)
            summary.skipped += 1
            emit(Event("skipped", job, entry.result, summary))
        elif entry is not None and entry.status == "error" and not retry_failed \
                and (entry.result or {}).get("exit_code") in CONTENT_ERRORS:
            summary.failures.append((job.path, entry.error or "", entry.result["exit_code"]))
            summary.failed_before += 1
            emit(Event("skipped", job, entry.result, summary))
        else:
            pending.append(job)
    summary.pending, summary.pending_bytes = len(pending), sum(job.size for job in pending)
    emit(Event("planned", summary=summary))

    # Longest first: a long recording left for last would keep one worker busy while the others idle.
    pending.sort(key=lambda job: -job.size)
    events = iter((scheduler or local_pool)(pending, settings, workers))
    try:
        for kind, job, result in events:
            if kind == "finished":
                commit(store, job, result)
                if "error" in result:
                    summary.failures.append((job.path, result["error"], result["exit_code"]))
                else:
                    summary.analyzed += 1
                    summary.audio_seconds += result.get("duration") or 0.0
            emit(Event(kind, job, result, summary))
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        if hasattr(events, "close"):
            events.close()  # a generator's close stops its workers
        summary.wall_seconds = time.perf_counter() - started
    # Workers finish in any order; the exit code is that of the first failure in folder order.
    position = {job.path: index for index, job in enumerate(jobs)}
    summary.failures.sort(key=lambda failure: position.get(failure[0], len(position)))
    return summary


def commit(store: Store, job: Job, result: dict) -> None:
    """Store a file and its result in one transaction: both rows, or (after a kill) neither."""
    store.db.execute("BEGIN IMMEDIATE")
    try:
        store.add_recording(job.hash, job.path, rep=job.rep, deal=job.deal, recorded_at=job.recorded_at)
        store.save_result(job.hash, result)
        store.db.execute("COMMIT")
    except BaseException:
        store.db.execute("ROLLBACK")
        raise


def local_pool(jobs: list[Job], settings: Settings, workers: int) -> Iterator[tuple[str, Job, dict | None]]:
    """Run jobs in `workers` processes on this machine; yields ("started" | "finished", job, result).

    Each worker loads the models once and takes one job at a time, so a worker that dies (a
    decoder crash, the out-of-memory killer) is pinned on the file it had: that file gets an
    error and a fresh worker takes the next. Closing the generator stops the workers; a job
    they were running is simply not recorded, and the next run does it.

    Raises:
      DebriefError: a worker could not load the playbook or the Whisper model.
    """
    if not jobs:
        return
    # spawn, not fork: the parent may hold threads (rich's refresh thread) and an open database.
    context = multiprocessing.get_context("spawn")
    queue = list(reversed(jobs))  # pop() from the end: jobs run in the order given
    slots = [_Slot(context, settings) for _ in range(min(workers, len(jobs)))]
    try:
        while queue or any(slot.job for slot in slots):
            wait([slot.conn for slot in slots] + [slot.process.sentinel for slot in slots])
            for index, slot in enumerate(slots):
                kind, payload = _receive(slot) if slot.conn.poll() else (None, None)
                if kind == "failed":
                    raise _load_error(*payload)
                if kind == "result":
                    yield "finished", slot.job, payload
                    slot.job = None
                elif kind == "gone" or (kind is None and not slot.process.is_alive()):
                    slot.process.join(5)
                    if not slot.ready:
                        raise _load_error("a worker stopped while loading the models "
                                          f"({_how(slot.process.exitcode)})", CRASHED)
                    if slot.job is not None:
                        yield "finished", slot.job, _crashed(slot)
                    slot.close()
                    slot = slots[index] = _Slot(context, settings)
                if slot.job is None and slot.ready and queue:
                    job = queue.pop()
                    try:
                        slot.conn.send(job)
                    except OSError:  # died while idle: the next pass replaces it
                        queue.append(job)
                        continue
                    slot.job = job
                    yield "started", job, None
    finally:
        for slot in slots:
            slot.close()


class _Slot:
    """One worker process and the pipe to it; `job` is what it is working on."""

    def __init__(self, context, settings: Settings) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker, args=(child, settings), daemon=True, name=WORKER_NAME)
        self.process.start()
        child.close()
        self.job: Job | None = None
        self.ready = False

    def close(self) -> None:
        try:
            if self.job is None and self.process.is_alive():
                self.conn.send(None)  # finish cleanly
                self.process.join(5)
        except OSError:
            pass
        if self.process.is_alive():
            self.process.terminate()  # busy with a job the next run will redo
        self.process.join(5)
        self.conn.close()


def _receive(slot: _Slot) -> tuple[str, object]:
    try:
        kind, payload = slot.conn.recv()
    except (EOFError, OSError):  # died mid-message; the sentinel will tell on the next pass
        return "gone", None
    if kind == "ready":
        slot.ready = True
    return kind, payload


def _worker(conn, settings: Settings) -> None:
    """A worker process: load the models, then analyze one job at a time until told to stop."""
    # The parent decides what Ctrl-C means; a worker that saw it too would die mid-file with a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        analyzer_for(settings)
    except Exception as exc:  # noqa: BLE001 - reported by the parent as one line
        conn.send(("failed", describe(exc)))
        return
    try:
        conn.send(("ready", None))
        while (job := conn.recv()) is not None:
            conn.send(("result", run_job(job, settings)))
    except (EOFError, OSError):
        pass  # the parent is gone (killed): nothing left to report to


def _crashed(slot: _Slot) -> dict:
    from debrief.output import error_dict

    how = _how(slot.process.exitcode)
    return error_dict(slot.job.path, f"{slot.job.path}: the worker analyzing it crashed ({how})", CRASHED)


def _how(exitcode: int | None) -> str:
    return f"killed by signal {-exitcode}" if exitcode is not None and exitcode < 0 else f"exit {exitcode}"


def _load_error(message: str, code: int) -> DebriefError:
    """A worker's start-up failure, raised again in the parent as the same kind of error."""
    kinds = {kind.exit_code: kind for kind in (InputError, NoSpeechError, PlaybookError, ModelError, OutputError)}
    return kinds.get(code, DebriefError)(message)
