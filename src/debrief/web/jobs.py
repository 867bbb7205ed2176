"""The web desk's queue, kept in the history store so that a restart loses nothing.

A job is an uploaded recording (or transcript), keyed by its content hash like everything else in
the store: `queued` -> `running` -> `done` or `error`. The result itself lives in the store's
`results` table, where `debrief report` and `debrief batch` see it too.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone

from debrief.store import Store

QUEUED, RUNNING, DONE, ERROR = "queued", "running", "done", "error"


@dataclass(frozen=True)
class Job:
    """One uploaded recording in the queue."""

    hash: str
    name: str
    state: str
    queued_at: str
    started_at: str | None
    finished_at: str | None


def _now() -> str:
    # Microseconds, so that uploads in the same second keep their order in the queue.
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class Jobs:
    """The queue over one open `Store` (one per thread, as the store asks)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.db

    def get(self, hash: str) -> Job | None:
        """The job for a recording, or None if it was never uploaded here."""
        row = self.db.execute("SELECT * FROM web_jobs WHERE hash = ?", (hash,)).fetchone()
        return _job(row) if row else None

    def enqueue(self, hash: str, name: str) -> None:
        """Queue a recording; one already queued or running keeps its place.

        Call inside the transaction that adds the recording, so both land or neither does.
        """
        self.db.execute(
            """INSERT INTO web_jobs (hash, name, state, queued_at) VALUES (?, ?, 'queued', ?)
               ON CONFLICT (hash) DO UPDATE SET state = 'queued', queued_at = excluded.queued_at,
                 started_at = NULL, finished_at = NULL
               WHERE web_jobs.state NOT IN ('queued', 'running')""",
            (hash, name, _now()))

    def claim(self) -> Job | None:
        """Take the oldest queued job and mark it running, in one statement (so never twice)."""
        row = self.db.execute(
            """UPDATE web_jobs SET state = 'running', started_at = ?
               WHERE hash = (SELECT hash FROM web_jobs WHERE state = 'queued'
                             ORDER BY queued_at, rowid LIMIT 1)
               RETURNING *""", (_now(),)).fetchone()
        return _job(row) if row else None

    def finish(self, hash: str, result: dict) -> None:
        """Save the result (or error object) and close the job, in one transaction."""
        state = ERROR if "error" in result else DONE
        with transaction(self.store):
            self.store.save_result(hash, result)
            self.db.execute("UPDATE web_jobs SET state = ?, finished_at = ? WHERE hash = ?",
                            (state, _now(), hash))

    def requeue_interrupted(self) -> int:
        """Put back jobs a stopped server left running; returns how many."""
        return self.db.execute(
            "UPDATE web_jobs SET state = 'queued', started_at = NULL WHERE state = 'running'").rowcount

    def position(self, job: Job) -> int:
        """How many jobs will run before this queued one (the running one included)."""
        return self.db.execute(
            """SELECT COUNT(*) FROM web_jobs WHERE state = 'running'
               OR (state = 'queued' AND queued_at < ?)""", (job.queued_at,)).fetchone()[0]

    def recent(self, limit: int = 20) -> list[Job]:
        """The latest uploads, newest first."""
        rows = self.db.execute("SELECT * FROM web_jobs ORDER BY queued_at DESC LIMIT ?", (limit,))
        return [_job(row) for row in rows]

    def pending(self) -> int:
        """Jobs queued or running."""
        return self.db.execute(
            "SELECT COUNT(*) FROM web_jobs WHERE state IN ('queued', 'running')").fetchone()[0]


class transaction:
    """BEGIN IMMEDIATE ... COMMIT on a store's connection (it runs in autocommit mode otherwise)."""

    def __init__(self, store: Store) -> None:
        self.db = store.db

    def __enter__(self) -> None:
        # IMMEDIATE takes the write lock up front, so two writers wait (busy timeout) rather than
        # one failing halfway with "database is locked".
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, *_) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


def _job(row: sqlite3.Row) -> Job:
    return Job(row["hash"], row["name"], row["state"], row["queued_at"], row["started_at"], row["finished_at"])
