"""The budget a template renders within: bounded text, numbers, loops and calls.

    env = BudgetedEnvironment(loader=..., undefined=StrictUndefined)
    problems = shape_problems(ast)     # nested loops, macros calling macros: (line, why)

Jinja's sandbox stops a template reaching Python, not one that works too hard: `'x' * 10**8`
took 1.3 GB and 25 s, `2 ** 20000` and a division by zero ended in tracebacks, and nested
loops or a macro calling itself hung `templates check`, `preview` and `plan`. Here:
- every value the template makes (an operator's result, a filter's result) holds at most
  MAX_ITEMS characters or items, and numbers stay below 10**MAX_DIGITS;
- the text it writes holds at most MAX_TEXT characters (checked as it is written);
- its shape is checked before it is used: loops nested in loops, and macros that call macros
  (recursion), are refused. With no globals (no `range`) a loop can only walk a value of at
  most MAX_ITEMS, so a template's work is bounded by its length times MAX_ITEMS.
Whatever breaks the budget is raised as BudgetError, which the renderer reports as a template
problem with its file and line (rule "budget").
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_TEXT = 20_000  # characters a template may write (an SMS is a few hundred, an e-mail more)
MAX_ITEMS = 20_000  # characters or items of any value it makes
MAX_DIGITS = 60  # of any number it makes


class BudgetError(SecurityError):
    """A template went beyond its budget."""


def _checked(value: Any) -> Any:
    if isinstance(value, str | list | tuple | dict) and len(value) > MAX_ITEMS:
        raise BudgetError(f"a value of {len(value):,} characters or items (at most {MAX_ITEMS:,})")
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value.bit_length() > MAX_DIGITS * 3.33
    ):
        raise BudgetError(f"a number of more than {MAX_DIGITS} digits")
    return value


def _power(left: Any, right: Any) -> Any:
    bits = MAX_DIGITS * 3.33
    big = isinstance(right, int) and (right > bits or abs(left).bit_length() * max(right, 0) > bits)
    if isinstance(left, int) and abs(left) > 1 and big:
        raise BudgetError(f"a number of more than {MAX_DIGITS} digits")
    return left**right


def _repeat(left: Any, right: Any) -> Any:
    for sized, times in ((left, right), (right, left)):
        repeats = isinstance(sized, str | list | tuple) and isinstance(times, int)
        if repeats and len(sized) * max(times, 0) > MAX_ITEMS:
            raise BudgetError(
                f"a value of {len(sized) * times:,} characters or items (at most {MAX_ITEMS:,})"
            )
    return left * right


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": _repeat, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod, "**": _power,
}  # fmt: skip


class BudgetedEnvironment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset(_BINOPS)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _bounded(f) for name, f in self.filters.items()}

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        try:
            return _checked(_BINOPS[operator](left, right))
        except (ZeroDivisionError, OverflowError, ValueError) as exc:
            raise BudgetError(f"{operator}: {exc}") from None

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        return _checked(super().call(__context, __obj, *args, **kwargs))

    def concat(self, pieces: Iterable[str]) -> str:
        return "".join(_written(pieces))

    def add_filters(self, found: dict[str, Callable[..., Any]]) -> None:
        self.filters.update({name: _bounded(f) for name, f in found.items()})


def _written(pieces: Iterable[str]) -> Iterator[str]:
    total = 0
    for piece in pieces:
        total += len(piece)
        if total > MAX_TEXT:
            raise BudgetError(f"the text grows past {MAX_TEXT:,} characters")
        yield piece


def _bounded(f: Callable[..., Any]) -> Callable[..., Any]:
    def bounded(*args: Any, **kwargs: Any) -> Any:
        return _checked(f(*args, **kwargs))

    for attribute in ("jinja_pass_arg",):  # pass_context / pass_environment markers
        if hasattr(f, attribute):
            setattr(bounded, attribute, getattr(f, attribute))
    bounded.__name__ = getattr(f, "__name__", "filter")
    return bounded


def shape_problems(ast: nodes.Template) -> list[tuple[int, str]]:
    """(line, why) for each loop inside a loop and each macro that calls a macro."""
    found: list[tuple[int, str]] = []
    for loop in ast.find_all(nodes.For):
        for inner in loop.body:
            for nested in (
                [inner] if isinstance(inner, nodes.For) else list(inner.find_all(nodes.For))
            ):
                found.append((nested.lineno, "a loop inside a loop (at most one level of loops)"))
    macros = {m.name for m in ast.find_all(nodes.Macro)}
    for macro in ast.find_all(nodes.Macro):
        for call in macro.find_all(nodes.Call):
            if isinstance(call.node, nodes.Name) and call.node.name in macros | {"caller"}:
                found.append((call.lineno, f"macro {macro.name} calls a macro (no recursion)"))
    return sorted(set(found))
