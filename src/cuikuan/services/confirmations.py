"""The one confirmation after an opt-out, where the pack allows it: queued in the outbox at once,
to be sent within CONFIRM_WITHIN of the opt-out (FCC 24-18: a one-time confirmation within five
minutes; it answers the borrower's own message, so it does not wait for the next contact window),
even though they opted out; once per number, whoever is behind it, never twice a day."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from cuikuan.domain import policy
from cuikuan.domain.followup import OPT_OUT_CONFIRMATION
from cuikuan.domain.message_context import Borrower, LoanFacts, build_context
from cuikuan.domain.sms import measure
from cuikuan.domain.templates import Renderer
from cuikuan.services import messages
from cuikuan.settings import Settings
from cuikuan.store.schema import customers, loans, outbox

CONFIRM_WITHIN = timedelta(minutes=5)


def queue_confirmation(
    conn: Connection, settings: Settings, customer_id: int, number: str, at: datetime
) -> str | None:
    """Queue the confirmation; the reason it was not, or None when it was."""
    person = conn.execute(
        select(
            customers.c.external_id, customers.c.name, customers.c.locale, customers.c.timezone
        ).where(customers.c.id == customer_id)
    ).one()
    loan = conn.execute(
        select(loans.c.id, loans.c.external_id, loans.c.currency)
        .where(loans.c.customer_id == customer_id)
        .limit(1)
    ).first()
    if loan is None:
        return "no loan to speak of"
    zones = policy.candidate_zones(person.timezone, [number], settings.defaults.timezone)
    today = at.astimezone(ZoneInfo(zones[0])).date()
    earliest, latest = at, at + CONFIRM_WITHIN
    locale = (
        person.locale if person.locale in settings.templates.locales else settings.defaults.locale
    )
    templates, _ = messages.load_templates(messages.templates_dir(settings))
    template = next(
        (t for t in templates if t.name == OPT_OUT_CONFIRMATION and t.locale == locale), None
    )
    if template is None:
        return f"no {OPT_OUT_CONFIRMATION} template in {locale}"
    facts = LoanFacts(loan.external_id, None, loan.currency, 0, 0, 0, None, None, 0)
    text = Renderer({template.path: template}).render(
        template,
        build_context(
            Borrower(person.name, number), facts, messages.lender_facts(settings), locale
        ),
    )
    key = f"{number}|{OPT_OUT_CONFIRMATION}|{today.isoformat()}"
    if conn.execute(select(outbox.c.id).where(outbox.c.idempotency_key == key)).first() is not None:
        return "already confirmed today"
    m = measure(text)
    conn.execute(
        outbox.insert().values(
            idempotency_key=key, plan_date=today, customer_id=customer_id, loan_id=loan.id, step=OPT_OUT_CONFIRMATION,
            template=template.name, variant=0, channel="sms", recipient=number, text=text, control=0,
            earliest_at=earliest, latest_at=latest, segments=m.segments, billing_units=m.cn_billing_units,
            status="planned", trail=json.dumps(["opt-out confirmation (the one message allowed after an opt-out)"]),
            created_at=at, updated_at=at,
        )
    )  # fmt: skip
    return None
