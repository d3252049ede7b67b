"""The guardrail: a template whose messages draw too many opt-outs or complaints is paused.

    paused = check_templates_guardrail(engine, settings, now, write=True)   # {template: reason}

Over the last `guardrail_window_days`, for each template: the messages sent, and the replies from
their recipients within 3 days that were opt-outs or complaints. Past the configured shares (and
with enough messages to mean something) the template is paused until an operator resumes it
(`cuikuan templates resume NAME`); the plan then suppresses its messages, saying why.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert, select

from cuikuan.settings import Settings
from cuikuan.store.schema import outbox, replies, template_pauses
from cuikuan.store.times import as_utc

SENT = ("sent", "delivered", "undelivered")
REPLY_WINDOW = timedelta(days=3)


def paused_templates(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(
            conn.execute(select(template_pauses.c.template, template_pauses.c.reason)).all()
        )


def check_templates_guardrail(
    engine: Engine, settings: Settings, now: datetime, *, write: bool
) -> dict[str, str]:
    """Templates paused now (already, or newly by this check), with the reason."""
    plan = settings.plan
    since = now - timedelta(days=plan.guardrail_window_days)
    with engine.connect() as conn:
        sent = conn.execute(
            select(outbox.c.template, outbox.c.recipient, outbox.c.sent_at).where(
                outbox.c.status.in_(SENT), outbox.c.sent_at >= since
            )
        ).all()
        answers = conn.execute(
            select(replies.c.sender, replies.c.received_at, replies.c.intent).where(
                replies.c.received_at >= since, replies.c.intent.in_(("opt_out", "complaint"))
            )
        ).all()
    by_number: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for sender, at, intent in answers:
        by_number[sender].append((as_utc(at), intent))
    messages: Counter[str] = Counter()
    reactions: dict[str, Counter[str]] = defaultdict(Counter)
    for template, recipient, at in sent:
        messages[template] += 1
        sent_at = as_utc(at)
        for when, intent in by_number.get(recipient, []):
            if sent_at <= when <= sent_at + REPLY_WINDOW:
                reactions[template][intent] += 1
                break
    paused = paused_templates(engine)
    new: dict[str, str] = {}
    for template, count in messages.items():
        if template in paused or count < plan.guardrail_min_messages:
            continue
        for intent, limit in (
            ("complaint", plan.guardrail_complaint_share),
            ("opt_out", plan.guardrail_opt_out_share),
        ):
            share = reactions[template][intent] / count
            if share > limit:
                new[template] = (
                    f"{intent.replace('_', '-')} share {share:.1%} of {count} messages in {plan.guardrail_window_days} days (limit {limit:.1%})"
                )
                break
    if write and new:
        with engine.begin() as conn:
            for template, reason in new.items():
                conn.execute(
                    insert(template_pauses).values(template=template, reason=reason, since=now)
                )
    return {**paused, **new}


def resume(engine: Engine, template: str) -> bool:
    with engine.begin() as conn:
        return (
            conn.execute(
                delete(template_pauses).where(template_pauses.c.template == template)
            ).rowcount
            > 0
        )
