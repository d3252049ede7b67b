"""How simulated borrowers respond: whether one pays today, how much, and what they write back.

A made-up but sensible model so the demo's numbers mean something: borrowers pay most on the
due date, less the later they are; a reminder delivered today lifts the chance, and each further
message in a week lifts it less (fatigue). Early in an episode of lateness the tone matters, and
differently for different people: a gentle word works best on a first-time late payer, a firm
one on a repeat late payer (someone who was late before: `repeat_late`). A few write back after a
reminder: "paid" when they did, a promise or a plea when late, and the more messages they got
this week the likelier an opt-out or a complaint.

Common random numbers: every draw comes from a stream of its own per borrower and day
(`stream`), so two runs of the same book with the same seed but different decisions (say, with
and without control groups) give each borrower the same luck, and the difference between the
runs is the effect of the decisions alone (the report's truth test, benchmarks/report_truth.py).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass


def stream(seed: int, *key: object) -> random.Random:
    """The draws of one purpose, borrower and day: the same in every run with the same seed."""
    digest = hashlib.blake2b(repr((seed, *key)).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def trait(seed: int, name: str, who: object) -> float:
    """A borrower's fixed draw for a trait (stubborn, forgetful, repeat late payer), in [0, 1)."""
    return stream(seed, "trait", name, who).random()


@dataclass(frozen=True)
class Situation:
    dpd: int
    days_to_due: int | None
    first_time: bool  # not late before this episode (a first-time late payer)
    reminded_today: bool  # a reminder reached them today or in the two days before
    tone: str | None  # of that reminder
    messages_this_week: int
    stubborn: bool  # some borrowers do not answer any reminder
    forgetful: bool = False  # some pay on time only when reminded


def base_rate(s: Situation) -> float:
    if s.dpd == 0:
        if s.days_to_due == 0:
            return 0.1 if s.forgetful and not s.reminded_today else 0.55
        return 0.06 if s.days_to_due is not None and s.days_to_due <= 3 else 0.01
    if s.dpd <= 7:
        return 0.09
    if s.dpd <= 30:
        return 0.05
    if s.dpd <= 60:
        return 0.03
    return 0.01


def uplift(s: Situation) -> float:
    if not s.reminded_today or s.stubborn:
        return 0.0
    if s.dpd == 0:
        lift = 4.0 if s.forgetful else 0.3
    elif s.dpd <= 30:
        gentle_first = s.tone == "gentle" and s.first_time
        firm_repeat = s.tone == "firm" and not s.first_time
        lift = 0.9 if gentle_first else 0.75 if firm_repeat else 0.5
    else:
        lift = 0.35
    return lift * 0.6 ** max(0, s.messages_this_week - 1)


def pays_today(s: Situation, rng: random.Random) -> bool:
    if s.stubborn and s.dpd > 60:
        return False
    return rng.random() < min(0.95, base_rate(s) * (1 + uplift(s)))


def amount_paid(due: int, rng: random.Random) -> int:
    """Most pay what is due; some pay part of it (in whole yuan)."""
    if rng.random() < 0.75:
        return due
    return max(100, (due * rng.choice((30, 50, 70)) // 100) // 100 * 100)


PROMISES = ("明天还", "后天还", "15号还", "月底还", "发工资就还", "I will pay tomorrow")


def reply_today(s: Situation, paid: bool, rng: random.Random) -> str | None:
    """What a borrower reached by a reminder writes back today, if anything."""
    if not s.reminded_today:
        return None
    draw = rng.random()
    if paid:
        return rng.choice(("已还", "已经还款了", "I paid yesterday")) if draw < 0.08 else None
    fatigue = max(1, s.messages_this_week)
    firm = 1.5 if s.tone in ("firm", "late") else 1.0
    chances = (
        (0.002 * fatigue * firm, "退订"),
        (0.0004 * fatigue * firm, "再发就投诉"),
        (0.002, "打错了"),
        (0.06 if s.dpd > 0 else 0.01, rng.choice(PROMISES)),
        (0.015 if s.dpd > 0 else 0.0, "能分期吗"),
        (0.01 if s.dpd > 0 else 0.0, "最近没钱"),
        (0.01, "好的"),
    )
    edge = 0.0
    for chance, text in chances:
        edge += chance
        if draw < edge:
            return text
    return None
