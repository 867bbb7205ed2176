"""Who may use the web desk.

Bound to a loopback address, the desk needs no token, but it answers only to loopback host names
(a web page elsewhere cannot reach it by DNS rebinding) and refuses cross-site writes. Bound to any
other address it will not start without an access token, and then every page, API call and
recording needs it: an `Authorization: Bearer` header, or a cookie the browser gets from `/login`
or from opening any page once with `?token=...` (the link `debrief serve` prints).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

TOKEN_ENV = "DEBRIEF_TOKEN"
COOKIE = "debrief_access"
MIN_TOKEN_CHARS = 16
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
# Reachable without the token: the form that asks for it, and the stylesheet and script it uses
# (they ship in the package; nothing private is in them).
OPEN_PATHS = ("/login", "/static/")


class AccessError(Exception):
    """The server must not start with these settings."""


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) is only reachable from this machine."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse a bind beyond this machine without a token, and a token too short to be one."""
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise AccessError(f"the access token must be at least {MIN_TOKEN_CHARS} characters "
                          "(python -c 'import secrets; print(secrets.token_urlsafe())' makes one)")
    if not is_loopback(host) and not token:
        raise AccessError(f"refusing to listen on {host} without an access token: set {TOKEN_ENV} "
                          "or pass --token, or listen on 127.0.0.1")


def cookie_value(token: str) -> str:
    """What the browser keeps: derived from the token, so the cookie never holds the token itself."""
    return hashlib.sha256(b"debrief-cookie:" + token.encode()).hexdigest()


class AccessMiddleware:
    """ASGI middleware that applies the rules above to every HTTP request."""

    def __init__(self, app: ASGIApp, *, token: str | None, host: str = "127.0.0.1") -> None:
        self.app = app
        self.token = token
        self.hosts = LOOPBACK_NAMES | ({host.strip("[]").lower()} if is_loopback(host) else set())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if self.token is None and _hostname(host) not in self.hosts:
            return await _plain(send, 400, "unknown host name: open this desk as http://127.0.0.1")
        origin = headers.get("origin")
        if scope["method"] not in ("GET", "HEAD", "OPTIONS") and origin and urlsplit(origin).netloc != host:
            return await _plain(send, 403, "cross-site request refused")
        path = scope["path"]
        if self.token is None or path.startswith(OPEN_PATHS) or self._allowed(headers):
            return await self.app(scope, receive, send)
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if scope["method"] == "GET" and "token" in query and hmac.compare_digest(query["token"], self.token):
            # Swap the token in the address for a cookie, so it leaves the address bar and history.
            del query["token"]
            target = path + ("?" + urlencode(query) if query else "")
            return await _redirect(send, target, set_cookie(self.token))
        await _unauthorized(send, path, headers)

    def _allowed(self, headers: Headers) -> bool:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer ") and hmac.compare_digest(auth[7:].strip(), self.token):
            return True
        cookie = _cookies(headers.get("cookie", "")).get(COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie, cookie_value(self.token))


def set_cookie(token: str) -> str:
    # SameSite=Strict: another site's page can neither read nor send it.
    return f"{COOKIE}={cookie_value(token)}; Path=/; HttpOnly; SameSite=Strict"


def _hostname(host: str) -> str:
    if host.startswith("["):
        return host[1:host.find("]")].lower()
    return host.rsplit(":", 1)[0].lower() if host.count(":") == 1 else host.lower()


def _cookies(header: str) -> dict[str, str]:
    pairs = (part.strip().split("=", 1) for part in header.split(";") if "=" in part)
    return {name: value for name, value in pairs}


async def _unauthorized(send: Send, path: str, headers: Headers) -> None:
    extra = [(b"www-authenticate", b'Bearer realm="debrief"')]
    wants_html = "text/html" in headers.get("accept", "") and not path.startswith("/api/")
    if wants_html:
        body = _LOGIN_PAGE.encode()
        await _respond(send, 401, body, b"text/html; charset=utf-8", extra)
    else:
        body = json.dumps({"detail": "an access token is required"}).encode()
        await _respond(send, 401, body, b"application/json", extra)


async def _plain(send: Send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    await _respond(send, status, body, b"application/json")


async def _redirect(send: Send, target: str, cookie: str) -> None:
    await _respond(send, 303, b"", b"text/plain",
                   [(b"location", target.encode()), (b"set-cookie", cookie.encode())])


async def _respond(send: Send, status: int, body: bytes, content_type: bytes,
                   extra: list[tuple[bytes, bytes]] = ()) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store"), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>debrief: access token needed</title><link rel="stylesheet" href="/static/style.css"></head>
<body><main><h1>debrief</h1>
<p>This desk needs its access token. Ask whoever started it, or use the link <code>debrief serve</code> printed.</p>
<form method="post" action="/login"><label for="token">Access token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Open the desk</button></form></main></body></html>
"""
