"""Banned wording in both languages, through the usual evasions, without flagging lawful facts."""

from __future__ import annotations

import pytest

from cuikuan.domain.lint import LintRules, lint_text
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
