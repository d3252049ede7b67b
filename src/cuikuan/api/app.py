"""The ASGI application `cuikuan serve` runs: the API under /api/v1, the provider callbacks,
/healthz, /readyz and /metrics.

    app = create_app(engine, settings, clock=lambda: datetime.now(UTC), public_url="https://...")

Bodies are bounded before they are read (BodyLimit): a declared length over the route's limit is
refused at once, and a body that grows past it while streaming is cut off with 413.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cuikuan.api import ops, problems, reads, writes
from cuikuan.api.auth import RateLimiter
from cuikuan.api.common import State
from cuikuan.errors import CuikuanError
from cuikuan.settings import Settings
from cuikuan.web.callbacks import CallbackRoutes

PREFIX = "/api/v1"
LIMITS = {f"{PREFIX}/instalments": 64 << 20, f"{PREFIX}/payments": 64 << 20,
          f"{PREFIX}/imports": 256 << 20}  # fmt: skip
DEFAULT_LIMIT = 1 << 20
DESCRIPTION = """cuikuan's API: feed the ledger, read the book, act on borrowers.

Authenticate with `Authorization: Bearer ck_...` (a key from `cuikuan keys create`). Money is
written twice: a string in major units (`amount`) and the integer minor units (`minor`). Times are
ISO 8601 with their offset. Lists are paged with `next_cursor`. Errors are RFC 9457 problem
details: branch on `type`; GET it for an explanation. Writes take an `Idempotency-Key` header."""


def create_app(
    engine: Any, settings: Settings, clock: Callable[[], datetime], public_url: str = ""
) -> FastAPI:
    app = FastAPI(
        title="cuikuan", version="1", description=DESCRIPTION,
        openapi_url=f"{PREFIX}/openapi.json", docs_url=None, redoc_url=None,
    )  # fmt: skip
    app.state.cuikuan = State(engine, settings, clock)
    app.state.engine = engine
    app.state.limiter = RateLimiter()
    app.state.metrics = ops.Metrics()
    app.state.callbacks = CallbackRoutes(engine, settings, public_url)
    app.include_router(ops.router)
    app.include_router(reads.router, prefix=PREFIX)
    app.include_router(writes.ingest, prefix=PREFIX)
    app.include_router(writes.operate, prefix=PREFIX)
    app.add_exception_handler(problems.ApiProblem, problems.on_problem)
    app.add_exception_handler(RequestValidationError, problems.on_validation)
    app.add_exception_handler(HTTPException, problems.on_http)
    app.add_exception_handler(CuikuanError, problems.on_cuikuan)

    @app.middleware("http")
    async def measure(request: Request, call_next: Any) -> Response:
        started = time.perf_counter()
        try:
            response: Response = await call_next(request)
        except Exception as exc:  # answered here: re-raised to uvicorn it would drop the connection
            response = await problems.on_unexpected(request, exc)
        ops.observe(request, started, response.status_code)
        return response

    @app.get(f"{PREFIX}/docs", include_in_schema=False)
    def docs() -> Response:
        from cuikuan.api.docs import render

        return Response(render(app.openapi()), media_type="text/html; charset=utf-8")

    app.add_middleware(BodyLimit)  # outermost: before anything reads a byte
    return app


class BodyLimit:
    """413 for a body over its route's limit, checked on the declared length and while read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = LIMITS.get(scope["path"], DEFAULT_LIMIT)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(scope, send, limit)
            return
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return message

        try:
            await self.app(scope, bounded, send)
        except _TooLarge:
            await _too_large(scope, send, limit)


class _TooLarge(HTTPException):
    """An HTTPException, so that FastAPI's body parsing passes it on as it is (it turns other
    exceptions into 400) and the problem handler answers 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"at most {limit:,} bytes on this route")


async def _too_large(scope: Scope, send: Send, limit: int) -> None:
    status, title, _ = problems.KINDS["too-large"]
    body = json.dumps({"type": problems.BASE + "too-large", "title": title, "status": status,
                       "detail": f"at most {limit:,} bytes on this route",
                       "instance": scope["path"]}).encode()  # fmt: skip
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", problems.MEDIA.encode()),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
