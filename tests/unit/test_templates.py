"""Templates: sandboxed, strict, errors with file and line; the starter set renders and is clean."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from cuikuan.domain.message_context import Borrower, LenderFacts, honorific, sample_contexts
from cuikuan.domain.templates import Money, Renderer, TemplateProblem, mask, parse_template
from cuikuan.services import messages
from cuikuan.settings import Settings, default_settings_text

LENDER = LenderFacts(
    "富勤金融",
    "【富勤金融】",
    "400-800-1234",
    "https://example.com/kefu",
    "fuqin",
    "富勤金融App",
    "https://example.com/pay",
)
SETTINGS = Settings.model_validate(tomllib.loads(default_settings_text()))


def template(body: str, name: str = "t", locale: str = "zh-CN") -> str:
    return f"---\nname: {name}\nchannel: sms\ntone: gentle\ndescription: test\n---\n{body}\n"


def render(body: str, locale: str = "zh-CN") -> str:
    t = parse_template(f"/x/t.{locale}.txt", template(body, locale=locale))
    return Renderer({t.path: t}).render(t, sample_contexts(LENDER, locale)[0])


def problem(body: str) -> TemplateProblem:
    with pytest.raises(TemplateProblem) as info:
        render(body)
    return info.value


def test_fields_and_filters_render() -> None:
    text = render(
        "{{ signature }}{{ customer.honorific }}，{{ loan.masked }}，{{ amounts.next_instalment }}，{{ amounts.next_instalment | money('symbol') }}，{{ due_date | date }}，{{ customer.phone_masked }}"
    )
    assert text == "【富勤金融】张先生，尾号1234，1,500.00元，¥1,500.00，12月2日，138****8000"


def test_english_money_and_dates() -> None:
    assert (
        render("{{ amounts.next_instalment }} due {{ due_date | date }}", "en")
        == "CN¥1,500.00 due Dec 2"
    )


@pytest.mark.parametrize(
    ("body", "rule", "line"),
    [
        ("{{ customer.nmae }}", "unknown-field", 7),
        ("ok\n{{ nonsense }}", "unknown-field", 8),
        ("{% if %}", "syntax", 7),
        ("line one\n{{ ''.__class__.__mro__ }}", "unsafe", 8),
        ("{{ cycler.__init__.__globals__ }}", "unknown-field", 7),
        ("{{ customer.name.__class__ }}", "unsafe", 7),
        ("{% if false %}x{% endif %}", "empty", 7),
    ],
)
def test_bad_templates_name_file_line_and_rule(body: str, rule: str, line: int) -> None:
    err = problem(body)
    assert (err.file, err.rule, err.line) == ("/x/t.zh-CN.txt", rule, line)


def test_a_header_without_its_fields_is_refused() -> None:
    with pytest.raises(TemplateProblem, match="the header needs tone"):
        parse_template("/x/a.zh-CN.txt", "---\nname: a\nchannel: sms\ndescription: d\n---\nhi\n")
    with pytest.raises(TemplateProblem, match=r"expected NAME\.LOCALE\.txt"):
        parse_template("/x/a.txt", template("hi"))


def test_money_is_exact_and_formats_by_locale_and_currency() -> None:
    assert Money(123450, "CNY", "zh-CN").format() == "1,234.50元"
    assert Money(123450, "CNY", "zh-CN").format("symbol") == "¥1,234.50"
    assert Money(123450, "USD", "en-US").format() == "$1,234.50"
    assert Money(1500, "JPY", "en").format() == "¥1,500"


def test_masks_and_honorifics() -> None:
    assert mask("+8613800138000") == "138****8000"
    assert honorific(Borrower("欧阳娜娜", None, {"性别": "女"}), "zh-CN") == "欧阳女士"
    assert honorific(Borrower("李雷", None, {}), "zh-CN") == "李雷"


def test_every_starter_template_renders_and_is_lint_clean() -> None:
    findings = messages.check_templates(SETTINGS)
    assert [f for f in findings if f.severity == "error"] == []
    names = {p.name.split(".")[0] for p in messages.shipped_templates_dir().glob("*.txt")}
    assert names == {
        "pre_due_3d",
        "pre_due_1d",
        "due_today",
        "overdue_gentle",
        "overdue_firm",
        "overdue_late",
        "promise_reminder",
        "plan_reminder",
        "optout_confirmation",
    }


def test_chinese_starter_templates_fit_one_billing_unit_for_every_sample() -> None:
    from cuikuan.domain.sms import measure

    templates, _ = messages.load_templates(messages.shipped_templates_dir())
    renderer = Renderer({t.path: t for t in templates})
    for t in templates:
        if t.locale != "zh-CN":
            continue
        for context in sample_contexts(LENDER, "zh-CN"):
            text = renderer.render(t, context)
            assert measure(text).cn_billing_units == 1, (t.name, text)


def test_check_reports_a_missing_locale_and_bad_files(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "hello.zh-CN.txt").write_text(
        template("{{ signature }}您好", name="hello"), encoding="utf-8"
    )
    (folder / "broken.zh-CN.txt").write_text(
        template("{{ signature }}{% for %}", name="broken"), encoding="utf-8"
    )
    (folder / "broken.en.txt").write_text(
        template("{{ signature }}Hi {{ customer.nmae }}", name="broken"), encoding="utf-8"
    )
    (folder / "rude.zh-CN.txt").write_text(
        template("{{ signature }}您好\n再不还钱就通知你单位，老 賴", name="rude"), encoding="utf-8"
    )
    (tmp_path / "cuikuan.toml").write_text(default_settings_text(), encoding="utf-8")
    from cuikuan.settings import load_settings

    settings = load_settings(tmp_path / "cuikuan.toml", environ={})
    found = {(Path(f.file).name, f.line, f.rule) for f in messages.check_templates(settings)}
    assert ("hello.zh-CN.txt", 1, "missing-locale") in found
    assert ("broken.zh-CN.txt", 7, "syntax") in found
    assert ("broken.en.txt", 7, "unknown-field") in found
    assert ("rude.zh-CN.txt", 8, "banned:third_party") in found
    assert ("rude.zh-CN.txt", 8, "banned:insult") in found


def test_a_tip_is_added_only_when_it_costs_nothing() -> None:
    from hypothesis import given
    from hypothesis import strategies as st

    from cuikuan.domain.sms import measure
    from cuikuan.domain.tips import with_tip

    tips = messages.load_tips("zh-CN")
    short = "【富勤金融】您好，您的借款明天到期。"
    assert with_tip(short, tips, "C1/2026-11-29") != short
    full = "【富勤金融】" + "您" * 60
    assert with_tip(full, tips, "C1/2026-11-29") == full

    @given(st.text(max_size=200), st.text(max_size=10))
    def never_costs_more(text: str, key: str) -> None:
        before, after = measure(text), measure(with_tip(text, tips, key))
        assert after.segments <= before.segments
        assert after.cn_billing_units <= before.cn_billing_units

    never_costs_more()
