"""The JSON API: upload, poll, read the result, and a rep's history. Its schema is `/openapi.json`."""

from __future__ import annotations

from datetime import date
from typing import Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel

from debrief.report import BASES, NOTHING, RepReport, build_report
from debrief.store import Entry
from debrief.web import uploads
from debrief.web.jobs import Jobs

HashPath = Path(pattern="^[0-9a-f]{64}$", description="The upload's id: the SHA-256 of its bytes.")


class UploadOut(BaseModel):
    id: str
    name: str
    duplicate: bool  # the store already had these bytes
    queued: bool     # analysis is pending (false: a finished result exists)
    url: str         # the result page
    api: str         # where to poll


class UploadsOut(BaseModel):
    uploads: list[UploadOut]


class Problem(BaseModel):
    detail: str


class ResultOut(BaseModel):
    id: str
    name: str | None
    rep: str | None
    deal: str | None
    date: str | None
    duration: float | None
    status: Literal["queued", "running", "done", "error", "pending"]
    position: int | None
    stage: str | None
    error: str | None
    result: dict | None  # the `debrief analyze --json` object, once done


class CallOut(BaseModel):
    id: str
    date: str | None
    deal: str | None
    status: str | None  # done, error, or None while it waits
    outcome: str | None
    fix: str | None


class RepOut(BaseModel):
    """The numbers `debrief report` gives for the rep, and their calls."""

    rep: str
    calls: int                # analyzed calls
    failed: int
    waiting: int              # uploaded, not analyzed yet
    most_often: str | None    # the step to fix most often (a tie goes to the earlier step)
    fixes: dict[str, int]     # step id: calls it was the fix of
    per_base: dict[str, int]  # first, second, third, home, none: calls whose fix fell there
    last_coached: str | None  # the fix of the latest call that has calls after it
    coached_on: str | None
    calls_since: int
    came_back: int            # of the calls since, how many had the same fix again
    verdict: str              # stopped, recurring, too early, nothing coached
    since_text: str
    history: list[CallOut]    # oldest first


UPLOAD_ERRORS = {status: {"model": Problem, "description": why} for status, why in {
    400: "the multipart body is malformed or was cut off",
    413: "over the size limit, or too many files",
    415: "not multipart, or a file that is neither audio nor a UTF-8 transcript",
    422: "an empty file, a transcript with no words, no file, or a bad rep, deal or date",
}.items()}


def router(desk) -> APIRouter:
    """The API routes over one `Desk`."""
    api = APIRouter(prefix="/api", tags=["api"])

    @api.post("/uploads", status_code=202, response_model=UploadsOut, responses=UPLOAD_ERRORS,
              openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                  "type": "object", "required": ["files"], "properties": {
                      "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                      "rep": {"type": "string", "maxLength": uploads.MAX_FIELD_CHARS},
                      "deal": {"type": "string", "maxLength": uploads.MAX_FIELD_CHARS},
                      "date": {"type": "string", "format": "date"}}}}}}})
    async def upload(request: Request):
        """Upload recordings or transcripts (multipart, field `files`); each is queued for analysis.

        Returns at once. A file the store already has is recognised by its bytes and not redone.
        All files of a request are accepted, or none.
        """
        try:
            accepted = await desk.upload(request)
        except uploads.UploadError as exc:
            return JSONResponse({"detail": exc.message}, status_code=exc.status)
        return UploadsOut(uploads=[UploadOut(id=a.id, name=a.name, duplicate=a.duplicate, queued=a.queued,
                                             url=f"/results/{a.id}", api=f"/api/results/{a.id}")
                                   for a in accepted])

    @api.get("/results/{id}", response_model=ResultOut, responses={404: {"model": Problem}})
    def result(id: str = HashPath):
        """Where an upload stands; `result` holds the analysis once `status` is `done`."""
        status = desk.status(id)
        if status is None:
            raise HTTPException(404, "no upload with this id")
        return ResultOut(**status.__dict__)

    @api.get("/results/{id}/recording", responses={404: {"model": Problem}},
             response_class=FileResponse)
    def recording(id: str = HashPath):
        """The uploaded file itself, as it was uploaded."""
        status = desk.status(id)
        path = uploads.stored_file(desk.settings.data, id)
        if status is None or path is None:
            raise HTTPException(404, "no uploaded file with this id")
        return FileResponse(path, media_type=uploads.media_type(path), filename=status.name)

    @api.get("/uploads", response_model=list[ResultOut])
    def recent(limit: int = Query(20, ge=1, le=200)):
        """The latest uploads, newest first."""
        with desk.store() as store:
            hashes = [job.hash for job in Jobs(store).recent(limit)]
        return [ResultOut(**desk.status(h).__dict__) for h in hashes]

    @api.get("/reps/{rep:path}", response_model=RepOut, responses={404: {"model": Problem}})
    def rep(rep: str, since: date | None = Query(None, description="Only calls on or after this day")):
        """A rep's history, as `debrief report` counts it: the step to fix most often, fixes per
        base, and whether the last coached step stopped coming back."""
        report, entries = rep_report(desk, rep, since)
        if not entries:
            raise HTTPException(404, "no calls for this rep")
        return RepOut(rep=rep, calls=len(report.calls), failed=report.failed,
                      waiting=sum(e.status is None for e in entries), most_often=report.top,
                      fixes=dict(report.fixes), per_base={b: report.bases[b] for b in (*BASES, NOTHING)},
                      last_coached=report.last_coached, coached_on=report.coached_on,
                      calls_since=report.calls_since, came_back=report.came_back, verdict=report.verdict,
                      since_text=report.since_text,
                      history=[CallOut(id=e.hash, date=e.recorded_at, deal=e.deal, status=e.status,
                                       outcome=e.outcome, fix=e.fix) for e in entries])

    return api


def rep_report(desk, rep: str, since: date | None = None) -> tuple[RepReport, list[Entry]]:
    """The rep's `debrief report` numbers, from the same store rows, and those rows."""
    with desk.store() as store:
        entries = store.history(rep=rep, since=since.isoformat() if since else None)
    reports = build_report(entries, desk.playbook)
    return (reports[0] if reports else RepReport(rep)), entries
