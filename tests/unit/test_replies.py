"""Reading replies: every intent in both languages, dates and amounts, against labelled sets."""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from cuikuan.domain.replies import classify
from cuikuan.domain.reply_dates import promised_amount, promised_date
from cuikuan.services.replies import reply_rules

DATA = Path(__file__).resolve().parents[1] / "data"
TODAY = date(2026, 11, 29)  # a Sunday
RULES = reply_rules()


def labelled(name: str) -> list[tuple[str, str, str | None]]:
    rows = []
    for line in (DATA / name).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        rows.append((parts[0], parts[1], parts[2] if len(parts) > 2 else None))
    return rows


def accuracy(name: str) -> tuple[float, dict[str, float]]:
    good, total = Counter(), Counter()
    for intent, text, when in labelled(name):
        reading = classify(text, TODAY, RULES)
        total[intent] += 1
        if reading.intent == intent and (
            when is None or (reading.date is not None and reading.date.isoformat() == when)
        ):
            good[intent] += 1
    return sum(good.values()) / sum(total.values()), {i: good[i] / total[i] for i in total}


def test_the_labelled_set_covers_every_intent_and_is_read_right() -> None:
    overall, per_intent = accuracy("replies.tsv")
    assert len(labelled("replies.tsv")) >= 160
    assert set(per_intent) == {
        "opt_out",
        "opt_in",
        "help",
        "paid",
        "promise_to_pay",
        "installment",
        "hardship",
        "dispute",
        "wrong_number",
        "third_party",
        "complaint",
        "deceased",
        "human",
        "other",
    }
    assert overall >= 0.97
    assert min(per_intent.values()) >= 0.85


def test_replies_never_used_for_tuning_are_mostly_read_right() -> None:
    overall, _ = accuracy("replies_holdout.tsv")
    assert overall >= 0.8


def test_over_300_labelled_replies_cover_every_intent_in_both_languages() -> None:
    rows = [r for name in ("replies.tsv", "replies_holdout.tsv", "replies_fresh.tsv")
            for r in labelled(name)]  # fmt: skip
    assert len(rows) >= 300
    for intent in {r[0] for r in rows}:
        texts = [t for i, t, _ in rows if i == intent]
        assert any(t.isascii() for t in texts) and any(not t.isascii() for t in texts), intent
    overall, per_intent = accuracy("replies_fresh.tsv")
    assert overall >= 0.95 and min(per_intent.values()) >= 0.85


@pytest.mark.parametrize(
    ("text", "when"),
    [
        ("明天还", date(2026, 11, 30)),
        ("后天", date(2026, 12, 1)),
        ("十五号", date(2026, 12, 15)),
        ("28号", date(2026, 12, 28)),
        ("29号", date(2026, 11, 29)),
        ("下周一", date(2026, 11, 30)),
        ("周三", date(2026, 12, 2)),
        ("月底", date(2026, 11, 30)),
        ("1月3日", date(2027, 1, 3)),
        ("三天后", date(2026, 12, 2)),
        ("on Friday", date(2026, 12, 4)),
        ("next week", date(2026, 11, 30)),
        ("by the 30th", date(2026, 11, 30)),
        ("Dec 5", date(2026, 12, 5)),
        ("5th of January", date(2027, 1, 5)),
        ("in 3 days", date(2026, 12, 2)),
        ("发工资后", None),
    ],
)
def test_promised_dates_relative_to_the_day(text: str, when: date | None) -> None:
    assert promised_date(text, TODAY) == when


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("还500", Decimal(500)),
        ("500元", Decimal(500)),
        ("¥1,234.5", Decimal("1234.5")),
        ("pay $50 friday", Decimal(50)),
        ("15号还", None),
    ],
)
def test_promised_amounts(text: str, amount: Decimal | None) -> None:
    assert promised_amount(text) == amount


def test_evasions_and_scripts_do_not_matter() -> None:
    for text in ("退 订", "退訂", "ＳＴＯＰ", "s t o p", "Stop."):
        assert classify(text, TODAY, RULES).intent == "opt_out", text


def test_unclear_replies_go_to_a_person() -> None:
    mixed = classify("已经还了但金额不对", TODAY, RULES)
    assert mixed.intent == "dispute" and mixed.needs_person
    # An acknowledgement changes nothing; words no rule reads go to a person and hold the number.
    ack = classify("好的", TODAY, RULES)
    assert ack.intent == "other" and not ack.needs_person and not ack.unread
    unread = classify("这是什么情况我看不懂", TODAY, RULES)
    assert unread.unread and unread.needs_person and "hold" in unread.action
    vague = classify("过几天还", TODAY, RULES)
    assert vague.intent == "promise_to_pay" and vague.date is None and "ask" in vague.action


def borrowers(
    name: str = "replies_borrowers.tsv",
) -> list[tuple[tuple[str, ...], str, date | None]]:
    rows = []
    for line in (DATA / name).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        when = date.fromisoformat(parts[2]) if len(parts) > 2 and parts[2] else None
        rows.append((tuple(parts[0].split(",")), parts[1], when))
    return rows


def test_600_replies_as_borrowers_write_keep_every_safety_meaning() -> None:
    from cuikuan.domain.replies import SAFETY
    from cuikuan.domain.reply_scores import score

    rows = borrowers()
    assert len(rows) >= 600
    assert sum(len(wanted) > 1 for wanted, _, _ in rows) >= 100  # several meanings in one
    scores = score(rows, date(2026, 12, 4), RULES)
    for intent in SAFETY:
        assert scores.support(intent) >= 40, intent
        assert scores.recall(intent) >= 0.99, (intent, scores.recall(intent))
    for intent, support, precision, recall in scores.table():
        assert precision >= 0.9 and recall >= 0.9, (intent, support, precision, recall)
    assert scores.dates_right >= scores.dates_asked - 1
    fresh = score(borrowers("replies_borrowers_holdout.tsv"), date(2026, 12, 4), RULES)
    for intent in SAFETY:
        assert fresh.recall(intent) >= 0.99, (intent, fresh.recall(intent))
