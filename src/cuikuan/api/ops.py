"""For operators and load balancers: /healthz, /readyz, /metrics (Prometheus text format), and
the provider callbacks (Twilio, Aliyun, Tencent) that `listen --public-url` also serves."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from sqlalchemy import func, select, text

from cuikuan.api.common import state
from cuikuan.api.models import problem_responses
from cuikuan.api.problems import describe
from cuikuan.store.engine import current_revision, head_revision
from cuikuan.store.schema import markers, outbox, receipts
from cuikuan.web.callbacks import MAX_BODY, PUSHES, ROUTES, CallbackRoutes

router = APIRouter(tags=["operations"])


class Metrics:
    """The server's own measurements, and the book's read from the database at each scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "cuikuan_api_request_seconds", "API request latency", ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )  # fmt: skip
        self.messages = Gauge(
            "cuikuan_messages", "Outbox messages by status and provider", ["status", "provider"],
            registry=self.registry,
        )  # fmt: skip
        self.queue = Gauge("cuikuan_queue_depth", "Messages planned and not yet sent",
                           registry=self.registry)  # fmt: skip
        self.receipts_lag = Gauge(
            "cuikuan_receipts_unmatched", "Receipts not matched to a message yet",
            registry=self.registry,
        )  # fmt: skip
        self.plan_rows = Gauge("cuikuan_last_plan_rows", "Rows the latest day's plan wrote (worker)",
                               registry=self.registry)  # fmt: skip


@router.get("/healthz", include_in_schema=False)
def healthz() -> dict[str, str]:
    return {"status": "up"}


@router.get("/readyz", include_in_schema=False)
def readyz(request: Request) -> JSONResponse:
    st = state(request)
    checks: dict[str, Any] = {}
    try:
        with st.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "reachable"
        current, head = current_revision(st.engine), head_revision()
        checks["migrations"] = "current" if current == head else f"at {current}, expected {head}"
        checks["workers"] = _workers_seen(st.engine)
    except Exception as exc:  # whatever the driver raises, the answer is "not ready"
        checks["database"] = f"unreachable: {type(exc).__name__}"
    ready = (
        checks.get("database") == "reachable"
        and checks.get("migrations") == "current"
        and checks.get("workers") != 0
    )
    return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)


def _workers_seen(engine: Any) -> int | str:
    """Workers that beat in the last minute (PostgreSQL with the task queue); with none the
    day's work stops, so the service is not ready. SQLite's single worker is not tracked."""
    if engine.dialect.name != "postgresql":
        return "not tracked (SQLite: one `cuikuan worker` process)"
    with engine.connect() as conn:
        if conn.execute(text("SELECT to_regclass('procrastinate_workers')")).scalar() is None:
            return "not tracked (no worker has started yet)"
        return int(
            conn.execute(
                text("SELECT count(*) FROM procrastinate_workers "
                     "WHERE last_heartbeat > now() - interval '1 minute'")
            ).scalar_one()
        )  # fmt: skip


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    st = state(request)
    m: Metrics = request.app.state.metrics
    with st.engine.connect() as conn:
        counts = conn.execute(
            select(outbox.c.status, outbox.c.provider, func.count()).group_by(
                outbox.c.status, outbox.c.provider
            )
        ).all()
        unmatched = conn.execute(
            select(func.count()).select_from(receipts).where(receipts.c.outbox_id.is_(None))
        ).scalar_one()
        last_plan = conn.execute(
            select(markers.c.value).where(markers.c.name.like("plan:%"))
            .order_by(markers.c.name.desc()).limit(1)
        ).scalar()  # fmt: skip
    m.messages.clear()
    queue = 0
    for status, provider, n in counts:
        m.messages.labels(status, provider or "").set(n)
        if status == "planned":
            queue += n
    m.queue.set(queue)
    m.receipts_lag.set(unmatched)
    m.plan_rows.set(last_plan or 0)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/v1/problems/{kind}", tags=["problems"], summary="What a problem type means",
            responses=problem_responses(404))  # fmt: skip
def problem_type(kind: str) -> dict[str, Any]:
    return describe(kind)


async def callback(request: Request) -> Response:
    """The same paths as `listen --public-url` serves, so a provider's settings stay as they are
    when the callbacks move here."""
    path = request.url.path
    routes: CallbackRoutes = request.app.state.callbacks
    if path in PUSHES and not routes.push_allowed(request.url.query):
        return PlainTextResponse("bad token", status_code=403)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return PlainTextResponse(f"at most {MAX_BODY:,} bytes", status_code=413)
    st = state(request)
    from starlette.concurrency import run_in_threadpool

    code, answer = await run_in_threadpool(
        routes.answer, path, request.url.query, request.headers.get("x-twilio-signature", ""),
        bytes(body), st.clock(),
    )  # fmt: skip
    return PlainTextResponse(answer, status_code=code)


def observe(request: Request, started: float, status: int) -> None:
    route = request.scope.get("route")
    name = getattr(route, "path", "unmatched")
    metrics: Metrics = request.app.state.metrics
    metrics.latency.labels(request.method, name, str(status)).observe(time.perf_counter() - started)


for _path in (*ROUTES, *PUSHES):
    router.add_api_route(_path, callback, methods=["POST"], include_in_schema=False)
