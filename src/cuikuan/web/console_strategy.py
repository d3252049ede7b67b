"""The console's strategy and policy page, and `explain` for any borrower on any day.

    /console/strategy            the steps in the order the plan tries them, the contact policy in
                                 force, both files' text to edit (checked as you type), their
                                 drafts and versions (four eyes: services/versions)
    /console/explain?customer=C001&day=2026-12-01
                                 why that borrower gets a message that day, or not (the plan's
                                 own engine: services/explanation, as `cuikuan explain`)

The same services as `cuikuan strategy`, `cuikuan policy` and `cuikuan explain`; nothing here
decides a rule. Reading needs a supervisor, compliance or admin; proposing the strategy a
supervisor or compliance, the policy compliance; approving compliance, never the author.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Engine

from cuikuan.domain.strategy import DayRule, Step, ordered_steps
from cuikuan.domain.templates import mask, mask_numbers
from cuikuan.errors import ConfigError, CuikuanError
from cuikuan.services import users, versions
from cuikuan.services.explanation import explain
from cuikuan.services.policy_file import check_policy_text, effective_policy, policy_section
from cuikuan.services.strategy_file import (
    check_strategy_text,
    load_strategy,
    shipped_strategy_text,
    strategy_path,
)
from cuikuan.settings import Settings
from cuikuan.web.console import (
    APPROVERS,
    EDITORS,
    _actor,
    _app,
    _borrowers_for,
    _customer_id,
    _page,
    _refuse,
    _today,
    _viewer,
)

router = APIRouter(prefix="/console", include_in_schema=False)
POLICY_EDITORS = ("compliance",)  # and admins
MAX_TEXT = versions.MAX_SOURCE


@router.get("/strategy")
def strategy_page(request: Request) -> Response:
    session = _viewer(request, *EDITORS)
    if isinstance(session, Response):
        return session
    return _strategy(request, session)


def _strategy(
    request: Request, session: users.Session, *, strategy_text: str | None = None,
    policy_text: str | None = None, message: str = "", saved: int | None = None,
    status: int = 200,
) -> Response:  # fmt: skip
    engine, settings, _ = _app(request)
    try:
        steps, broken = [_step_row(s) for s in ordered_steps(load_strategy(settings))], ""
    except ConfigError as exc:  # the file on disk is wrong: say so, still offer the editor
        steps, broken = [], exc.message
    return _page(
        request, "strategy.html", session, status=status, steps=steps, broken=broken,
        rules=effective_policy(settings),
        strategy_text=_strategy_text(settings) if strategy_text is None else strategy_text,
        policy_text=policy_section(settings) if policy_text is None else policy_text,
        strategy_versions=versions.versions(engine, kind=versions.STRATEGY),
        policy_versions=versions.versions(engine, kind=versions.POLICY),
        may_policy=session.user.may(*POLICY_EDITORS), may_approve=session.user.may(*APPROVERS),
        message=message, saved=saved,
    )  # fmt: skip


def _strategy_text(settings: Settings) -> str:
    path = strategy_path(settings)
    return path.read_text("utf-8-sig") if path is not None else shipped_strategy_text()


def _step_row(step: Step) -> dict[str, Any]:
    """A step as a manager reads it: when it applies, what it sends, how much is held back."""
    when = [
        f"{label} {_day_rule(rule)}"
        for label, rule in (("days_to_due", step.days_to_due), ("dpd", step.dpd))
        if rule is not None
    ]
    if step.bucket:
        when.append("bucket " + ", ".join(step.bucket))
    if step.outstanding:
        when.append(f"outstanding {step.outstanding[0]}–{step.outstanding[1]}")
    if step.tags:
        when.append("tags " + ", ".join(step.tags))
    if step.first_delinquency is not None:
        when.append(f"first_delinquency {str(step.first_delinquency).lower()}")
    sends = (
        [f"{v.template} ({v.weight})" for v in step.variants] if step.variants else [step.template]
    )
    return {"id": step.id, "when": when, "channel": step.channel, "sends": sends,
            "control": f"{step.control:.0%}", "repeat": step.repeat_every_days,
            "holidays": step.holidays}  # fmt: skip


def _day_rule(rule: DayRule) -> str:
    if isinstance(rule, int):
        return str(rule)
    if isinstance(rule, tuple):
        return f"{rule[0]}–{rule[1]}"
    return f"every {rule.every} from {rule.from_} to {rule.to}"


@dataclass(frozen=True)
class _Editable:
    """What the page edits: who may, how a draft is checked and proposed, where it is shown."""

    roles: tuple[str, ...]
    check: Callable[[Settings, str, Path], object]
    propose: Callable[[Engine, Settings, str, str, datetime, str], int]
    shown: Path


EDITABLE = {
    "strategy": _Editable(EDITORS, check_strategy_text, versions.propose_strategy,
                          Path("strategy (draft)")),
    "policy": _Editable(POLICY_EDITORS, check_policy_text, versions.propose_policy,
                        Path("[policy] (draft)")),
}  # fmt: skip


@router.post("/strategy/check")
async def strategy_check(request: Request) -> Response:
    """The editor's strategy checked as the plan loads it (htmx, as you type)."""
    return await _check(request, "strategy")


@router.post("/policy/check")
async def policy_check(request: Request) -> Response:
    """The editor's [policy] table checked as loading the settings checks it (htmx)."""
    return await _check(request, "policy")


@router.post("/strategy/draft")
async def strategy_draft(request: Request) -> Response:
    """Save the strategy as a draft; refused with the check's findings (file, line, field)."""
    return await _draft(request, "strategy")


@router.post("/policy/draft")
async def policy_draft(request: Request) -> Response:
    """Save the [policy] table as a draft (compliance); refused with line and field."""
    return await _draft(request, "policy")


async def _check(request: Request, what: str) -> Response:
    edit = EDITABLE[what]
    acting = await _actor(request, *edit.roles)
    if isinstance(acting, Response):
        return acting
    session, form = acting
    _, settings, _ = _app(request)
    try:
        edit.check(settings, form.get("source", "")[:MAX_TEXT], edit.shown)
        found = ""
    except ConfigError as exc:
        found = exc.message
    return _page(request, "check_result.html", session, target=f"{what}-check", found=found)


async def _draft(request: Request, what: str) -> Response:
    edit = EDITABLE[what]
    acting = await _actor(request, *edit.roles)
    if isinstance(acting, Response):
        return acting
    session, form = acting
    engine, settings, clock = _app(request)
    source = form.get("source", "")[:MAX_TEXT]
    try:
        draft = edit.propose(engine, settings, source, f"user:{session.user.name}", clock(),
                             form.get("note", ""))  # fmt: skip
    except CuikuanError as exc:
        return _strategy(request, session, message=exc.message, status=422,
                         strategy_text=source if what == "strategy" else None,
                         policy_text=source if what == "policy" else None)  # fmt: skip
    return _strategy(request, session, saved=draft)


def after_decision(kind: str, name: str) -> RedirectResponse:
    """Where a decided draft's page is (console.version_act)."""
    if kind in (versions.STRATEGY, versions.POLICY):
        return RedirectResponse("/console/strategy", status_code=303)
    return RedirectResponse(f"/console/templates/{name}", status_code=303)


# --- explain ------------------------------------------------------------------------------------


@router.get("/explain")
def explain_page(request: Request, customer: str = "", day: str = "") -> Response:
    """Why a borrower gets a message on a day, or not. An agent may ask about the borrowers
    they may open; the number is masked for everyone (the page is about rules, not numbers)."""
    session = _viewer(request)
    if isinstance(session, Response):
        return session
    engine, settings, clock = _app(request)
    customer, day = customer.strip()[:64], day.strip()[:10]
    context: dict[str, Any] = {"customer": customer, "day": day, "found": None, "error": ""}
    if customer:
        try:
            when = date.fromisoformat(day) if day else _today(settings, clock())
        except ValueError:
            context["error"] = f"{day!r}: a date like 2026-12-01"
            return _page(request, "explain.html", session, status=422, **context)
        cid = _customer_id(engine, customer)
        allowed = _borrowers_for(engine, session.user)
        if cid is None:
            return _refuse(request, session, "not_found", 404)
        if allowed is not None and cid not in allowed:
            return _refuse(request, session, "forbidden", 403)
        found = explain(engine, settings, customer, when, clock()).as_json()
        decision = found["decision"]
        if decision and decision.get("recipient"):
            decision["recipient"] = mask(str(decision["recipient"]))
        context.update(found=found, day=when.isoformat(), trail=_trail(decision))
    return _page(request, "explain.html", session, **context)


def _trail(decision: dict[str, Any] | None) -> list[str]:
    if decision is None:
        return []
    trail = decision.get("trail") or []
    return [mask_numbers(str(x)) for x in (json.loads(trail) if isinstance(trail, str) else trail)]
