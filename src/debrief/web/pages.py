"""The pages: upload, one result (transcript with its evidence, the walk, the fix), a rep's history.

Plain server-rendered HTML (Jinja2, autoescaped). The forms work without JavaScript; `app.js` adds
drag and drop, upload progress and polling on top.
"""

from __future__ import annotations

import hmac
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from debrief.report import BASES, NOTHING
from debrief.web import highlight, uploads
from debrief.web.access import set_cookie
from debrief.web.api import HashPath, rep_report
from debrief.web.jobs import Jobs

TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
BASE_NAMES = {"first": "first base", "second": "second base", "third": "third base", "home": "home"}


def describe(status) -> str:
    """A status in words, as the page shows it before the script takes over (app.js says the same)."""
    if status.status == "queued":
        ahead = status.position or 0
        return "Queued: next up." if ahead == 0 else f"Queued: {ahead} ahead of it."
    if status.status == "running":
        return f"Working on it: {status.stage or 'starting'}."
    if status.status == "pending":
        return "Waiting for another debrief process to analyze it."
    return {"done": "Done.", "error": "Could not be analyzed."}[status.status]


def router(desk) -> APIRouter:
    """The page routes over one `Desk`."""
    pages = APIRouter(include_in_schema=False)

    def render(request: Request, name: str, status_code: int = 200, **context) -> HTMLResponse:
        return TEMPLATES.TemplateResponse(request, name, {"describe": describe, "bases": BASE_NAMES, **context},
                                          status_code=status_code)

    def index_page(request: Request, error: str | None = None, status_code: int = 200) -> HTMLResponse:
        with desk.store() as store:
            hashes = [job.hash for job in Jobs(store).recent(20)]
        recent = [desk.status(h) for h in hashes]
        return render(request, "index.html", status_code, recent=recent, reps=desk.reps(), error=error,
                      limit_mb=desk.settings.max_upload_bytes // 1_000_000)

    @pages.get("/", response_class=HTMLResponse)
    def index(request: Request):
        return index_page(request)

    @pages.post("/upload")
    async def upload(request: Request):
        try:
            accepted = await desk.upload(request)
        except uploads.UploadError as exc:
            return await run_in_threadpool(index_page, request, exc.message, exc.status)
        target = f"/results/{accepted[0].id}" if len(accepted) == 1 else "/"
        return RedirectResponse(target, status_code=303)

    @pages.get("/results/{id}", response_class=HTMLResponse)
    def result(request: Request, id: str = HashPath):
        status = desk.status(id)
        if status is None:
            return render(request, "missing.html", 404, what="upload")
        context = {"status": status, "playbook": desk.playbook}
        if status.result:
            found = highlight.spans(status.result)
            pieces, links = _anchored(highlight.pieces(status.result["transcript"], found))
            context.update(pieces=pieces, walk=_walk(status.result, desk.playbook, links))
        return render(request, "result.html", **context)

    @pages.get("/reps/{rep:path}", response_class=HTMLResponse)
    def rep(request: Request, rep: str, since: date | None = Query(None)):
        report, entries = rep_report(desk, rep, since)
        if not entries:
            return render(request, "missing.html", 404, what="rep")
        return render(request, "rep.html", rep=rep, report=report, entries=entries, since=since,
                      steps=_step_counts(report, desk.playbook), per_base=[(b, report.bases[b]) for b in BASES],
                      nothing=report.bases[NOTHING], waiting=sum(e.status is None for e in entries),
                      playbook=desk.playbook)

    @pages.get("/login", response_class=HTMLResponse)
    def login_form(request: Request):
        if desk.settings.token is None:
            return RedirectResponse("/", status_code=303)
        return render(request, "login.html")

    @pages.post("/login")
    async def login(request: Request):
        token = desk.settings.token
        if token is None:
            return RedirectResponse("/", status_code=303)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > 4096:  # a token form, not an upload
                return render(request, "login.html", 413, error="That is not a token.")
        given = parse_qs(body.decode("utf-8", "replace")).get("token", [""])[0]
        if not hmac.compare_digest(given.encode(), token.encode()):
            return render(request, "login.html", 401, error="That token is not right.")
        response = RedirectResponse("/", status_code=303)
        response.headers["set-cookie"] = set_cookie(token)
        return response

    return pages


def _anchored(pieces: list[highlight.Piece]) -> tuple[list[tuple[highlight.Piece, str | None]], dict[str, str]]:
    """Give an id to each piece where a step's evidence first shows, so the walk can link to it.

    Returns the pieces with their ids (or None), and each step's id to link to.
    """
    links: dict[str, str] = {}
    out = []
    for index, piece in enumerate(pieces):
        anchor = None
        for span in piece.spans:
            if span.label not in links and span.status != "outcome":
                anchor = anchor or f"ev-{index}"
                links[span.label] = anchor
        out.append((piece, anchor))
    return out, links


def _walk(result: dict, playbook, links: dict[str, str]) -> list[dict]:
    """The walk back as the page shows it; optional steps nobody mentioned are left out, as in the CLI."""
    fix = (result.get("fix") or {}).get("step")
    rows = []
    for status in result.get("walk", []):
        step_id = status["step"]
        required = result["steps"].get(step_id, {}).get("required", True)
        if status["status"] == "silent" and not required and step_id != fix:
            continue
        step = playbook.step(step_id)
        evidence = status["evidence"][0]["text"] if status["evidence"] else None
        rows.append({"step": step_id, "name": step.name, "base": step.base, "status": status["status"],
                     "implied": status["implied"], "evidence": evidence, "fix": step_id == fix,
                     "link": links.get(step_id)})
    return rows


def _step_counts(report, playbook) -> list[tuple[str, str, int]]:
    """(step id, name, calls it was the fix of) for every step that was a fix, in playbook order."""
    named = [(step.id, step.name) for step in playbook.steps]
    known = {step_id for step_id, _ in named}
    named += [(step_id, step_id) for step_id in sorted(report.fixes) if step_id not in known]
    return [(step_id, name, report.fixes[step_id]) for step_id, name in named if report.fixes[step_id]]
