"""What every route shares: the app's state, money and time as the API writes them, cursors,
ETags."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Request, Response
from pydantic import AfterValidator, StringConstraints
from sqlalchemy import Engine

from cuikuan.api.problems import ApiProblem
from cuikuan.domain.dates import OUT_OF_RANGE, YEARS
from cuikuan.domain.money import format_minor
from cuikuan.settings import Settings, SettingsWatch

MAX_ID = 2**31 - 1  # ids are 32-bit integer columns on PostgreSQL


def _in_years(value: Any) -> Any:
    """The ledger's own bound on dates (domain.dates.YEARS), for dates and times alike."""
    if not YEARS[0] <= value.year <= YEARS[1]:
        raise ValueError(OUT_OF_RANGE)
    return value


# Text from outside: no NUL and no other C0 control but tab and newlines (PostgreSQL refuses NUL
# in text, and nobody means the others). A pattern, checked by pydantic-core itself: a Python
# check per cell cost a third of a batch's time.
NO_CONTROLS = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*$"
CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def no_controls(value: str) -> str:
    if CONTROLS.search(value):
        raise ValueError("control characters are not allowed")
    return value


Text = Annotated[str, StringConstraints(pattern=NO_CONTROLS)]
Day = Annotated[date, AfterValidator(_in_years)]
Moment = Annotated[datetime, AfterValidator(_in_years)]


@dataclass
class State:
    engine: Engine
    started_with: Settings
    clock: Callable[[], datetime]  # the server is an edge: the one place that reads the clock
    watch: SettingsWatch | None = None  # the settings file read again when it changes

    @property
    def settings(self) -> Settings:
        return self.watch.current() if self.watch is not None else self.started_with


def state(request: Request) -> State:
    found: State = request.app.state.cuikuan
    return found


def money(amount: int | None, digits: int) -> dict[str, Any]:
    """Money as the API writes it: a string in major units and the integer minor units."""
    if amount is None:
        return {"amount": None, "minor": None}
    return {"amount": format_minor(int(amount), digits, grouping=False), "minor": int(amount)}


def plain(value: Any) -> Any:
    """JSON-ready: dates and times in ISO 8601 (times with their offset)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        after = json.loads(base64.urlsafe_b64decode(padded.encode()))["after"]
        if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after <= MAX_ID:
            raise ValueError
        return after
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise ApiProblem("invalid-request", "cursor: not one this API gave out") from None


def page(rows: list[tuple[int, dict[str, Any]]], limit: int) -> dict[str, Any]:
    """A page from (internal id, item) pairs fetched in id order, `limit` + 1 of them: the extra
    one only says that there is more."""
    shown = rows[:limit]
    more = len(rows) > limit and shown
    return {
        "items": [item for _, item in shown],
        "next_cursor": encode_cursor(shown[-1][0]) if more else None,
    }


def etagged(request: Request, body: Any) -> Response:
    """The body as JSON with a strong ETag; 304 when the client has it already."""
    text = json.dumps(plain(body), ensure_ascii=False, separators=(",", ":"))
    tag = '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'
    if tag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers={"ETag": tag})
    return Response(text, media_type="application/json", headers={"ETag": tag})
