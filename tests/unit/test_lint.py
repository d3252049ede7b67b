"""Banned wording in both languages, through the usual evasions, without flagging lawful facts."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cuikuan.domain.lint import LintRules, lint_text
from cuikuan.domain.lint_screen import wording_hits
from cuikuan.services.messages import wording_matcher

MATCHER = wording_matcher(None)
CN = LintRules(pack="cn", signature="【富勤金融】")


def rules_hit(text: str, rules: LintRules = CN) -> set[str]:
    return {f.rule for f in lint_text(text, rules, MATCHER) if f.severity == "error"}


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("【富勤金融】再不还款让你坐牢", "threat"),
        ("【富勤金融】你这个老赖", "insult"),
        ("【富勤金融】公安机关将介入", "impersonation"),
        ("【富勤金融】你已被列入黑名单", "blacklist"),
        ("【富勤金融】逾期将影响子女上学", "exaggeration"),
        ("【富勤金融】可以先借钱还款", "new_borrowing"),
        ("【富勤金融】我们将通知你单位", "third_party"),
        ("【富勤金融】需另付催收费200元", "extra_fees"),
        ("Pay now or you will be arrested", "threat"),
        ("You deadbeat, pay up", "insult"),
        ("This is the police: pay today", "impersonation"),
        ("You are blacklisted", "blacklist"),
        ("You will never get a loan again", "exaggeration"),
        ("Take out a payday loan and pay us", "new_borrowing"),
        ("We will contact your employer", "third_party"),
        ("A collection fee of $50 applies", "extra_fees"),
    ],
)
def test_each_banned_category_is_caught_in_both_languages(text: str, category: str) -> None:
    assert f"banned:{category}" in rules_hit(text)


@pytest.mark.parametrize(
    "text",
    [
        "【富勤金融】再不还款让你坐 牢",
        "【富勤金融】再不还款让你坐-牢！",
        "【富勤金融】再不還款讓你坐牢",  # traditional characters
        "【富勤金融】你这个老　赖",  # full-width space
        "Pay or go to J A I L",
        "Pay or go to j.a.i.l",
        "Pay or go to ＪＡＩＬ",  # full-width letters
        "Pay or go to JaIl",
    ],
)
def test_evasions_do_not_hide_banned_wording(text: str) -> None:
    assert any(r.startswith("banned:") for r in rules_hit(text))


@pytest.mark.parametrize(
    "text",
    [
        "【富勤金融】您的逾期记录将依规报送中国人民银行征信中心，请按时还款。",
        "【富勤金融】逾期記錄將依規報送徵信中心",
        "【富勤金融】您的账单今日到期，应还1,500.00元，可在App还款。",
        "Late payments are reported to credit bureaus. Reply STOP to opt out",
        "We have skills to help: call us about a plan",  # 'skill' is not 'kill', 'jailbreak' is not 'jail'
    ],
)
def test_lawful_factual_wording_is_not_flagged(text: str) -> None:
    assert not any(r.startswith("banned:") for r in rules_hit(text))


def test_cn_requires_the_signature_and_us_requires_opt_out() -> None:
    assert "required:signature" in rules_hit("您好，您的账单今日到期")
    us = LintRules(pack="us", require_opt_out=True)
    assert "required:opt-out" in rules_hit("Your payment is due", us)
    assert "required:opt-out" not in rules_hit("Your payment is due. Reply STOP to opt out", us)
    collector = LintRules(pack="us", require_opt_out=True, debt_collector=True)
    assert "required:debt-collector" in rules_hit("Due today. Reply STOP to opt out", collector)


def test_length_over_the_limit_is_an_error() -> None:
    assert "length" in rules_hit("【富勤金融】" + "您" * 300)


MATCHER = wording_matcher(None)


def _labelled(name: str) -> list[tuple[str, str]]:
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "data" / name
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            label, text = line.split("\t")
            rows.append((label, text))
    return rows


def test_400_labelled_messages_acts_are_caught_and_lawful_reminders_pass() -> None:
    from collections import Counter

    from cuikuan.services.messages import wording_matcher

    matcher = wording_matcher(None)
    rows = _labelled("lint_messages.tsv") + _labelled("lint_messages_holdout.tsv")
    assert len(rows) >= 400
    wanted, caught, false_alarms = Counter(), Counter(), []
    for label, text in rows:
        flagged = bool(matcher.find(text))
        if label == "lawful":
            if flagged:
                false_alarms.append(text)
        else:
            wanted[label] += 1
            caught[label] += flagged
    for label in ("third_party", "threat", "new_borrowing"):  # the paraphrase classes
        assert wanted[label] >= 40, label
    for label, n in wanted.items():
        assert caught[label] / n >= 0.95, (label, caught[label], n)
    # One known false alarm: a lawful text that names the borrower's family (BENCHMARKS.md).
    assert len(false_alarms) <= 1, false_alarms
    assert sum(label == "lawful" for label, _ in rows) >= 180


def test_the_plans_column_screen_flags_what_the_lint_flags() -> None:
    matcher = wording_matcher(None)
    texts = [t for _, t in _labelled("lint_messages.tsv") + _labelled("lint_messages_holdout.tsv")]
    texts += ["【富勤金融】王老赖，请还款", "Dear Mr Thief, pay now", "请联系我司客服"]
    got = wording_hits(pl.Series(texts), matcher)
    assert got.to_list() == [bool(matcher.find(t)) for t in texts]


@given(
    st.lists(
        st.sampled_from(["您的借款", "通知", "你单位", "your", "boss", "请还款", " ", "，", "pay",
                         "老赖", "visit", "our website", "征信中心", "不会上门", "上门", "借", "网贷"]),
        max_size=8,
    )
)  # fmt: skip
def test_column_screen_equals_the_lint_on_random_texts(parts: list[str]) -> None:
    text = "".join(parts)
    matcher = MATCHER
    got = wording_hits(pl.Series([text]), matcher)[0]
    assert got == bool(matcher.find(text)), text
