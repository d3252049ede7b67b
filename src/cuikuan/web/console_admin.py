"""The console's admin page: users, API keys and providers (admins only).

    /console/admin                              the three tables and their forms
    POST /console/admin/users/{action}          add, change (role and team), disable, enable,
                                                password (a reset: their sessions end)
    POST /console/admin/keys/{action}           create (the secret is shown on that answer, once),
                                                revoke
    POST /console/admin/providers/{action}      hold (nothing is sent through it), release

The same services as `cuikuan users`, `cuikuan keys` and `cuikuan outbox hold|release`, each
change audited in its own transaction. Names travel in the form, never in the path: a user or
key name may hold any printable character, "/" included.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Engine

from cuikuan.errors import CuikuanError, InputError
from cuikuan.services import api_keys, providers, users
from cuikuan.settings import Settings
from cuikuan.web.console import SECURITY_HEADERS, _actor, _app, _page, _refuse, _viewer

router = APIRouter(prefix="/console", include_in_schema=False)
ADMIN = "admin"

Act = Callable[[Engine, Settings, dict[str, str], datetime, str], str]


@router.get("/admin")
def admin_page(request: Request, done: str = "") -> Response:
    session = _viewer(request, ADMIN)
    if isinstance(session, Response):
        return session
    return _admin(request, session, done=done[:40])


@router.post("/admin/{what}/{action}")
async def admin_act(request: Request, what: str, action: str) -> Response:
    acting = await _actor(request, ADMIN)
    if isinstance(acting, Response):
        return acting
    session, form = acting
    act = ACTS.get((what, action))
    if act is None:
        return _refuse(request, session, "not_found", 404)
    engine, settings, clock = _app(request)
    try:
        shown = act(engine, settings, form, clock(), f"user:{session.user.name}")
    except CuikuanError as exc:
        return _admin(request, session, status=422, message=exc.message)
    if what == "keys" and action == "create":
        return _admin(request, session, token=shown)  # once, and never stored
    return RedirectResponse(f"/console/admin?done={what}", status_code=303,
                            headers=SECURITY_HEADERS)  # fmt: skip


def _admin(request: Request, session: users.Session, status: int = 200, **extra: Any) -> Response:
    engine, settings, _ = _app(request)
    context: dict[str, Any] = {"message": "", "token": "", "done": ""}
    context.update(extra)
    return _page(request, "admin.html", session, status=status, people=users.list_users(engine),
                 roles=users.ROLES, keys=api_keys.list_keys(engine), scopes=api_keys.SCOPES,
                 providers=providers.overview(engine, settings), **context)  # fmt: skip


def _field(form: dict[str, str], name: str, longest: int = 200) -> str:
    value = form.get(name, "").strip()
    if not value:
        raise InputError(f"{name}: required")
    return value[:longest]


def _add_user(e: Engine, s: Settings, f: dict[str, str], now: datetime, by: str) -> str:
    users.add_user(e, _field(f, "name", 65), _field(f, "role"), f.get("password", "")[:2000], now,
                   f.get("team"), by=by)  # fmt: skip
    return ""


def _change_user(e: Engine, s: Settings, f: dict[str, str], now: datetime, by: str) -> str:
    users.change(e, _field(f, "name", 65), _field(f, "role"), f.get("team"), now, by)
    return ""


def _disable_user(e: Engine, s: Settings, f: dict[str, str], now: datetime, by: str) -> str:
    users.disable(e, _field(f, "name", 65), now, by)
    return ""


def _enable_user(e: Engine, s: Settings, f: dict[str, str], now: datetime, by: str) -> str:
    users.enable(e, _field(f, "name", 65), now, by)
    return ""


def _reset_password(e: Engine, s: Settings, f: dict[str, str], now: datetime, by: str) -> str:
    users.set_password(e, _field(f, "name", 65), f.get("password", "")[:2000], now, by)
    return ""


def _create_key(e: Engine, s: Settings, f: dict[str, str], now: datetime, by: str) -> str:
    scopes = frozenset(x for x in api_keys.SCOPES if f.get(f"scope_{x}"))
    if not scopes:
        raise InputError("scopes: tick at least one")
    rate = f.get("rate", "").strip() or str(api_keys.DEFAULT_RATE)
    if not rate.isdigit() or not 1 <= int(rate) <= 1_000_000:
        raise InputError(f"rate {rate[:20]!r}: requests a minute, a whole number from 1")
    return api_keys.create_key(e, _field(f, "name", 65), scopes, now, int(rate), by=by).token


def _revoke_key(e: Engine, s: Settings, f: dict[str, str], now: datetime, by: str) -> str:
    name = _field(f, "name", 65)
    if not api_keys.revoke(e, name, now, by=by):
        raise InputError(f"no live key named {name!r}")
    return ""


def _hold(e: Engine, s: Settings, f: dict[str, str], now: datetime, by: str) -> str:
    providers.hold(e, s, _field(f, "name", 64), f.get("reason", "")[:2000], now, by)
    return ""


def _release(e: Engine, s: Settings, f: dict[str, str], now: datetime, by: str) -> str:
    providers.release(e, _field(f, "name", 64), now, by)
    return ""


ACTS: dict[tuple[str, str], Act] = {
    ("users", "add"): _add_user,
    ("users", "change"): _change_user,
    ("users", "disable"): _disable_user,
    ("users", "enable"): _enable_user,
    ("users", "password"): _reset_password,
    ("keys", "create"): _create_key,
    ("keys", "revoke"): _revoke_key,
    ("providers", "hold"): _hold,
    ("providers", "release"): _release,
}
