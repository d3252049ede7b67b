"""Many messages at once: a flat template rendered as column operations over a frame.

    pieces = flat_pieces(renderer, template)          # None: the template needs Jinja per row
    texts = render_frame(frame, pieces, lender)       # one text per row, as Jinja would give

A *flat* template is text and `{{ field | filter }}` outputs only (no `{% if %}`, no loops):
every shipped template is. Such a template is the concatenation of its pieces, so it is rendered
for a whole frame at once: plain fields are column expressions, and a field behind a filter or a
rule of its own (honorifics, money, dates) is computed by the same Python functions the context
uses, once per distinct input, then joined back. Property tests hold the result equal to
rendering each row through the sandboxed Jinja environment; anything this module does not know
makes `flat_pieces` return None, and the caller renders those rows one by one through Jinja.

The frame carries one row per message with: name, phone, attributes (JSON text), external_id,
currency, locale, overdue, outstanding, next_instalment (minor units), due_date, days_to_due, dpd.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl
from jinja2 import TemplateError, nodes

from cuikuan.domain.message_context import (
    GENDER_ATTRIBUTES,
    Borrower,
    LenderFacts,
    LoanFacts,
    attributes,
    build_context,
)
from cuikuan.domain.message_context import honorific as _honorific
from cuikuan.domain.message_context import surname as _surname
from cuikuan.domain.templates import FILTERS, Money, Renderer, TemplateFile, format_day, mask

COLUMNS = {
    "name": pl.String, "phone": pl.String, "attributes": pl.String, "external_id": pl.String,
    "currency": pl.String, "locale": pl.String, "overdue": pl.Int64, "outstanding": pl.Int64,
    "next_instalment": pl.Int64, "due_date": pl.Date, "days_to_due": pl.Int64, "dpd": pl.Int64,
}  # fmt: skip


@dataclass(frozen=True)
class Field:
    path: tuple[str, ...]  # ("amounts", "overdue"), ("dpd",), ("attrs", "渠道来源")
    filters: tuple[tuple[str, tuple[object, ...]], ...] = ()


Piece = str | Field
MONEY_LEAVES = ("due", "overdue", "outstanding", "next_instalment")
LENDER_LEAVES = ("name", "hotline", "online_service_url", "wechat", "app")


def flat_pieces(renderer: Renderer, template: TemplateFile) -> list[Piece] | None:
    """The template as literal text and fields, or None when it is not flat or uses a field
    or filter this module does not render (the caller then renders it per row)."""
    renderer.check_fields(template)
    ast = renderer.env.parse(template.body)
    pieces: list[Piece] = []
    for node in ast.body:
        if not isinstance(node, nodes.Output):
            return None
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                pieces.append(child.data)
                continue
            found = _field(child)
            if found is None or not _known(found):
                return None
            pieces.append(found)
    return pieces


def _field(node: nodes.Node) -> Field | None:
    if isinstance(node, nodes.Filter):
        inner = _field(node.node) if node.node is not None else None
        if inner is None or node.kwargs or node.dyn_args or node.dyn_kwargs:
            return None
        if node.name not in FILTERS or not all(isinstance(a, nodes.Const) for a in node.args):
            return None
        args = tuple(a.value for a in node.args if isinstance(a, nodes.Const))
        return Field(inner.path, (*inner.filters, (node.name, args)))
    if isinstance(node, nodes.Name):
        return Field((node.name,))
    if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
        return Field((node.node.name, node.attr))
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.node, nodes.Name)
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
    ):
        return Field((node.node.name, node.arg.value))
    return None


def _known(f: Field) -> bool:
    head, rest = f.path[0], f.path[1:]
    allowed: dict[str, tuple[str, ...]] = {
        "customer": ("name", "surname", "honorific", "phone_masked"),
        "loan": ("id", "tail", "masked", "product"),
        "amounts": MONEY_LEAVES,
        "lender": LENDER_LEAVES,
    }
    if head in (
        "signature",
        "payment_link",
        "locale",
        "currency",
        "dpd",
        "days_to_due",
        "due_date",
    ):
        ok = not rest
    elif head == "attrs":
        ok = len(rest) == 1
    else:
        ok = len(rest) == 1 and rest[0] in allowed.get(head, ())
    if not ok:
        return False
    for name, _ in f.filters:
        if name == "money" and (head != "amounts" or len(f.filters) > 1):
            return False
        if name == "date" and (head != "due_date" or len(f.filters) > 1):
            return False
    return True


class NotFlat(Exception):
    """A row the column path cannot render (a missing attribute, a filter refusing a value):
    the caller renders the template per row through Jinja, which reports it properly."""


def render_frame(frame: pl.DataFrame, pieces: Sequence[Piece], lender: LenderFacts) -> pl.Series:
    """One text per row of `frame` (columns as in COLUMNS), equal to the Jinja rendering,
    stripped as `Renderer.render` strips; NotFlat when some row needs Jinja."""
    if frame.height == 0:
        return pl.Series("text", [], dtype=pl.String)
    work = frame.select(*COLUMNS).with_row_index("_row")
    # An empty piece from a column keeps a template of literals only as long as the frame.
    parts: list[pl.Expr] = [pl.col("locale").str.slice(0, 0).fill_null("")]
    for i, piece in enumerate(pieces):
        if isinstance(piece, str):
            parts.append(pl.lit(piece, dtype=pl.String))
            continue
        expr, extra = _piece(work, piece, lender, f"_p{i}")
        if extra is not None:
            work = work.join(extra, on=_inputs_of(piece), how="left", nulls_equal=True)
        parts.append(expr)
    texts = work.sort("_row").select(pl.concat_str(parts).alias("text")).get_column("text")
    return _stripped(texts)


def _inputs_of(f: Field) -> list[str]:
    """The columns a field's text depends on (its distinct values are computed once each)."""
    head, leaf = f.path[0], f.path[-1]
    inputs: list[str]
    if head == "customer":
        inputs = {
            "name": ["name"],
            "surname": ["name"],
            "honorific": ["name", "attributes", "locale"],
            "phone_masked": ["phone"],
        }[leaf]
    elif head == "amounts":
        inputs = ["overdue", "next_instalment"] if leaf == "due" else [leaf]
        inputs += ["currency", "locale"]
    elif head == "due_date":
        inputs = ["due_date", "locale"]
    elif head == "attrs":
        inputs = ["attributes"]
    elif head == "loan":
        inputs = ["external_id", "locale"]
    elif head in ("dpd", "days_to_due", "locale", "currency"):
        inputs = [head]
    else:
        inputs = ["locale"]  # a constant: any column keeps the join well formed
    return inputs if "locale" in inputs or not f.filters else [*inputs, "locale"]


def _piece(
    work: pl.DataFrame, f: Field, lender: LenderFacts, alias: str
) -> tuple[pl.Expr, pl.DataFrame | None]:
    """A column expression for the field, and the per-distinct-input frame to join (or None)."""
    simple = _vector(f, lender)
    if simple is not None and not f.filters:
        return simple, None
    inputs = _inputs_of(f)
    distinct = work.select(inputs).unique()
    if f.path[-1] == "honorific":
        values = _honorifics(distinct)
    else:
        values = [
            _text(f, lender, dict(zip(inputs, row, strict=True))) for row in distinct.iter_rows()
        ]
    extra = distinct.with_columns(pl.Series(alias, values, dtype=pl.String))
    return pl.col(alias), extra


def _vector(f: Field, lender: LenderFacts) -> pl.Expr | None:
    head, leaf = f.path[0], f.path[-1]
    zh = pl.col("locale").str.starts_with("zh")
    if head == "signature":
        return pl.lit(lender.signature)
    if head == "payment_link":
        return pl.lit(lender.payment_link)
    if head == "lender":
        return pl.lit(str(getattr(lender, leaf)))
    if head in ("locale", "currency"):
        return pl.col(head)
    if head == "dpd":
        return pl.col("dpd").cast(pl.String)
    if head == "days_to_due":
        return pl.col("days_to_due").cast(pl.String).fill_null("None")
    if head == "due_date":
        return pl.col("due_date").dt.strftime("%Y-%m-%d").fill_null("None")
    if head == "customer" and leaf == "name":
        return pl.col("name")
    if head == "loan":
        tail = pl.col("external_id").str.slice(-4)
        return {
            "id": pl.col("external_id"),
            "tail": tail,
            "masked": pl.when(zh).then(pl.lit("尾号") + tail).otherwise(pl.lit("ending ") + tail),
            "product": pl.when(zh).then(pl.lit("借款")).otherwise(pl.lit("loan")),
        }[leaf]
    return None


def _honorifics(distinct: pl.DataFrame) -> list[str]:
    """Honorifics for distinct (name, attributes, locale): the gender read once per distinct
    attributes text, the honorific once per distinct (name, gender, locale)."""
    genders = {a: _gender_only(a) for a in distinct.get_column("attributes").unique().to_list()}
    done: dict[tuple[str, tuple[tuple[str, str], ...], str], str] = {}
    out = []
    for name, attrs_text, locale in distinct.iter_rows():
        gender = genders[attrs_text]
        key = (name, tuple(gender.items()), locale)
        if key not in done:
            done[key] = _honorific(Borrower(name, None, gender), locale)
        out.append(done[key])
    return out


def _text(f: Field, lender: LenderFacts, row: dict[str, Any]) -> str:
    """The field's text for one distinct input, by the functions `build_context` uses."""
    head, leaf = f.path[0], f.path[-1]
    value: object
    if head == "customer" and leaf == "surname":
        value = _surname(str(row["name"]))
    elif head == "customer" and leaf == "phone_masked":
        value = mask(row["phone"]) if row["phone"] else ""
    elif head == "amounts":
        minor = row["overdue"] if leaf == "due" and row["overdue"] else row[_column(leaf)]
        value = Money(int(minor), row["currency"], row["locale"])
    elif head == "attrs":
        attrs = attributes(row["attributes"])
        if leaf not in attrs:
            raise NotFlat(f"attribute {leaf!r} missing")
        value = attrs[leaf]
    else:
        value = _from_context(f, lender, row)
    for name, args in f.filters:
        value = _apply(name, value, args, str(row["locale"]))
    return "None" if value is None else str(value)


def _from_context(f: Field, lender: LenderFacts, row: dict[str, Any]) -> object:
    """The rest (filtered plain fields, rare): the context itself, built from the inputs."""
    facts = LoanFacts(
        row.get("external_id") or "", None, row.get("currency") or "CNY", 0, 0, 0,
        row.get("due_date"), row.get("days_to_due"), row.get("dpd") or 0,
    )  # fmt: skip
    context = build_context(Borrower(row.get("name") or ""), facts, lender, str(row["locale"]))
    value = context[f.path[0]]
    return value[f.path[1]] if len(f.path) > 1 and isinstance(value, dict) else value


def _column(leaf: str) -> str:
    return "next_instalment" if leaf == "due" else leaf


def _gender_only(text: str | None) -> dict[str, str]:
    attrs = attributes(text)
    return {k: attrs[k] for k in GENDER_ATTRIBUTES if k in attrs}


def _apply(name: str, value: object, args: tuple[object, ...], locale: str) -> object:
    try:
        if name == "date":
            if not isinstance(value, date):
                raise NotFlat("date filter on a missing date")
            style = str(args[0]) if args else "short"
            return format_day(value, style, locale)
        function: Callable[..., object] = FILTERS[name]
        return function(value, *args)
    except TemplateError as exc:
        raise NotFlat(str(exc)) from None


def _stripped(texts: pl.Series) -> pl.Series:
    """`str.strip()` as Python does it, on the rows whose ends are whitespace to Python."""
    ends = pl.concat([texts.str.slice(0, 1), texts.str.slice(-1)]).unique().drop_nulls()
    spaces = [c for c in ends.to_list() if c.isspace()]
    if not spaces:
        if (texts.str.len_chars() == 0).any():
            raise NotFlat("empty message")
        return texts
    fixed = [t.strip() for t in texts.to_list()]
    if any(not t for t in fixed):
        raise NotFlat("empty message")
    return pl.Series("text", fixed, dtype=pl.String)
