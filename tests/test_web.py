"""The web desk through its real app: uploads, the queue, results, the access rules.

The analyzer is the real one (playbook, patterns, Whisper tiny.en, greedy to keep the suite lean);
most uploads are typed transcripts, and a few are the rendered sample recordings.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import threading
import time
import wave
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")

import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from debrief import paths  # noqa: E402
from debrief.store import Store, bytes_hash  # noqa: E402
from debrief.web.access import AccessError, check_bind  # noqa: E402
from debrief.web.app import Settings, create_app  # noqa: E402
from debrief.web.jobs import Jobs  # noqa: E402

from live_server import serving  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
LABELS = json.loads((SAMPLES / "labels.json").read_text())
TOKEN = "a-test-token-long-enough"
LOCAL = "http://127.0.0.1"


@pytest.fixture(scope="module")
def analyzer():
    from debrief.pipeline import Analyzer

    # Greedy decoding: the samples come out the same, in less of the two shared cores' time.
    return Analyzer(REPO / "models" / "baseline", beam_size=1)


@pytest.fixture
def data() -> Path:
    return paths.data_dir()  # the per-test folder conftest points DEBRIEF_HOME at


@pytest.fixture
def make_app(analyzer, data):
    def make(run_worker=True, **settings):
        return create_app(analyzer, Settings(data=data, poll_seconds=0.2, **settings), run_worker=run_worker)
    return make


@pytest.fixture
def client(make_app):
    with TestClient(make_app(), base_url=LOCAL) as c:
        yield c


def upload(client, *files, **fields):
    """POST files given as (name, bytes) to the API."""
    return client.post("/api/uploads", files=[("files", f) for f in files], data=fields)


def wait_done(client, id, timeout=120.0, every=0.1, **kwargs) -> dict:
    """Poll an upload until it is done or failed (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = client.get(f"/api/results/{id}", **kwargs).json()
        if answer["status"] in ("done", "error"):
            return answer
        time.sleep(every)
    raise AssertionError(f"{id} still {answer['status']} after {timeout} s")


def snapshot(data: Path):
    """Everything an upload could change: the store's rows and the files under the data folder."""
    with Store(data / "debrief.db") as store:
        rows = [tuple(e.__dict__.values())[:-1] for e in store.history()]
        jobs = store.db.execute("SELECT hash, state FROM web_jobs ORDER BY hash").fetchall()
        jobs = [tuple(row) for row in jobs]
    files = sorted(str(p.relative_to(data)) for p in data.rglob("*")
                   if p.is_file() and not p.name.startswith("debrief.db"))
    return rows, jobs, files


def sample_text(name: str) -> bytes:
    return (SAMPLES / f"{name}.txt").read_bytes()


def silence_wav(seconds: float = 1.0) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * int(16000 * seconds))
    return buffer.getvalue()


# --- upload, poll, result --------------------------------------------------------------------

def test_a_recording_uploads_queues_and_comes_back_with_its_fix(client, data):
    wav = (SAMPLES / "stalled-after-demo.wav").read_bytes()
    answer = upload(client, ("stalled-after-demo.wav", wav), rep="dana", deal="acme", date="2026-11-02")
    assert answer.status_code == 202
    [item] = answer.json()["uploads"]
    assert item["id"] == bytes_hash(wav) and item["queued"] and not item["duplicate"]

    done = wait_done(client, item["id"])
    assert done["status"] == "done", done
    assert (done["rep"], done["deal"], done["date"]) == ("dana", "acme", "2026-11-02")
    assert done["result"]["fix"]["step"] == "second.impact"
    assert done["result"]["source"] == "stalled-after-demo.wav"  # the upload's name, not a server path
    assert done["duration"] == pytest.approx(37.3, abs=0.1)

    page = client.get(item["url"]).text
    assert 'id="fix-step">second.impact<' in page
    assert "What is that costing you, in money or in time?" in page
    assert '<mark class="ev-missed"' in page and '<mark class="ev-done"' in page
    assert client.get(f"/api/results/{item['id']}/recording").content == wav

    # The same bytes again, under another name: recognised, not redone.
    again = upload(client, ("copy.wav", wav)).json()["uploads"][0]
    assert (again["id"], again["duplicate"], again["queued"]) == (item["id"], True, False)
    assert len(list((data / "uploads").glob("*.audio"))) == 1


def test_a_transcript_upload_and_the_rep_page(client):
    ids = []
    for name, day in (("no-close", "2026-10-01"), ("stalled-after-demo", "2026-10-08"), ("won", "2026-10-15")):
        answer = upload(client, (f"{name}.txt", sample_text(name)), rep="lee", date=day)
        ids.append(answer.json()["uploads"][0]["id"])
    fixes = [(wait_done(client, i)["result"]["fix"] or {}).get("step") for i in ids]
    assert fixes == ["home.commit", "second.impact", None]

    # The same numbers as `debrief report --rep lee`, from the same rows.
    from debrief.report import build_report

    with Store(paths.data_dir() / "debrief.db") as store:
        [expected] = build_report(store.history(rep="lee"), client.app.state.desk.playbook)
    rep = client.get("/api/reps/lee").json()
    assert (rep["calls"], rep["failed"], rep["waiting"]) == (3, 0, 0) == (len(expected.calls), expected.failed, 0)
    assert rep["most_often"] == expected.top == "second.impact"  # a tie goes to the earlier step
    assert rep["fixes"] == dict(expected.fixes) == {"home.commit": 1, "second.impact": 1}
    assert rep["per_base"] == {"first": 0, "second": 1, "third": 0, "home": 1, "none": 1}
    assert (rep["last_coached"], rep["coached_on"], rep["calls_since"], rep["came_back"], rep["verdict"]) == (
        "second.impact", "2026-10-08", 1, 0, "too early") == (
        expected.last_coached, expected.coached_on, expected.calls_since, expected.came_back, expected.verdict)
    assert [call["fix"] for call in rep["history"]] == fixes
    page = client.get("/reps/lee")
    assert page.status_code == 200 and 'id="top-step">second.impact<' in page.text
    assert expected.since_text in page.text
    assert client.get("/api/reps/nobody").status_code == 404
    assert client.get("/reps/nobody").status_code == 404


def test_the_desk_as_a_coach_uses_it(client):
    ids = {}
    for name, rep, day in (("won", "lee", "2026-10-05"), ("no-close", "lee", "2026-10-14"),
                           ("stalled-after-demo", "kim", "2026-10-15")):
        ids[name] = upload(client, (f"{name}.txt", sample_text(name)), rep=rep, date=day).json()["uploads"][0]["id"]
    ids["hello"] = upload(client, ("hello.txt", b"hello"), rep="kim", date="2026-10-16").json()["uploads"][0]["id"]
    for i in ids.values():
        wait_done(client, i)

    # Navigation on every page: upload, calls, reps, team.
    for path in ("/", "/calls", "/reps", "/team", "/reps/lee", f"/results/{ids['won']}"):
        page = client.get(path)
        assert page.status_code == 200, path
        for link in ('href="/"', 'href="/calls"', 'href="/reps"', 'href="/team"'):
            assert link in page.text, (path, link)

    # A won call and a nothing-to-fix call in the calm box; not enough to coach said as such.
    won = client.get(f"/results/{ids['won']}").text
    assert 'id="fix" class="calm"' in won and "Won: nothing to fix" in won
    hello = client.get(f"/results/{ids['hello']}").text
    assert 'class="calm not-enough"' in hello and "Not enough to coach" in hello and "Nothing to fix" not in hello
    fix = client.get(f"/results/{ids['stalled-after-demo']}").text
    assert 'id="fix" class="fix"' in fix and "what the problem costs them" in fix
    assert "[second.impact" not in fix and "ev-missed" in fix and 'class="legend"' in fix  # colour, no inline tags

    # File names in every list of calls.
    for path in ("/", "/calls", "/reps/lee"):
        assert "no-close.txt" in client.get(path).text, path
    calls = client.get("/calls").text
    assert "not enough to coach" in calls and "hello.txt" in calls

    # The team: per rep, and the team's fixes per base week by week.
    team = client.get("/team").text
    assert '<a href="/reps/lee">lee</a>' in team and '<a href="/reps/kim">kim</a>' in team
    assert "asking for the decision (1)" in team and "+1 not enough to coach" in team
    weeks = re.findall(r'data-week="([0-9-]+)" data-base="(\w+)" data-count="(\d+)"', team)
    assert sorted(weeks) == [("2026-10-12", "home", "1"), ("2026-10-12", "second", "1")]
    assert "week of 2026-10-12" in team


def test_the_form_keeps_rep_deal_and_date_after_an_error(client):
    page = client.post("/upload", data={"rep": "dana", "deal": "acme", "date": "2026-11-02"},
                       files=[("files", ("b.wav", b"RIFF\0\0\0\0WAVE" + bytes(range(256))))])
    assert page.status_code == 415 and 'role="alert"' in page.text
    for field, value in (("rep", "dana"), ("deal", "acme"), ("date", "2026-11-02")):
        assert re.search(rf'id="{field}"[^>]*value="{value}"', page.text), field


def test_silence_is_accepted_then_reported_as_no_speech(client):
    answer = upload(client, ("quiet.wav", silence_wav()))
    done = wait_done(client, answer.json()["uploads"][0]["id"])
    assert done["status"] == "error" and "no speech" in done["error"] and done["error"].startswith("quiet.wav:")
    assert "no speech" in client.get(answer.json()["uploads"][0]["url"]).text


# --- bad uploads: a clear 4xx, and nothing changes ---------------------------------------------

TRANSCRIPT = ("notes.txt", b"We demoed, and they said they would think it over.")


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "b0undary") -> bytes:
    """A multipart body by hand, for the requests a browser would never send."""
    out = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


MULTIPART = {"content-type": "multipart/form-data; boundary=b0undary"}

BAD = {
    "empty file": (dict(files=[("files", ("a.wav", b""))]), 422, "is empty"),
    "not audio": (dict(files=[("files", ("call.wav", bytes(range(256)) * 16))]), 415, "not audio"),
    "an image called mp3": (dict(files=[("files", ("x.mp3", b"\x89PNG\r\n\x1a\n" + b"\0" * 500))]), 415, "no audio stream"),
    "no words": (dict(files=[("files", ("n.txt", b"  \n 12 34 \n"))]), 422, "no words"),
    "no file": (dict(content=multipart([("rep", None, b"dana")]), headers=MULTIPART), 422, "no file"),
    "no file chosen": (dict(content=multipart([("files", "", b""), ("rep", None, b"dana")]), headers=MULTIPART),
                       422, "no file"),
    "json body": (dict(json={"files": "x"}), 415, "multipart"),
    "unknown field": (dict(data={"reps": "dana"}, files=[("files", TRANSCRIPT)]), 422, "unexpected field"),
    "rep too long": (dict(data={"rep": "x" * 101}, files=[("files", TRANSCRIPT)]), 422, "longer than"),
    "bad date": (dict(data={"date": "next tuesday"}, files=[("files", TRANSCRIPT)]), 422, "YYYY-MM-DD"),
    "control characters": (dict(data={"deal": "a\x1bb"}, files=[("files", TRANSCRIPT)]), 422, "control"),
    "too many files": (dict(files=[("files", (f"{i}.txt", b"hi %d" % i)) for i in range(21)]), 413, "more than 20"),
    "one bad among good": (dict(files=[("files", TRANSCRIPT), ("files", ("b.wav", b"RIFF\0\0\0\0WAVE" + bytes(range(256))))]),
                           415, "b.wav"),
    "over the limit": (dict(files=[("files", ("big.txt", b"word " * 2000))]), 413, "limit"),
    "malformed": (dict(content=b"this is not multipart at all", headers=MULTIPART), 400, "malformed"),
    "cut short in a file": (dict(content=multipart([("files", "a.txt", b"hello there")])[:-20], headers=MULTIPART),
                            400, "ended before"),
    "cut short in a header": (dict(content=multipart([("files", "a.txt", b"hi")])[:40], headers=MULTIPART),
                              400, "ended before"),
}


@pytest.mark.parametrize("request_kwargs, status, message", BAD.values(), ids=BAD.keys())
def test_a_bad_upload_gets_a_clear_4xx_and_changes_nothing(make_app, data, request_kwargs, status, message):
    # No worker: the one good upload stays queued, so nothing changes the store but the request.
    with TestClient(make_app(run_worker=False, max_upload_bytes=8000), base_url=LOCAL) as client:
        assert upload(client, ("kept.txt", sample_text("won"))).status_code == 202
        before = snapshot(data)
        answer = client.post("/api/uploads", **request_kwargs)
        assert answer.status_code == status, answer.text
        assert message in answer.json()["detail"]
        assert snapshot(data) == before
        # The page's own form says the same, as a page.
        page = client.post("/upload", **request_kwargs)
        assert page.status_code == status and message in page.text and 'role="alert"' in page.text
        assert snapshot(data) == before


def test_the_limit_holds_while_streaming_without_a_content_length(make_app, data):
    body = multipart([("files", "big.txt", b"word " * 4000)])

    def chunks():  # a generator body goes out chunked: no Content-Length to check up front
        for i in range(0, len(body), 1000):
            yield body[i:i + 1000]

    with TestClient(make_app(max_upload_bytes=8000), base_url=LOCAL) as client:
        before = snapshot(data)
        answer = client.post("/api/uploads", content=chunks(), headers=MULTIPART)
        assert answer.status_code == 413
        assert snapshot(data) == before


def test_a_file_name_is_only_a_label(client, data):
    text = b"I presented the demo; they said they'd get back to me."
    answer = upload(client, ("../../etc/passwd", text))
    [item] = answer.json()["uploads"]
    assert item["name"] == "passwd"
    stored = sorted(p.relative_to(data) for p in data.rglob("*") if p.is_file() and "debrief.db" not in p.name)
    assert stored == [Path("uploads") / f"{bytes_hash(text)}.txt"]
    assert upload(client, ("..\\..\\evil.txt", text + b" ")).json()["uploads"][0]["name"] == "evil.txt"


def test_an_upload_cut_off_halfway_leaves_nothing(make_app, data):
    app = make_app()
    body = multipart([("files", "a.txt", b"We talked about their issues. " * 2000)])
    with serving(app) as url:
        before = snapshot(data)
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            head = (f"POST /api/uploads HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    f"Content-Type: multipart/form-data; boundary=b0undary\r\nContent-Length: {len(body)}\r\n\r\n")
            sock.sendall(head.encode() + body[: len(body) // 2])
            time.sleep(0.3)  # let the server write the first half to its temporary file
        incoming = data / "uploads" / ".incoming"
        deadline = time.monotonic() + 10
        while any(incoming.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(incoming.iterdir())
        assert snapshot(data) == before


def test_half_written_files_a_killed_server_left_are_swept_at_start(make_app, data):
    incoming = data / "uploads" / ".incoming"
    incoming.mkdir(parents=True)
    old, fresh = incoming / "old.part", incoming / "fresh.part"
    old.write_bytes(b"half")
    fresh.write_bytes(b"being written by another server")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    make_app(run_worker=False)
    assert not old.exists() and fresh.exists()


# --- the queue: concurrency and restarts -------------------------------------------------------

def test_ten_uploads_at_once_from_separate_clients_all_arrive_unmixed(make_app):
    names = list(LABELS)  # six samples, each with its known fix
    jobs = []
    for i in range(10):
        name = names[i % len(names)]
        if i < 2:  # two real recordings among the transcripts
            jobs.append((name, f"{name}.wav", (SAMPLES / f"{name}.wav").read_bytes()))
        else:  # the same sample twice is made distinct, so each upload is new work
            jobs.append((name, f"{name}-{i}.txt", sample_text(name) + f"\nThat was debrief {i}.".encode()))
    start = threading.Barrier(10)
    answers: dict[int, dict] = {}

    def one(i: int, url: str) -> None:
        label, filename, content = jobs[i]
        with httpx.Client(base_url=url, timeout=60) as http:
            start.wait(timeout=30)
            posted = http.post("/api/uploads", files={"files": (filename, content)}, data={"rep": f"rep{i}"})
            posted.raise_for_status()
            # Ten pollers share two cores with the worker: ask at a browser's pace, not a busy loop's.
            answers[i] = wait_done(http, posted.json()["uploads"][0]["id"], timeout=180, every=0.5)

    with serving(make_app()) as url:
        threads = [threading.Thread(target=one, args=(i, url)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(240)
    assert sorted(answers) == list(range(10))
    for i, answer in answers.items():
        label, filename, content = jobs[i]
        assert answer["status"] == "done", answer
        assert (answer["name"], answer["rep"]) == (filename, f"rep{i}")
        assert (answer["result"]["fix"] or {}).get("step") == LABELS[label]["fix"], filename
        if filename.endswith(".txt"):
            assert answer["result"]["transcript"] == content.decode().strip()
    assert len({answer["id"] for answer in answers.values()}) == 10


def test_a_restart_loses_neither_queued_nor_interrupted_work(make_app, data):
    with TestClient(make_app(run_worker=False), base_url=LOCAL) as client:
        ids = [upload(client, (f"{n}.txt", sample_text(n))).json()["uploads"][0]["id"]
               for n in ("won", "call-budget", "no-close")]
        with Store(data / "debrief.db") as store:
            Jobs(store).claim()  # the first one was running when the server stopped
        assert [client.get(f"/api/results/{i}").json()["status"] for i in ids] == ["running", "queued", "queued"]
        assert client.get(f"/api/results/{ids[2]}").json()["position"] == 2

    with TestClient(make_app(), base_url=LOCAL) as client:
        results = [wait_done(client, i) for i in ids]
    assert [(r["result"]["fix"] or {}).get("step") for r in results] == [None, "third.budget", "home.commit"]


# --- access --------------------------------------------------------------------------------------

@pytest.mark.parametrize("host, token, ok", [
    ("127.0.0.1", None, True), ("localhost", None, True), ("::1", None, True), ("127.0.0.2", None, True),
    ("0.0.0.0", None, False), ("192.168.1.20", None, False), ("desk.example.com", None, False),
    ("0.0.0.0", TOKEN, True), ("0.0.0.0", "short", False),
])
def test_a_bind_beyond_this_machine_needs_a_token(host, token, ok):
    if ok:
        check_bind(host, token)
    else:
        with pytest.raises(AccessError):
            check_bind(host, token)


def test_serve_refuses_to_start_without_a_token(monkeypatch, make_app):
    from debrief.cli import app

    monkeypatch.delenv("DEBRIEF_TOKEN", raising=False)
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 2
    assert "refusing to listen on 0.0.0.0 without an access token" in result.output
    with pytest.raises(AccessError):
        make_app(host="0.0.0.0")


def test_serve_runs_as_a_command_and_prints_its_link(data, tmp_path):
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "DEBRIEF_TOKEN": TOKEN, "DEBRIEF_HOME": str(data)}
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "debrief", "serve", "--port", str(port), "--beam-size", "1"],
                                  stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                first = httpx.get(url + "/api/uploads", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.poll() is None, log.read_text()
                time.sleep(0.1)
        assert first.status_code == 401
        assert httpx.get(url + "/api/uploads", headers={"Authorization": f"Bearer {TOKEN}"}).json() == []
        assert f"{url}/?token={TOKEN}" in log.read_text()
    finally:
        server.terminate()
        server.wait(15)


EVERY_PATH = ["/", "/results/" + "0" * 64, "/reps/dana", "/api/uploads", "/api/results/" + "0" * 64,
              "/api/results/" + "0" * 64 + "/recording", "/api/reps/dana", "/openapi.json"]


def test_with_a_token_every_page_and_api_call_needs_it(make_app, data):
    with TestClient(make_app(host="0.0.0.0", token=TOKEN), base_url="http://desk.example") as client:
        for path in EVERY_PATH:
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers={"Authorization": "Bearer wrong-token-wrong-token"}).status_code == 401
        page = client.get("/", headers={"Accept": "text/html"})
        assert page.status_code == 401 and 'action="/login"' in page.text
        before = snapshot(data)
        assert upload(client, TRANSCRIPT).status_code == 401
        assert snapshot(data) == before

        auth = {"Authorization": f"Bearer {TOKEN}"}
        answer = client.post("/api/uploads", files={"files": TRANSCRIPT}, headers=auth)
        assert answer.status_code == 202
        id = answer.json()["uploads"][0]["id"]
        recording = f"/api/results/{id}/recording"
        assert client.get(recording).status_code == 401  # never served without the token
        assert client.get(recording, headers=auth).content == TRANSCRIPT[1]
        assert wait_done(client, id, headers=auth)["status"] == "done"

    # A browser: the printed link swaps the token for a cookie, then every page works.
    with TestClient(make_app(host="0.0.0.0", token=TOKEN), base_url="http://desk.example") as browser:
        first = browser.get(f"/reps/dana?token={TOKEN}", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/reps/dana"
        assert TOKEN not in first.headers["set-cookie"] and "HttpOnly" in first.headers["set-cookie"]
        assert browser.get("/").status_code == 200
        assert browser.get(f"/results/{id}").status_code == 200

    with TestClient(make_app(host="0.0.0.0", token=TOKEN), base_url="http://desk.example") as browser:
        assert browser.post("/login", data={"token": "not-it"}).status_code == 401
        assert browser.get("/").status_code == 401
        assert browser.post("/login", data={"token": TOKEN}).status_code == 200  # followed to the desk
        assert browser.get("/api/uploads").status_code == 200


def test_without_a_token_only_this_machine_may_ask(client, data):
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400  # DNS rebinding
    assert client.get("/", headers={"Host": "localhost:8000"}).status_code == 200
    before = snapshot(data)
    cross_site = client.post("/api/uploads", files={"files": TRANSCRIPT}, headers={"Origin": "http://evil.example"})
    assert cross_site.status_code == 403
    assert snapshot(data) == before


def test_the_schema_and_the_headers(client):
    schema = client.get("/openapi.json").json()
    assert {"/api/uploads", "/api/results/{id}", "/api/results/{id}/recording", "/api/reps/{rep}"} <= set(schema["paths"])
    assert "multipart/form-data" in schema["paths"]["/api/uploads"]["post"]["requestBody"]["content"]
    assert client.get("/docs").status_code == 404  # its scripts would come from a CDN
    headers = client.get("/").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-store" and headers["x-frame-options"] == "DENY"


# --- the pieces ------------------------------------------------------------------------------------

def test_overlapping_evidence_is_cut_into_flat_pieces():
    from debrief.web.highlight import Span, pieces

    text = "aaa bbb ccc"
    cut = pieces(text, [Span(0, 7, "second.issues", "done"), Span(4, 11, "second.impact", "missed")])
    assert [(p.text, p.status) for p in cut] == [("aaa ", "done"), ("bbb", "missed"), (" ccc", "missed")]


def test_each_piece_knows_when_it_is_said():
    from debrief.web.highlight import Span, pieces, segment_starts

    result = {"transcript": "They went quiet. I never asked about money.",
              "segments": [{"start": 0.0, "end": 1.5, "text": " They went quiet."},
                           {"start": 1.9, "end": 4.0, "text": " I never asked about money."}]}
    starts = segment_starts(result)
    assert starts == [(0, 0.0), (17, 1.9)]
    cut = pieces(result["transcript"], [Span(17, 43, "third.budget", "missed")], starts)
    assert [(p.text, p.at, p.sentence) for p in cut] == [
        ("They went quiet. ", 0.0, 0), ("I never asked about money.", 1.9, 1)]
    typed = {"transcript": "hello", "segments": [{"start": 0.0, "end": 0.0, "text": "hello"}]}
    assert segment_starts(typed) == [] and pieces("hello", [], [])[0].at is None
