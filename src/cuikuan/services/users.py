"""The console's users: roles, argon2 passwords (pwdlib), lockout, sessions kept in the database.

    add_user(engine, "li", "agent", "a long passphrase", now, team="east")
    session = login(engine, "li", "a long passphrase", now)     # Session(token=..., csrf=...)
    user = session_user(engine, session.token, now)             # User, or None once lapsed
    logout(engine, session.token); logout_everywhere(engine, user.id)

Five wrong passwords in a row lock the account for 15 minutes (the answer is the same whether
the name exists or not, and a password is hashed either way, so neither the words nor the time
tell). A login always makes a new session token (no fixation); the cookie carries the token,
the database only its SHA-256. Sessions lapse after 8 idle hours and 7 days at most.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from pwdlib import PasswordHash
from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from cuikuan.errors import InputError, NotFound
from cuikuan.services import audit
from cuikuan.store.schema import console_sessions, users
from cuikuan.store.times import as_utc

ROLES = ("agent", "supervisor", "compliance", "admin")
MIN_PASSWORD = 10
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
IDLE = timedelta(hours=8)
LONGEST = timedelta(days=7)
# Who may see a borrower's whole phone number (others see 138****8000; each reveal is audited).
SEE_NUMBERS = frozenset({"supervisor", "compliance", "admin"})


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    team: str | None
    locale: str | None

    def may(self, *roles: str) -> bool:
        return self.role == "admin" or self.role in roles


@dataclass(frozen=True)
class Session:
    token: str  # for the cookie only: never stored
    csrf: str
    user: User


class LoginRefused(Exception):
    """Wrong name or password, or locked: one message for all, on purpose."""


@cache
def _hasher() -> PasswordHash:
    return PasswordHash.recommended()


def add_user(
    engine: Engine,
    name: str,
    role: str,
    password: str,
    now: datetime,
    team: str | None = None,
    by: str = "cli",
) -> User:
    _check_role(role)
    if not name or len(name) > 64 or not name.isprintable() or name.strip() != name:
        raise InputError(f"user name {name!r}: 1 to 64 printable characters, no outer spaces")
    team = _check_team(team)
    _check_password(password)
    try:
        with engine.begin() as conn:
            uid = conn.execute(
                insert(users).values(
                    name=name, role=role, team=team, password_hash=_hasher().hash(password),
                    locale=None, failed_logins=0, locked_until=None, disabled=False, created_at=now,
                ).returning(users.c.id)
            ).scalar_one()  # fmt: skip
            audit.record(
                conn, by, "user.add", f"user:{name}", None, {"role": role, "team": team}, now
            )
    except IntegrityError:
        raise InputError(f"a user named {name!r} exists already") from None
    return User(uid, name, role, team, None)


def list_users(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(select(users).order_by(users.c.name)).all()
    return [
        {"name": r.name, "role": r.role, "team": r.team, "disabled": bool(r.disabled),
         "locked_until": as_utc(r.locked_until).isoformat() if r.locked_until else None}
        for r in rows
    ]  # fmt: skip


def require_role(engine: Engine, name: str, *roles: str) -> str:
    """The actor name of an enabled user holding one of `roles` (admins hold all), for a
    command line that acts as that user; refused otherwise."""
    with engine.connect() as conn:
        row = conn.execute(
            select(users.c.role, users.c.disabled).where(users.c.name == name)
        ).first()
    if row is None or row.disabled:
        raise NotFound(f"no enabled user named {name!r} (cuikuan users add)")
    if row.role != "admin" and row.role not in roles:
        raise InputError(f"{name} is {row.role}: this needs the role {' or '.join(roles)}")
    return f"user:{name}"


WORKERS = ("agent", "supervisor")  # who may hold a task


def team_members(engine: Engine, team: str) -> list[str]:
    """The enabled users of `team` who may hold tasks, by name."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(users.c.name)
                .where(users.c.team == team, users.c.role.in_(WORKERS), users.c.disabled.is_(False))
                .order_by(users.c.name)
            ).scalars()
        )


def scope_of(engine: Engine, user: User) -> list[str] | None:
    """Whose tasks `user` sees and may hand out: a supervisor with a team, that team's
    members; None (everyone's) for compliance, admins and a supervisor without a team."""
    if user.role == "supervisor" and user.team:
        return team_members(engine, user.team)
    return None


def disable(engine: Engine, name: str, now: datetime, by: str) -> None:
    """No more logins, and every session of the user ends now. The last enabled admin stays:
    nobody would be left to manage users."""
    with engine.begin() as conn:
        row = _user_row(conn, name)
        if row.role == "admin" and not row.disabled:
            _keep_an_admin(conn, row.id)
        conn.execute(update(users).where(users.c.id == row.id).values(disabled=True))
        conn.execute(delete(console_sessions).where(console_sessions.c.user_id == row.id))
        audit.record(conn, by, "user.disable", f"user:{name}", None, None, now)


def enable(engine: Engine, name: str, now: datetime, by: str) -> None:
    """Logins again, and any lockout lifted."""
    with engine.begin() as conn:
        row = _user_row(conn, name)
        conn.execute(
            update(users)
            .where(users.c.id == row.id)
            .values(disabled=False, failed_logins=0, locked_until=None)
        )
        audit.record(conn, by, "user.enable", f"user:{name}",
                     {"disabled": bool(row.disabled), "locked_until": row.locked_until}, None, now)  # fmt: skip


def change(engine: Engine, name: str, role: str, team: str | None, now: datetime, by: str) -> None:
    """A user's role and team. A new role takes effect at once: their sessions end, so no page
    opened under the old role goes on acting with it."""
    _check_role(role)
    team = _check_team(team)
    with engine.begin() as conn:
        row = _user_row(conn, name)
        if row.role == "admin" and role != "admin" and not row.disabled:
            _keep_an_admin(conn, row.id)
        conn.execute(update(users).where(users.c.id == row.id).values(role=role, team=team))
        if role != row.role:
            conn.execute(delete(console_sessions).where(console_sessions.c.user_id == row.id))
        audit.record(conn, by, "user.change", f"user:{name}", {"role": row.role, "team": row.team},
                     {"role": role, "team": team}, now)  # fmt: skip


def set_password(engine: Engine, name: str, password: str, now: datetime, by: str) -> None:
    """A new password (an admin's reset); every session of the user ends, the lockout too."""
    _check_password(password)
    with engine.begin() as conn:
        row = _user_row(conn, name)
        conn.execute(
            update(users)
            .where(users.c.id == row.id)
            .values(password_hash=_hasher().hash(password), failed_logins=0, locked_until=None)
        )
        conn.execute(delete(console_sessions).where(console_sessions.c.user_id == row.id))
        audit.record(conn, by, "user.password", f"user:{name}", None, None, now)


def _user_row(conn: Connection, name: str) -> Any:
    row = conn.execute(select(users).where(users.c.name == name)).first()
    if row is None:
        raise NotFound(f"no user named {name!r}")
    return row


def _keep_an_admin(conn: Connection, leaving: int) -> None:
    others = conn.execute(
        select(func.count())
        .select_from(users)
        .where(users.c.role == "admin", users.c.disabled.is_(False), users.c.id != leaving)
    ).scalar_one()
    if not others:
        raise InputError("the last enabled admin cannot be disabled or given another role")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InputError(f"role {role!r}: expected one of {', '.join(ROLES)}")


def _check_team(team: str | None) -> str | None:
    team = (team or "").strip() or None
    if team is not None and (len(team) > 64 or not team.isprintable()):
        raise InputError(f"team {team!r}: up to 64 printable characters")
    return team


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InputError(f"password: at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise InputError("password: at most 1,024 characters")


def login(engine: Engine, name: str, password: str, now: datetime) -> Session:
    with engine.begin() as conn:  # a failure is counted (committed) before it is answered
        row = conn.execute(select(users).where(users.c.name == name)).first()
        if row is None:
            _hasher().hash(password)  # the same work as for a real name: time tells nothing
            made = None
        else:
            made = _check(conn, row, password, now)
    if made is None:
        raise LoginRefused
    return made


def _check(conn: Connection, row: Any, password: str, now: datetime) -> Session | None:
    locked = row.locked_until is not None and as_utc(row.locked_until) > now
    good = _hasher().verify(password, row.password_hash)
    if locked or row.disabled or not good:
        if not locked and not good:
            failures = int(row.failed_logins) + 1
            values: dict[str, object] = {"failed_logins": failures}
            if failures >= MAX_FAILURES:
                values = {"failed_logins": 0, "locked_until": now + LOCKOUT}
                audit.record(conn, f"user:{row.name}", "user.locked", f"user:{row.name}", None,
                             {"until": (now + LOCKOUT).isoformat()}, now)  # fmt: skip
            conn.execute(update(users).where(users.c.id == row.id).values(**values))
        return None
    conn.execute(
        update(users).where(users.c.id == row.id).values(failed_logins=0, locked_until=None)
    )
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    conn.execute(
        insert(console_sessions).values(
            token_hash=_digest(token), user_id=row.id, csrf=csrf, created_at=now, seen_at=now,
            expires_at=now + LONGEST,
        )
    )  # fmt: skip
    return Session(token, csrf, User(row.id, row.name, row.role, row.team, row.locale))


def session_user(engine: Engine, token: str, now: datetime) -> Session | None:
    """The session's user, or None (unknown, lapsed, or the user disabled); touches it."""
    if not token or len(token) > 200:
        return None
    s = console_sessions.c
    with engine.begin() as conn:
        row = conn.execute(
            select(s.token_hash, s.csrf, s.seen_at, s.expires_at, users)
            .join(users, users.c.id == s.user_id)
            .where(s.token_hash == _digest(token))
        ).first()
        if row is None:
            return None
        if row.disabled or as_utc(row.expires_at) <= now or as_utc(row.seen_at) + IDLE <= now:
            conn.execute(delete(console_sessions).where(s.token_hash == row.token_hash))
            return None
        if now - as_utc(row.seen_at) > timedelta(minutes=1):
            conn.execute(
                update(console_sessions).where(s.token_hash == row.token_hash).values(seen_at=now)
            )
    return Session(token, row.csrf, User(row.id, row.name, row.role, row.team, row.locale))


def logout(engine: Engine, token: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            delete(console_sessions).where(console_sessions.c.token_hash == _digest(token))
        )


def logout_everywhere(engine: Engine, user_id: int) -> int:
    with engine.begin() as conn:
        return conn.execute(
            delete(console_sessions).where(console_sessions.c.user_id == user_id)
        ).rowcount


def set_locale(engine: Engine, user_id: int, locale: str | None) -> None:
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.id == user_id).values(locale=locale))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
