"""The send-time re-check: the plan's rules again, on what changed since the plan.

    reason = still_allowed(row, facts, contact, now)    # None: send it now

A claimed message is checked against the same rules the plan applied (`policy` for suppressions,
windows and zones, `decide.Caps` for the caps, each message counted once) with the facts as they
are at `now`: flags, opt-outs of the person and stops of the number, the number still being the
borrower's, pauses and promises made since, what was paid on the instalment the message is about
(or the agreed payment of an instalment plan), and the window in every zone the borrower may be
in now. Only the facts of the claimed rows are read (dispatch/recheck.py), so a round costs the
same in a small book and a large one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from cuikuan.domain import ledger, policy
from cuikuan.domain.followup import OPT_OUT_CONFIRMATION


@dataclass(frozen=True)
class StepFacts:
    """What the sender needs of the step the row came from."""

    targets_overdue: bool
    days_to_due: int | None  # the step's fixed days to due, when it has one


class LoanNow(NamedTuple):
    """A loan as it stands at send time."""

    instalments: Sequence[ledger.Instalment]  # with the countable payments allocated
    position: ledger.LoanPosition
    paid_since_plan: bool  # a payment or a paid snapshot arrived after the row was planned
    plan_next_due: date | None = None  # on a current instalment plan: the next agreed date
    plan_ended: bool = False  # was on a plan at planning, no longer current


class RowFacts(NamedTuple):
    """Everything the re-check reads for one claimed row (one a row: a named tuple is cheap)."""

    channel: str
    step: str
    recipient: str
    plan_date: date
    created_at: datetime
    flags: Sequence[str]
    opted_out_channels: Sequence[str]
    number_stop: str | None  # "opt_out" / "wrong_number" / "unread_reply" on this recipient
    on_record: bool  # the recipient is still one of the borrower's numbers / their address
    paused: str | None
    promise_pending: bool
    zones: list[str]
    step_facts: StepFacts | None
    loan: LoanNow | None


def suppressed_reason(facts: RowFacts) -> str | None:
    """Why the row must not go at all (it becomes `suppressed`), or None."""
    if facts.step == OPT_OUT_CONFIRMATION:
        # The one message allowed after an opt-out; a flag or a wrong number still stops it.
        flagged = policy.suppression_reasons(facts.flags, [], facts.channel, False)
        if flagged:
            return f"suppressed since planning: {flagged[0]}"
        if facts.number_stop == "wrong_number":
            return "wrong number since planning"
        return None
    if facts.number_stop == "opt_out" or facts.channel in facts.opted_out_channels:
        return "opted out since planning"
    if facts.number_stop == "wrong_number":
        return "wrong number since planning"
    if facts.number_stop == "unread_reply":
        return "a reply from this number awaits a person"
    flagged = policy.suppression_reasons(facts.flags, [], facts.channel, False)
    if flagged:
        return f"suppressed since planning: {flagged[0]}"
    if not facts.on_record:
        return "the recipient is no longer on the borrower's record"
    if facts.paused:
        return f"paused since planning ({facts.paused})"
    if facts.promise_pending:
        return "promise to pay since planning"
    return _paid_reason(facts)


def _paid_reason(facts: RowFacts) -> str | None:
    loan = facts.loan
    if loan is None or loan.position.paid_off:
        return "paid in full since planning"
    step = facts.step_facts
    if step is None:
        return None
    if step.targets_overdue:
        if loan.position.overdue_amount == 0:
            return "paid since planning"
    elif step.days_to_due is not None:
        due = facts.plan_date + timedelta(days=step.days_to_due)
        if loan.plan_ended:
            return "the instalment plan ended since planning"
        if loan.plan_next_due is not None:
            if loan.plan_next_due > due:
                return "paid since planning (the agreed payment is covered)"
        else:
            about = [i for i in loan.instalments if i.due_date == due]
            if not about:
                return f"no instalment due on {due} any more (the ledger changed since planning)"
            if all(i.remaining == 0 for i in about):
                return "paid since planning"
    if loan.paid_since_plan:
        return "paid in part since planning: held, so the next plan states the amount owed then"
    return None


def window_decision(
    now: datetime, zones: Sequence[str], contact: policy.ContactPolicy
) -> tuple[str, tuple[datetime, datetime] | None]:
    """("send", None) inside the window in every zone; ("later", (opening, closing)) before the
    day's window opens (a zone changed since planning: re-timed that day, not dropped);
    ("closed", None) when there is none left that day."""
    if policy.inside_window(now, zones, contact):
        return "send", None
    day = now.astimezone(ZoneInfo(zones[0])).date()
    window = policy.allowed_window(day, zones, contact)
    if window is not None and now < window[0]:
        return "later", window
    return "closed", None
