"""GET routes (scope `read`): customers, one customer with loans and DPD, the timeline, the
portfolio, the outbox, tasks, promises, the report, the audit log. Every list is cursor-paged in
id order; every answer carries an ETag."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import and_, select

from cuikuan.api import models
from cuikuan.api.auth import scope
from cuikuan.api.common import Day, Text, decode_cursor, etagged, money, page, plain, state
from cuikuan.api.models import problem_responses
from cuikuan.api.problems import ApiProblem
from cuikuan.domain.dates import local_day
from cuikuan.domain.money import currency_digits
from cuikuan.errors import InputError
from cuikuan.services import audit
from cuikuan.services.customers import find_customers as find
from cuikuan.services.portfolio import customer_view
from cuikuan.services.portfolio import portfolio_now as build_portfolio
from cuikuan.services.timeline import timeline
from cuikuan.store.schema import customers, outbox, promises, tasks

router = APIRouter(
    dependencies=[Depends(scope("read"))], tags=["read"],
    responses=problem_responses(401, 403, 422, 429),
)  # fmt: skip
Limit = Annotated[int, Query(ge=1, le=500, description="Items a page (at most 500).")]
AsOf = Annotated[Day | None, Query(description="The day (default: today in the book's zone).")]
Cursor = Annotated[
    Text | None, Query(max_length=200, description="`next_cursor` of the page before.")
]
OUTBOX_STATUSES = ("planned", "held", "claimed", "sending", "sent", "delivered", "undelivered",
                   "failed", "expired", "suppressed", "uncertain", "cancelled")  # fmt: skip


@router.get(
    "/customers",
    response_model=models.CustomerPage,
    summary="Find customers by external id, name or phone",
)
def find_customers(
    request: Request,
    q: Annotated[
        Text | None,
        Query(
            max_length=100, description="External id or a loan's (exact), or the start of a name."
        ),
    ] = None,
    phone: Annotated[
        Text | None, Query(max_length=40, description="A phone number in any usual spelling.")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    st = state(request)
    try:
        rows = find(st.engine, st.settings.defaults.region, q, phone, decode_cursor(cursor), limit)
    except InputError as exc:
        raise ApiProblem("invalid-request", exc.message) from None
    items = [(cid, {"id": ext, "name": name}) for cid, ext, name in rows]
    return etagged(request, page(items, limit))


@router.get(
    "/customers/{customer}",
    response_model=models.Customer,
    responses=problem_responses(404),
    summary="A customer with their loans and DPD on a day",
)
def get_customer(
    request: Request,
    customer: Text,
    as_of: AsOf = None,
) -> Response:
    st = state(request)
    day = as_of or _today(st.settings.defaults.timezone, st.clock())
    view = customer_view(st.engine, customer, day, st.settings)
    loans = []
    for row in view.loans.to_dicts():
        digits = currency_digits(row["currency"])
        loans.append({
            "id": row["external_id"], "currency": row["currency"], "dpd": row["dpd"],
            "bucket": "closed" if row["paid_off"] else row["bucket"], "paid_off": row["paid_off"],
            "outstanding": money(row["outstanding"], digits),
            "overdue": money(row["overdue_amount"], digits),
            "next_due_date": row["next_due_date"], "days_to_due": row["days_to_due"],
            "next_due_amount": money(row["next_due_amount"], digits),
        })  # fmt: skip
    body = {"id": view.external_id, "name": view.name, "phones": view.phones,
            "email": view.email, "as_of": day, "dpd": view.dpd, "bucket": view.bucket,
            "loans": loans}  # fmt: skip
    return etagged(request, body)


@router.get(
    "/customers/{customer}/timeline",
    response_model=models.Timeline,
    responses=problem_responses(404),
    summary="Everything that happened to a customer",
)
def get_timeline(request: Request, customer: Text) -> Response:
    st = state(request)
    return etagged(
        request, {"items": [e.as_dict() for e in timeline(st.engine, st.settings, customer)]}
    )


@router.get(
    "/portfolio",
    response_model=models.Portfolio,
    summary="The book on a day by bucket, with DPD bands",
)
def get_portfolio(
    request: Request,
    as_of: AsOf = None,
) -> Response:
    st = state(request)
    now = st.clock()
    today = _today(st.settings.defaults.timezone, now)
    day = as_of or today
    # Only today's is kept in the database: a client asking for any past day stores nothing.
    report = build_portfolio(st.engine, day, st.settings, now if day == today else None)
    buckets = []
    for row in report.buckets.to_dicts():
        digits = report.currency_digits[row["currency"]]
        buckets.append({**row, "outstanding": money(row["outstanding"], digits),
                        "overdue": money(row["overdue"], digits)})  # fmt: skip
    body = {"as_of": day, "buckets": buckets, "dpd": report.dpd.to_dicts(),
            "closed_accounts": report.closed_accounts}  # fmt: skip
    return etagged(request, body)


@router.get(
    "/outbox",
    response_model=models.MessagePage,
    summary="Messages, filtered by status, plan date, step and provider",
)
def get_outbox(
    request: Request,
    status: Annotated[Text | None, Query(max_length=20)] = None,
    plan_date: Annotated[Day | None, Query(alias="date")] = None,
    step: Annotated[Text | None, Query(max_length=64)] = None,
    provider: Annotated[Text | None, Query(max_length=64)] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    st = state(request)
    if status is not None and status not in OUTBOX_STATUSES:
        raise ApiProblem("invalid-request", f"status: expected one of {', '.join(OUTBOX_STATUSES)}")
    after = decode_cursor(cursor)
    conditions = [outbox.c.id > after]
    for column, value in ((outbox.c.status, status), (outbox.c.plan_date, plan_date),
                          (outbox.c.step, step), (outbox.c.provider, provider)):  # fmt: skip
        if value is not None:
            conditions.append(column == value)
    query = (
        select(
            outbox.c.id, customers.c.external_id.label("customer"), outbox.c.channel,
            outbox.c.recipient, outbox.c.step, outbox.c.template, outbox.c.variant,
            outbox.c.plan_date, outbox.c.status, outbox.c.reason, outbox.c.provider,
            outbox.c.provider_id, outbox.c.segments, outbox.c.earliest_at, outbox.c.latest_at,
            outbox.c.sent_at, outbox.c.updated_at,
        )
        .join(customers, customers.c.id == outbox.c.customer_id)
        .where(and_(*conditions))
        .order_by(outbox.c.id)
        .limit(limit + 1)
    )  # fmt: skip
    with st.engine.connect() as conn:
        rows = conn.execute(query).all()
    return etagged(request, page([(r.id, _times(dict(r._mapping))) for r in rows], limit))


@router.get("/tasks", response_model=models.TaskPage, summary="Agent tasks by priority")
def get_tasks(
    request: Request,
    task_state: Annotated[str | None, Query(alias="state", pattern="^(open|taken|done)$")] = None,
    kind: Annotated[Text | None, Query(max_length=32)] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    st = state(request)
    after = decode_cursor(cursor)
    query = (
        select(tasks, customers.c.external_id.label("customer"))
        .outerjoin(customers, customers.c.id == tasks.c.customer_id)
        .where(tasks.c.id > after)
    )
    if task_state:
        query = query.where(tasks.c.state == task_state)
    if kind:
        query = query.where(tasks.c.kind == kind)
    with st.engine.connect() as conn:
        rows = conn.execute(query.order_by(tasks.c.id).limit(limit + 1)).all()
    items = []
    for r in rows:
        item = _times(dict(r._mapping))
        item.pop("customer_id", None)
        item["notes"] = json.loads(item["notes"] or "[]")
        items.append((r.id, item))
    return etagged(request, page(items, limit))


@router.get("/promises", response_model=models.PromisePage, summary="Promises to pay")
def get_promises(
    request: Request,
    promise_status: Annotated[
        str | None, Query(alias="status", pattern="^(pending|kept|broken)$")
    ] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    st = state(request)
    digits = st.settings.defaults.currency_digits
    query = (
        select(promises, customers.c.external_id.label("customer"))
        .join(customers, customers.c.id == promises.c.customer_id)
        .where(promises.c.id > decode_cursor(cursor))
    )
    if promise_status:
        query = query.where(promises.c.status == promise_status)
    with st.engine.connect() as conn:
        rows = conn.execute(query.order_by(promises.c.id).limit(limit + 1)).all()
    items = []
    for r in rows:
        item = _times(dict(r._mapping))
        item.pop("customer_id", None)
        item["amount"] = money(item["amount"], digits)
        items.append((r.id, item))
    return etagged(request, page(items, limit))


@router.get("/report", summary="The report: the same JSON as `cuikuan report --json`")
def get_report(
    request: Request,
    start: Annotated[Day, Query(alias="from")],
    end: Annotated[Day, Query(alias="to")],
    window: Annotated[int, Query(ge=1, le=30)] = 3,
) -> Response:
    from cuikuan.services.report import build_report

    if start > end:
        raise ApiProblem("invalid-request", f"from {start} is after to {end}")
    if (end - start).days > 400:
        raise ApiProblem("invalid-request", "at most 400 days in one report")
    st = state(request)
    result = build_report(st.engine, st.settings, start, end, window, now=st.clock())
    return etagged(
        request, json.loads(json.dumps(result.as_dict(), ensure_ascii=False, default=str))
    )


@router.get(
    "/audit", response_model=models.AuditPage, summary="The audit log, oldest first (scope admin)"
)
def get_audit(
    request: Request,
    actor: Annotated[Text | None, Query(max_length=128)] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    if not request.state.key.allows("admin"):
        raise ApiProblem("forbidden", "this route needs the 'admin' scope", needed="admin")
    st = state(request)
    found = audit.entries(st.engine, decode_cursor(cursor), limit + 1, actor)
    return etagged(request, page([(e["id"], plain(e)) for e in found], limit))


def _times(row: dict[str, Any]) -> dict[str, Any]:
    from cuikuan.store.times import as_utc

    return {k: as_utc(v) if isinstance(v, datetime) else v for k, v in row.items()}


def _today(zone: str, now: datetime) -> date:
    return local_day(now, zone)


@router.get(
    "/customers/{customer}/explain",
    responses=problem_responses(404),
    summary="Why this customer gets a message on a day, or not (`cuikuan explain`)",
)
def get_explain(
    request: Request,
    customer: Text,
    as_of: AsOf = None,
) -> Response:
    from cuikuan.services.explanation import explain

    st = state(request)
    now = st.clock()
    day = as_of or _today(st.settings.defaults.timezone, now)
    return etagged(request, explain(st.engine, st.settings, customer, day, now).as_json())


@router.get("/plan", summary="The day's plan as a dry run: counts per step, suppressions by rule")
def get_plan(
    request: Request,
    as_of: AsOf = None,
) -> Response:
    from cuikuan.services.planner import make_plan

    st = state(request)
    now = st.clock()
    day = as_of or _today(st.settings.defaults.timezone, now)
    result = make_plan(st.engine, st.settings, day, dry_run=True, now=now, keep_candidates=False)
    return etagged(request, result.summary_json(dry_run=True))


@router.get("/plans", summary="Instalment plans agreed with borrowers")
def get_plans(request: Request) -> Response:
    from cuikuan.services.arrangements import describe

    return etagged(request, {"items": describe(state(request).engine)})
