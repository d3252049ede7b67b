"""Reading a borrower's reply: intent, confidence, and for a promise its date and amount.

    reading = classify("我15号还500", date(2026, 11, 29), rules)
    reading.intent, reading.confidence, reading.date, reading.amount

The rules are data (resources/replies.toml): phrases per intent, matched after normalising
(full-width, traditional characters, case, spaces and punctuation do not matter). When several
intents match, the highest rank wins with lower confidence; low confidence goes to a person.

Safety meanings (opt-out, complaint, death, wrong number, dispute) are different: found anywhere
in a reply, whatever else it says, each takes effect at once (`Reading.safety`, strictest first),
and a mixed reply still goes to a person. A false stop costs less than a missed one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from cuikuan.domain.lint import normalise_en, normalise_zh
from cuikuan.domain.reply_dates import promised_amount, promised_date

INTENTS = (
    "opt_out", "opt_in", "help", "paid", "promise_to_pay", "installment", "hardship", "dispute",
    "wrong_number", "third_party", "complaint", "deceased", "human", "other",
)  # fmt: skip
CONFIDENT = 0.7
# Strictest first: what each stops (the person entirely, collection, the number).
SAFETY = ("deceased", "complaint", "dispute", "wrong_number", "opt_out")
# A reply is read from its first characters only: bounded time whatever a sender sends.
MAX_REPLY_CHARS = 2_000
# A date with one of these in the reply reads as a promise that can be recorded.
PAY_WORDS = ("还", "付", "转", "交", "打款", "pay", "send", "transfer")

ACTIONS = {
    "opt_out": "stop this channel to this number, in the plan and at dispatch",
    "opt_in": "restore this channel to this number",
    "help": "answer with how to pay and whom to call",
    "paid": "pause reminders a few days and create a verification task",
    "promise_to_pay": "record the promise; pause reminders until its date plus grace",
    "installment": "pause reminders and create a task to agree a plan",
    "hardship": "pause reminders and create a task",
    "dispute": "pause reminders and create a task",
    "wrong_number": "suppress this number for every customer who has it; data-fix task",
    "third_party": "create a task (never discuss the debt with a third party)",
    "complaint": "stop automated messages to this person; high-priority task",
    "deceased": "stop everything; task",
    "human": "create a task for an agent to call back",
    "other": "create a task for a person to read it",
}


@dataclass(frozen=True)
class Rule:
    intent: str
    rank: int
    exact: tuple[str, ...]
    contains: tuple[str, ...]
    # Phrases that look like this intent's but are not ("烦死了" is not a death): taken out of
    # the text before this intent's `contains` are looked for.
    unless: tuple[str, ...] = ()
    # Regular expressions over the normalised views (the English one for ASCII patterns): an act
    # in any words ("don't send me anything", "别再给我发了"), not one listed phrase.
    patterns: tuple[re.Pattern[str], ...] = ()


@dataclass(frozen=True)
class Reading:
    intent: str
    confidence: float
    date: date | None
    amount: Decimal | None
    matched: tuple[str, ...]  # the phrases that fired
    safety: tuple[str, ...] = ()  # every safety meaning found, strictest first
    found: tuple[str, ...] = ()  # every intent found, highest rank first

    @property
    def needs_person(self) -> bool:
        return self.confidence < CONFIDENT or self.unread or len(self.found) > 1

    @property
    def unread(self) -> bool:
        """Nothing in the reply could be read (not even an acknowledgement): a stop in words
        the rules do not know yet may be in it, so the number waits for a person."""
        return self.intent == "other" and not self.matched

    @property
    def strictest(self) -> str | None:
        return self.safety[0] if self.safety else None

    @property
    def action(self) -> str:
        if self.intent == "promise_to_pay" and self.date is None:
            return "ask the borrower for a date (no date in the reply); task"
        if self.intent == "other" and not self.unread:
            return "nothing: an acknowledgement"
        if self.unread:
            return "hold SMS to this number and create a task for a person to read it"
        return ACTIONS[self.intent]


def parse_rules(data: Mapping[str, Any]) -> list[Rule]:
    rules = []
    for intent, table in data.items():
        if intent not in INTENTS:
            raise ValueError(f"unknown intent {intent!r}; intents are {', '.join(INTENTS)}")
        rules.append(
            Rule(
                intent,
                int(table.get("rank", 0)),
                tuple(table.get("exact", ())),
                tuple(table.get("contains", ())),
                tuple(table.get("unless", ())),
                tuple(re.compile(p) for p in table.get("patterns", ())),
            )
        )
    return sorted(rules, key=lambda r: -r.rank)


def _views(text: str) -> tuple[str, str]:
    return normalise_zh(text), normalise_en(text)


def _is_ascii(phrase: str) -> bool:
    return phrase.isascii()


def _hit_exact(phrase: str, zh: str, en: str, raw: str) -> bool:
    phrase_zh, phrase_en = normalise_zh(phrase), normalise_en(phrase).strip()
    if not phrase_zh and not phrase_en:  # punctuation only, such as "?": compare as typed
        return raw.strip() == phrase
    if _is_ascii(phrase):
        return bool(en.strip()) and en.strip() == phrase_en
    return zh == phrase_zh


def _hit_contains(phrase: str, zh: str, en: str) -> bool:
    if _is_ascii(phrase):
        needle = normalise_en(phrase)
        return needle.strip() != "" and needle in en
    needle = normalise_zh(phrase)
    return needle != "" and needle in zh


def _without(rule: Rule, zh: str, en: str) -> tuple[str, str]:
    for phrase in rule.unless:
        if _is_ascii(phrase):
            en = en.replace(normalise_en(phrase), " | ")
        else:
            zh = zh.replace(normalise_zh(phrase), "|")
    return zh, en


def classify(text: str, today: date, rules: Sequence[Rule]) -> Reading:
    text = text[:MAX_REPLY_CHARS]
    zh, en = _views(text)
    exact = [(r, p) for r in rules for p in r.exact if _hit_exact(p, zh, en, text)]
    hits = [(r, p) for r in rules for p in r.contains if _hit_contains(p, *_without(r, zh, en))]
    hits += [
        (r, p.pattern)
        for r in rules
        for p in r.patterns
        if p.search(_without(r, zh, en)[1 if p.pattern.isascii() else 0])
    ]
    hits.sort(key=lambda h: -h[0].rank)
    found = tuple(
        dict.fromkeys(r.intent for r, _ in sorted(exact + hits, key=lambda h: -h[0].rank))
    )
    safety = tuple(i for i in SAFETY if i in found)
    if exact:
        rule, phrase = exact[0]
        confidence = 0.97 if len(found) == 1 else 0.8
        return _finish(rule.intent, confidence, text, today, (phrase,), safety, found)
    if not hits:
        when = promised_date(text, today)
        if when is not None:  # "15号", "friday": a bare date is a promise more often than not
            sure = any(w in zh or w in en for w in PAY_WORDS)
            return Reading(
                "promise_to_pay", 0.8 if sure else 0.6, when, promised_amount(text), (), (),
                ("promise_to_pay",),
            )  # fmt: skip
        return Reading("other", 0.3, None, None, ())
    best = hits[0][0]  # rules are sorted by rank
    confidence = 0.88 if len(found) == 1 else 0.62
    matched = tuple(p for r, p in hits if r.intent == best.intent)
    return _finish(best.intent, confidence, text, today, matched, safety, found)


def _finish(
    intent: str,
    confidence: float,
    text: str,
    today: date,
    matched: tuple[str, ...],
    safety: tuple[str, ...] = (),
    found: tuple[str, ...] = (),
) -> Reading:
    if intent != "promise_to_pay":
        # A promise beside another meaning ("最近困难，15号还500") keeps its date and amount.
        when = promised_date(text, today) if "promise_to_pay" in found else None
        amount = promised_amount(text) if when is not None else None
        return Reading(intent, confidence, when, amount, matched, safety, found)
    when = promised_date(text, today)
    return Reading(
        intent,
        confidence if when else min(confidence, 0.65),
        when,
        promised_amount(text),
        matched,
        safety,
        found,
    )
