"""Open a ledger file: CSV (UTF-8, UTF-8 with BOM, GBK/GB18030) or XLSX, as batches of strings.

    source = open_source(Path("ledger.csv"))
    source.header                        # the file's own column names
    for batch in source.batches(200_000):
        batch["_line"]                   # the line each row came from, for error messages

Every cell arrives as a string (or null): parsing is the validator's job, so a bad cell becomes
a message with its line rather than a guess.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import itertools
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any, Protocol

import polars as pl

from cuikuan.errors import InputError

LINE = "_line"
_CHUNK = 1 << 20
# Lines a quoted field may run over (line breaks inside quotes): addresses and notes take a few.
MAX_QUOTED_LINES = 1_000
_DELIMITERS = (",", "\t", ";", "|")
NUL = b"\x00"


class Source(Protocol):
    path: Path
    header: list[str]
    encoding: str
    total_rows: int

    def batches(self, size: int) -> Iterator[pl.DataFrame]: ...

    def close(self) -> None: ...


@dataclass
class FrameSource:
    """Rows already in memory (the API's batches): every cell text, in the order given, each
    row numbered from 2 as if a header line came first (problems name row = line - 2)."""

    path: Path  # a label for messages, not a file
    header: list[str]
    frame: pl.DataFrame
    encoding: str = "json"
    total_rows: int = 0

    def __post_init__(self) -> None:
        self.total_rows = self.frame.height

    def batches(self, size: int) -> Iterator[pl.DataFrame]:
        names = [f"c{i}" for i in range(len(self.header))]
        cells = self.frame.rename(dict(zip(self.frame.columns, names, strict=True)))
        numbered = cells.with_row_index(LINE, offset=2).with_columns(pl.col(LINE).cast(pl.Int64))
        for part in numbered.iter_slices(size):
            yield part.select(LINE, *names)

    def close(self) -> None:
        return None


def open_source(path: Path, sheet: str | None = None) -> Source:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected a CSV or XLSX file")
    with path.open("rb") as fh:
        head = fh.read(8)
    if head.startswith(b"PK\x03\x04") or path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
        return XlsxSource.open(path, sheet)
    return CsvSource.open(path)


def detect_encoding(path: Path) -> str:
    """'utf-8', 'utf-8-sig' or 'gb18030', checked over the whole file; InputError otherwise."""
    with path.open("rb") as fh:
        first = fh.read(4)
    if first.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    elif first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError(f"{path}: UTF-16 text; save it as UTF-8 (or GBK) CSV")
    else:
        # GB18030 is a superset of GBK and GB2312, so it reads every export of those.
        candidates = ["utf-8", "gb18030"]
    failure = ""
    for encoding in candidates:
        failure = _decodes(path, encoding)
        if not failure:
            return encoding
        if encoding == "utf-8" and (mixed := _utf8_then_not(path)):
            raise InputError(mixed)
    raise InputError(f"{path}: not text in UTF-8 or GBK/GB18030 ({failure}); is it the right file?")


def _utf8_then_not(path: Path) -> str | None:
    """Why a file that is UTF-8 with Chinese (or other non-ASCII) text up to some line, and not
    UTF-8 after it, must be refused: read as GB18030 (which takes almost any bytes) its UTF-8
    names would be garbled. None when the part before is plain ASCII (then GBK it is)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, line, wide = 0, 1, False
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                if not (wide or any(b >= 0x80 for b in chunk[: exc.start])):
                    return None
                line += chunk.count(b"\n", 0, exc.start)
                return (
                    f"{path}:{line}: not UTF-8 (byte 0x{chunk[exc.start]:02x}), though the lines "
                    "before it are: the file mixes encodings (rows in GBK added to a UTF-8 file?); "
                    "save it all in one encoding"
                )
            wide = wide or any(b >= 0x80 for b in chunk)
            line += chunk.count(b"\n")
            offset += len(chunk)
    return None


def _decodes(path: Path, encoding: str) -> str:
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            if b"\x00" in chunk:
                return f"binary data at byte {offset + chunk.index(NUL)}"
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return f"byte 0x{chunk[exc.start]:02x} at offset {offset + exc.start} is not {encoding}"
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return f"the file ends inside a {encoding} character"
    return ""


def _count_lines(fh: IO[bytes]) -> int:
    count = 0
    while chunk := fh.read(_CHUNK):
        count += chunk.count(b"\n")
    return count


@dataclass
class CsvSource:
    path: Path
    header: list[str]
    encoding: str
    delimiter: str
    total_rows: int
    _utf8: Path
    # A GBK file's UTF-8 copy: a temporary file with no name (unlinked at once), so that no
    # plain-text copy of the ledger is left behind however the process ends.
    _copy: IO[bytes] | None = None

    @classmethod
    def open(cls, path: Path) -> CsvSource:
        if path.stat().st_size == 0:
            raise InputError(f"{path}: the file is empty")
        encoding = detect_encoding(path)
        copy = _transcode(path, encoding) if encoding == "gb18030" else None
        source = cls(path, [], encoding, ",", 0, path, copy)
        with source._reading() as fh:
            first = fh.readline().decode("utf-8-sig")
        if not first.strip():
            source.close()
            raise InputError(f"{path}:1: the first line should be the header, found an empty line")
        source.delimiter = max(_DELIMITERS, key=first.count)
        try:
            source.header = next(csv.reader([first], delimiter=source.delimiter))
        except csv.Error as exc:  # a bare carriage return, a NUL
            source.close()
            raise InputError(f"{path}:1: the header is not a CSV line ({exc})") from None
        with source._reading() as fh:
            source.total_rows = max(_count_lines(fh) - 1, 0)
        return source

    def batches(self, size: int) -> Iterator[pl.DataFrame]:
        """`size` records at a time, each parsed by Polars from its own slice of lines.

        Polars' own streaming reader runs ahead of a slow consumer and would hold the whole
        file; slicing here keeps at most one batch of text in memory. A slice is extended while
        it holds an odd number of quote characters, so a quoted field with a line break inside
        is never cut (its record's line number is then the line it starts on).
        """
        names = [f"c{i}" for i in range(len(self.header))]
        schema = dict.fromkeys(names, pl.String)
        with self._reading() as fh:
            fh.readline()
            line = 2
            while True:
                lines = list(itertools.islice(fh, size))
                if not lines:
                    return
                self._close_quotes(fh, lines, line)
                chunk = b"".join(lines)
                try:
                    frame = pl.read_csv(
                        io.BytesIO(chunk),
                        has_header=False,
                        new_columns=names,
                        schema=schema,
                        separator=self.delimiter,
                        truncate_ragged_lines=False,
                    )
                except pl.exceptions.PolarsError as exc:  # the rows are not CSV of this header
                    first = str(exc).splitlines()[0]
                    raise InputError(
                        f"{self.path}: lines {line}-{line + len(lines) - 1}: not valid CSV: {first}"
                    ) from None
                frame = frame.with_row_index(LINE, offset=line).with_columns(
                    pl.col(LINE).cast(pl.Int64)
                )
                line += len(lines)
                yield frame.select(LINE, *names)

    def _close_quotes(self, fh: IO[bytes], lines: list[bytes], first: int) -> None:
        """Extend `lines` while a quoted field is open at their end (a line break inside a
        quoted field), at most MAX_QUOTED_LINES lines on: a stray quote would otherwise make
        the rest of the file one field. Counted line by line (joining the lines again at every
        step made a stray quote in 110,000 rows take two minutes)."""
        open_at = None
        for k, text in enumerate(lines):
            if text.count(b'"') % 2:
                open_at = None if open_at is not None else first + k
        added = 0
        while open_at is not None and (more := fh.readline()):
            lines.append(more)
            added += 1
            if more.count(b'"') % 2:
                open_at = None
            elif added >= MAX_QUOTED_LINES:
                raise InputError(
                    f"{self.path}:{open_at}: a quote opens a field that does not close within "
                    f'{MAX_QUOTED_LINES:,} lines (a stray " in the data?)'
                )
        if open_at is not None:
            raise InputError(f"{self.path}:{open_at}: a quote opens a field that never closes")

    def _reading(self) -> contextlib.AbstractContextManager[IO[bytes]]:
        """The UTF-8 text from its start: the file itself, or the unnamed copy made of it."""
        if self._copy is not None:
            self._copy.seek(0)
            return contextlib.nullcontext(self._copy)
        return self._utf8.open("rb")

    def close(self) -> None:
        if self._copy is not None:
            self._copy.close()


def _transcode(path: Path, encoding: str) -> IO[bytes]:
    """The file in UTF-8, in a temporary file without a name (readable only by this process)."""
    copy = tempfile.TemporaryFile(prefix="cuikuan-")  # noqa: SIM115 (CsvSource.close closes it)
    with path.open("r", encoding=encoding, newline="") as src:
        while chunk := src.read(_CHUNK):
            copy.write(chunk.encode("utf-8"))
    copy.flush()
    return copy


@dataclass
class XlsxSource:
    path: Path
    header: list[str]
    sheet_name: str
    header_row: int
    total_rows: int
    encoding: str = "xlsx"
    _rows: Iterator[list[Any]] = field(default_factory=lambda: iter(()))

    @classmethod
    def open(cls, path: Path, sheet: str | None) -> XlsxSource:
        from python_calamine import CalamineWorkbook

        from cuikuan.ingest.xlsx_guard import check_workbook

        check_workbook(path)  # sizes and sheet extents first: calamine would allocate them
        try:
            book = CalamineWorkbook.from_path(str(path))
        except Exception as exc:  # calamine raises its own types for every broken workbook
            raise InputError(f"{path}: not a readable XLSX workbook ({exc})") from None
        names = [sheet] if sheet else list(book.sheet_names)
        if sheet and sheet not in book.sheet_names:
            raise InputError(
                f"{path}: no sheet named {sheet!r}; sheets: {', '.join(book.sheet_names)}"
            )
        for name in names:
            try:
                data = book.get_sheet_by_name(name)
            except Exception as exc:  # a sheet cut short, or broken XML inside
                raise InputError(f"{path}: sheet {name!r} is not readable ({exc})") from None
            rows = data.iter_rows()
            for offset, row in enumerate(rows):
                if any(_cell(v) for v in row):
                    header = [_cell(v) or "" for v in row]
                    start = data.start[0] if data.start else 0
                    return cls(
                        path,
                        header,
                        name,
                        start + offset + 1,
                        max(data.height - offset - 1, 0),
                        _rows=rows,
                    )
        raise InputError(
            f"{path}: no sheet with data (sheets: {', '.join(book.sheet_names) or 'none'})"
        )

    def batches(self, size: int) -> Iterator[pl.DataFrame]:
        names = [f"c{i}" for i in range(len(self.header))]
        line = self.header_row + 1
        while True:
            chunk: list[list[str | None]] = []
            lines: list[int] = []
            for row in self._rows:
                cells = [_cell(v) for v in row][: len(names)]
                if any(cells):
                    cells += [None] * (len(names) - len(cells))
                    chunk.append(cells)
                    lines.append(line)
                line += 1
                if len(chunk) >= size:
                    break
            if not chunk:
                return
            frame = pl.DataFrame(chunk, schema=dict.fromkeys(names, pl.String), orient="row")
            yield frame.with_columns(pl.Series(LINE, lines, dtype=pl.Int64))

    def close(self) -> None:
        return None


def _cell(value: object) -> str | None:
    """Excel cells as the text a person would type: 13800138000 not 13800138000.0."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ") if value.time() != time(0) else value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    return text or None
