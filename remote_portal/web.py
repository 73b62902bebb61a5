"""The portal's HTTP side: a few fixed routes, strict headers, rate limits, live updates.

A_WEB_XSS: the server never puts data into HTML. Pages and scripts are fixed
files loaded at start; data travels only as JSON (``/api/snapshot``,
``/twin.json``, the SSE stream ``/events``) and the page's own script puts it
into the document with ``textContent`` (never ``innerHTML``). The
Content-Security-Policy allows scripts from this origin only: no inline script,
no ``eval``, so even a string that somehow became markup could not run.

A_WEB_DOS: every request takes a token from its client's bucket before any work
(429 otherwise); SSE streams are capped; a snapshot is serialised once per
change, not once per client; uvicorn bounds concurrency and keep-alive.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from remote_portal.ratelimit import RateLimiter
from remote_portal.view import InstrumentView

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"),
    ("Cache-Control", "no-store"),
)
STREAM_PERIOD_S = 0.5  # at most two updates a second per stream (coalesced)
KEEPALIVE_S = 15.0

# name -> media type; nothing outside this table is ever served.
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "twin.html": "text/html; charset=utf-8",
    "portal.js": "text/javascript; charset=utf-8",
    "twin.js": "text/javascript; charset=utf-8",
    "portal.css": "text/css; charset=utf-8",
}


def load_assets() -> dict[str, bytes]:
    base = resources.files("remote_portal") / "static"
    return {name: (base / name).read_bytes() for name in ASSETS}


class Guard:
    """ASGI middleware: security headers on every response, a rate limit on every request."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers[name] = value
            await send(message)

        client = scope.get("client")
        address = client[0] if client else "unknown"
        if not self.limiter.allow(address):
            response = PlainTextResponse(
                "too many requests\n", status_code=429, headers={"Retry-After": "1"}
            )
            await response(scope, receive, send_secured)
            return
        await self.app(scope, receive, send_secured)


@dataclass
class Snapshots:
    """The view's snapshot as JSON text, made once per revision and shared by all clients."""

    view: InstrumentView
    _revision: int = -1
    _text: str = ""

    def text(self) -> str:
        if self.view.revision != self._revision:
            self._revision = self.view.revision
            self._text = json.dumps(self.view.snapshot(), ensure_ascii=True, allow_nan=False)
        return self._text


@dataclass
class PortalWeb:
    view: InstrumentView
    twin: Callable[[], dict[str, Any]]
    set_language: Callable[[str], Any]  # coroutine function -> CommandReply | None
    limiter: RateLimiter = field(default_factory=RateLimiter)
    closing: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.assets = load_assets()
        self.snapshots = Snapshots(self.view)

    def _asset(self, name: str) -> Response:
        return Response(self.assets[name], media_type=ASSETS[name])

    async def index(self, request: Request) -> Response:
        return self._asset("index.html")

    async def twin_page(self, request: Request) -> Response:
        return self._asset("twin.html")

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS or name.endswith(".html"):
            return PlainTextResponse("not found\n", status_code=404)
        return self._asset(name)

    async def snapshot(self, request: Request) -> Response:
        return Response(self.snapshots.text(), media_type="application/json")

    async def twin_json(self, request: Request) -> Response:
        return JSONResponse(self.twin())

    async def health(self, request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def language(self, request: Request) -> Response:
        # A JSON body only: a cross-site form cannot send one without a CORS preflight.
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return PlainTextResponse("expected application/json\n", status_code=415)
        try:
            body = json.loads((await request.body())[:1024])
            language = str(body["language"])[:8]
        except (ValueError, KeyError, TypeError):
            return PlainTextResponse("expected {\"language\": ...}\n", status_code=400)
        reply = await self.set_language(language)
        if reply is None:
            return JSONResponse({"ok": False, "message": "no answer"}, status_code=504)
        return JSONResponse({"ok": reply.ok, "message": reply.message})

    async def events(self, request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        if not self.limiter.open_stream(client):
            return PlainTextResponse("too many streams\n", status_code=429,
                                     headers={"Retry-After": "5"})
        return StreamingResponse(
            self._stream(client), media_type="text/event-stream",
            headers={"X-Accel-Buffering": "no"},
        )

    async def _stream(self, client: str) -> AsyncIterator[str]:
        try:
            shown = -1
            sent_at = time.monotonic()
            while not self.closing.is_set():
                if self.view.revision != shown:
                    shown = self.view.revision
                    sent_at = time.monotonic()
                    yield f"event: snapshot\ndata: {self.snapshots.text()}\n\n"
                elif time.monotonic() - sent_at > KEEPALIVE_S:
                    sent_at = time.monotonic()
                    yield ": keepalive\n\n"
                await asyncio.sleep(STREAM_PERIOD_S)
        finally:
            self.limiter.close_stream(client)

    def app(self) -> ASGIApp:
        routes = [
            Route("/", self.index),
            Route("/twin", self.twin_page),
            Route("/twin.json", self.twin_json),
            Route("/api/snapshot", self.snapshot),
            Route("/api/display-language", self.language, methods=["POST"]),
            Route("/events", self.events),
            Route("/static/{name}", self.static),
            Route("/healthz", self.health),
        ]
        return Guard(Starlette(routes=routes), self.limiter)
