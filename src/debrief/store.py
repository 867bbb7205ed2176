"""The history store: every recording, its transcript and its diagnosis, in SQLite.

One file in the data folder (`$DEBRIEF_HOME` or the user data dir), in WAL mode so that `listen`,
`batch` and the web desk can share it. Results are keyed by the SHA-256 of the input's bytes:
the same recording analyzed twice is stored once. Every write is one committed transaction, so a
kill leaves whole rows or none. The schema has a version, and `MIGRATIONS` brings an older file
up to date when it is opened.

Touches: the SQLite file in the data folder, and the input file when it hashes one.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from debrief import paths
from debrief.errors import OutputError, UsageError

DB_NAME = "debrief.db"

# Each entry upgrades the schema from version N to N + 1. Append; never edit a released step.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE recordings (
        hash        TEXT PRIMARY KEY,
        path        TEXT NOT NULL,
        rep         TEXT,
        deal        TEXT,
        recorded_at TEXT,
        duration    REAL,
        added_at    TEXT NOT NULL
    );
    CREATE TABLE results (
        hash        TEXT PRIMARY KEY REFERENCES recordings(hash),
        status      TEXT NOT NULL CHECK (status IN ('done', 'error')),
        transcript  TEXT,
        outcome     TEXT,
        endpoint    TEXT,
        fix         TEXT,
        result      TEXT,
        error       TEXT,
        exit_code   INTEGER,
        analyzed_at TEXT NOT NULL
    );
    CREATE INDEX recordings_rep ON recordings (rep, recorded_at);
    CREATE INDEX recordings_deal ON recordings (deal, recorded_at);
    """,
    # 2: the web desk's queue (debrief.web.jobs). A row per uploaded recording, so a restart of
    # `debrief serve` loses neither queued nor finished work; `name` is the uploaded file's name,
    # shown to the coach and never used as a path.
    """
    CREATE TABLE web_jobs (
        hash        TEXT PRIMARY KEY REFERENCES recordings(hash),
        name        TEXT NOT NULL,
        state       TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'error')),
        queued_at   TEXT NOT NULL,
        started_at  TEXT,
        finished_at TEXT
    );
    CREATE INDEX web_jobs_state ON web_jobs (state, queued_at);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class Entry:
    """One recording with its result, as history shows it."""

    hash: str
    path: str
    rep: str | None
    deal: str | None
    recorded_at: str | None
    duration: float | None
    status: str | None
    outcome: str | None
    endpoint: str | None
    fix: str | None
    error: str | None
    result: dict | None
    added_at: str | None = None


def file_hash(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes: the key that makes re-runs skip finished work."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def bytes_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_date(value: str, option: str = "date") -> str:
    """A YYYY-MM-DD date as the store keeps it; a UsageError naming `option` if it is none."""
    try:
        return datetime.strptime(value, "%Y-%m-%d").date().isoformat()
    except ValueError:
        raise UsageError(f"{option}: '{value}' is not a date (use YYYY-MM-DD)") from None


def keep_result(source: str, result: dict, *, rep: str | None = None, deal: str | None = None,
                recorded_at: str | None = None, store: Store | None = None) -> str:
    """Save one analyzed input to the history, keyed by its content: the file's bytes, or the
    transcript read from standard input. Analyzing the same input again updates the same entry.
    Returns the key."""
    path = Path(source)
    digest = file_hash(path) if source != "-" and path.is_file() else bytes_hash(result["transcript"].encode())
    own = store is None
    store = store or Store()
    try:
        store.add_recording(digest, source if source == "-" else str(path.resolve()), rep=rep, deal=deal,
                            recorded_at=recorded_at, duration=result.get("duration") or None)
        store.save_result(digest, result)
    finally:
        if own:
            store.close()
    return digest


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Store:
    """The SQLite history. Open one per process (or thread); SQLite serialises the writers."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else paths.data_dir() / DB_NAME
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise OutputError(f"{self.path}: cannot open the history store ({exc})") from None
        self.db.row_factory = sqlite3.Row

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    @property
    def version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        version = self.version
        if version > SCHEMA_VERSION:
            raise OutputError(f"{self.path}: made by a newer debrief (schema {version} > {SCHEMA_VERSION})")
        for number in range(version, SCHEMA_VERSION):
            # executescript commits first; the BEGIN makes each step all-or-nothing.
            self.db.executescript(f"BEGIN; {MIGRATIONS[number]} PRAGMA user_version = {number + 1}; COMMIT;")

    def _write(self, sql: str, params: tuple) -> None:
        try:
            self.db.execute(sql, params)
        except sqlite3.Error as exc:  # a full disk, a read-only file...
            raise OutputError(f"{self.path}: cannot write the history store ({exc})") from None

    def add_recording(self, hash: str, path: str, *, rep: str | None = None, deal: str | None = None,
                      recorded_at: str | None = None, duration: float | None = None) -> None:
        """Record a recording (or transcript) by its hash; rep, deal and date fill in if new."""
        self._write(
            """INSERT INTO recordings (hash, path, rep, deal, recorded_at, duration, added_at)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (hash) DO UPDATE SET
                 rep = COALESCE(excluded.rep, rep), deal = COALESCE(excluded.deal, deal),
                 recorded_at = COALESCE(excluded.recorded_at, recorded_at),
                 duration = COALESCE(excluded.duration, duration)""",
            (hash, str(path), rep, deal, recorded_at, duration, now()))

    def save_result(self, hash: str, result: dict) -> None:
        """Store an analysis (the `analyze --json` object) or an error object for a recording."""
        if "error" in result:
            row = ("error", None, None, None, None, json.dumps(result), result["error"], result.get("exit_code"))
        else:
            fix = result["fix"]["step"] if result.get("fix") else None
            row = ("done", result.get("transcript"), result.get("outcome"), result.get("endpoint"), fix,
                   json.dumps(result), None, 0)
        self._write(
            """INSERT INTO results (hash, status, transcript, outcome, endpoint, fix, result, error,
                                    exit_code, analyzed_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (hash) DO UPDATE SET
                 status = excluded.status, transcript = excluded.transcript, outcome = excluded.outcome,
                 endpoint = excluded.endpoint, fix = excluded.fix, result = excluded.result,
                 error = excluded.error, exit_code = excluded.exit_code, analyzed_at = excluded.analyzed_at""",
            (hash, *row, now()))
        if "duration" in result and result["duration"]:
            self._write("UPDATE recordings SET duration = COALESCE(duration, ?) WHERE hash = ?",
                        (result["duration"], hash))

    def done(self, hash: str) -> bool:
        """Whether a recording already has a finished (not failed) analysis."""
        row = self.db.execute("SELECT status FROM results WHERE hash = ?", (hash,)).fetchone()
        return row is not None and row["status"] == "done"

    def get(self, hash: str) -> Entry | None:
        row = self.db.execute(_SELECT + " WHERE r.hash = ?", (hash,)).fetchone()
        return _entry(row) if row else None

    def history(self, *, rep: str | None = None, deal: str | None = None,
                since: str | None = None) -> list[Entry]:
        """Recordings with their results, oldest first, optionally for one rep or deal."""
        where, params = [], []
        for column, value in (("r.rep", rep), ("r.deal", deal)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            where.append("COALESCE(r.recorded_at, r.added_at) >= ?")
            params.append(since)
        sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY COALESCE(r.recorded_at, r.added_at), r.added_at"
        return [_entry(row) for row in self.db.execute(sql, params)]


_SELECT = """SELECT r.hash, r.path, r.rep, r.deal, r.recorded_at, r.duration, s.status, s.outcome,
                    s.endpoint, s.fix, s.error, s.result, r.added_at
             FROM recordings r LEFT JOIN results s ON s.hash = r.hash"""


def _entry(row: sqlite3.Row) -> Entry:
    result = json.loads(row["result"]) if row["result"] else None
    return Entry(row["hash"], row["path"], row["rep"], row["deal"], row["recorded_at"], row["duration"],
                 row["status"], row["outcome"], row["endpoint"], row["fix"], row["error"], result, row["added_at"])
