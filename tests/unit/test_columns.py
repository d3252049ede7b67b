import pytest

from cuikuan.domain.columns import FIELDS, HeaderError, header_key, map_header, parse_overrides

CN_INSTALMENTS = [
    "客户编号",
    "姓名",
    "手机号",
    "借据号",
    "期数",
    "应还日期",
    "应还金额",
    "已还金额",
    "渠道来源",
]
EN_PAYMENTS = ["Payment ID", "Loan ID", "Paid At", "Amount"]


def test_chinese_instalment_header_is_recognised_and_unknown_columns_kept() -> None:
    m = map_header(CN_INSTALMENTS)
    assert m.kind == "instalments"
    assert m.fields["amount_paid"] == [7]
    assert m.extra == {"渠道来源": 8}


def test_english_payment_header_is_recognised() -> None:
    m = map_header(EN_PAYMENTS)
    assert m.kind == "payments"
    assert set(m.fields) == {"payment_id", "loan_id", "paid_at", "amount"}


def test_units_case_and_width_do_not_matter() -> None:
    assert header_key("应还金额（元）") == header_key("应还金额") == header_key("应还金额(元)")
    assert header_key("Customer ID") == header_key("customer_id")


def test_missing_required_column_names_what_would_do() -> None:
    with pytest.raises(HeaderError, match="missing required column phone"):
        map_header([c for c in CN_INSTALMENTS if c != "手机号"])


def test_unknown_kind_asks_for_kind() -> None:
    with pytest.raises(HeaderError, match="--kind"):
        map_header(["a", "b"])


def test_map_option_maps_an_unknown_header() -> None:
    header = [*CN_INSTALMENTS[:2], "移动电话", *CN_INSTALMENTS[3:]]
    m = map_header(header, parse_overrides(["移动电话=phone"]))
    assert m.fields["phone"] == [2]


def test_map_option_refuses_unknown_fields() -> None:
    with pytest.raises(HeaderError, match="unknown field"):
        parse_overrides(["x=nonsense"])


def test_two_columns_for_one_field_are_refused() -> None:
    with pytest.raises(HeaderError, match="both map to name"):
        map_header([*CN_INSTALMENTS, "客户姓名"])


def test_every_field_has_a_chinese_and_an_english_header() -> None:
    for name, (_, aliases) in FIELDS.items():
        assert any(a.isascii() for a in aliases), name
        assert any(not a.isascii() for a in aliases), name
