"""POST/PUT/DELETE routes: ledger batches and files (scope `ingest`), and what people and other
systems do (scope `operate`): replies, opt-outs, flags, tasks, uncertain messages, templates.
Every change goes into the audit log, in the change's own transaction where the change is made
here, else in the transaction right after the service's."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Header, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from sqlalchemy import Connection, select
from starlette.concurrency import run_in_threadpool

from cuikuan.api import idempotency
from cuikuan.api.auth import scope
from cuikuan.api.batches import Batch, read_batch
from cuikuan.api.common import MAX_ID, Day, Moment, State, Text, plain, state
from cuikuan.api.models import problem_responses
from cuikuan.api.problems import ApiProblem
from cuikuan.domain.phones import normalise_phone
from cuikuan.errors import CuikuanError, InputError, NotFound
from cuikuan.ingest.sources import FrameSource
from cuikuan.ingest.validate import Rules
from cuikuan.services import acts, audit, calls, guardrail
from cuikuan.services import tasks as task_service
from cuikuan.services.api_keys import ApiKey
from cuikuan.services.importer import ImportResult, import_file, import_source
from cuikuan.services.outbox import resolve_uncertain
from cuikuan.services.replies import receive_reply
from cuikuan.store.schema import template_pauses

# Body limits of the routes that take more than the app's 1 MB: 50,000 rows of a dozen columns
# fit well under 64 MB. The app refuses a larger declared length before reading (app.py).
BODY_LIMITS = {"/api/v1/instalments": 64 << 20, "/api/v1/payments": 64 << 20,
               "/api/v1/imports": 256 << 20}  # fmt: skip
RowId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="The id this API gave out.")]
UPLOAD_SUFFIXES = (".csv", ".txt", ".xlsx")
IdempotencyKey = Annotated[
    Text | None,
    Header(alias="Idempotency-Key", max_length=200,
           description="A retried request with the same key and body gets the first answer."),
]  # fmt: skip

ingest = APIRouter(tags=["ingest"], responses=problem_responses(401, 403, 409, 413, 415, 422, 429))
operate = APIRouter(
    dependencies=[Depends(scope("operate"))], tags=["operate"],
    responses=problem_responses(401, 403, 404, 409, 413, 422, 429),
)  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImportAnswer(BaseModel):
    kind: str
    rows: int
    changed: dict[str, int]
    extra_columns: list[str]
    snapshot_at: datetime | None


BATCH_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": Batch.model_json_schema()}},
    }
}


@ingest.post("/instalments", status_code=201, response_model=ImportAnswer,
             max_body_size=BODY_LIMITS["/api/v1/instalments"], openapi_extra=BATCH_BODY,
             summary="Import a batch of instalment rows (all or nothing)")  # fmt: skip
async def post_instalments(
    request: Request, idempotency_key: IdempotencyKey = None,
    key: ApiKey = Depends(scope("ingest")),
) -> JSONResponse:  # fmt: skip
    return await _batch(request, "instalments", key, idempotency_key)


@ingest.post("/payments", status_code=201, response_model=ImportAnswer,
             max_body_size=BODY_LIMITS["/api/v1/payments"], openapi_extra=BATCH_BODY,
             summary="Import a batch of payments (all or nothing)")  # fmt: skip
async def post_payments(
    request: Request, idempotency_key: IdempotencyKey = None,
    key: ApiKey = Depends(scope("ingest")),
) -> JSONResponse:  # fmt: skip
    return await _batch(request, "payments", key, idempotency_key)


@ingest.post("/imports", status_code=201, response_model=ImportAnswer, max_body_size=BODY_LIMITS["/api/v1/imports"],
             summary="Import a ledger file (CSV or XLSX), as `cuikuan import` does")  # fmt: skip
async def post_import(
    request: Request, file: Annotated[UploadFile, File(description="CSV (UTF-8 or GBK) or XLSX")],
    idempotency_key: IdempotencyKey = None, key: ApiKey = Depends(scope("ingest")),
) -> JSONResponse:  # fmt: skip
    st = state(request)
    suffix = Path(file.filename or "upload.csv").suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise ApiProblem("invalid-request", f"file: expected one of {', '.join(UPLOAD_SUFFIXES)}")
    data = await file.read()
    # The name goes into the audit log as a label: printable characters only.
    name = "".join(c for c in Path(file.filename or "upload").name if c.isprintable())[:100]

    def work() -> tuple[int, Any]:
        with _temporary(suffix) as path:
            path.write_bytes(data)
            return _imported(st, path, key, None, None, name)

    return await _once(request, key, idempotency_key, "imports", data, work)


async def _batch(
    request: Request, kind: Literal["instalments", "payments"], key: ApiKey, ikey: str | None
) -> JSONResponse:
    """The body read as the model `Batch` reads it (api/batches.py: a column at a time, the
    model's own check where that is not plainly valid), handed to the importer as a frame."""
    st = state(request)
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise ApiProblem("unsupported-media-type", "send the batch as application/json")
    body = await request.body()

    def work() -> tuple[int, Any]:
        try:
            batch = read_batch(body)  # in the thread: the event loop stays free
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors(include_url=False)]
            ) from None
        when = batch.snapshot_at or (st.clock() if kind == "instalments" else None)
        source = FrameSource(Path(f"{kind} batch"), batch.header, batch.frame)
        return _imported(
            st, source, key, kind, when, f"{kind} batch", hashlib.sha256(body).hexdigest()
        )

    return await _once(request, key, ikey, kind, body, work)


async def _once(
    request: Request, key: ApiKey, ikey: str | None, route: str, body: bytes, work: Any
) -> JSONResponse:
    """Run `work` once per Idempotency-Key (every time without one)."""
    st = state(request)
    if ikey is not None:
        stored = idempotency.claim(st.engine, key.id, ikey, route, body, st.clock())
        if stored is not None:
            return _answer(*stored, replayed=True)
    try:
        status, answer = await run_in_threadpool(work)
    except ApiProblem as exc:
        if ikey is not None:  # a refusal is an answer: a retry gets it again
            idempotency.remember(st.engine, key.id, ikey, 422, _problem_body(exc, request))
        raise
    except BaseException:
        if ikey is not None:
            idempotency.release(st.engine, key.id, ikey)
        raise
    if ikey is not None:
        idempotency.remember(st.engine, key.id, ikey, status, answer)
    return _answer(status, answer)


def _answer(status: int, body: Any, replayed: bool = False) -> JSONResponse:
    media = "application/problem+json" if status >= 400 else "application/json"
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return JSONResponse(body, status_code=status, media_type=media, headers=headers)


def _problem_body(exc: ApiProblem, request: Request) -> dict[str, Any]:
    from cuikuan.api.problems import BASE, KINDS

    status, title, _ = KINDS[exc.kind]
    return {"type": BASE + exc.kind, "title": title, "status": status, "detail": exc.detail,
            "instance": request.url.path, **exc.extra}  # fmt: skip


def _imported(
    st: State, source: Path | FrameSource, key: ApiKey,
    kind: Literal["instalments", "payments"] | None, snapshot_at: datetime | None, label: str,
    digest: str | None = None,
) -> tuple[int, Any]:  # fmt: skip
    now = st.clock()

    def audited(conn: Connection, result: ImportResult) -> None:
        audit.record(conn, key.actor, f"import.{result.kind}", label, None,
                     {"rows": result.rows, "changed": result.changed}, now)  # fmt: skip

    from cuikuan.errors import ImportRejected

    rules = Rules.of(st.settings.defaults)
    shown = str(source if isinstance(source, Path) else source.path)
    try:
        if isinstance(source, Path):
            result = import_file(st.engine, source, rules, kind=kind, snapshot_at=snapshot_at,
                                 now=now, on_commit=audited)  # fmt: skip
        else:
            result = import_source(
                st.engine, source, rules, lambda: digest or "", kind=kind,
                snapshot_at=snapshot_at, now=now, snapshot_default=now, on_commit=audited,
            )  # fmt: skip
    except ImportRejected as exc:
        errors = [{"row": p.line - 2, "field": p.column, "message": p.message, "got": p.got}
                  for p in exc.problems]  # fmt: skip
        raise ApiProblem("rejected-rows", f"{exc.total} problem(s); nothing was written",
                         errors=errors, total=exc.total) from None  # fmt: skip
    except InputError as exc:
        raise ApiProblem("invalid-request", exc.message.replace(shown, label)) from None
    return 201, plain({"kind": result.kind, "rows": result.rows, "changed": result.changed,
                       "extra_columns": result.extra_columns, "snapshot_at": result.snapshot_at})  # fmt: skip


@contextlib.contextmanager
def _temporary(suffix: str) -> Iterator[Path]:
    handle, name = tempfile.mkstemp(prefix="cuikuan-api-", suffix=suffix)
    os.close(handle)  # mkstemp made it 0600: nobody else reads a lender's ledger
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


# -- acts ----------------------------------------------------------------------------------------


class ReplyIn(_Strict):
    sender: Text = Field(alias="from", max_length=40, description="The number that wrote.")
    text: Text = Field(max_length=2000)
    received_at: Moment | None = None
    message_id: Text | None = Field(None, max_length=128,
                                   description="The gateway's id: the same delivery twice is one reply.")  # fmt: skip


@operate.post("/replies", summary="Record a reply (or an agent's call outcome) and act on it")
def post_reply(request: Request, reply: ReplyIn) -> dict[str, Any]:
    st = state(request)
    now = st.clock()
    at = reply.received_at or now
    result = receive_reply(st.engine, st.settings, reply.sender, reply.text, at, source="api",
                           message_id=reply.message_id)  # fmt: skip
    with st.engine.begin() as conn:
        audit.record(conn, request.state.actor, "reply.record", f"number:{result.sender}", None,
                     result.as_dict(), now)  # fmt: skip
    return result.as_dict()


class OptOutIn(_Strict):
    number: Text = Field(max_length=40)
    channel: Literal["sms", "email"] = "sms"


@operate.post("/opt-outs", status_code=201, summary="Stop a number (for everyone behind it)")
def post_opt_out(request: Request, stop: OptOutIn) -> dict[str, Any]:
    st = state(request)
    e164 = _number(st, stop.number)
    acts.stop_number(st.engine, e164, stop.channel, request.state.actor, st.clock(), source="api")
    return {"number": e164, "channel": stop.channel, "opted_out": True}


@operate.delete("/opt-outs/{number}", summary="Lift a number's opt-out (the borrower asked)")
def delete_opt_out(
    request: Request, number: Text, channel: Literal["sms", "email"] = "sms"
) -> dict[str, Any]:
    st = state(request)
    e164 = _number(st, number)
    acts.lift_number(st.engine, e164, channel, request.state.actor, st.clock())
    return {"number": e164, "channel": channel, "opted_out": False}


FlagName = Annotated[
    str, PathParam(pattern="^(" + "|".join(acts.SETTABLE_FLAGS) + ")$", description="The flag.")
]


@operate.put("/customers/{customer}/flags/{flag}", summary="Set a flag (stops reminders)")
def put_flag(request: Request, customer: Text, flag: FlagName) -> dict[str, Any]:
    return _flag(request, customer, str(flag), add=True)


@operate.delete("/customers/{customer}/flags/{flag}", summary="Clear a flag")
def delete_flag(request: Request, customer: Text, flag: FlagName) -> dict[str, Any]:
    return _flag(request, customer, str(flag), add=False)


def _flag(request: Request, customer: str, flag: str, add: bool) -> dict[str, Any]:
    st = state(request)
    after = acts.set_flag(st.engine, customer, flag, add, request.state.actor, st.clock())
    return {"customer": customer, "flags": after}


class CallIn(_Strict):
    number: Text = Field(
        "1",
        max_length=40,
        description="The number called: E.164, or its position among the customer's (1 first).",
    )
    outcome: Literal[calls.OUTCOMES] = Field(description="What came of it.")  # type: ignore[valid-type]
    note: Text = Field("", max_length=calls.MAX_NOTE)
    at: Moment | None = Field(
        None, description="When the call was made (default: now); not in the future."
    )


@operate.post("/customers/{customer}/calls", status_code=201,
              summary="Log a call made to the borrower (it counts against the contact caps)")  # fmt: skip
def post_call(request: Request, customer: Text, call: CallIn) -> dict[str, Any]:
    st = state(request)
    now = st.clock()
    made = calls.log_call(st.engine, customer, call.number, call.outcome,
                          call.at or now, by=request.state.actor, note=call.note, now=now)  # fmt: skip
    return made.as_dict()


class TaskAct(_Strict):
    action: Literal["take", "note", "done"]
    assignee: Text | None = Field(None, max_length=64)
    note: Text | None = Field(None, max_length=2000)
    outcome: Text | None = Field(None, max_length=200)


@operate.post("/tasks/{task_id}", summary="Take a task, add a note to it, or close it")
def post_task(request: Request, task_id: RowId, act: TaskAct) -> dict[str, Any]:
    st = state(request)
    now = st.clock()
    who = act.assignee or request.state.actor
    if act.action == "take":
        task_service.take(st.engine, task_id, who, now)
    elif act.action == "note":
        if not act.note:
            raise ApiProblem("invalid-request", "note: required to add a note")
        task_service.add_note(st.engine, task_id, act.note, now, who)
    else:
        task_service.done(st.engine, task_id, now, act.note or act.outcome or "", by=who)
    with st.engine.begin() as conn:
        audit.record(conn, request.state.actor, f"task.{act.action}", f"task:{task_id}", None,
                     act.model_dump(exclude_none=True), now)  # fmt: skip
    return {"task": task_id, "action": act.action}


class Resolve(_Strict):
    outcome: Literal["sent", "not_sent", "resend"]


@operate.post("/outbox/{message_id}/resolve", summary="Settle an uncertain message")
def post_resolve(request: Request, message_id: RowId, resolve: Resolve) -> dict[str, Any]:
    st = state(request)
    now = st.clock()
    try:
        resolve_uncertain(st.engine, [message_id], resolve.outcome, request.state.actor, now)
    except NotFound:
        raise
    except CuikuanError as exc:
        raise ApiProblem("conflict", exc.message) from None
    with st.engine.begin() as conn:
        audit.record(conn, request.state.actor, "message.resolve", f"message:{message_id}",
                     {"status": "uncertain"}, {"outcome": resolve.outcome}, now)  # fmt: skip
    return {"message": message_id, "outcome": resolve.outcome}


class Pause(_Strict):
    reason: Text = Field(max_length=200)


@operate.put("/templates/{template}/pause", summary="Pause a template (the plan skips it)")
def put_pause(request: Request, template: Text, pause: Pause) -> dict[str, Any]:
    st = state(request)
    if len(template) > 64:
        raise ApiProblem("invalid-request", "template: at most 64 characters")
    now = st.clock()
    with st.engine.begin() as conn:
        before = conn.execute(
            select(template_pauses.c.reason).where(template_pauses.c.template == template)
        ).scalar()
        if before is None:
            from sqlalchemy import insert

            conn.execute(insert(template_pauses).values(template=template, reason=pause.reason,
                                                        since=now))  # fmt: skip
        audit.record(conn, request.state.actor, "template.pause", f"template:{template}", before,
                     pause.reason, now)  # fmt: skip
    return {"template": template, "paused": True}


@operate.delete("/templates/{template}/pause", summary="Resume a paused template")
def delete_pause(request: Request, template: Text) -> dict[str, Any]:
    st = state(request)
    resumed = guardrail.resume(st.engine, template)
    if not resumed:
        raise NotFound(f"template {template!r} is not paused")
    with st.engine.begin() as conn:
        audit.record(conn, request.state.actor, "template.resume", f"template:{template}", None,
                     None, st.clock())  # fmt: skip
    return {"template": template, "paused": False}


def _number(st: State, text: str) -> str:
    try:
        e164, _ = normalise_phone(text, st.settings.defaults.region)
    except ValueError as exc:
        raise ApiProblem("invalid-request", f"number: {exc}") from None
    return e164


class Agreed(_Strict):
    due: Day
    amount: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,13}(\.[0-9]{1,3})?$")] = Field(
        description="Major units as a decimal string, e.g. 500.00"
    )


class PlanIn(_Strict):
    loan: Text = Field(max_length=64)
    schedule: list[Agreed] = Field(min_length=1, max_length=120)
    agreed_by: Text | None = Field(None, max_length=64)


@operate.post("/plans", status_code=201, summary="Agree an instalment plan for a loan")
def post_plan(request: Request, plan: PlanIn) -> dict[str, Any]:
    from decimal import Decimal

    from cuikuan.services.arrangements import agree

    st = state(request)
    now = st.clock()
    by = plan.agreed_by or request.state.actor
    try:
        plan_id = agree(st.engine, st.settings, plan.loan,
                        [(a.due, Decimal(a.amount)) for a in plan.schedule], by, now)  # fmt: skip
    except InputError as exc:
        raise ApiProblem("conflict" if "already has a current plan" in exc.message else "invalid-request",
                         exc.message) from None  # fmt: skip
    with st.engine.begin() as conn:
        audit.record(conn, request.state.actor, "plan.create", f"loan:{plan.loan}", None,
                     {"plan": plan_id, **plan.model_dump(mode="json")}, now)  # fmt: skip
    return {"plan": plan_id, "loan": plan.loan}
