"""The pages: upload, the calls, the reps, the team, one result (transcript with its evidence, the
walk, the fix, the recording from any sentence) and a rep's history.

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

from debrief.report import BASES, NOTHING, build_report, named
from debrief.web import highlight, team, uploads
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
        return TEMPLATES.TemplateResponse(request, name, {
            "describe": describe, "bases": BASE_NAMES, "named": lambda step: named(desk.playbook, step),
            "said": said, **context}, status_code=status_code)

    def index_page(request: Request, error: str | None = None, status_code: int = 200,
                   form: dict | None = None) -> HTMLResponse:
        with desk.store() as store:
            hashes = [job.hash for job in Jobs(store).recent(20)]
        recent = [desk.status(h) for h in hashes]
        return render(request, "index.html", status_code, recent=recent, reps=desk.reps(), error=error,
                      form=form or {}, limit_mb=desk.settings.max_upload_bytes // 1_000_000)

    @pages.get("/", response_class=HTMLResponse)
    def index(request: Request):
        return index_page(request)

    @pages.post("/upload")
    async def upload(request: Request):
        try:
            accepted = await desk.upload(request)
        except uploads.UploadError as exc:  # the form comes back with what was typed in it
            return await run_in_threadpool(index_page, request, exc.message, exc.status, exc.fields)
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
            starts = highlight.segment_starts(status.result) if status.duration else []
            pieces, links = _anchored(highlight.pieces(status.result["transcript"], found, starts))
            context.update(pieces=pieces, walk=_walk(status.result, desk.playbook, links, starts),
                           unconfirmed=_unconfirmed(status.result, desk.playbook))
        return render(request, "result.html", **context)

    @pages.get("/calls", response_class=HTMLResponse)
    def calls(request: Request):
        with desk.store() as store:
            entries = store.history()
        return render(request, "calls.html", entries=list(reversed(entries)), names=desk.file_names())

    @pages.get("/reps", response_class=HTMLResponse)
    def reps(request: Request):
        return render(request, "reps.html", reps=desk.reps())

    @pages.get("/team", response_class=HTMLResponse)
    def team_page(request: Request):
        with desk.store() as store:
            entries = store.history()
        reports = build_report(entries, desk.playbook)
        return render(request, "team.html", reports=reports, chart=team.weekly_chart(entries, desk.playbook))

    @pages.get("/reps/{rep:path}", response_class=HTMLResponse)
    def rep(request: Request, rep: str, since: date | None = Query(None)):
        report, entries = rep_report(desk, rep, since)
        if not entries:
            return render(request, "missing.html", 404, what="rep")
        return render(request, "rep.html", rep=rep, report=report, entries=entries, since=since,
                      steps=_step_counts(report, desk.playbook), per_base=[(b, report.bases[b]) for b in BASES],
                      nothing=report.bases[NOTHING], waiting=sum(e.status is None for e in entries),
                      playbook=desk.playbook, names=desk.file_names())

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


def said(entry_or_result) -> str:
    """A call's fix in plain words (`output.fix_words`), from a result or a history entry."""
    from debrief.output import fix_words

    return fix_words(entry_or_result if isinstance(entry_or_result, dict) else (entry_or_result.result or {}))


def _unconfirmed(result: dict, playbook) -> str | None:
    """What the rep did not say about an unconfirmed fix, as `analyze` prints it."""
    from debrief.output import unconfirmed_words

    fix, then = result.get("fix"), result.get("then")
    if not fix or fix.get("confirmed", True) or fix["step"] not in {s.id for s in playbook.steps}:
        return None
    quote = then["evidence"][0]["text"] if then and then.get("evidence") else None
    return unconfirmed_words(playbook.step(fix["step"]).whether, then["topic"] if then else None, quote)


def _walk(result: dict, playbook, links: dict[str, str], starts=()) -> list[dict]:
    """The walk back as the page shows it; optional steps nobody mentioned are left out, as in the CLI."""
    fix = (result.get("fix") or {}).get("step")
    rows = []
    for status in result.get("walk", []):
        step_id = status["step"]
        required = result["steps"].get(step_id, {}).get("required", True)
        if status["status"] == "silent" and not required and step_id != fix:
            continue
        step = playbook.step(step_id)
        first = status["evidence"][0] if status["evidence"] else None
        rows.append({"step": step_id, "name": step.plain, "base": step.base, "status": status["status"],
                     "implied": status["implied"], "evidence": first["text"] if first else None,
                     "fix": step_id == fix, "link": links.get(step_id),
                     "at": highlight.time_at(list(starts), first["start"]) if first and starts else None})
    return rows


def _step_counts(report, playbook) -> list[tuple[str, str, int]]:
    """(step id, name, calls it was the fix of) for every step that was a fix, in playbook order."""
    steps = [(step.id, step.plain) for step in playbook.steps]
    known = {step_id for step_id, _ in steps}
    steps += [(step_id, step_id) for step_id in sorted(report.fixes) if step_id not in known]
    return [(step_id, name, report.fixes[step_id]) for step_id, name in steps if report.fixes[step_id]]
