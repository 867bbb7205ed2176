"""The background worker: takes queued uploads from the store and analyzes them, one at a time.

One thread with one `Analyzer`, so the playbook, the classifier and Whisper are loaded once, and
transcription gets the machine's cores to itself rather than sharing them between jobs. The queue
lives in the store: the worker wakes when an upload arrives and also polls, so a job left running
by a stopped server (put back in the queue at start) or queued by another process is picked up.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from debrief import output
from debrief.errors import DebriefError, InputError, describe
from debrief.pipeline import Analyzer
from debrief.store import Store
from debrief.web.jobs import Job, Jobs
from debrief.web.uploads import stored_file

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    """What the worker is doing now: which upload, at which stage."""

    hash: str
    stage: str  # "transcribing" or "walking"


class Worker:
    """Runs queued uploads through one `Analyzer` in a daemon thread."""

    def __init__(self, analyzer: Analyzer, *, store_path: Path, data: Path, poll_seconds: float = 2.0,
                 rep_channel: str = "left") -> None:
        self.analyzer = analyzer
        self.rep_channel = rep_channel
        self.store_path, self.data = store_path, data
        self.poll_seconds = poll_seconds
        self.progress: Progress | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Put back what a stopped server left running, then start the thread."""
        with Store(self.store_path) as store:
            if count := Jobs(store).requeue_interrupted():
                logger.info("requeued %d upload(s) a stopped server left running", count)
        self._thread = threading.Thread(target=self._loop, name="debrief-worker", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Tell the worker there is new work (it would find it at the next poll anyway)."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop after the current job; a job still running is requeued at next start."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        with Store(self.store_path) as store:
            jobs = Jobs(store)
            while not self._stop.is_set():
                try:
                    job = jobs.claim()
                    if job is None:
                        self._wake.wait(self.poll_seconds)
                        self._wake.clear()
                        continue
                    jobs.finish(job.hash, self.run(job))
                except Exception:  # noqa: BLE001 - a store that cannot be written must not kill the thread
                    logger.exception("the web worker could not record a result; retrying shortly")
                    self._stop.wait(self.poll_seconds)
                finally:
                    self.progress = None

    def run(self, job: Job) -> dict:
        """Analyze one upload: the `analyze --json` object, or an error object."""
        path = stored_file(self.data, job.hash)
        try:
            if path is None:
                raise InputError(f"{job.name}: the uploaded file is gone from the data folder")
            return self._analyze(job, path)
        except Exception as exc:  # noqa: BLE001 - one bad upload must not stop the queue
            message, code = describe(exc)
            if code == 1:
                logger.exception("analyzing %s failed", job.name)
            return output.error_dict(job.name, message, code)

    def _analyze(self, job: Job, path: Path) -> dict:
        # The same entry as `debrief batch` (stereo calls labelled REP / PROSPECT), so a recording
        # gets the same stored result whichever way it came in: results are keyed by its bytes.
        self._stage(job, "walking" if path.suffix == ".txt" else "transcribing")
        try:
            result = self.analyzer.analyze(path, rep_channel=self.rep_channel)
        except DebriefError as exc:
            # Name the upload as the coach knows it, not where the desk keeps it.
            raise type(exc)(str(exc).replace(str(path), job.name)) from None
        result.source = job.name
        return output.to_dict(result)

    def _stage(self, job: Job, stage: str) -> None:
        self.progress = Progress(job.hash, stage)
