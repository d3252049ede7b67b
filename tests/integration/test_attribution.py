"""Payments record which messages preceded them: sent ones and held-back (control) ones, within
the window, never a message that came after the payment, once per payment."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from cuikuan.channels.sandbox import SandboxChannel
from cuikuan.dispatch.sender import send_due
from cuikuan.services.importer import import_file
from cuikuan.services.planner import make_plan
from cuikuan.services.timeline import timeline
from cuikuan.settings import Settings
from cuikuan.store.schema import customers, loans, outbox, payment_touches
from tests.helpers import RULES, write_csv
from tests.integration.conftest import DAY
from tests.integration.test_send import OPEN


def test_a_payment_records_the_messages_before_it(
    book: tuple[Settings, Engine], tmp_path: Path
) -> None:
    settings, engine = book
    make_plan(engine, settings, DAY)
    send_due(engine, settings, SandboxChannel(engine, failure_share=0.0), OPEN)
    with engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.id, outbox.c.status, loans.c.external_id, customers.c.external_id.label("customer"))
            .join(loans, loans.c.id == outbox.c.loan_id)
            .join(customers, customers.c.id == outbox.c.customer_id)
            .order_by(outbox.c.id)
        ).all()  # fmt: skip
    sent = next(r for r in rows if r.status in ("sent", "delivered"))
    held = next(r for r in rows if r.status == "held")
    # Payment files carry the lender's local time.
    zone = ZoneInfo(settings.defaults.timezone)
    later = (OPEN + timedelta(days=1)).astimezone(zone)
    earlier = (OPEN - timedelta(days=1)).astimezone(zone)
    header = ["还款流水号", "借据号", "还款时间", "还款金额"]
    stamp = "%Y-%m-%d %H:%M:%S"
    file = write_csv(
        tmp_path / "payments.csv",
        header,
        [
            ["P-after-sent", sent.external_id, later.strftime(stamp), "10.00"],
            ["P-after-held", held.external_id, later.strftime(stamp), "10.00"],
            ["P-before", sent.external_id, earlier.strftime(stamp), "5.00"],
        ],
    )
    import_file(engine, file, RULES)
    import_file(engine, file, RULES)  # the same file again adds no second touch
    with engine.connect() as conn:
        touches = conn.execute(select(payment_touches)).all()
    by_message = {t.outbox_id: t for t in touches}
    assert set(by_message) == {sent.id, held.id} and len(touches) == 2
    assert by_message[sent.id].control == 0 and by_message[held.id].control == 1
    assert 23 < by_message[sent.id].hours_before <= 24.5
    events = timeline(engine, settings, sent.customer)
    paid = [e for e in events if e.kind == "payment" and "P-after-sent" in e.summary]
    assert paid and f"#{sent.id}" in paid[0].summary
    assert paid[0].detail["after_messages"] == [sent.id]
