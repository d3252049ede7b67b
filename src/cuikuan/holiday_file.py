"""The lender's holiday file (`holidays.toml` beside the settings): read, checked, written.

    years = read_holiday_file(path)            # {} when the file does not exist
    write_holiday_file(path, merged)           # atomically

Errors name the file, the line and the field (ConfigError), as settings errors do.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from cuikuan.config_files import locate_keys, read_toml, write_atomically
from cuikuan.domain.holidays import HolidayFileError, YearDays, dump_years, parse_years
from cuikuan.errors import ConfigError

Years = dict[str, dict[int, YearDays]]


def read_holiday_file(path: Path) -> Years:
    if not path.is_file():
        return {}
    stat = path.stat()
    return _read(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _read(path: Path, _mtime: int, _size: int) -> Years:
    data, text = read_toml(path)
    try:
        return parse_years(data)
    except HolidayFileError as exc:
        raise ConfigError(f"{path}:{_line(text, str(exc))}: {exc}") from None


def _line(text: str, message: str) -> int:
    where = message.split(":", 1)[0].split("[", 1)[0]
    parts = tuple(where.split("."))
    lines = locate_keys(text)
    for k in range(len(parts), 0, -1):
        if parts[:k] in lines:
            return lines[parts[:k]]
    return 1


def parse_holiday_text(text: str, source: str) -> Years:
    """Years from a TOML text (an import), errors naming `source` and the line."""
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or 1
        raise ConfigError(f"{source}:{line}: not valid TOML: {exc.args[0]}") from None
    try:
        return parse_years(data)
    except HolidayFileError as exc:
        raise ConfigError(f"{source}:{_line(text, str(exc))}: {exc}") from None


def merge(
    base: Mapping[str, Mapping[int, YearDays]], new: Mapping[str, Mapping[int, YearDays]]
) -> Years:
    """`base` with every year of `new` replacing the same year (a year is taken whole)."""
    out: Years = {name: dict(years) for name, years in base.items()}
    for name, years in new.items():
        out.setdefault(name, {}).update(years)
    return out


def write_holiday_file(path: Path, years: Mapping[str, Mapping[int, YearDays]]) -> None:
    write_atomically(path, dump_years(years))
