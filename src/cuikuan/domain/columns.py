"""Which ledger field each file column holds: English and Chinese headers, and `--map` overrides.

    mapping = map_header(["客户编号", "姓名", "手机号", ...], overrides={"渠道": "ignore"})
    mapping.kind            # "instalments" or "payments", recognised from the fields present
    mapping.fields          # {field: [column index, ...]}
    mapping.extra           # columns kept as custom attributes

The alias table is the documented mapping (docs/import.md is generated from it and checked).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["instalments", "payments"]
IGNORE = "ignore"

# field -> (description, accepted headers). Headers compare after `header_key`.
FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "customer_id": (
        "customer's id in the core system",
        (
            "customer_id",
            "customer_no",
            "customer_number",
            "client_id",
            "cust_id",
            "客户编号",
            "客户号",
            "客户ID",
            "客户代码",
        ),
    ),
    "name": (
        "customer's full name",
        (
            "name",
            "customer_name",
            "full_name",
            "姓名",
            "客户姓名",
            "客户名称",
            "借款人姓名",
            "借款人",
        ),
    ),
    "phone": (
        "mobile number(s); several per cell split by ; , / 、",
        (
            "phone",
            "mobile",
            "phone_number",
            "mobile_phone",
            "msisdn",
            "tel",
            "phone2",
            "mobile2",
            "手机号",
            "手机号码",
            "手机",
            "联系电话",
            "电话",
            "电话号码",
            "手机号2",
            "备用手机号",
        ),
    ),
    "email": (
        "e-mail address",
        ("email", "e_mail", "mail", "email_address", "邮箱", "电子邮箱", "邮件地址"),
    ),
    "locale": ("message language, e.g. zh-CN, en", ("locale", "language", "lang", "语言")),
    "timezone": ("IANA time zone, e.g. Asia/Shanghai", ("timezone", "time_zone", "tz", "时区")),
    "tags": (
        "free labels for strategies, split by ; , / 、",
        ("tags", "tag", "segment", "标签", "客群"),
    ),
    "flags": (
        "states that stop contact: deceased, dispute, hardship, complaint, wrong_number, do_not_contact",
        ("flags", "flag", "标记", "特殊标记"),
    ),
    "loan_id": (
        "loan (借据) id in the core system",
        (
            "loan_id",
            "loan_no",
            "loan_number",
            "contract_no",
            "account_id",
            "account_no",
            "借据号",
            "借据编号",
            "贷款编号",
            "合同号",
            "合同编号",
            "账户号",
        ),
    ),
    "product": ("product name", ("product", "product_name", "产品", "产品名称")),
    "currency": (
        "ISO currency code; the settings' default when absent",
        ("currency", "ccy", "币种", "货币"),
    ),
    "instalment_no": (
        "instalment number, 1 for the first",
        (
            "instalment_no",
            "installment_no",
            "instalment",
            "installment",
            "period",
            "term_no",
            "期数",
            "期次",
            "当前期数",
        ),
    ),
    "due_date": (
        "date the instalment is due",
        ("due_date", "due", "应还日期", "到期日", "还款日", "应还款日"),
    ),
    "amount_due": (
        "amount due for the instalment",
        ("amount_due", "due_amount", "应还金额", "应还款金额", "本期应还"),
    ),
    "amount_paid": (
        "amount of the instalment paid so far (a snapshot)",
        ("amount_paid", "paid_amount", "已还金额", "实还金额"),
    ),
    "payment_id": (
        "payment (流水) id in the core system",
        (
            "payment_id",
            "payment_no",
            "transaction_id",
            "txn_id",
            "还款流水号",
            "流水号",
            "交易流水号",
        ),
    ),
    "paid_at": (
        "time of the payment, lender's local time",
        (
            "paid_at",
            "payment_time",
            "payment_date",
            "paid_date",
            "还款时间",
            "还款日期",
            "交易时间",
        ),
    ),
    "amount": ("amount of the payment", ("amount", "payment_amount", "还款金额", "交易金额")),
}

REQUIRED: dict[Kind, tuple[str, ...]] = {
    "instalments": (
        "customer_id",
        "name",
        "phone",
        "loan_id",
        "instalment_no",
        "due_date",
        "amount_due",
    ),
    "payments": ("payment_id", "loan_id", "paid_at", "amount"),
}
OPTIONAL: dict[Kind, tuple[str, ...]] = {
    "instalments": (
        "email",
        "locale",
        "timezone",
        "tags",
        "flags",
        "product",
        "currency",
        "amount_paid",
    ),
    "payments": ("currency", "customer_id"),
}
# Only the phone field may come from several columns; they are merged.
MULTI_COLUMN_FIELDS = frozenset({"phone"})


class HeaderError(ValueError):
    """The header cannot be mapped; the message names the columns."""


def header_key(text: str) -> str:
    """Compare headers ignoring case, width, spaces, separators and a trailing unit like (元)."""
    text = unicodedata.normalize("NFKC", text).strip().lower()
    text = re.sub(r"[(（\[][^)）\]]*[)）\]]$", "", text)
    return re.sub(r"[\s_\-.]+", "", text)


ALIASES: dict[str, str] = {header_key(a): f for f, (_, names) in FIELDS.items() for a in names}


@dataclass(frozen=True)
class Mapping:
    kind: Kind
    header: list[str]
    fields: dict[str, list[int]] = field(default_factory=dict)
    extra: dict[str, int] = field(default_factory=dict)

    def column(self, name: str) -> str:
        """The file's own header of a field's (first) column, for error messages."""
        return self.header[self.fields[name][0]]

    def has(self, name: str) -> bool:
        return name in self.fields


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """`--map column=field` options; field may be `ignore`."""
    out: dict[str, str] = {}
    for pair in pairs:
        column, sep, target = pair.partition("=")
        target = target.strip()
        if not sep or not column.strip() or not target:
            raise HeaderError(f"--map {pair!r}: expected COLUMN=FIELD")
        if target != IGNORE and target not in FIELDS:
            raise HeaderError(
                f"--map {pair!r}: unknown field {target!r}; fields are {', '.join(FIELDS)} or ignore"
            )
        out[header_key(column)] = target
    return out


def detect_kind(fields: set[str]) -> Kind | None:
    if {"payment_id", "paid_at", "amount"} <= fields:
        return "payments"
    if {"instalment_no", "due_date", "amount_due"} <= fields:
        return "instalments"
    return None


def map_header(
    header: list[str], overrides: dict[str, str] | None = None, kind: Kind | None = None
) -> Mapping:
    overrides = overrides or {}
    found: dict[str, list[int]] = {}
    extra: dict[str, int] = {}
    for index, raw in enumerate(header):
        key = header_key(raw)
        target = overrides.get(key) or ALIASES.get(key)
        if target == IGNORE or (not key and not raw.strip()):
            continue
        if target is None:
            if raw.strip() in extra:
                raise HeaderError(
                    f"column {raw.strip()!r} appears twice; rename one or use --map COLUMN=ignore"
                )
            extra[raw.strip()] = index
            continue
        found.setdefault(target, []).append(index)
    kind = kind or detect_kind(set(found))
    if kind is None:
        raise HeaderError(
            "cannot tell the kind of file from its header: an instalments file needs "
            f"{_names('instalment_no')}, {_names('due_date')} and {_names('amount_due')}; a payments file "
            f"{_names('payment_id')}, {_names('paid_at')} and {_names('amount')} (or pass --kind)"
        )
    allowed = set(REQUIRED[kind]) | set(OPTIONAL[kind])
    for name, indexes in list(found.items()):
        if name not in allowed:
            # A column that belongs to the other kind of file is data, not a mistake.
            for i in indexes:
                extra[header[i].strip()] = i
            del found[name]
        elif len(indexes) > 1 and name not in MULTI_COLUMN_FIELDS:
            cols = " and ".join(repr(header[i]) for i in indexes)
            raise HeaderError(
                f"columns {cols} both map to {name}; keep one or use --map COLUMN=ignore"
            )
    missing = [name for name in REQUIRED[kind] if name not in found]
    if missing:
        raise HeaderError(
            "; ".join(f"missing required column {n} (one of {_names(n)})" for n in missing)
        )
    return Mapping(kind=kind, header=header, fields=found, extra=extra)


def _names(name: str) -> str:
    return "/".join(FIELDS[name][1][:1] + tuple(a for a in FIELDS[name][1] if not a.isascii())[:2])


def mapping_table() -> str:
    """The documented mapping as a Markdown table (docs/import.md embeds it; a test keeps it so)."""
    lines = [
        "| field | file | required | what it holds | headers recognised |",
        "|---|---|---|---|---|",
    ]
    for name, (what, aliases) in FIELDS.items():
        both: tuple[Kind, ...] = ("instalments", "payments")
        kinds = [k for k in both if name in REQUIRED[k] or name in OPTIONAL[k]]
        required = ", ".join(k for k in kinds if name in REQUIRED[k]) or "no"
        lines.append(
            f"| `{name}` | {', '.join(kinds)} | {required} | {what} | {', '.join(aliases)} |"
        )
    return "\n".join(lines)
