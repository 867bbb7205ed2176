"""The coach's web desk: the FastAPI app, its settings, and what its pages and API share.

`create_app(analyzer, settings)` builds the app: the access rules (`access.py`) wrap everything,
the JSON API (`api.py`) and the pages (`pages.py`) sit on one `Desk`, and a background `Worker`
runs the queue while the app is up. Each request opens its own store connection (SQLite wants one
per thread, and FastAPI serves requests from a thread pool).
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from debrief import __version__
from debrief.pipeline import Analyzer
from debrief.store import DB_NAME, Store
from debrief.web import uploads
from debrief.web.access import AccessMiddleware, check_bind
from debrief.web.jobs import QUEUED, RUNNING, Jobs
from debrief.web.worker import Worker

HERE = Path(__file__).resolve().parent
DEFAULT_MAX_UPLOAD = 200 * 1000 * 1000


@dataclass
class Settings:
    """How the desk runs: where its data lives, who may use it, how big an upload may be."""

    data: Path
    host: str = "127.0.0.1"
    token: str | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    poll_seconds: float = 2.0
    rep_channel: str = "left"  # in a stereo call recording, the rep's channel


@dataclass(frozen=True)
class Status:
    """Where one upload stands, and its result once there is one."""

    id: str
    name: str | None
    rep: str | None
    deal: str | None
    date: str | None
    duration: float | None
    status: str            # queued, running, done, error, or pending (known, but not queued here)
    position: int | None   # uploads ahead of a queued one
    stage: str | None      # what a running one is doing
    error: str | None
    result: dict | None


class Desk:
    """What the pages and the API share: the settings, the playbook, the worker and the store."""

    def __init__(self, analyzer: Analyzer, settings: Settings) -> None:
        self.settings = settings
        self.playbook = analyzer.playbook
        self.store_path = settings.data / DB_NAME
        self.worker = Worker(analyzer, store_path=self.store_path, data=settings.data,
                             poll_seconds=settings.poll_seconds, rep_channel=settings.rep_channel)

    def store(self) -> Store:
        """A store connection for this thread; use it in a `with`."""
        return Store(self.store_path)

    async def upload(self, request: Request) -> list[uploads.Accepted]:
        """Receive, check and queue the files of one request; raises `UploadError`."""
        upload = await uploads.receive(request, limit=self.settings.max_upload_bytes, data=self.settings.data)
        try:
            accepted = await uploads.accept(upload, store_path=self.store_path, data=self.settings.data)
        except uploads.UploadError as exc:
            exc.fields = dict(upload.fields)
            raise
        finally:
            upload.discard()
        self.worker.wake()
        return accepted

    def status(self, hash: str) -> Status | None:
        """An upload's status, or None if the store has never seen it."""
        with self.store() as store:
            entry = store.get(hash)
            if entry is None:
                return None
            jobs = Jobs(store)
            job = jobs.get(hash)
            pending = job is not None and job.state in (QUEUED, RUNNING)
            state = job.state if pending else (entry.status or "pending")
            position = jobs.position(job) if state == QUEUED else None
        progress = self.worker.progress
        stage = progress.stage if state == RUNNING and progress and progress.hash == hash else None
        result = None if pending or entry.status != "done" else entry.result
        name = job.name if job else Path(entry.path).name
        return Status(hash, name, entry.rep, entry.deal, entry.recorded_at, entry.duration, state, position,
                      stage, None if pending else entry.error, result)

    def file_names(self) -> dict[str, str]:
        """Each upload's file name as the coach gave it, by hash (the store keeps where it lies)."""
        with self.store() as store:
            rows = store.db.execute("SELECT hash, name FROM web_jobs").fetchall()
        return {row[0]: row[1] for row in rows}

    def reps(self) -> list[tuple[str, int]]:
        """Every rep in the store with their number of recordings."""
        with self.store() as store:
            rows = store.db.execute("SELECT rep, COUNT(*) FROM recordings WHERE rep IS NOT NULL "
                                    "GROUP BY rep ORDER BY rep").fetchall()
        return [(row[0], row[1]) for row in rows]


def create_app(analyzer: Analyzer, settings: Settings, *, run_worker: bool = True) -> FastAPI:
    """The desk as an ASGI app; the worker runs while the app's lifespan does (if `run_worker`)."""
    from debrief.web import api, pages

    check_bind(settings.host, settings.token)
    desk = Desk(analyzer, settings)
    Store(desk.store_path).close()  # create or migrate the store now, not in the first request
    uploads.sweep_incoming(settings.data)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        if run_worker:
            desk.worker.start()
        yield
        desk.worker.stop()

    app = FastAPI(title="debrief", version=__version__, lifespan=lifespan,
                  description="Upload call recordings and debriefs; get the walk back and the one step to fix.",
                  # The interactive docs load their scripts from a CDN; nothing here leaves the machine.
                  docs_url=None, redoc_url=None,
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    app.state.desk = desk
    app.include_router(api.router(desk))
    app.include_router(pages.router(desk))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    # Added last, so it runs first: no request reaches a route without passing the access rules.
    app.add_middleware(SecurityHeaders)
    app.add_middleware(AccessMiddleware, token=settings.token, host=settings.host)
    return app


class SecurityHeaders:
    """Headers for every response: no inline or foreign scripts, no framing, nothing cached."""

    HEADERS = [
        (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self'; "
                                     b"img-src 'self' data:; media-src 'self'; frame-ancestors 'none'; "
                                     b"form-action 'self'; base-uri 'none'"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
        (b"cache-control", b"no-store"),
    ]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    header for header in self.HEADERS if header[0] not in names]
            await send(message)

        await self.app(scope, receive, send_with_headers)
