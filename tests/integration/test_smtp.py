"""The e-mail channel against a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, insert, select

from cuikuan.channels.base import OutgoingMessage, Permanent, Transient
from cuikuan.channels.registry import available, make_channel
from cuikuan.channels.smtp import SmtpChannel
from cuikuan.dispatch.sender import send_due
from cuikuan.errors import ConfigError
from cuikuan.settings import Settings
from cuikuan.store.schema import customers, loans, outbox
from tests.smsc_helpers import CLOCK

NOW = datetime(2026, 11, 30, 3, tzinfo=UTC)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Any]] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=default_policy))
        )
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def channel(port: int) -> SmtpChannel:
    return SmtpChannel("127.0.0.1", port, "reminders@lender.example", "还款提醒", security="none")


def test_a_message_is_delivered_as_plain_text_utf8(smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    results = channel(port).send(
        [
            OutgoingMessage(
                1, "email", "zhang@example.com", "【富勤金融】张先生您好，您的借款今日到期。"
            )
        ],
        NOW,
    )
    assert results[0].error is None and results[0].provider_id
    ((rcpt, mail),) = inbox.messages
    assert rcpt == ["zhang@example.com"]
    assert mail["Subject"] == "还款提醒" and mail["From"] == "reminders@lender.example"
    assert "今日到期" in mail.get_content()


def test_a_refused_recipient_fails_only_that_message(smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    results = channel(port).send(
        [
            OutgoingMessage(1, "email", "nobody@example.com", "x"),
            OutgoingMessage(2, "email", "li@example.com", "y"),
        ],
        NOW,
    )
    assert isinstance(results[0].error, Permanent)
    assert results[1].error is None and len(inbox.messages) == 1


def test_an_unreachable_server_is_transient() -> None:
    results = channel(free_port()).send([OutgoingMessage(1, "email", "a@example.com", "x")], NOW)
    assert isinstance(results[0].error, Transient)


def test_providers_register_through_entry_points(book: tuple[Settings, Engine]) -> None:
    settings, engine = book
    assert {"sandbox", "smtp"} <= set(available())
    with pytest.raises(ConfigError, match="no channel provider 'carrier-pigeon'"):
        make_channel("carrier-pigeon", engine, settings, CLOCK)


def test_send_routes_email_rows_to_the_smtp_provider(
    book: tuple[Settings, Engine], smtp_server: tuple[Inbox, int]
) -> None:
    settings, engine = book
    inbox, port = smtp_server
    with engine.begin() as conn:
        # A loan with something still to pay: the send re-checks that nothing was paid in full.
        cid, lid = conn.execute(
            select(customers.c.id, loans.c.id)
            .join(loans, loans.c.customer_id == customers.c.id)
            .where(loans.c.open_amount > 0)
            .order_by(loans.c.id)
            .limit(1)
        ).one()
        conn.execute(
            customers.update().where(customers.c.id == cid).values(email="wang@example.com")
        )
        oid = conn.execute(
            insert(outbox).values(
                idempotency_key="test|email|2026-11-30", plan_date=NOW.date(), customer_id=cid, loan_id=lid, step="email_test",
                template="due_today", variant=0, channel="email", recipient="wang@example.com", text="您的借款今日到期", control=0,
                earliest_at=NOW - timedelta(hours=1), latest_at=NOW + timedelta(hours=5), segments=0, billing_units=0,
                status="planned", trail="[]", created_at=NOW, updated_at=NOW,
            ).returning(outbox.c.id)
        ).scalar_one()  # fmt: skip
    from cuikuan.channels.sandbox import SandboxChannel

    sandbox = SandboxChannel(engine)
    smtp = channel(port)
    # The resolver maps provider names ([channels] email = "smtp", sms = "sandbox").
    report = send_due(engine, settings, lambda name: smtp if name == "smtp" else sandbox, NOW)
    assert report.sent == 1
    with engine.connect() as conn:
        row = conn.execute(
            select(outbox.c.status, outbox.c.provider).where(outbox.c.id == oid)
        ).one()
    assert tuple(row) == ("sent", "smtp")
    assert inbox.messages[0][0] == ["wang@example.com"]
