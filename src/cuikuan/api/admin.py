"""Admin routes (scope `admin`): webhook subscriptions, their deliveries, replays."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from cuikuan.api.auth import scope
from cuikuan.api.common import MAX_ID, Text, plain, state
from cuikuan.api.models import problem_responses
from cuikuan.services import audit, providers, webhooks

router = APIRouter(
    prefix="/webhooks", dependencies=[Depends(scope("admin"))], tags=["webhooks"],
    responses=problem_responses(401, 403, 404, 422, 429),
)  # fmt: skip


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Text = Field(max_length=2000)
    events: list[Text] = Field(default=["*"], min_length=1, max_length=20)


class SubscriptionMade(BaseModel):
    id: int
    url: str
    events: list[str]
    secret: str = Field(description="Signs every delivery; shown this once.")


@router.post("", status_code=201, response_model=SubscriptionMade, summary="Subscribe a URL")
def post_subscription(request: Request, sub: SubscriptionIn) -> dict[str, Any]:
    st = state(request)
    events = webhooks.parse_events(",".join(sub.events))
    made = webhooks.subscribe(st.engine, sub.url, events, st.clock())
    with st.engine.begin() as conn:
        audit.record(conn, request.state.actor, "webhook.subscribe", f"webhook:{made.id}", None,
                     {"url": made.url, "events": list(made.events)}, st.clock())  # fmt: skip
    return {"id": made.id, "url": made.url, "events": list(made.events), "secret": made.secret}


@router.get("", summary="Subscriptions (never their secrets)")
def get_subscriptions(request: Request) -> dict[str, Any]:
    return {"items": plain(webhooks.subscriptions(state(request).engine))}


@router.delete("/{subscription}", summary="Remove a subscription")
def delete_subscription(
    request: Request, subscription: Annotated[int, PathParam(ge=1, le=MAX_ID)]
) -> dict[str, Any]:
    st = state(request)
    webhooks.unsubscribe(st.engine, subscription)
    with st.engine.begin() as conn:
        audit.record(conn, request.state.actor, "webhook.remove", f"webhook:{subscription}",
                     None, None, st.clock())  # fmt: skip
    return {"id": subscription, "active": False}


@router.get(
    "/deliveries", summary="Deliveries with their attempts; status=dead is the dead-letter list"
)
def get_deliveries(
    request: Request,
    status: Annotated[str | None, Query(pattern="^(pending|delivered|dead)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> dict[str, Any]:
    return {"items": plain(webhooks.deliveries(state(request).engine, status, limit, after))}


@router.post("/deliveries/{delivery}/replay", summary="Send a dead delivery again")
def post_replay(
    request: Request, delivery: Annotated[int, PathParam(ge=1, le=MAX_ID)]
) -> dict[str, Any]:
    st = state(request)
    moved = webhooks.replay(st.engine, [delivery], st.clock())
    if not moved:
        from cuikuan.errors import NotFound

        raise NotFound(f"no dead delivery {delivery}")
    with st.engine.begin() as conn:
        audit.record(conn, request.state.actor, "webhook.replay", f"delivery:{delivery}", None,
                     None, st.clock())  # fmt: skip
    return {"delivery": delivery, "status": "pending"}


# --- providers: how dispatch found them, and an admin's hold -----------------------------------

providers_router = APIRouter(
    prefix="/providers", dependencies=[Depends(scope("admin"))], tags=["providers"],
    responses=problem_responses(401, 403, 404, 422, 429),
)  # fmt: skip
ProviderName = Annotated[str, PathParam(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")]


class HoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text = Field(min_length=1, max_length=300)


@providers_router.get(
    "", summary="Each provider: kind, endpoint, what it carries, up, down or held"
)
def get_providers(request: Request) -> dict[str, Any]:
    st = state(request)
    return {"items": plain(providers.overview(st.engine, st.settings))}


@providers_router.put("/{name}/hold", summary="Send nothing through a provider until released")
def put_hold(request: Request, name: ProviderName, hold: HoldIn) -> dict[str, Any]:
    st = state(request)
    providers.hold(st.engine, st.settings, name, hold.reason, st.clock(), request.state.actor)
    return {"provider": name, "state": "held"}


@providers_router.delete("/{name}/hold", summary="Release a held provider")
def delete_hold(request: Request, name: ProviderName) -> dict[str, Any]:
    st = state(request)
    providers.release(st.engine, name, st.clock(), request.state.actor)
    return {"provider": name, "state": "up"}
