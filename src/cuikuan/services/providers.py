"""The providers a book sends through, for the people who run them: what each one is, what it
carries, how dispatch last found it, and an admin's hold.

    overview(engine, settings)                      # [{provider, kind, serves, endpoint, state...}]
    hold(engine, settings, "cmcc", "carrier maintenance until 06:00", now, by="user:ops")
    release(engine, "cmcc", now, by="user:ops")

A held provider takes nothing: dispatch (dispatch/sender) sends its rows through the route's
fallback or leaves them planned inside their windows, exactly as for a provider that is down,
until an admin releases it. Receipts and replies from its binds are still heard. Secrets never
appear here: only the names of the variables that hold them are in the settings at all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from cuikuan.errors import InputError, NotFound
from cuikuan.services import audit
from cuikuan.services.outbox import provider_health
from cuikuan.settings import Settings
from cuikuan.store import provider_states

MAX_REASON = 300
BUILT_IN = ("sandbox", "smpp", "smtp", "twilio", "aliyun", "tencent")


def serving(settings: Settings) -> dict[str, list[str]]:
    """Provider name -> what the [channels] rules send through it (sms, email fallback, route)."""
    ch = settings.channels
    uses: dict[str, list[str]] = {}
    for name, what in ((ch.sms, "sms"), (ch.email, "email"), (ch.sms_fallback, "sms fallback"),
                       (ch.email_fallback, "email fallback")):  # fmt: skip
        if name:
            uses.setdefault(name, []).append(what)
    for i, route in enumerate(ch.routes, start=1):
        uses.setdefault(route.provider, []).append(f"route {i} ({route.channel})")
        if route.fallback:
            uses.setdefault(route.fallback, []).append(f"route {i} fallback")
    return uses


def known(settings: Settings) -> list[str]:
    """Every name dispatch could send through: named providers and the built-in kinds in use."""
    return sorted(set(settings.providers) | set(serving(settings)))


def overview(engine: Engine, settings: Settings) -> list[dict[str, Any]]:
    health = {h["provider"]: h for h in provider_health(engine)}
    uses = serving(settings)
    rows = []
    for name in sorted(set(known(settings)) | set(health)):
        kind, endpoint = _kind_and_endpoint(settings, name)
        h = health.get(name, {})
        rows.append(
            {
                "provider": name, "kind": kind, "endpoint": endpoint, "serves": uses.get(name, []),
                "state": h.get("state", "up"), "since": h.get("since"),
                "next_try_at": h.get("next_try_at"), "detail": h.get("detail"),
                "inbound_waiting": h.get("inbound_waiting", 0),
                "receipts_unmatched": h.get("receipts_unmatched", 0),
            }
        )  # fmt: skip
    return rows


def hold(
    engine: Engine, settings: Settings, name: str, reason: str, now: datetime, by: str
) -> None:
    if name not in known(settings):
        raise NotFound(
            f"no provider {name!r} in the settings; known: {', '.join(known(settings)) or 'none'}"
        )
    reason = " ".join(reason.split())
    if not reason:
        raise InputError("a hold needs a reason (the people sending today will read it)")
    if len(reason) > MAX_REASON:
        raise InputError(f"the reason: at most {MAX_REASON} characters")
    with engine.begin() as conn:
        before = {s["provider"]: s for s in provider_states.states(conn)}.get(name)
        provider_states.hold(conn, name, now, reason)
        audit.record(conn, by, "provider.hold", f"provider:{name}",
                     before and {"state": before["state"]}, {"state": "held", "reason": reason}, now)  # fmt: skip


def release(engine: Engine, name: str, now: datetime, by: str) -> None:
    with engine.begin() as conn:
        if not provider_states.release(conn, name, now):
            raise NotFound(f"provider {name!r} is not held")
        audit.record(conn, by, "provider.release", f"provider:{name}", {"state": "held"},
                     {"state": "up"}, now)  # fmt: skip


def _kind_and_endpoint(settings: Settings, name: str) -> tuple[str, str]:
    """The provider's kind and where it connects (host:port, an HTTP endpoint), no secrets."""
    declared = settings.providers.get(name)
    section: Any = declared
    kind = declared.kind if declared is not None else (name if name in BUILT_IN else "?")
    if declared is None and name in BUILT_IN and name != "sandbox":
        section = getattr(settings, name)
    if section is None or kind == "sandbox":
        return kind, ""
    if kind == "smpp":
        binds = f"{section.sessions} bind(s)" + (
            f" + {section.receivers} receiver(s)" if section.receivers else ""
        )
        return (
            kind,
            f"{section.host}:{section.port} as {section.system_id}, {binds}, {section.tps:g} tps",
        )
    if kind == "smtp":
        return kind, f"{section.host}:{section.port} ({section.security})"
    if kind in ("aliyun", "tencent"):
        return kind, f"{section.endpoint or 'the public endpoint'}, {section.tps:g} tps"
    return kind, "api.twilio.com"
