"""Uploads that cannot hurt anyone.

A multipart body is parsed as it streams in (python-multipart), each file written to a temporary
file under `<data>/uploads/.incoming/` and hashed on the way, and the size limit is enforced while
the bytes arrive, so an oversized upload never lands on disk whole. Nothing the client says is
trusted: the file name is kept only as a label, and the content is checked by reading it, as UTF-8
text (a typed transcript) or by decoding it as audio. Only when every file of a request passes do
they move, by an atomic rename, to `<data>/uploads/<sha256>.txt|.audio`, and only then does the
store learn of them, in one transaction. An upload cut off halfway, or refused, leaves nothing.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from debrief.audio import SAMPLE_RATE, decode_audio
from debrief.errors import InputError
from debrief.store import Store
from debrief.web.jobs import Jobs, transaction

FILE_FIELDS = ("files", "file")
TEXT_FIELDS = ("rep", "deal", "date")
MAX_FILES = 20
MAX_FIELD_CHARS = 100
TEXT_MAX_BYTES = 2 << 20  # a two-hour debrief is about 100 kB of text
INCOMING = ".incoming"

# Decoding a recording to check it holds all its samples in memory: a 100 MB WAV (52 minutes)
# peaked at 450 MB more. One check at a time keeps simultaneous uploads from exhausting memory.
_DECODE_SLOTS = threading.BoundedSemaphore(1)


class UploadError(Exception):
    """An upload refused with an HTTP status and a one-line reason."""

    def __init__(self, status: int, message: str, fields: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields or {}  # the rep, deal and date read before it failed, for the form


@dataclass
class Received:
    """One file as it arrived: a label, its temporary file, its size and SHA-256."""

    name: str
    temp: Path
    size: int = 0
    hash: str = ""
    kind: str = ""  # "text" or "audio", once checked
    duration: float | None = None


@dataclass
class Upload:
    """A parsed request: its files (in temporary files) and its rep and deal fields."""

    files: list[Received] = field(default_factory=list)
    fields: dict[str, str | None] = field(default_factory=dict)

    def discard(self) -> None:
        """Delete whatever temporary files remain (the accepted ones were moved already)."""
        for received in self.files:
            received.temp.unlink(missing_ok=True)


@dataclass(frozen=True)
class Accepted:
    """A stored upload: its id (the content hash) and whether the store already had it."""

    id: str
    name: str
    duplicate: bool
    queued: bool


def uploads_dir(data: Path) -> Path:
    return data / "uploads"


def stored_file(data: Path, hash: str) -> Path | None:
    """Where an upload's bytes live, or None."""
    for suffix in (".txt", ".audio"):
        candidate = uploads_dir(data) / f"{hash}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def sweep_incoming(data: Path, older_than: float = 3600.0) -> int:
    """Delete temporary files a killed server left half-written; returns how many.

    Only old ones: another server on the same data folder may be receiving an upload right now.
    """
    incoming = uploads_dir(data) / INCOMING
    cutoff = time.time() - older_than
    swept = 0
    for part in incoming.glob("*.part") if incoming.is_dir() else ():
        try:
            if part.stat().st_mtime < cutoff:
                part.unlink()
                swept += 1
        except FileNotFoundError:
            pass
    return swept


def clean_name(raw: str) -> str:
    """A file name safe to show: the last path component, printable, at most 120 characters."""
    base = raw.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()[:120]
    return base if base not in ("", ".", "..") else "upload"


async def receive(request: Request, *, limit: int, data: Path) -> Upload:
    """Stream a multipart body into temporary files, enforcing `limit` bytes for the whole body.

    Raises UploadError (400, 413, 415 or 422); on any failure, the client going away included,
    no temporary file is left behind.
    """
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or b"boundary" not in options:
        raise UploadError(415, "send the files as multipart/form-data (a form with file fields)")
    declared = request.headers.get("content-length")
    # The body also carries part headers and boundaries: allow them a little room.
    if declared and declared.isdigit() and int(declared) > limit + 65536:
        raise UploadError(413, f"the upload is {_mb(int(declared))}, over the {_mb(limit)} limit")

    # Recordings are private: only this user may list or read them (mkstemp makes files 0600).
    uploads_dir(data).mkdir(mode=0o700, parents=True, exist_ok=True)
    incoming = uploads_dir(data) / INCOMING
    incoming.mkdir(mode=0o700, exist_ok=True)
    reader = _PartReader(incoming, limit)
    try:
        parser = MultipartParser(options[b"boundary"], reader.callbacks())
        async for chunk in request.stream():
            try:
                parser.write(chunk)
            except UploadError:
                raise
            except Exception:  # python-multipart raises several types for a malformed body
                raise UploadError(400, "the multipart body is malformed") from None
            # Disk writes happen off the event loop, like Starlette's own form parser.
            await run_in_threadpool(reader.flush)
        parser.finalize()
        await run_in_threadpool(reader.flush)
        if parser.state != MultipartState.END:
            raise UploadError(400, "the upload ended before it was complete")
    except BaseException as exc:
        reader.close()
        reader.upload.discard()
        if isinstance(exc, UploadError):
            exc.fields = dict(reader.upload.fields)
        raise
    reader.close()
    upload = reader.upload
    if not upload.files:
        upload.discard()
        raise UploadError(422, "no file in the upload: add one or more recordings or transcripts", upload.fields)
    return upload


class _PartReader:
    """python-multipart callbacks that write file parts to temporary files and keep text fields."""

    def __init__(self, incoming: Path, limit: int) -> None:
        self.incoming, self.limit = incoming, limit
        self.upload = Upload()
        self.total = 0
        self._header_name = self._header_value = b""
        self._disposition = b""
        self._field: str | None = None
        self._value = bytearray()
        self._file = None
        self._digest = None
        self._pending: list[tuple[object, bytes]] = []  # (file, bytes) the parser gave, to write
        self._finished: list = []  # files the parser finished, to fsync and close

    def callbacks(self) -> dict:
        return {"on_part_begin": self._begin, "on_header_field": self._header_field,
                "on_header_value": self._header_value_cb, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished, "on_part_data": self._data,
                "on_part_end": self._end}

    def _begin(self) -> None:
        self._disposition, self._field, self._value = b"", None, bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_cb(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if options.get(b"filename") == b"":
            return  # a browser's file field with no file chosen: nothing to keep
        if b"filename" in options:
            if name not in FILE_FIELDS:
                raise UploadError(422, f"unexpected file field '{clean_name(name)}': use 'files'")
            if len(self.upload.files) >= MAX_FILES:
                raise UploadError(413, f"more than {MAX_FILES} files in one upload")
            handle, temp = tempfile.mkstemp(dir=self.incoming, suffix=".part")
            self._file = os.fdopen(handle, "wb")
            self._digest = hashlib.sha256()
            label = clean_name(options[b"filename"].decode("utf-8", "replace"))
            self.upload.files.append(Received(label, Path(temp)))
        elif name in TEXT_FIELDS:
            self._field = name
        else:
            raise UploadError(422, f"unexpected field '{clean_name(name)}': use files, rep, deal and date")

    def _data(self, data: bytes, start: int, end: int) -> None:
        self.total += end - start
        if self.total > self.limit:
            raise UploadError(413, f"the upload is over the {_mb(self.limit)} limit")
        if self._file is not None:
            chunk = bytes(data[start:end])
            self._digest.update(chunk)
            self.upload.files[-1].size += len(chunk)
            self._pending.append((self._file, chunk))
        elif self._field is not None:
            self._value += data[start:end]
            if len(self._value) > MAX_FIELD_CHARS * 4:
                raise UploadError(422, f"'{self._field}' is longer than {MAX_FIELD_CHARS} characters")

    def _end(self) -> None:
        if self._file is not None:
            self.upload.files[-1].hash = self._digest.hexdigest()
            self._finished.append(self._file)
            self._file = None
        elif self._field is not None:
            self.upload.fields[self._field] = _field_value(self._field, bytes(self._value))

    def flush(self) -> None:
        """Write what the parser gave since the last call, and close the files it finished.

        Blocking disk work: the caller runs it in a thread, off the event loop.
        """
        for file, chunk in self._pending:
            file.write(chunk)
        self._pending.clear()
        for file in self._finished:
            # fsync before the rename, so a crash can never leave a stored row pointing at a
            # file whose bytes never reached the disk.
            file.flush()
            os.fsync(file.fileno())
            file.close()
        self._finished.clear()

    def close(self) -> None:
        """Close every file still open (after a failure: they are deleted next)."""
        for file in [self._file, *self._finished]:
            if file is not None:
                file.close()
        self._file, self._pending, self._finished = None, [], []


def _field_value(name: str, raw: bytes) -> str | None:
    try:
        value = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise UploadError(422, f"'{name}' is not UTF-8 text") from None
    if len(value) > MAX_FIELD_CHARS:
        raise UploadError(422, f"'{name}' is longer than {MAX_FIELD_CHARS} characters")
    if any(unicodedata.category(ch)[0] == "C" for ch in value):
        raise UploadError(422, f"'{name}' contains control characters")
    if name == "date" and value:
        try:
            value = date.fromisoformat(value).isoformat()
        except ValueError:
            raise UploadError(422, f"'date' must be a day as YYYY-MM-DD, not '{value}'") from None
    return value or None


def check(received: Received) -> None:
    """Read the file to learn what it is: a UTF-8 transcript with words, or audio that decodes.

    Sets `kind` (and `duration` for audio); raises UploadError 422 (empty, no words) or 415.
    """
    if received.size == 0:
        raise UploadError(422, f"{received.name}: is empty (0 bytes)")
    text = _as_text(received.temp)
    if text is not None:
        if not any(ch.isalpha() for ch in text):
            raise UploadError(422, f"{received.name}: the transcript has no words")
        received.kind = "text"
        return
    with _DECODE_SLOTS:
        try:
            audio = decode_audio(received.temp, name=received.name)
        except InputError as exc:
            raise UploadError(415, f"{exc}; upload a recording (wav, mp3, m4a, ogg, webm...) "
                                   "or a UTF-8 transcript") from None
    received.kind, received.duration = "audio", round(len(audio) / SAMPLE_RATE, 2)


def _as_text(path: Path) -> str | None:
    """The file's text if it is a plain UTF-8 text file (no NULs, no binary control bytes)."""
    if path.stat().st_size > TEXT_MAX_BYTES:
        return None
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    allowed = {"\n", "\r", "\t", "\f"}
    if any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in text):
        return None
    return text


async def accept(upload: Upload, *, store_path: Path, data: Path) -> list[Accepted]:
    """Check every file, then move them into place and queue them; all of them or none."""
    for received in upload.files:
        known = stored_file(data, received.hash)
        if known is not None:  # these very bytes (same SHA-256) were checked when they first came
            received.kind = "text" if known.suffix == ".txt" else "audio"
            continue
        await run_in_threadpool(check, received)
    return await run_in_threadpool(_commit, upload, store_path, data)


def _commit(upload: Upload, store_path: Path, data: Path) -> list[Accepted]:
    target = uploads_dir(data)
    accepted: list[Accepted] = []
    # The day of the call, as the coach gave it; for a new recording, else the day it was uploaded.
    today = datetime.now(timezone.utc).date().isoformat()
    with Store(store_path) as store:
        jobs = Jobs(store)
        with transaction(store):
            for received in upload.files:
                final = target / f"{received.hash}{'.txt' if received.kind == 'text' else '.audio'}"
                # Same bytes, same name: a second copy is simply dropped.
                os.replace(received.temp, final)
                entry = store.get(received.hash)
                store.add_recording(received.hash, str(final), rep=upload.fields.get("rep"),
                                    deal=upload.fields.get("deal"),
                                    recorded_at=upload.fields.get("date") or (None if entry else today),
                                    duration=received.duration)
                queued = not store.done(received.hash)
                if queued:
                    jobs.enqueue(received.hash, received.name)
                accepted.append(Accepted(received.hash, received.name, entry is not None, queued))
    return accepted


def _mb(size: int) -> str:
    return f"{size / 1e6:.0f} MB" if size >= 1e6 else f"{size} bytes"



# Enough to label a stored file for a browser's audio player; the bytes were checked on upload.
_MAGIC = ((0, b"RIFF", "audio/wav"), (0, b"fLaC", "audio/flac"), (0, b"OggS", "audio/ogg"),
          (0, b"ID3", "audio/mpeg"), (4, b"ftyp", "audio/mp4"), (0, b"\x1a\x45\xdf\xa3", "audio/webm"))


def media_type(path: Path) -> str:
    """The content type to serve a stored upload with."""
    if path.suffix == ".txt":
        return "text/plain; charset=utf-8"
    with open(path, "rb") as f:
        head = f.read(12)
    for offset, magic, kind in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return kind
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # an MPEG audio frame
        return "audio/mpeg"
    return "application/octet-stream"
