"""Human-edited TOML files (settings, strategy) read with errors that name file, line and field.

    data, text = read_toml(path)
    try:
        model = Model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe(exc, path, text))

tomllib keeps no positions, so `locate_keys` finds each key's line by a scan that follows
tables and arrays of tables exactly (the form these files use).
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cuikuan.errors import ConfigError


def read_toml(path: Path) -> tuple[dict[str, Any], str]:
    text = _read(path)
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _line_from_message(str(exc))
        raise ConfigError(f"{path}:{line}: not valid TOML: {exc.args[0]}") from None


def write_atomically(path: Path, text: str) -> None:
    """`text` into `path` all at once: a temporary file beside it renamed over it, so a reader
    never sees half a file (the plan reading a template, the strategy, a holiday file)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: settings file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _line_from_message(message: str) -> int:
    m = re.search(r"line (\d+)", message)
    return int(m.group(1)) if m else 1


def describe(
    exc: ValidationError, path: Path, text: str, env: dict[tuple[str, ...], str] | None = None
) -> str:
    env = env or {}
    lines = locate_keys(text)
    out = []
    for err in exc.errors():
        loc = _untagged(tuple(str(p) for p in err["loc"]), lines)
        field = ".".join(loc) or "(file)"
        message = err["msg"].removeprefix("Value error, ")
        if loc[:2] in env or loc in env:
            var = env.get(loc) or env[loc[:2]]
            out.append(f"environment {var}: {field}: {message}")
            continue
        line = _nearest_line(lines, loc)
        out.append(f"{path}:{line}: {field}: {message}")
    return "\n".join(out)


def _untagged(loc: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> tuple[str, ...]:
    """Drop the tag pydantic puts in the path of a tagged union ([providers.x] kind = "smpp"
    reports providers.x.smpp.port), when the path without it is a key of the file."""
    if loc in lines:
        return loc
    for i in range(1, len(loc) - 1):
        shorter = loc[:i] + loc[i + 1 :]
        if shorter in lines:
            return shorter
    return loc


def _nearest_line(lines: dict[tuple[str, ...], int], loc: tuple[str, ...]) -> int:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


_TABLE = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\" ]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+|\"[^\"]+\")\s*=")


def locate_keys(text: str) -> dict[tuple[str, ...], int]:
    """Map each dotted key of a TOML document (array items indexed) to its line number.

    tomllib keeps no positions; settings files are plain tables and arrays of tables, which a
    line scan follows exactly.
    """
    found: dict[tuple[str, ...], int] = {}
    counts: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        m = _TABLE.match(line)
        if m:
            name = tuple(p.strip().strip('"') for p in m.group(2).split("."))
            if m.group(1) == "[[":
                index = counts.get(name, 0)
                counts[name] = index + 1
                table = (*name, str(index))
                found.setdefault(name, number)
            else:
                table = name
            found[table] = number
            continue
        k = _KEY.match(line)
        if k:
            found[(*table, k.group(1).strip('"'))] = number
    return found


def table_lines(text: str, name: str) -> tuple[int, int] | None:
    """Where table `[name]` (and its sub-tables `[name.x]`) stands in `text`: the index of its
    header line and of the line after its last, leaving out the blank lines after it and the
    comments right above the next table's header. None when the document has no such table."""
    lines = text.splitlines(keepends=True)
    start = end = None
    for i, line in enumerate(lines):
        m = _TABLE.match(line)
        if m is None:
            continue
        head = m.group(2).strip().strip('"')
        mine = head == name or head.startswith(name + ".")
        if start is None and mine and m.group(1) == "[":
            start = i
        elif start is not None and not mine:
            end = i
            break
    if start is None:
        return None
    end = len(lines) if end is None else end
    while end - 1 > start and lines[end - 1].lstrip().startswith("#"):
        end -= 1  # comments right above the next table's header are the next table's
    while end - 1 > start and not lines[end - 1].strip():
        end -= 1
    return start, end


def table_text(text: str, name: str) -> str | None:
    """The text of table `[name]`, header included (table_lines)."""
    span = table_lines(text, name)
    if span is None:
        return None
    return "".join(text.splitlines(keepends=True)[span[0] : span[1]])


def replace_table(text: str, name: str, section: str) -> str:
    """`text` with table `[name]` replaced by `section` (appended when it has none), every
    other line kept as it was. ConfigError when the result does not read as the same document
    with only that table changed (a layout the line scan cannot follow)."""
    lines = text.splitlines(keepends=True)
    section = section if section.endswith("\n") else section + "\n"
    span = table_lines(text, name)
    if span is None:
        joined = text + ("" if not text or text.endswith("\n") else "\n") + "\n" + section
    else:
        joined = "".join(lines[: span[0]]) + section + "".join(lines[span[1] :])
    try:
        before, after, wanted = tomllib.loads(text), tomllib.loads(joined), tomllib.loads(section)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the [{name}] table cannot be placed in the file: {exc}") from None
    before[name], expected = wanted.get(name, {}), after
    if expected != before or set(wanted) != {name}:
        raise ConfigError(
            f"the [{name}] table cannot be replaced without changing other settings; "
            "edit the file by hand"
        )
    return joined
