"""Errors as RFC 9457 problem details (application/problem+json), one stable `type` per kind.

    raise ApiProblem("not-found", "no customer C123")

The types are relative URIs under /api/v1/problems/, and GET on one explains it, so a client
can branch on `type` and a person can read what it means.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from cuikuan.errors import (
    ConfigError,
    CuikuanError,
    ImportRejected,
    InputError,
    NotFound,
    StoreError,
)

MEDIA = "application/problem+json"
BASE = "/api/v1/problems/"
KINDS: dict[str, tuple[int, str, str]] = {
    # kind: (status, title, what a client should do)
    "unauthorized": (401, "Missing or unknown API key",
                     "Send Authorization: Bearer ck_... with a key made by `cuikuan keys create`."),
    "forbidden": (403, "The key lacks the scope this route needs",
                  "Use a key with the scope named in `detail`, or ask an admin for one."),
    "not-found": (404, "No such object", "Check the id; ids are the lender's external ids."),
    "method-not-allowed": (405, "Method not allowed", "See the OpenAPI document."),
    "conflict": (409, "Conflicts with an earlier request",
                 "An Idempotency-Key was reused with another body, or the first request with "
                 "it is still running: use a new key for a new request, or retry later."),
    "too-large": (413, "Request body too large", "Split the batch (see `detail` for the limit)."),
    "unsupported-media-type": (415, "Unsupported media type", "Send application/json."),
    "invalid-request": (422, "The request is not valid",
                        "Fix the fields listed in `errors` (location, what was expected)."),
    "rejected-rows": (422, "Rows failed validation; nothing was written",
                      "Fix the rows listed in `errors` (row, field, problem) and send the "
                      "batch again: it is all or nothing."),
    "rate-limited": (429, "Too many requests for this key", "Wait `Retry-After` seconds."),
    "bad-settings": (500, "The server's settings are wrong", "Tell the operator: see `detail`."),
    "unavailable": (503, "The database is unavailable", "Retry later."),
    "internal": (500, "Something failed on our side", "Retry later; the operator's log has it."),
}  # fmt: skip


class ApiProblem(Exception):
    def __init__(
        self,
        kind: str,
        detail: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.kind, self.detail, self.headers, self.extra = kind, detail, headers or {}, extra


def response(
    kind: str, detail: str, instance: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    status, title, _ = KINDS[kind]
    body = {"type": BASE + kind, "title": title, "status": status, "detail": detail,
            "instance": instance, **extra}  # fmt: skip
    return JSONResponse(body, status_code=status, media_type=MEDIA, headers=headers)


async def on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    return response(exc.kind, exc.detail, request.url.path, exc.headers, **exc.extra)


async def on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"location": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", ""),
         "type": e.get("type", "")}
        for e in exc.errors()[:100]
    ]  # fmt: skip
    return response("invalid-request", f"{len(exc.errors())} invalid field(s)", request.url.path,
                    errors=errors)  # fmt: skip


async def on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    kind = {401: "unauthorized", 403: "forbidden", 404: "not-found", 405: "method-not-allowed",
            413: "too-large", 415: "unsupported-media-type"}.get(exc.status_code, "invalid-request")  # fmt: skip
    return response(kind, str(exc.detail), request.url.path, dict(exc.headers or {}))


async def on_cuikuan(request: Request, exc: Exception) -> JSONResponse:
    """The services' own errors, which carry a message for people."""
    assert isinstance(exc, CuikuanError)
    path = request.url.path
    if isinstance(exc, ImportRejected):
        errors = [
            {"row": p.line - 2, "field": p.column, "message": p.message, "got": p.got}
            for p in exc.problems
        ]  # fmt: skip
        return response("rejected-rows", f"{exc.total} problem(s); nothing was written", path,
                        errors=errors, total=exc.total)  # fmt: skip
    if isinstance(exc, NotFound):
        return response("not-found", exc.message, path)
    if isinstance(exc, StoreError):
        return response("unavailable", exc.message, path)
    if isinstance(exc, ConfigError):
        return response("bad-settings", exc.message, path)
    if isinstance(exc, InputError):
        return response("invalid-request", exc.message, path)
    return response("invalid-request", exc.message, path)


def describe(kind: str) -> dict[str, Any]:
    if kind not in KINDS:
        raise ApiProblem("not-found", f"no problem type {kind!r}")
    status, title, advice = KINDS[kind]
    return {"type": BASE + kind, "status": status, "title": title, "advice": advice}


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug or a database fault: a problem document, and one log line that names no borrower
    (a driver's message can quote the statement's parameters, so only its type is logged)."""
    import logging

    from sqlalchemy.exc import OperationalError

    logging.getLogger(__name__).error(
        "request failed route=%s %s error=%s", request.method, request.url.path, type(exc).__name__
    )
    kind = "unavailable" if isinstance(exc, OperationalError) else "internal"
    return response(kind, KINDS[kind][1], request.url.path)
