"""The ASGI application `cuikuan serve` runs: the API under /api/v1, the console under /console,
the provider callbacks, /healthz, /readyz and /metrics.

    app = create_app(engine, settings, clock=cli.common.clock, public_url="https://...")

Bodies are bounded (FastAPI's max_body_size): a declared length over the route's limit is refused
at once, and a body that grows past it while streaming is cut off, both with 413.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from cuikuan.api import admin, ops, problems, reads, writes
from cuikuan.api.auth import RateLimiter
from cuikuan.api.common import State
from cuikuan.errors import CuikuanError
from cuikuan.settings import Settings, SettingsWatch
from cuikuan.web import console, console_admin, console_strategy
from cuikuan.web.callbacks import CallbackRoutes

PREFIX = "/api/v1"
DEFAULT_LIMIT = 1 << 20
DESCRIPTION = """cuikuan's API: feed the ledger, read the book, act on borrowers.

Authenticate with `Authorization: Bearer ck_...` (a key from `cuikuan keys create`). Money is
written twice: a string in major units (`amount`) and the integer minor units (`minor`). Times are
ISO 8601 with their offset. Lists are paged with `next_cursor`. Errors are RFC 9457 problem
details: branch on `type`; GET it for an explanation. Writes take an `Idempotency-Key` header."""


def create_app(
    engine: Any,
    settings: Settings,
    clock: Callable[[], datetime],
    public_url: str = "",
    watch: SettingsWatch | None = None,
) -> FastAPI:
    """The app over `engine` with `settings`; with `watch`, the settings file is read again
    when it changes (an approved policy governs the next request; `cuikuan serve` does this)."""
    app = FastAPI(
        title="cuikuan", version="1", description=DESCRIPTION,
        openapi_url=f"{PREFIX}/openapi.json", docs_url=None, redoc_url=None,
    )  # fmt: skip
    app.state.cuikuan = State(engine, settings, clock, watch)
    app.state.engine = engine
    app.state.limiter = RateLimiter(engine)
    app.state.metrics = ops.Metrics()
    app.state.callbacks = CallbackRoutes(engine, settings, public_url)
    app.add_middleware(DeclaredLength)
    # Limits per router, not for the app: an app-wide limit answers any over-long declared
    # body in plain text before DeclaredLength can say it as a problem document.
    app.include_router(ops.router, max_body_size=DEFAULT_LIMIT)
    app.include_router(reads.router, prefix=PREFIX, max_body_size=DEFAULT_LIMIT)
    app.include_router(writes.ingest, prefix=PREFIX, max_body_size=DEFAULT_LIMIT)
    app.include_router(writes.operate, prefix=PREFIX, max_body_size=DEFAULT_LIMIT)
    app.include_router(admin.router, prefix=PREFIX, max_body_size=DEFAULT_LIMIT)
    app.include_router(admin.providers_router, prefix=PREFIX, max_body_size=DEFAULT_LIMIT)
    app.include_router(console.router, max_body_size=64 * 1024)
    app.include_router(console_strategy.router, max_body_size=64 * 1024)
    app.include_router(console_admin.router, max_body_size=64 * 1024)
    app.add_exception_handler(problems.ApiProblem, problems.on_problem)
    app.add_exception_handler(RequestValidationError, problems.on_validation)
    app.add_exception_handler(StarletteHTTPException, problems.on_http)
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

    return app


class DeclaredLength:
    """A Content-Length over the route's limit answered at once with a problem document.
    FastAPI's own limit (max_body_size) holds for bodies that stream in without a declared
    length, but answers a declared one in plain text, whatever the route would have said."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            limit = writes.BODY_LIMITS.get(scope["path"], DEFAULT_LIMIT)
            declared = dict(scope["headers"]).get(b"content-length", b"0")
            if not declared.isdigit() or int(declared) > limit:
                detail = f"at most {limit:,} bytes on this route"
                answer = problems.response("too-large", detail, scope["path"])
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)
