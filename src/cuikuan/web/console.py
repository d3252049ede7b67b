"""The console under /console: server-rendered pages (Jinja2, autoescaped) with htmx for the
parts that change in place, served by `cuikuan serve` beside the API, over the same services.

Sessions live in the database (services/users.py): the cookie is HttpOnly and SameSite=Strict,
a login always starts a new session, and every form and htmx request carries the session's
CSRF token (a hidden field, or the X-CSRF-Token header htmx sends from the page) or is refused.
Who may see what: agents their own and unassigned tasks and the borrowers behind them, numbers
masked; supervisors, compliance and admins everything, and they may reveal a whole number,
which is recorded in the audit log. Pages forbid framing and scripts from elsewhere (CSP).
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine, select

from cuikuan.domain.dates import local_day
from cuikuan.domain.money import currency_digits, format_minor
from cuikuan.domain.templates import mask, mask_numbers
from cuikuan.errors import CuikuanError, NotFound
from cuikuan.services import (
    arrangements,
    audit,
    calls,
    report_store,
    saved_views,
    users,
    versions,
)
from cuikuan.services.acts import SETTABLE_FLAGS, lift_number, set_flag, stop_number
from cuikuan.services.customers import find_customers
from cuikuan.services.messages import check_draft, list_template_files
from cuikuan.services.outbox import (
    day_by_step,
    paused_templates,
    provider_health,
    uncertain_count,
)
from cuikuan.services.portfolio import (
    Portfolio,
    customer_view,
    portfolio_kept,
    portfolio_now,
)
from cuikuan.services.replies import receive_reply
from cuikuan.services.report import Report, template_rates
from cuikuan.services.tasks import assign, take, worklist
from cuikuan.services.tasks import done as close_task
from cuikuan.services.timeline import timeline
from cuikuan.settings import Settings
from cuikuan.store.schema import customers, promises, tasks
from cuikuan.web.background import GRACE, POLL, SLOW
from cuikuan.web.console_text import LOCALES, pick, words
from cuikuan.web.report_html import render_body, render_html

COOKIE = "cuikuan_console"
LOGIN_COOKIE = "cuikuan_login"  # the login form's own CSRF token (no session yet)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' "
    "'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
FILTERS = ("open", "mine", "overdue", "promises_due", "broken", "complaints")

router = APIRouter(prefix="/console", include_in_schema=False)
_env = jinja2.Environment(
    loader=jinja2.PackageLoader("cuikuan.web", "templates/console"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


# --- plumbing -------------------------------------------------------------------------------


def _app(request: Request) -> tuple[Engine, Settings, Callable[[], datetime]]:
    st = request.app.state.cuikuan
    return st.engine, st.settings, st.clock


Found = TypeVar("Found")
Computing = None  # what `_aside` gives while the result is being computed


def _aside(
    engine: Engine, key: str, kept: Callable[[], Found | None], work: Callable[[], Found]
) -> Found | str | None:
    """What a page shows of a slow read: `kept()` at once when it is there; else `work` run
    aside (web/background) and its result if it comes within a moment; None while it runs (the
    page shows "computing" and asks again); a failure's text once (logged, and the next view
    tries again)."""
    found = kept()
    if found is not None:
        return found
    key = f"{key}|{engine.url.render_as_string(hide_password=True)}"  # one server, one book
    job = SLOW.start(key, work)
    if not job.wait(GRACE):
        return Computing
    if job.failed is not None:
        SLOW.forget(key)
        return "failed"
    return job.future.result()  # type: ignore[return-value]


def _session(request: Request) -> users.Session | None:
    engine, _, clock = _app(request)
    return users.session_user(engine, request.cookies.get(COOKIE, ""), clock())


def _page(
    request: Request,
    template: str,
    session: users.Session | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    locale = pick(session.user.locale if session else None, request.headers.get("accept-language"))
    html = _env.get_template(template).render(
        t=words(locale), locale=locale, locales=LOCALES, session=session, user=session.user if session else None,
        csrf=session.csrf if session else "", path=request.url.path, **context,
    )  # fmt: skip
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def _refuse(
    request: Request, session: users.Session | None, key: str, status: int, detail: str = ""
) -> HTMLResponse:
    return _page(request, "error.html", session, status=status, message=key, detail=detail)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _csrf_ok(request: Request, session: users.Session, form: dict[str, str]) -> bool:
    sent = form.get("csrf") or request.headers.get("x-csrf-token") or ""
    return hmac.compare_digest(sent.encode(), session.csrf.encode())


def _viewer(request: Request, *roles: str) -> users.Session | Response:
    """The reader's session, or the answer instead: the login page, or 403 without one of
    `roles` (admins have every role)."""
    session = _session(request)
    if session is None:
        return _to_login()
    if roles and not session.user.may(*roles):
        return _refuse(request, session, "forbidden", 403)
    return session


async def _actor(request: Request, *roles: str) -> tuple[users.Session, dict[str, str]] | Response:
    """As `_viewer`, for a form or an htmx request: its CSRF token checked as well."""
    session = _session(request)
    if session is None:
        return _to_login()
    form = await _form(request)
    if not _csrf_ok(request, session, form):
        return _refuse(request, session, "bad_form", 403)
    if roles and not session.user.may(*roles):
        return _refuse(request, session, "forbidden", 403)
    return session, form


def _to_login() -> RedirectResponse:
    return RedirectResponse("/console/login", status_code=303, headers=SECURITY_HEADERS)


def _today(settings: Settings, now: datetime) -> date:
    return local_day(now, settings.defaults.timezone)


# --- logging in and out -----------------------------------------------------------------------


@router.get("/static/htmx.min.js")
def htmx() -> Response:
    from importlib import resources

    body = resources.files("cuikuan.web").joinpath("static/htmx.min.js").read_bytes()
    return Response(body, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})


def _login_form(request: Request, failed: bool) -> HTMLResponse:
    """The login form with a fresh token of its own, in the form and in a cookie."""
    token = secrets.token_urlsafe(24)
    page = _page(request, "login.html", None, status=401 if failed else 200, login_csrf=token,
                 failed=failed)  # fmt: skip
    page.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/console")
    return page


@router.get("/login")
def login_page(request: Request) -> Response:
    return _login_form(request, failed=False)


@router.post("/login")
async def login(request: Request) -> Response:
    engine, _, clock = _app(request)
    form = await _form(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(form.get("csrf", "").encode(), expected.encode()):
        return _refuse(request, None, "bad_form", 403)
    try:
        made = users.login(
            engine, form.get("name", "")[:64], form.get("password", "")[:1024], clock()
        )
    except users.LoginRefused:
        return _login_form(request, failed=True)
    answer = RedirectResponse("/console", status_code=303, headers=SECURITY_HEADERS)
    secure = request.url.scheme == "https"
    answer.set_cookie(
        COOKIE, made.token, httponly=True, samesite="strict", secure=secure, path="/console"
    )
    answer.delete_cookie(LOGIN_COOKIE, path="/console")
    return answer


@router.post("/logout")
async def logout(request: Request) -> Response:
    acting = await _actor(request)
    if isinstance(acting, Response):
        return acting
    session, form = acting
    engine, _, _ = _app(request)
    if form.get("everywhere"):
        users.logout_everywhere(engine, session.user.id)
    else:
        users.logout(engine, session.token)
    answer = _to_login()
    answer.delete_cookie(COOKIE, path="/console")
    return answer


@router.post("/locale")
async def set_locale(request: Request) -> Response:
    acting = await _actor(request)
    if isinstance(acting, Response):
        return acting
    session, form = acting
    locale = form.get("locale")
    users.set_locale(_app(request)[0], session.user.id, locale if locale in LOCALES else None)
    back = form.get("back", "/console")
    return RedirectResponse(back if back.startswith("/console") else "/console", status_code=303)


# --- pages ------------------------------------------------------------------------------------


@router.get("")
def today(request: Request) -> Response:
    session = _viewer(request)
    if isinstance(session, Response):
        return session
    engine, settings, clock = _app(request)
    now = clock()
    day = _today(settings, now)
    kept, key = portfolio_kept(engine, day, settings)  # the ledger's version read once
    book = _aside(
        engine, f"portfolio|{key}", lambda: kept, lambda: portfolio_now(engine, day, settings, now)
    )
    buckets = book if not isinstance(book, Portfolio) else [
        {**row, "outstanding": _money(row["outstanding"], row["currency"]),
         "overdue": _money(row["overdue"], row["currency"])}
        for row in book.buckets.to_dicts()
    ]  # fmt: skip
    plan = day_by_step(engine, day)
    counts: dict[str, int] = {}
    for row in plan:  # the day's dispatch, from the day's plan by step and status
        counts[row["status"]] = counts.get(row["status"], 0) + row["count"]
    return _page(
        request, "today.html", session, day=day, buckets=buckets, plan=plan, poll=POLL,
        dispatch=dict(sorted(counts.items())), uncertain=uncertain_count(engine),
        providers=provider_health(engine), paused=paused_templates(engine),
    )  # fmt: skip


@router.get("/work")
def work(request: Request, filter: str = "open", kind: str = "", page: int = 0) -> Response:
    session = _viewer(request)
    if isinstance(session, Response):
        return session
    engine, settings, clock = _app(request)
    view = work_query(filter, kind)
    now = clock()
    at = max(0, min(page, 10_000))
    rows = _visible_tasks(engine, session.user, view["filter"], now, day=_today(settings, now),
                          page=at, kind=view["kind"] or None)  # fmt: skip
    return _page(request, "work.html", session, tasks=rows, filter=view["filter"], kind=view["kind"],
                 filters=FILTERS, kinds=_kinds(engine), page=at, more=len(rows) == PAGE,
                 query=urlencode(view), saved=saved_views.views(engine, session.user.id),
                 assignees=_assignees(engine, session.user))  # fmt: skip


def work_query(filter: str, kind: str) -> dict[str, str]:
    """The work list's own keys from a request or a saved view, anything else dropped."""
    kind = kind.strip()
    return {
        "filter": filter if filter in FILTERS else "open",
        "kind": kind if re.fullmatch(r"[a-z_]{1,32}", kind) else "",
    }


def _kinds(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(tasks.c.kind).distinct()).scalars())


def _assignees(engine: Engine, user: users.User) -> list[str]:
    """Whom `user` may hand tasks to: a supervisor's team (everyone who may hold tasks when
    they have no team, and for admins); nobody for agents and compliance."""
    if not user.may("supervisor"):
        return []
    team = users.scope_of(engine, user)
    if team is not None:
        return team
    return [str(u["name"]) for u in users.list_users(engine)
            if u["role"] in users.WORKERS and not u["disabled"]]  # fmt: skip


@router.post("/work/views")
async def save_view(request: Request) -> Response:
    """Keep the work list's current view under a name, for this user."""
    acting = await _actor(request)
    if isinstance(acting, Response):
        return acting
    session, form = acting
    engine, _, clock = _app(request)
    parsed = parse_qs(form.get("query", "")[:400])
    view = work_query(parsed.get("filter", ["open"])[0], parsed.get("kind", [""])[0])
    try:
        saved_views.save(engine, session.user.id, form.get("name", ""), urlencode(view), clock())
    except CuikuanError as exc:
        return _refuse(request, session, "refused", 422, detail=exc.message)
    return RedirectResponse(f"/console/work?{urlencode(view)}", status_code=303)


@router.post("/work/views/{view_id}/forget")
async def forget_view(request: Request, view_id: int) -> Response:
    acting = await _actor(request)
    if isinstance(acting, Response):
        return acting
    session, _ = acting
    saved_views.forget(_app(request)[0], session.user.id, view_id)
    return RedirectResponse("/console/work", status_code=303)


@router.post("/tasks/assign")
async def assign_tasks(request: Request) -> Response:
    """Hand the ticked tasks to one person (supervisors: within their team), all or none."""
    acting = await _actor(request, "supervisor")
    if isinstance(acting, Response):
        return acting
    session, form = acting
    engine, _, clock = _app(request)
    picked = (await request.form()).getlist("task")
    try:
        ids = [int(str(v)) for v in picked[:500]]
        assign(engine, ids, form.get("assignee", ""), f"user:{session.user.name}", clock(),
               allowed=users.scope_of(engine, session.user))  # fmt: skip
    except ValueError:
        return _refuse(request, session, "bad_form", 422)
    except CuikuanError as exc:
        return _refuse(request, session, "refused", 409, detail=exc.message)
    return RedirectResponse("/console/work", status_code=303)


@router.post("/tasks/{task_id}/{action}")
async def task_action(request: Request, task_id: int, action: str) -> Response:
    acting = await _actor(request)
    if isinstance(acting, Response):
        return acting
    session, form = acting
    engine, _, clock = _app(request)
    now = clock()
    row = _task(engine, task_id)
    if row is None:
        return _refuse(request, session, "not_found", 404)
    if not _may_work(session.user, row):
        return _refuse(request, session, "forbidden", 403)
    before = {"state": row["state"], "assignee": row["assignee"]}
    if action == "take":
        take(engine, task_id, session.user.name, now)
    elif action == "done":
        close_task(
            engine, task_id, now, note=form.get("note", "")[:2000] or None, by=session.user.name
        )
    else:
        return _refuse(request, session, "not_found", 404)
    after = _task(engine, task_id)
    with engine.begin() as conn:
        audit.record(conn, f"user:{session.user.name}", f"task.{action}", f"task:{task_id}", before,
                     {"state": after["state"], "assignee": after["assignee"]} if after else None, now)  # fmt: skip
    if request.headers.get("hx-request"):
        visible = _visible_tasks(engine, session.user, "open", now, only=task_id)
        if not visible:
            return _refuse(request, session, "not_found", 404)
        return _page(request, "task_row.html", session, task=visible[0],
                     assignees=_assignees(engine, session.user))  # fmt: skip
    return RedirectResponse("/console/work", status_code=303)


@router.get("/borrowers")
def search(request: Request, q: str = "") -> Response:
    session = _viewer(request)
    if isinstance(session, Response):
        return session
    engine, settings, _ = _app(request)
    q = q.strip()[:100]
    found: list[dict[str, Any]] = []
    if q:
        digits = q.replace(" ", "").replace("-", "").lstrip("+")
        try:
            rows = (
                find_customers(engine, settings.defaults.region, phone=q)
                if digits.isdigit() and len(digits) >= 7
                else []
            )
        except CuikuanError:
            rows = []
        rows = rows or find_customers(engine, settings.defaults.region, q=q)
        allowed = _borrowers_for(engine, session.user)
        found = [
            {"id": ext, "name": name}
            for cid, ext, name in rows[:50]
            if allowed is None or cid in allowed
        ]
    return _page(request, "search.html", session, q=q, found=found)


@router.get("/borrowers/{external_id}")
def borrower(request: Request, external_id: str) -> Response:
    session = _viewer(request)
    if isinstance(session, Response):
        return session
    engine, settings, clock = _app(request)
    cid = _customer_id(engine, external_id)
    if cid is None:
        return _refuse(request, session, "not_found", 404)
    allowed = _borrowers_for(engine, session.user)
    if allowed is not None and cid not in allowed:
        return _refuse(request, session, "forbidden", 403)
    try:
        view = customer_view(engine, external_id, _today(settings, clock()), settings)
        events = timeline(engine, settings, external_id)
    except NotFound:
        return _refuse(request, session, "not_found", 404)
    loans = [
        {"id": r["external_id"], "dpd": r["dpd"], "bucket": "closed" if r["paid_off"] else r["bucket"],
         "outstanding": _money(r["outstanding"], r["currency"]), "overdue": _money(r["overdue_amount"], r["currency"]),
         "next_due": r["next_due_date"], "next_due_amount": _money(r["next_due_amount"], r["currency"])}
        for r in view.loans.to_dicts()
    ]  # fmt: skip
    may_reveal = session.user.role in users.SEE_NUMBERS
    phones = [mask(p) for p in view.phones]
    shown = [
        {
            "at": e.at,
            "kind": e.kind,
            "summary": e.summary if may_reveal else mask_numbers(e.summary),
        }
        for e in sorted(events, key=lambda e: e.at, reverse=True)[:200]
    ]
    return _page(
        request, "borrower.html", session, view=view, loans=loans, phones=phones,
        may_reveal=may_reveal, events=shown, actions=_actions(engine, view),
    )  # fmt: skip


@router.post("/borrowers/{external_id}/reveal")
async def reveal(request: Request, external_id: str) -> Response:
    acting = await _actor(request, *users.SEE_NUMBERS)
    if isinstance(acting, Response):
        return acting
    session, _ = acting
    engine, settings, clock = _app(request)
    try:
        view = customer_view(engine, external_id, _today(settings, clock()), settings)
    except NotFound:
        return _refuse(request, session, "not_found", 404)
    with engine.begin() as conn:
        audit.record(conn, f"user:{session.user.name}", "phone.reveal", f"customer:{external_id}",
                     None, {"numbers": len(view.phones)}, clock())  # fmt: skip
    return _page(request, "phones.html", session, phones=view.phones, may_reveal=False)


# --- who may see what -------------------------------------------------------------------------


def _borrowers_for(engine: Engine, user: users.User) -> set[int] | None:
    """The customers an agent may open (behind their own or unassigned open tasks); None: all."""
    if user.role != "agent":
        return None
    with engine.connect() as conn:
        ids = conn.execute(
            select(tasks.c.customer_id).where(
                tasks.c.customer_id.is_not(None),
                (tasks.c.assignee == user.name)
                | ((tasks.c.assignee.is_(None)) & (tasks.c.state == "open")),
            )
        ).scalars()
        return set(ids)


def _may_work(user: users.User, task: dict[str, Any]) -> bool:
    if user.role != "agent":
        return True
    return task["assignee"] in (None, user.name)


def _promised(engine: Engine, status: str, day: date | None) -> set[str]:
    """Customers (external ids) with a promise in `status` (due on `day` if given)."""
    query = select(customers.c.external_id).join(promises, promises.c.customer_id == customers.c.id)
    query = query.where(promises.c.status == status)
    if day is not None:
        query = query.where(promises.c.promised_date == day)
    with engine.connect() as conn:
        return set(conn.execute(query).scalars())


PAGE = 100


def _visible_tasks(
    engine: Engine,
    user: users.User,
    chosen: str,
    now: datetime,
    only: int | None = None,
    day: date | None = None,
    page: int = 0,
    kind: str | None = None,
) -> list[dict[str, Any]]:
    """One page of the work list, filtered and ordered by the database (past SLA first)."""
    customers_in = None
    if chosen == "promises_due":
        customers_in = _promised(engine, "pending", day)
    elif chosen == "broken":
        customers_in = _promised(engine, "broken", None)
    kinds: tuple[str, ...] | None = ("complaint",) if chosen == "complaints" else None
    if kind:
        kinds = tuple(k for k in (kinds or (kind,)) if k == kind)
    rows = worklist(
        engine, now, visible_to=user.name if user.role == "agent" else None,
        team=users.scope_of(engine, user),
        mine=user.name if chosen == "mine" else None,
        kinds=kinds,
        customers_in=customers_in, past_due=chosen == "overdue", task_id=only,
        limit=PAGE, offset=page * PAGE,
    )  # fmt: skip
    if user.role not in users.SEE_NUMBERS:
        rows = [{**r, "summary": mask_numbers(r["summary"])} for r in rows]
    return rows


def _task(engine: Engine, task_id: int) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(tasks).where(tasks.c.id == task_id)).first()
    return dict(row._mapping) if row is not None else None


def _customer_id(engine: Engine, external_id: str) -> int | None:
    with engine.connect() as conn:
        found: int | None = conn.execute(
            select(customers.c.id).where(customers.c.external_id == external_id[:64])
        ).scalar_one_or_none()
    return found


def _money(minor: int | None, currency: str) -> str:
    return (
        "" if minor is None else f"{format_minor(int(minor), currency_digits(currency))} {currency}"
    )


# --- acting on a borrower ---------------------------------------------------------------------


async def _borrower_act(
    request: Request, external_id: str
) -> tuple[users.Session, dict[str, str], Any] | Response:
    """The session, the form and the borrower's view, or the answer that refuses the act."""
    acting = await _actor(request)
    if isinstance(acting, Response):
        return acting
    session, form = acting
    engine, settings, clock = _app(request)
    cid = _customer_id(engine, external_id)
    if cid is None:
        return _refuse(request, session, "not_found", 404)
    allowed = _borrowers_for(engine, session.user)
    if allowed is not None and cid not in allowed:
        return _refuse(request, session, "forbidden", 403)
    view = customer_view(engine, external_id, _today(settings, clock()), settings)
    return session, form, view


def _acted(request: Request, session: users.Session, view: Any, message: str) -> Response:
    engine, settings, clock = _app(request)
    fresh = customer_view(engine, view.external_id, _today(settings, clock()), settings)
    if request.headers.get("hx-request"):
        return _page(request, "actions.html", session, **_actions(engine, fresh, message))
    return RedirectResponse(f"/console/borrowers/{view.external_id}", status_code=303)


def _actions(engine: Engine, view: Any, message: str = "") -> dict[str, Any]:
    with engine.connect() as conn:
        flags = conn.execute(
            select(customers.c.flags).where(customers.c.external_id == view.external_id)
        ).scalar_one()
    return {"view": view, "phones": [mask(p) for p in view.phones], "flags": SETTABLE_FLAGS,
            "current_flags": json.loads(flags or "[]"), "message": message,
            "outcomes": calls.OUTCOMES,
            "open_loans": view.loans.filter(~view.loans["paid_off"])["external_id"].to_list()}  # fmt: skip


@router.post("/borrowers/{external_id}/said")
async def said(request: Request, external_id: str) -> Response:
    """What the borrower said on a call, read like a reply from their number: a promise with a
    date is recorded and pauses reminders, a stop stops, anything unclear goes to a person."""
    found = await _borrower_act(request, external_id)
    if isinstance(found, Response):
        return found
    session, form, view = found
    text = form.get("text", "").strip()[:1000]
    if not text or not view.phones:
        return _acted(request, session, view, "")
    engine, settings, clock = _app(request)
    now = clock()
    result = receive_reply(
        engine, settings, view.phones[0], text, now, source=f"console:{session.user.name}"
    )
    with engine.begin() as conn:
        audit.record(conn, f"user:{session.user.name}", "reply.record", f"customer:{external_id}",
                     None, result.as_dict(), now)  # fmt: skip
    done = "; ".join(result.done) or result.reading.intent
    shown = done if session.user.role in users.SEE_NUMBERS else mask_numbers(done)
    return _acted(request, session, view, f"{result.reading.intent}: {shown}")


@router.post("/borrowers/{external_id}/call")
async def call(request: Request, external_id: str) -> Response:
    """Log a call the agent made, to a number chosen by its place in the list: the same service
    as `cuikuan calls log` and the API, so it counts against the caps the same way."""
    found = await _borrower_act(request, external_id)
    if isinstance(found, Response):
        return found
    session, form, view = found
    engine, _, clock = _app(request)
    now = clock()
    try:
        made = calls.log_call(engine, external_id, form.get("position", "1"),
                              form.get("outcome", ""), now, by=f"user:{session.user.name}",
                              note=form.get("note", "").strip(), now=now)  # fmt: skip
    except CuikuanError as exc:
        return _acted(request, session, view, exc.message)
    return _acted(request, session, view, f"{mask(made.number)}: {made.outcome}")


@router.post("/borrowers/{external_id}/plan")
async def instalment_plan(request: Request, external_id: str) -> Response:
    """Agree an instalment plan for one of the borrower's loans: the same service and checks
    as `cuikuan plans create` and the API (the payments cover what is overdue, dates ahead)."""
    found = await _borrower_act(request, external_id)
    if isinstance(found, Response):
        return found
    session, form, view = found
    engine, settings, clock = _app(request)
    loan = form.get("loan", "")
    if loan not in set(view.loans["external_id"].to_list()):
        return _acted(request, session, view, f"{loan[:40]!r}: not a loan of this borrower")
    try:
        schedule = arrangements.parse_schedule(form.get("schedule", "")[:4000])
        made = arrangements.agree(engine, settings, loan, schedule, f"user:{session.user.name}",
                                  clock())  # fmt: skip
    except CuikuanError as exc:
        return _acted(request, session, view, exc.message)
    return _acted(request, session, view, f"plan {made}: {loan}")


@router.post("/borrowers/{external_id}/flag")
async def flag(request: Request, external_id: str) -> Response:
    found = await _borrower_act(request, external_id)
    if isinstance(found, Response):
        return found
    session, form, view = found
    engine, _, clock = _app(request)
    try:
        after = set_flag(engine, external_id, form.get("flag", ""), form.get("op") != "clear",
                         f"user:{session.user.name}", clock())  # fmt: skip
    except CuikuanError as exc:
        return _acted(request, session, view, exc.message)
    return _acted(request, session, view, ", ".join(after))


@router.post("/borrowers/{external_id}/number")
async def number(request: Request, external_id: str) -> Response:
    """Opt one of the borrower's numbers out or back in, chosen by its place in the list (an
    agent never needs to see it whole to act on it)."""
    found = await _borrower_act(request, external_id)
    if isinstance(found, Response):
        return found
    session, form, view = found
    position = form.get("position", "")
    if not position.isdigit() or int(position) >= len(view.phones):
        return _acted(request, session, view, "")
    e164 = view.phones[int(position)]
    engine, _, clock = _app(request)
    actor = f"user:{session.user.name}"
    if form.get("op") == "lift":
        lift_number(engine, e164, "sms", actor, clock())
    else:
        stop_number(engine, e164, "sms", actor, clock(), source="console")
    return _acted(request, session, view, f"{mask(e164)}: {form.get('op', 'stop')}")


# --- the audit log and the report ------------------------------------------------------------


@router.get("/audit")
def audit_page(request: Request, actor: str = "", object: str = "") -> Response:
    """The audit log, newest first, filtered by who and what (compliance, supervisors, admins)."""
    session = _viewer(request, "compliance", "supervisor")
    if isinstance(session, Response):
        return session
    engine, _, _ = _app(request)
    rows = audit.search(
        engine, actor=actor.strip()[:80] or None, target=object.strip()[:200] or None
    )
    return _page(
        request, "audit.html", session, entries=rows, actor=actor[:80], object=object[:200]
    )


@router.get("/report")
def report_page(request: Request, start: str = "", end: str = "", window: str = "3") -> Response:
    """The report for a range (the last 30 days by default): its tables and charts in the
    console, a form for the range and the pay window, and the exports."""
    found = _report_reader(request, start, end, window)
    if isinstance(found, Response):
        return found
    session, (first, last, days), default = found
    engine, settings, clock = _app(request)
    now = clock()
    got = _aside(
        engine,
        f"report|{first}|{last}|{days}",
        lambda: report_store.kept(engine, settings, first, last, days, now),
        lambda: report_store.for_range(engine, settings, first, last, days, now),
    )
    query = urlencode({"start": first.isoformat(), "end": last.isoformat(), "window": days})
    shown = got if not isinstance(got, tuple) else {
        "body": render_body(got[0], got[1]), "made_at": got[1]
    }  # fmt: skip
    return _page(request, "report.html", session, report=shown, start=first, end=last,
                 window=days, query=query, kept=default, poll=POLL)  # fmt: skip


@router.post("/report/refresh")
async def report_refresh(request: Request) -> Response:
    """Compute the default report now, rather than wait for the worker's next hour."""
    acting = await _actor(request, "compliance", "supervisor")
    if isinstance(acting, Response):
        return acting
    engine, settings, clock = _app(request)
    report_store.refresh(engine, settings, clock(), force=True)
    return RedirectResponse("/console/report", status_code=303, headers=SECURITY_HEADERS)


@router.get("/report/export")
def report_export(
    request: Request, start: str = "", end: str = "", window: str = "3", format: str = "html"
) -> Response:
    """The same report as a file: the self-contained HTML (opens offline, can be mailed) or the
    JSON of `cuikuan report --json`."""
    if format not in ("html", "json"):
        session = _viewer(request, "compliance", "supervisor")
        if isinstance(session, Response):
            return session
        return _refuse(request, session, "bad_form", 400, detail="format: html or json")
    found = _chosen_report(request, start, end, window)
    if isinstance(found, Response):
        return found
    _, (first, last, _), report, made_at = found
    name = f"cuikuan-report-{first}-{last}.{format}"
    headers = {**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'}
    if format == "json":
        body = json.dumps(report.as_dict(), ensure_ascii=False, default=str)
        return Response(body, media_type="application/json", headers=headers)
    return HTMLResponse(render_html(report, made_at), headers=headers)


def _report_reader(
    request: Request, start: str, end: str, window: str
) -> tuple[users.Session, tuple[date, date, int], bool] | Response:
    """The reader (compliance, supervisors), the range from the form, and whether it is the
    default range the worker keeps; or the answer instead (the login page, 403, or 400 naming
    what is wrong with the form)."""
    session = _viewer(request, "compliance", "supervisor")
    if isinstance(session, Response):
        return session
    _, settings, clock = _app(request)
    now = clock()
    chosen = _report_range(settings, now, start, end, window)
    if isinstance(chosen, str):
        return _refuse(request, session, "bad_form", 400, detail=chosen)
    return session, chosen, chosen == report_store.default_range(settings, now)


def _chosen_report(
    request: Request, start: str, end: str, window: str
) -> tuple[users.Session, tuple[date, date, int], Report, datetime] | Response:
    """`_report_reader`, and the report for the range as of when (services/report_store),
    computed now if it is not kept: a download waits for it."""
    found = _report_reader(request, start, end, window)
    if isinstance(found, Response):
        return found
    session, chosen, _ = found
    engine, settings, clock = _app(request)
    report, made_at = report_store.for_range(engine, settings, *chosen, clock())
    return session, chosen, report, made_at


def _report_range(
    settings: Settings, now: datetime, start: str, end: str, window: str
) -> tuple[date, date, int] | str:
    """(first, last, window days) from the form, or what is wrong with it."""
    try:
        last = date.fromisoformat(end) if end else _today(settings, now) - timedelta(days=1)
        first = date.fromisoformat(start) if start else last - timedelta(days=29)
    except ValueError:
        return "dates like 2026-12-01"
    if not window.isdigit() or not 1 <= int(window) <= 7:
        return "the pay window: 1 to 7 days"
    if first > last or (last - first).days > 366:
        return "the first day on or before the last, at most a year apart"
    return first, last, int(window)


# --- templates: read, and lint as you type ------------------------------------------------------

EDITORS = ("compliance", "supervisor")  # and admins
APPROVERS = ("compliance",)  # and admins: four eyes, never the author (services/versions)


@router.get("/templates")
def templates_page(request: Request) -> Response:
    session = _viewer(request, *EDITORS)
    if isinstance(session, Response):
        return session
    engine, settings, clock = _app(request)
    files = sorted(list_template_files(settings), key=lambda t: (t.name, t.locale))
    drafts = versions.versions(engine, state="draft")
    now = clock()
    start, end, _ = report_store.default_range(settings, now)
    kept = report_store.latest(engine, settings, now)  # the report's own template rates
    found = kept[0].templates.to_dicts() if kept else template_rates(engine, settings, start, end)
    rates = {r["template"]: r for r in found}
    return _page(request, "templates.html", session, files=files, drafts=drafts, rates=rates,
                 rates_from=start, rates_to=end)  # fmt: skip


@router.get("/templates/{file_name}")
def template_editor(request: Request, file_name: str) -> Response:
    session = _viewer(request, *EDITORS)
    if isinstance(session, Response):
        return session
    _, settings, _ = _app(request)
    found = next((t for t in list_template_files(settings) if Path(t.path).name == file_name), None)
    if found is None:
        return _refuse(request, session, "not_found", 404)
    source = Path(found.path).read_text("utf-8")
    return _editor(request, session, file_name, source)


def _editor(
    request: Request, session: users.Session, file_name: str, source: str, message: str = "",
    saved: int | None = None,
) -> Response:  # fmt: skip
    engine, settings, _ = _app(request)
    return _page(request, "template_edit.html", session, file_name=file_name, source=source,
                 check=check_draft(settings, file_name, source), message=message, saved=saved,
                 versions=versions.versions(engine, file_name),
                 may_approve=session.user.may(*APPROVERS))  # fmt: skip


@router.post("/templates/{file_name}/draft")
async def template_draft(request: Request, file_name: str) -> Response:
    """Save the editor's text as a draft: refused, with the findings, when the check finds an
    error; the plan goes on using the current file until someone else approves it."""
    acting = await _actor(request, *EDITORS)
    if isinstance(acting, Response):
        return acting
    session, form = acting
    engine, settings, clock = _app(request)
    source = form.get("source", "")[: versions.MAX_SOURCE]
    try:
        draft = versions.propose_template(engine, settings, Path(file_name).name, source,
                                          f"user:{session.user.name}", clock())  # fmt: skip
    except CuikuanError as exc:
        return _editor(request, session, Path(file_name).name, source, exc.message)
    return _editor(request, session, Path(file_name).name, source, saved=draft)


@router.post("/versions/{version_id}/{action}")
async def version_act(request: Request, version_id: int, action: str) -> Response:
    """Approve or reject a draft (compliance; never one's own), or restore an old version as
    a new draft (any editor; a policy version: compliance)."""
    if action not in ("approve", "reject", "restore"):
        return HTMLResponse("not found", status_code=404, headers=SECURITY_HEADERS)
    acting = await _actor(request, *(EDITORS if action == "restore" else APPROVERS))
    if isinstance(acting, Response):
        return acting
    session, _ = acting
    engine, settings, clock = _app(request)
    actor = f"user:{session.user.name}"
    try:
        found = versions.version(engine, version_id)
        if found.kind == versions.POLICY and not session.user.may(*APPROVERS):
            return _refuse(request, session, "forbidden", 403)  # the policy is compliance's
        if action == "approve":
            versions.approve(engine, settings, version_id, actor, clock())
        elif action == "reject":
            versions.reject(engine, version_id, actor, clock())
        else:
            versions.restore(engine, settings, version_id, actor, clock())
    except CuikuanError as exc:
        return _refuse(request, session, "refused", 409, detail=exc.message)
    from cuikuan.web.console_strategy import after_decision

    return after_decision(found.kind, found.name)


@router.post("/templates/{file_name}/lint")
async def template_lint(request: Request, file_name: str) -> Response:
    """The editor's text checked as `templates check` checks the file; the findings, the
    rendering for a sample borrower (or the real one whose id is given), its encoding,
    segments, billing units and cost."""
    acting = await _actor(request, *EDITORS)
    if isinstance(acting, Response):
        return acting
    session, form = acting
    engine, settings, clock = _app(request)
    customer = form.get("customer", "").strip()[:64]
    real = (engine, customer, _today(settings, clock())) if customer else None
    check = check_draft(settings, Path(file_name).name, form.get("source", "")[:20_000], real)
    return _page(request, "lint_result.html", session, check=check)
