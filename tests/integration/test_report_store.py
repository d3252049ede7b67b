"""The report over the console's default range, kept by the worker: what the console shows from
the kept copy is what `build_report` gave, it is remade when an hour old, and the console reads
it instead of computing the report on every view."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cuikuan.channels.sandbox import SandboxChannel
from cuikuan.dispatch.sender import send_due
from cuikuan.services import report_store
from cuikuan.services.planner import make_plan
from cuikuan.services.replies import receive_reply
from cuikuan.services.report import build_report
from cuikuan.settings import Settings
from cuikuan.web.report_html import render_body, render_html
from tests.integration.conftest import DAY, build_book
from tests.integration.test_send import OPEN

LATER = datetime(
    2026, 12, 3, 2, 0, tzinfo=UTC
)  # the default range (30 days to yesterday) holds DAY


@pytest.fixture
def sent_book(tmp_path: Path, db_url: str) -> tuple[Settings, Engine]:
    settings, engine = build_book(tmp_path, db_url, 600, 4)
    make_plan(engine, settings, DAY)
    send_due(engine, settings, SandboxChannel(engine, failure_share=0.0), OPEN)
    receive_reply(
        engine, settings, "+8613800000000", "已还款", OPEN + timedelta(hours=1), source="sim"
    )
    return settings, engine


def test_the_kept_report_is_the_report_and_is_remade_when_an_hour_old(
    sent_book: tuple[Settings, Engine],
) -> None:
    settings, engine = sent_book
    assert report_store.latest(engine, settings, LATER) is None
    assert report_store.refresh(engine, settings, LATER)
    kept, made_at = report_store.latest(engine, settings, LATER)  # type: ignore[misc]
    first, last, window = report_store.default_range(settings, LATER)
    truth = build_report(engine, settings, first, last, window, now=LATER)
    assert made_at == LATER and kept.uplift and kept.funnel  # something to compare
    assert render_body(kept, LATER) == render_body(truth, LATER)
    assert render_html(kept, LATER) == render_html(truth, LATER)
    assert json.dumps(kept.as_dict(), default=str, sort_keys=True) == json.dumps(
        truth.as_dict(), default=str, sort_keys=True
    )
    # Within the hour it is kept as it is; after it, or when asked, remade.
    assert not report_store.refresh(engine, settings, LATER + timedelta(minutes=59))
    assert report_store.refresh(engine, settings, LATER + timedelta(minutes=61))
    assert report_store.refresh(engine, settings, LATER + timedelta(minutes=62), force=True)
    assert report_store.latest(engine, settings, LATER + timedelta(minutes=62))[1] == (  # type: ignore[index]
        LATER + timedelta(minutes=62)
    )
    # Another day has another default range: nothing kept for it yet.
    assert report_store.latest(engine, settings, LATER + timedelta(days=1)) is None


def test_the_console_shows_the_kept_report_without_computing_one(
    sent_book: tuple[Settings, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    from cuikuan.services import users
    from cuikuan.web import console
    from tests.api.conftest import serve
    from tests.console.test_console import PASSWORD, _csrf, _login

    settings, engine = sent_book
    users.add_user(engine, "zhao", "supervisor", PASSWORD, LATER)
    report_store.refresh(engine, settings, LATER - timedelta(minutes=5))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("computed the report")

    from tests.api import conftest

    monkeypatch.setattr(conftest, "NOW", LATER)  # the server's clock
    for served in serve(engine, settings):
        with httpx.Client(base_url=served.url, follow_redirects=False) as zhao:
            assert _login(zhao, "zhao").status_code == 303
            with monkeypatch.context() as patch:
                patch.setattr(report_store, "build_report", refuse)
                patch.setattr(console, "template_rates", refuse)
                page = zhao.get("/console/report")
                assert page.status_code == 200 and "Funnel" in page.text
                assert "02:00 UTC" not in page.text and "01:55 UTC" in page.text  # as kept
                assert zhao.get("/console/templates").status_code == 200
                exported = zhao.get("/console/report/export", params={"format": "json"})
                assert exported.status_code == 200 and exported.json()["uplift"]
            token = _csrf(zhao, "/console/report")
            assert zhao.post("/console/report/refresh", data={"csrf": token}).status_code == 303
    assert report_store.latest(engine, settings, LATER)[1] > LATER - timedelta(minutes=5)  # type: ignore[index]


def test_a_single_worker_keeps_the_report_only_in_a_tick_with_nothing_to_send(
    tmp_path: Path, db_url: str
) -> None:
    """One process doing the whole day: a tick that sends does not stop for the report; the
    next tick with nothing to send keeps it."""
    from cuikuan.services.worker import WorkerDay

    settings, engine = build_book(tmp_path, db_url, 300, 6)
    make_plan(engine, settings, DAY)
    sandbox = SandboxChannel(engine, failure_share=0.0)
    day = WorkerDay(engine, settings, lambda name: sandbox, {}, lambda url, headers, body: 200)
    busy = day.tick(OPEN)
    assert busy.sent.sent > 0
    assert report_store.latest(engine, settings, OPEN) is None
    quiet = day.tick(OPEN + timedelta(minutes=1))
    assert quiet.sent.sent == 0
    kept = report_store.latest(engine, settings, OPEN + timedelta(minutes=1))
    assert kept is not None and kept[1] == OPEN + timedelta(minutes=1)


def test_a_range_of_ones_own_is_kept_for_an_hour(sent_book: tuple[Settings, Engine]) -> None:
    settings, engine = sent_book
    first, last = DAY, DAY + timedelta(days=1)
    made, at = report_store.for_range(engine, settings, first, last, 2, LATER)
    assert at == LATER and made.uplift
    again, at = report_store.for_range(
        engine, settings, first, last, 2, LATER + timedelta(minutes=30)
    )
    assert at == LATER and render_body(again, at) == render_body(made, at)
    _, at = report_store.for_range(engine, settings, first, last, 2, LATER + timedelta(minutes=61))
    assert at == LATER + timedelta(minutes=61)  # an hour old: made again
    _, at = report_store.for_range(engine, settings, first, last, 3, LATER + timedelta(minutes=62))
    assert at == LATER + timedelta(minutes=62)  # another window is another report
