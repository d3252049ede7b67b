"""The report over the console's default range (the last 30 days, a 3-day pay window), computed
by the worker and kept in the database, so that the console's report and templates pages read it
instead of computing it on every view (seconds on a large book).

    refresh(engine, settings, now)            # the worker: compute it when it is an hour old
    stored = latest(engine, settings, now)    # (Report, made_at) for today's default range, or None
    report, made_at = for_range(engine, settings, first, last, window, now)   # any range, kept
    kept(engine, settings, first, last, window, now)   # the same, or None where it would compute
    default_range(settings, now)              # (first, last, window days)

The report is kept whole: its frames as Arrow IPC, the rest as JSON, so that what the console
shows from it is what `build_report` gave (a test renders both and compares).
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from cuikuan.domain.dates import local_day
from cuikuan.services.report import Report, build_report
from cuikuan.settings import Settings
from cuikuan.store import snapshots

DAYS = 30
WINDOW = 3
EVERY = timedelta(hours=1)  # how old the kept report may grow before the worker remakes it


def default_range(settings: Settings, now: datetime) -> tuple[date, date, int]:
    last = local_day(now, settings.defaults.timezone) - timedelta(days=1)
    return last - timedelta(days=DAYS - 1), last, WINDOW


def refresh(engine: Engine, settings: Settings, now: datetime, force: bool = False) -> bool:
    """Compute and keep today's default report unless a fresh one is kept (True if made)."""
    found = latest(engine, settings, now)
    if found is not None and not force and now - found[1] < EVERY:
        return False
    _make(engine, settings, *default_range(settings, now), now)
    return True


def for_range(
    engine: Engine, settings: Settings, first: date, last: date, window: int, now: datetime
) -> tuple[Report, datetime]:
    """The report for any range, and as of when: for the default range the kept one whatever
    its age (the worker keeps it), for another the kept one while under an hour old; else made
    now and kept (a manager who opens the same range again does not wait again)."""
    found = kept(engine, settings, first, last, window, now)
    if found is not None:
        return found
    return _make(engine, settings, first, last, window, now), now


def kept(
    engine: Engine, settings: Settings, first: date, last: date, window: int, now: datetime
) -> tuple[Report, datetime] | None:
    """What `for_range` would read without computing anything, or None (it would compute)."""
    found = snapshots.load_report(engine, _key(first, last, window))
    if found is not None and (
        (first, last, window) == default_range(settings, now) or now - found[2] < EVERY
    ):
        return decode(found[0], found[1]), found[2]
    return None


def _make(
    engine: Engine, settings: Settings, first: date, last: date, window: int, now: datetime
) -> Report:
    report = build_report(engine, settings, first, last, window, now=now)
    frames, meta = encode(report)
    snapshots.save_report(engine, _key(first, last, window), frames, meta, now)
    return report


def latest(engine: Engine, settings: Settings, now: datetime) -> tuple[Report, datetime] | None:
    first, last, window = default_range(settings, now)
    found = snapshots.load_report(engine, _key(first, last, window))
    if found is None:
        return None
    frames, meta, made_at = found
    return decode(frames, meta), made_at


def encode(report: Report) -> tuple[dict[str, Any], dict[str, Any]]:
    fields = {f.name: getattr(report, f.name) for f in dataclasses.fields(report)}
    frames = {name: fields.pop(name) for name in snapshots.REPORT_FRAMES}
    fields["start"], fields["end"] = report.start.isoformat(), report.end.isoformat()
    return frames, fields


def decode(frames: dict[str, Any], meta: dict[str, Any]) -> Report:
    fields = {**meta, **frames}
    fields["start"], fields["end"] = (
        date.fromisoformat(meta["start"]),
        date.fromisoformat(meta["end"]),
    )
    return Report(**fields)


def _key(first: date, last: date, window: int) -> str:
    return f"{first}|{last}|{window}"
