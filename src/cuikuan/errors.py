"""Errors a user can cause, each carrying the message the CLI prints.

    CuikuanError                 any expected failure: printed as one line, exit code below
    ├── ConfigError              settings file or environment is wrong          (exit 2)
    ├── InputError               a file given on the command line is unusable   (exit 3)
    │   └── ImportRejected       rows failed validation; nothing was written    (exit 4)
    ├── NotFound                 an id that does not exist                      (exit 5)
    ├── StoreError               the database cannot be opened or migrated      (exit 6)
    ├── LintBlocked              templates or texts failed the lint (plan made) (exit 7)
    └── ProviderRefused          a provider refused our credentials: not used   (exit 8)

Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


class CuikuanError(Exception):
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(CuikuanError):
    exit_code = 2


class InputError(CuikuanError):
    exit_code = 3


@dataclass(frozen=True)
class Problem:
    """One bad cell or row: rendered as `file:line: column: what is wrong (got 'x')`."""

    file: str
    line: int
    column: str
    message: str
    got: str | None = None

    def render(self) -> str:
        got = "" if self.got is None else f" (got {_quote(self.got)})"
        return f"{self.file}:{self.line}: {self.column}: {self.message}{got}"


def _quote(value: str, limit: int = 60) -> str:
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    return "'" + value.replace("'", "\\'") + "'"


class ImportRejected(InputError):
    exit_code = 4
    shown = 50

    def __init__(self, file: str, problems: list[Problem], total: int) -> None:
        self.file = file
        self.problems = problems
        self.total = total
        lines = [p.render() for p in problems[: self.shown]]
        if total > len(lines):
            lines.append(f"… and {total - len(lines)} more problems")
        head = f"{file}: {total} problem{'s' if total != 1 else ''}; nothing from this file was written"
        super().__init__("\n".join([head, *lines]))


class NotFound(CuikuanError):
    exit_code = 5


class StoreError(CuikuanError):
    exit_code = 6


class LintBlocked(CuikuanError):
    """The plan was made, but templates or rendered texts failed the lint: their messages were
    suppressed, and the operator must hear of it."""

    exit_code = 7


class ProviderRefused(CuikuanError):
    """A provider refused our credentials (SMPP bind refused, HTTP 401): the run stopped using
    it; its messages wait, planned, for the next run."""

    exit_code = 8
