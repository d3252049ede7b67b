"""What an XLSX file may hold before it is opened: bounded sizes and sheet extents.

    check_workbook(Path("ledger.xlsx"))   # InputError naming the part or the sheet, else None

calamine, which reads the workbook, makes each sheet a dense grid from its first to its last
cell and reads shared strings whole: a 6 KB file with one cell at XFD1048576 asked for 512 GiB
and a 1.7 MB file of shared strings grew past 3.6 GB. So first, with the standard library only
and in bounded memory: every part's uncompressed size and compression ratio (zip bombs), then
each sheet's extent, found by scanning its cell references as the XML streams by. A file that
breaks a limit is refused in seconds, naming what is too large; one whose XML is cut short,
naming the sheet.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from pathlib import Path

from cuikuan.errors import InputError

MAX_PART_BYTES = 4 << 30  # uncompressed, any one part (a million-row sheet is about 0.5 GB)
MAX_SHARED_STRINGS_BYTES = 1 << 30
MAX_RATIO = 250  # uncompressed / compressed: sheet XML compresses 10-30 times
MAX_COLUMNS = 1_000
MAX_CELLS = 100_000_000  # of the dense grid calamine builds for one sheet
_CELL = re.compile(rb'<(?:\w+:)?c\b[^>]*?\br="([A-Z]{1,3})([0-9]{1,7})"')
_CHUNK = 1 << 20


def check_workbook(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as book:
            parts = book.infolist()
            for part in parts:
                _check_size(path, part)
            for part in parts:
                if part.filename.startswith("xl/worksheets/") and part.filename.endswith(".xml"):
                    _check_extent(path, book, part)
    except zipfile.BadZipFile as exc:
        raise InputError(f"{path}: not a readable XLSX workbook ({exc})") from None


def _check_size(path: Path, part: zipfile.ZipInfo) -> None:
    limit = (
        MAX_SHARED_STRINGS_BYTES if part.filename.endswith("sharedStrings.xml") else MAX_PART_BYTES
    )
    if part.file_size > limit:
        raise InputError(
            f"{path}: {part.filename} unpacks to {part.file_size:,} bytes (at most {limit:,})"
        )
    if (
        part.compress_size
        and part.file_size / part.compress_size > MAX_RATIO
        and part.file_size > (1 << 20)
    ):
        raise InputError(
            f"{path}: {part.filename} unpacks {part.file_size // part.compress_size:,} times "
            f"larger than it is stored (at most {MAX_RATIO}): a compression bomb?"
        )


def _check_extent(path: Path, book: zipfile.ZipFile, part: zipfile.ZipInfo) -> None:
    """The sheet's cells, first row to last and first column to last, as calamine will lay
    them out: at most MAX_COLUMNS columns and MAX_CELLS cells."""
    low_row = low_col = 10**9
    high_row = high_col = 0
    read = 0
    tail = b""
    try:
        with book.open(part) as stream:
            while chunk := stream.read(_CHUNK):
                read += len(chunk)
                if read > MAX_PART_BYTES:  # the size the zip declared was a lie
                    raise InputError(
                        f"{path}: {part.filename} unpacks to more than {MAX_PART_BYTES:,} bytes"
                    )
                text = tail + chunk
                for letters, digits in _CELL.findall(text):
                    col, row = _column(letters), int(digits)
                    low_row, high_row = min(low_row, row), max(high_row, row)
                    low_col, high_col = min(low_col, col), max(high_col, col)
                tail = text[-256:]
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise InputError(f"{path}: {part.filename} is cut short or broken ({exc})") from None
    if high_row == 0:
        return
    columns = high_col - low_col + 1
    cells = (high_row - low_row + 1) * columns
    if columns > MAX_COLUMNS or cells > MAX_CELLS:
        raise InputError(
            f"{path}: {part.filename} spans {_name(low_col)}{low_row}:{_name(high_col)}{high_row} "
            f"({columns:,} columns, {cells:,} cells): at most {MAX_COLUMNS:,} columns and "
            f"{MAX_CELLS:,} cells (is a stray cell far from the data?)"
        )


def _column(letters: bytes) -> int:
    n = 0
    for b in letters:
        n = n * 26 + b - 64
    return n


def _name(column: int) -> str:
    out = ""
    while column:
        column, rem = divmod(column - 1, 26)
        out = chr(65 + rem) + out
    return out
