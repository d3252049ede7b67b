"""Message templates: a short header and a Jinja2 body, rendered in a sandbox with strict fields.

    ---
    name: due_today
    channel: sms
    tone: neutral
    description: 到期当天提醒
    ---
    {{ signature }}{{ customer.honorific }}您好，您尾号{{ loan.tail }}的借款今日到期……

A template cannot run code or reach Python internals (ImmutableSandboxedEnvironment, no globals),
and a field that does not exist is an error (StrictUndefined), never an empty gap in a message
sent to a borrower. Every error names the file and the line.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from babel.dates import format_date
from babel.numbers import format_currency
from jinja2 import (
    FunctionLoader,
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
    UndefinedError,
    meta,
    pass_context,
)
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context

from cuikuan.domain.money import currency_digits, format_minor
from cuikuan.domain.template_budget import BudgetedEnvironment, BudgetError, shape_problems

HEADER_KEYS = ("name", "channel", "tone", "description")
CHANNELS = ("sms", "email")
TONES = ("gentle", "neutral", "firm", "confirmation")
# The names a template may use; the sample contexts and the real context provide exactly these.
FIELDS = (
    "customer", "loan", "amounts", "due_date", "days_to_due", "dpd", "lender",
    "payment_link", "signature", "attrs", "promise", "plan", "locale", "currency",
)  # fmt: skip


class TemplateProblem(Exception):
    """A template that cannot be used: file, line and what is wrong."""

    def __init__(self, file: str, line: int, rule: str, message: str) -> None:
        super().__init__(f"{file}:{line}: {rule}: {message}")
        self.file, self.line, self.rule, self.message = file, line, rule, message


@dataclass(frozen=True)
class TemplateFile:
    path: str
    name: str
    locale: str
    channel: str
    tone: str
    description: str
    body: str
    body_line: int  # line of the file where the body starts

    @property
    def key(self) -> tuple[str, str]:
        return self.name, self.locale


_FILE_NAME = re.compile(
    r"^(?P<name>[a-z0-9_]+)\.(?P<locale>[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,4})?)\.txt$"
)


def parse_template(path: str, text: str) -> TemplateFile:
    """Header and body of a template file named NAME.LOCALE.txt; TemplateProblem if malformed."""
    base = path.replace("\\", "/").rsplit("/", 1)[-1]
    m = _FILE_NAME.match(base)
    if not m:
        raise TemplateProblem(
            path, 1, "file-name", "expected NAME.LOCALE.txt, e.g. due_today.zh-CN.txt"
        )
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise TemplateProblem(path, 1, "header", "a template starts with a --- header block")
    header: dict[str, str] = {}
    for number, line in enumerate(lines[1:], start=2):
        if line.strip() == "---":
            body_line = number + 1
            break
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep or key not in HEADER_KEYS:
            raise TemplateProblem(
                path, number, "header", f"expected one of {', '.join(HEADER_KEYS)} as 'key: value'"
            )
        header[key] = value.strip()
    else:
        raise TemplateProblem(path, 1, "header", "the header block is not closed with ---")
    for key in HEADER_KEYS:
        if not header.get(key):
            raise TemplateProblem(path, 1, "header", f"the header needs {key}")
    if header["name"] != m.group("name"):
        raise TemplateProblem(
            path,
            2,
            "header",
            f"name {header['name']!r} differs from the file name {m.group('name')!r}",
        )
    if header["channel"] not in CHANNELS:
        raise TemplateProblem(path, 1, "header", f"channel must be one of {', '.join(CHANNELS)}")
    if header["tone"] not in TONES:
        raise TemplateProblem(path, 1, "header", f"tone must be one of {', '.join(TONES)}")
    body = "\n".join(lines[body_line - 1 :]).strip("\n")
    return TemplateFile(
        path,
        header["name"],
        m.group("locale"),
        header["channel"],
        header["tone"],
        header["description"],
        body,
        body_line,
    )


# --- values a template sees ---------------------------------------------------------------


@dataclass(frozen=True)
class Money:
    """An amount in minor units with its currency and the message's locale; prints itself."""

    minor: int
    currency: str
    locale: str

    @property
    def value(self) -> Decimal:
        return Decimal(self.minor).scaleb(-currency_digits(self.currency))

    def format(self, style: str = "auto") -> str:
        if style == "plain":
            return format_minor(self.minor, currency_digits(self.currency))
        if style == "suffix" or (
            style == "auto" and self.locale.startswith("zh") and self.currency == "CNY"
        ):
            plain = self.format("plain")
            return f"{plain}元" if self.currency == "CNY" else f"{plain} {self.currency}"
        return _symbol_format(self.minor, self.currency, self.locale)

    def __str__(self) -> str:
        return self.format()


@lru_cache(maxsize=4096)
def _symbol_format(minor: int, currency: str, locale: str) -> str:
    value = Decimal(minor).scaleb(-currency_digits(currency))
    return str(format_currency(value, currency, locale=locale.replace("-", "_")))


@lru_cache(maxsize=4096)
def _format_day(value: date, pattern: str, locale: str) -> str:
    return str(format_date(value, pattern, locale=locale.replace("-", "_")))


def _money_filter(value: object, style: str = "auto") -> str:
    if not isinstance(value, Money):
        raise TemplateError(f"money expects an amount, got {type(value).__name__}")
    if style not in ("auto", "symbol", "suffix", "plain"):
        raise TemplateError("money style must be auto, symbol, suffix or plain")
    return value.format("symbol" if style == "symbol" else style)


@pass_context
def _date_filter(context: Context, value: object, style: str = "short") -> str:
    if not isinstance(value, date):
        raise TemplateError(f"date expects a date, got {type(value).__name__}")
    return format_day(value, style, str(context.get("locale") or "zh-CN"))


DATE_PATTERNS = {
    "zh": {"short": "M月d日", "long": "y年M月d日"},
    "en": {"short": "MMM d", "long": "MMMM d, y"},
}


def format_day(value: date, style: str, locale: str) -> str:
    """The `date` filter: a day in the message's locale, short or long."""
    pattern = DATE_PATTERNS["zh" if locale.startswith("zh") else "en"].get(style)
    if pattern is None:
        raise TemplateError("date style must be short or long")
    return _format_day(value, pattern, locale)


def mask(value: object, keep_start: int = 3, keep_end: int = 4) -> str:
    """138****8000; a short text keeps only its last characters."""
    text = str(value)
    if text.startswith("+86"):
        text = text[3:]
    if len(text) <= keep_end:
        return text
    if len(text) <= keep_start + keep_end:
        return "*" * (len(text) - keep_end) + text[-keep_end:]
    return text[:keep_start] + "*" * (len(text) - keep_start - keep_end) + text[-keep_end:]


def mask_numbers(text: str) -> str:
    """Every phone-number-like run of digits in a text masked (138****8000): for terminals and
    pages whose reader may not see whole numbers."""
    return _NUMBER_RUN.sub(lambda m: mask(m.group()), text)


_NUMBER_RUN = re.compile(r"\+?\d{7,}")


def _tail(value: object, n: int = 4) -> str:
    return str(value)[-n:]


FILTERS: dict[str, Callable[..., Any]] = {
    "money": _money_filter,
    "date": _date_filter,
    "mask": mask,
    "tail": _tail,
}


# --- rendering ------------------------------------------------------------------------------


@dataclass
class Renderer:
    """Compiles and renders templates; one per set of template files."""

    templates: Mapping[str, TemplateFile] = field(default_factory=dict)  # by path

    def __post_init__(self) -> None:
        self.env = BudgetedEnvironment(
            loader=FunctionLoader(self._source),
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.clear()  # no range, cycler, joiner, lipsum, namespace: data only
        self.env.add_filters(FILTERS)
        self._checked: set[str] = set()

    def _source(self, path: str) -> tuple[str, str, Callable[[], bool]] | None:
        template = self.templates.get(path)
        if template is None:
            return None
        return template.body, path, lambda: True

    def check_fields(self, template: TemplateFile) -> None:
        """Syntax and unknown top-level names, without rendering."""
        try:
            ast = self.env.parse(template.body)
        except TemplateSyntaxError as exc:
            raise TemplateProblem(
                template.path,
                template.body_line + (exc.lineno or 1) - 1,
                "syntax",
                exc.message or "syntax error",
            ) from None
        for line, why in shape_problems(ast)[:1]:
            raise TemplateProblem(template.path, template.body_line + line - 1, "budget", why)
        unknown = sorted(meta.find_undeclared_variables(ast) - set(FIELDS))
        if unknown:
            line = _first_line_with(template, unknown[0])
            raise TemplateProblem(
                template.path,
                line,
                "unknown-field",
                f"no field {unknown[0]!r}; fields are {', '.join(FIELDS)}",
            )

    def render(self, template: TemplateFile, context: Mapping[str, object]) -> str:
        if template.path not in self._checked:
            self.check_fields(template)
            self._checked.add(template.path)
        try:
            compiled = self.env.get_template(template.path)
            text = compiled.render(dict(context))
        except BudgetError as exc:
            raise TemplateProblem(
                template.path, self._line(template, exc), "budget", str(exc)
            ) from None
        except SecurityError as exc:
            raise TemplateProblem(
                template.path, self._line(template, exc), "unsafe", str(exc)
            ) from None
        except UndefinedError as exc:
            raise TemplateProblem(
                template.path, self._line(template, exc), "unknown-field", str(exc)
            ) from None
        except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError) as exc:
            # A template's own mistake (a division by zero, a number and a text added): the
            # template's problem, not a crash of the command.
            raise TemplateProblem(
                template.path, self._line(template, exc), "render", str(exc) or type(exc).__name__
            ) from None
        except RecursionError:
            raise TemplateProblem(
                template.path, template.body_line, "budget", "calls itself without end"
            ) from None
        text = text.strip()
        if not text:
            raise TemplateProblem(
                template.path,
                template.body_line,
                "empty",
                "the template renders to an empty message",
            )
        return text

    @staticmethod
    def _line(template: TemplateFile, exc: BaseException) -> int:
        lines = [
            f.lineno
            for f in traceback.extract_tb(exc.__traceback__)
            if f.filename == template.path and f.lineno
        ]
        return template.body_line + (lines[-1] - 1 if lines else 0)


def _first_line_with(template: TemplateFile, word: str) -> int:
    for offset, line in enumerate(template.body.splitlines()):
        if re.search(rf"\b{re.escape(word)}\b", line):
            return template.body_line + offset
    return template.body_line
