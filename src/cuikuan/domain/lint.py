"""Lint messages: banned wording (threats, insults, impersonation, invented blacklists,
exaggeration, new borrowing, third parties, invented fees), the parts a jurisdiction requires, and
length. Pure: word lists and templates come in as values.

    matcher = WordingMatcher([parse_wordlist("zh", data_zh), parse_wordlist("en", data_en)])
    findings = lint_text("【富勤金融】再不还款就上门催收", rules, matcher)

Matching survives the usual evasions: spaces or punctuation between characters, full-width
letters, traditional characters, mixed case; lawful wording listed under `allow` is masked out
first, so "逾期记录将依规报送征信中心" is not an "invented blacklist".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

import opencc

from cuikuan.domain.sms import measure

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    rule: str
    message: str
    severity: Severity = "error"
    line: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {"rule": self.rule, "message": self.message, "severity": self.severity}


@dataclass(frozen=True)
class Act:
    """Who is told or visited, what is urged: words of the act, then (within `gap` characters
    for Chinese, words for English) words of its object, e.g. 通知 + 你单位, "tell" + "your
    boss". Each part is a list of alternatives; a part may be empty (the act alone)."""

    first: tuple[str, ...]
    second: tuple[str, ...]
    gap: int = 6


@dataclass(frozen=True)
class Category:
    name: str
    description: str
    phrases: tuple[str, ...]
    acts: tuple[Act, ...] = ()


@dataclass(frozen=True)
class Wordlist:
    language: Literal["zh", "en"]
    categories: tuple[Category, ...]
    allow: tuple[str, ...] = ()


def parse_wordlist(
    language: Literal["zh", "en"], data: Mapping[str, Any], source: str = ""
) -> Wordlist:
    """A word list from its TOML data: [category] description, phrases; [allow] phrases."""
    categories = []
    allow: tuple[str, ...] = ()
    for name, table in data.items():
        if not isinstance(table, Mapping) or not isinstance(table.get("phrases"), list):
            raise ValueError(f"{source}: [{name}] needs a list `phrases`")
        phrases = tuple(str(p) for p in table["phrases"] if str(p).strip())
        if name == "allow":
            allow = phrases
        else:
            acts = tuple(_act(a, f"{source}: [{name}] acts") for a in table.get("acts", []))
            categories.append(Category(name, str(table.get("description", name)), phrases, acts))
    return Wordlist(language, tuple(categories), allow)


def _act(data: Any, where: str) -> Act:
    if not isinstance(data, Mapping) or not isinstance(data.get("first"), list):
        raise ValueError(f"{where}: each act needs a list `first` (and `second`, `gap`)")
    second = data.get("second", [])
    gap = data.get("gap", 6)
    if not isinstance(second, list) or not isinstance(gap, int) or not 0 <= gap <= 30:
        raise ValueError(f"{where}: `second` must be a list and `gap` a number from 0 to 30")
    return Act(tuple(str(x) for x in data["first"]), tuple(str(x) for x in second), gap)


def act_pattern(act: Act, language: Literal["zh", "en"]) -> str:
    """The act as a regular expression over the normalised view (`normalise_zh` /
    `normalise_en`): the same pattern the plan's column screen uses."""
    norm = normalise_zh if language == "zh" else normalise_en

    def alternatives(words: tuple[str, ...]) -> str:
        forms = sorted({norm(w).strip() for w in words if norm(w).strip()}, key=len, reverse=True)
        # Normalised forms hold only letters, digits and single spaces: nothing to escape, and
        # the pattern reads the same to Python's `re` and to Polars (Rust's regex).
        return "(?:" + "|".join(forms) + ")"

    first = alternatives(act.first)
    if not act.second:
        return first if language == "zh" else f" {first} "
    if language == "zh":
        return f"{first}.{{0,{act.gap}}}{alternatives(act.second)}"
    return f" {first} (?:[^ ]+ ){{0,{act.gap}}}{alternatives(act.second)} "


def merge(lists: Iterable[Wordlist]) -> list[Wordlist]:
    """Lists of one language merged: a compliance officer's file extends the shipped one."""
    by_language: dict[str, Wordlist] = {}
    for wl in lists:
        old = by_language.get(wl.language)
        if old is None:
            by_language[wl.language] = wl
            continue
        cats = {c.name: c for c in old.categories}
        for c in wl.categories:
            prev = cats.get(c.name)
            cats[c.name] = Category(
                c.name,
                prev.description if prev else c.description,
                (prev.phrases if prev else ()) + c.phrases,
                (prev.acts if prev else ()) + c.acts,
            )
        by_language[wl.language] = Wordlist(wl.language, tuple(cats.values()), old.allow + wl.allow)
    return list(by_language.values())


@cache
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def normalise_zh(text: str) -> str:
    """Full-width to half-width, traditional to simplified, lower case, only letters and digits."""
    text = _t2s().convert(unicodedata.normalize("NFKC", text)).lower()
    return "".join(c for c in text if c.isalnum())


def normalise_en(text: str) -> str:
    """Words separated by single spaces, runs of single letters joined, padded with spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
    words = re.findall(r"[a-z0-9]+", text)
    joined: list[str] = []
    run: list[str] = []
    for word in [*words, ""]:
        if len(word) == 1 and word.isalpha():
            run.append(word)
            continue
        if run:
            joined.append("".join(run) if len(run) > 1 else run[0])
            run = []
        if word:
            joined.append(word)
    return " " + " ".join(joined) + " "


@dataclass
class WordingMatcher:
    lists: Sequence[Wordlist]
    _compiled: list[tuple[str, Category, str]] = field(default_factory=list, init=False)
    _acts: list[tuple[str, Category, re.Pattern[str]]] = field(default_factory=list, init=False)
    _allow: dict[str, list[str]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        for wl in self.lists:
            norm = normalise_zh if wl.language == "zh" else normalise_en
            self._allow[wl.language] = [n for n in (norm(p).strip() for p in wl.allow) if n]
            for category in wl.categories:
                for phrase in category.phrases:
                    normal = norm(phrase).strip()
                    if normal:
                        self._compiled.append((wl.language, category, normal))
                for act in category.acts:
                    pattern = re.compile(act_pattern(act, wl.language))
                    self._acts.append((wl.language, category, pattern))

    def find(self, text: str) -> list[tuple[Category, str]]:
        """(category, phrase) for every banned phrase in `text`, once each."""
        views = {"zh": normalise_zh(text), "en": normalise_en(text)}
        for language, allowed in self._allow.items():
            for phrase in allowed:
                views[language] = views[language].replace(phrase, " " if language == "en" else "|")
        hits: list[tuple[Category, str]] = []
        for language, category, phrase in self._compiled:
            needle = f" {phrase} " if language == "en" else phrase
            if needle in views[language] and (category, phrase) not in hits:
                hits.append((category, phrase))
        for language, category, pattern in self._acts:
            found = pattern.search(views[language])
            if found and (category, found.group(0).strip()) not in hits:
                hits.append((category, found.group(0).strip()))
        return hits

    def screen(self) -> dict[str, tuple[list[str], list[str], str]]:
        """Per language: (allowed phrases, banned phrases, one pattern of every act) over the
        normalised views, for screening a column of rendered texts at once."""
        out: dict[str, tuple[list[str], list[str], str]] = {}
        for wl in self.lists:
            phrases = [p for lang, _, p in self._compiled if lang == wl.language]
            acts = [pat.pattern for lang, _, pat in self._acts if lang == wl.language]
            out[wl.language] = (
                self._allow.get(wl.language, []),
                [f" {p} " if wl.language == "en" else p for p in phrases],
                "|".join(f"(?:{a})" for a in acts),
            )
        return out


OPT_OUT = {"zh": ("退订", "回t", "拒收", "回复r", "回r"), "en": ("stop",)}


@dataclass(frozen=True)
class LintRules:
    pack: Literal["cn", "us", "eu"] = "cn"
    signature: str = ""
    max_segments: int = 3
    max_cn_billing_units: int = 3
    require_opt_out: bool = False
    debt_collector: bool = False


def wording_findings(text: str, matcher: WordingMatcher) -> list[Finding]:
    return [
        Finding(f"banned:{category.name}", f"{category.description}: {phrase!r}")
        for category, phrase in matcher.find(text)
    ]


def required_findings(text: str, rules: LintRules, tone: str | None = None) -> list[Finding]:
    out = []
    if rules.require_opt_out and tone != "confirmation":
        zh, en = normalise_zh(text), normalise_en(text)
        if not any(k in zh for k in OPT_OUT["zh"]) and " stop " not in en:
            out.append(
                Finding(
                    "required:opt-out",
                    "every text must say how to opt out (e.g. 'Reply STOP to opt out', '回T退订')",
                )
            )
    if rules.debt_collector and "debt collector" not in normalise_en(text):
        out.append(
            Finding(
                "required:debt-collector",
                "a debt collector's messages must say they are from a debt collector",
            )
        )
    return out


def length_findings(text: str, rules: LintRules) -> list[Finding]:
    m = measure(text)
    out = []
    if m.segments > rules.max_segments:
        out.append(
            Finding(
                "length",
                f"{m.segments} SMS segments ({m.encoding}, {m.units} units); at most {rules.max_segments}",
            )
        )
    if rules.pack == "cn":
        if m.cn_billing_units > rules.max_cn_billing_units:
            out.append(
                Finding(
                    "length",
                    f"{m.cn_billing_units} billing units ({m.characters} characters); at most {rules.max_cn_billing_units}",
                )
            )
        elif m.cn_billing_units > 1:
            out.append(
                Finding(
                    "length",
                    f"{m.cn_billing_units} billing units ({m.characters} characters)",
                    "warning",
                )
            )
    return out


def signature_findings(text: str, rules: LintRules) -> list[Finding]:
    if rules.pack == "cn" and rules.signature and not text.startswith(rules.signature):
        return [
            Finding(
                "required:signature",
                f"a Chinese SMS starts with the lender's signature {rules.signature}",
            )
        ]
    return []


def lint_text(
    text: str, rules: LintRules, matcher: WordingMatcher, tone: str | None = None
) -> list[Finding]:
    """Everything about one rendered message."""
    return [
        *wording_findings(text, matcher),
        *signature_findings(text, rules),
        *required_findings(text, rules, tone),
        *length_findings(text, rules),
    ]
