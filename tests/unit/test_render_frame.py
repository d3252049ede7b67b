"""The column renderer equals Jinja, row by row, for every shipped template and for flat
templates using every field and filter it claims to render; anything else is left to Jinja."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cuikuan.domain.message_context import Borrower, LenderFacts, LoanFacts, build_context
from cuikuan.domain.render_frame import COLUMNS, NotFlat, flat_pieces, render_frame
from cuikuan.domain.templates import Renderer, TemplateFile, TemplateProblem, parse_template
from cuikuan.services import messages

LENDER = LenderFacts(
    "富勤金融", "【富勤金融】", "400-800-1234", "https://example.com/kefu", "fuqin", "富勤App",
    "https://example.com/pay",
)  # fmt: skip
SHIPPED, _ = messages.load_templates(messages.shipped_templates_dir())

FLAT_BODIES = [
    "{{ customer.name }}|{{ customer.surname }}|{{ customer.honorific }}|{{ customer.phone_masked }}",
    "{{ loan.id }} {{ loan.tail }} {{ loan.masked }} {{ loan.product }} {{ loan.id | tail(6) }}",
    "{{ amounts.due }}/{{ amounts.overdue }}/{{ amounts.outstanding }}/{{ amounts.next_instalment }}",
    '{{ amounts.due | money("symbol") }} {{ amounts.overdue | money("plain") }}'
    ' {{ amounts.outstanding | money("suffix") }} {{ amounts.next_instalment | money }}',
    '{{ due_date }} {{ due_date | date }} {{ due_date | date("long") }} {{ days_to_due }} {{ dpd }}',
    "{{ signature }}{{ lender.name }}{{ lender.hotline }}{{ lender.online_service_url }}"
    "{{ lender.wechat }}{{ lender.app }}{{ payment_link }}{{ locale }}{{ currency }}",
    "{{ customer.name | mask }} {{ customer.name | mask(1, 1) }} {{ dpd | tail(1) }}",
    "  {{ attrs['渠道'] }} {{ attrs.city }}  ",
    "{{ customer.phone_masked | tail(2) }}{{ currency | mask(0, 1) }}{{ lender.hotline | tail }}",
]
NOT_FLAT = [
    "{% if dpd > 3 %}late{% endif %}",
    "{{ dpd + 1 }}",
    "{{ customer.name | upper }}",
    "{{ promise.date | date }}",
    "{{ customer.items }}",
    "{{ attrs.x.y }}",
    "{{ amounts.due.value }}",
]

names = st.sampled_from(
    ["张伟", "欧阳娜娜", "司马相如", "Wei Zhang", "Ann  Lee ", "李", "x", " 王五"]
)
attributes = st.sampled_from(
    [None, "{}", '{"性别": "男"}', '{"gender": "F", "渠道": "App"}', '{"sex": " female ", "city": "Shenzhen"}',
     '{"性别": "", "gender": "m", "渠道": 3, "city": null}'],
)  # fmt: skip
amounts = st.integers(min_value=0, max_value=10**13)
rows = st.fixed_dictionaries(
    {
        "name": names,
        "phone": st.sampled_from([None, "+8613800138000", "+14155550123", "12"]),
        "attributes": attributes,
        "external_id": st.text(alphabet="L0123456789-号", min_size=1, max_size=12),
        "currency": st.sampled_from(["CNY", "USD", "JPY", "EUR"]),
        "locale": st.sampled_from(["zh-CN", "en"]),
        "overdue": amounts,
        "outstanding": amounts,
        "next_instalment": amounts,
        "due_date": st.one_of(st.none(), st.dates(date(2020, 1, 1), date(2035, 12, 31))),
        "days_to_due": st.one_of(st.none(), st.integers(-400, 400)),
        "dpd": st.integers(0, 2000),
    }
)


def flat(body: str, locale: str = "zh-CN") -> TemplateFile:
    text = f"---\nname: t\nchannel: sms\ntone: gentle\ndescription: test\n---\n{body}\n"
    return parse_template(f"/x/t.{locale}.txt", text)


def one_by_one(renderer: Renderer, template: TemplateFile, frame: pl.DataFrame) -> list[str]:
    out = []
    for r in frame.iter_rows(named=True):
        attrs = {k: str(v) for k, v in json.loads(r["attributes"] or "{}").items() if v is not None}
        facts = LoanFacts(r["external_id"], None, r["currency"], r["overdue"], r["outstanding"],
                          r["next_instalment"], r["due_date"], r["days_to_due"], r["dpd"])  # fmt: skip
        borrower = Borrower(r["name"], r["phone"], attrs)
        out.append(renderer.render(template, build_context(borrower, facts, LENDER, r["locale"])))
    return out


def as_frame(data: list[dict[str, object]]) -> pl.DataFrame:
    return pl.DataFrame(data, schema=COLUMNS)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rows, min_size=1, max_size=25), st.sampled_from(range(len(FLAT_BODIES))))
def test_flat_templates_equal_jinja(data: list[dict[str, object]], which: int) -> None:
    template = flat(FLAT_BODIES[which])
    renderer = Renderer({template.path: template})
    pieces = flat_pieces(renderer, template)
    assert pieces is not None
    frame = as_frame(data)
    # When Jinja refuses a row (a missing attribute, an empty message), the column path must
    # refuse too, so the caller falls back to Jinja and reports it.
    assert outcome(lambda: render_frame(frame, pieces, LENDER).to_list()) == outcome(
        lambda: one_by_one(renderer, template, frame)
    )


@settings(max_examples=40, deadline=None)
@given(st.lists(rows, min_size=1, max_size=40))
def test_shipped_templates_equal_jinja(data: list[dict[str, object]]) -> None:
    renderer = Renderer({t.path: t for t in SHIPPED})
    frame = as_frame(data)
    for template in SHIPPED:
        pieces = flat_pieces(renderer, template)
        if pieces is None:
            assert any(w in template.body for w in ("promise", "plan")), template.path
            continue
        columns = outcome(lambda p=pieces: render_frame(frame, p, LENDER).to_list())  # type: ignore[misc]
        assert columns == outcome(lambda t=template: one_by_one(renderer, t, frame))  # type: ignore[misc]


def outcome(render: Callable[[], list[str]]) -> list[str] | None:
    """The texts, or None when rendering refused (Jinja with an error, the columns NotFlat)."""
    try:
        return render()
    except (NotFlat, TemplateProblem):
        return None


def test_every_plan_template_shipped_is_flat() -> None:
    renderer = Renderer({t.path: t for t in SHIPPED})
    plan_templates = [t for t in SHIPPED if "promise" not in t.name and "plan" not in t.name]
    assert plan_templates
    assert all(flat_pieces(renderer, t) is not None for t in plan_templates)


@pytest.mark.parametrize("body", NOT_FLAT)
def test_anything_else_is_left_to_jinja(body: str) -> None:
    template = flat(body)
    assert flat_pieces(Renderer({template.path: template}), template) is None


def test_many_rows_keep_their_order() -> None:
    template = flat("{{ customer.honorific }}:{{ amounts.due }}:{{ due_date | date }}")
    renderer = Renderer({template.path: template})
    pieces = flat_pieces(renderer, template)
    assert pieces is not None
    day = date(2026, 11, 30)
    data = [
        {"name": f"张{i % 7}", "phone": None, "attributes": '{"性别": "女"}' if i % 3 else "{}",
         "external_id": f"L{i:06d}", "currency": "CNY", "locale": "zh-CN", "overdue": i % 5 * 100,
         "outstanding": i, "next_instalment": i * 3, "due_date": day + timedelta(days=i % 9),
         "days_to_due": i % 9, "dpd": 0}
        for i in range(3000)
    ]  # fmt: skip
    frame = as_frame(data)
    assert render_frame(frame, pieces, LENDER).to_list() == one_by_one(renderer, template, frame)
