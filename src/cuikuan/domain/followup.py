"""What follows a reply: a pause of automated reminders and a task for a person, by intent.

    followup("hardship")   # FollowUp(pause_days=14, task="hardship", priority=2, sla=timedelta(days=1))

Priority 1 is the most urgent. The numbers are defaults a lender may tune later; the shape —
pause, task, SLA — is what the collections team works from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class FollowUp:
    pause_days: int  # 0: no pause
    task: str | None
    priority: int = 3
    sla: timedelta = timedelta(days=2)
    # The task is about money owed and nothing else: once a payment has come since the task
    # was made and nothing is overdue, nobody needs to act and it closes itself (unless taken).
    moot_once_paid: bool = False


FOLLOW_UPS: dict[str, FollowUp] = {
    "paid": FollowUp(3, "verify_payment", 2, timedelta(days=1), moot_once_paid=True),
    "installment": FollowUp(7, "agree_plan", 2, timedelta(days=1), moot_once_paid=True),
    "hardship": FollowUp(14, "hardship", 2, timedelta(days=1)),
    "dispute": FollowUp(0, "dispute", 2, timedelta(days=1)),  # a flag until resolved, not a pause
    "wrong_number": FollowUp(0, "data_fix", 2, timedelta(days=2)),
    "third_party": FollowUp(0, "third_party", 3, timedelta(days=2)),
    "complaint": FollowUp(0, "complaint", 1, timedelta(hours=2)),
    "deceased": FollowUp(0, "deceased", 1, timedelta(hours=8)),
    "human": FollowUp(0, "call_back", 2, timedelta(hours=4)),
}
# The one message allowed after an opt-out (where the pack allows it): a plain confirmation.
OPT_OUT_CONFIRMATION = "optout_confirmation"

ASK_DATE = FollowUp(0, "ask_date", 3, timedelta(days=1), moot_once_paid=True)
READ_REPLY = FollowUp(0, "read_reply", 3, timedelta(days=1))
NOTHING = FollowUp(0, None)


def followup(
    intent: str, needs_person: bool = False, promise_without_date: bool = False
) -> FollowUp:
    if needs_person:
        return READ_REPLY
    if promise_without_date:
        return ASK_DATE
    return FOLLOW_UPS.get(intent, NOTHING)


def moot_once_paid() -> frozenset[str]:
    """The task kinds that close themselves once paid (a hardship, a dispute, a complaint or a
    call-back request stays with a person whatever is paid)."""
    every = [*FOLLOW_UPS.values(), ASK_DATE, READ_REPLY]
    return frozenset(f.task for f in every if f.moot_once_paid and f.task is not None)
