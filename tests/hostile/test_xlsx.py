"""XLSX files that aborted or swamped the import: a far stray cell, a compression bomb of shared
strings, a sheet cut short. Each is refused in seconds, in bounded memory, naming the part."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import xlsxwriter

from tests.hostile.conftest import capped

HEADER = ["借据号", "客户号", "姓名", "手机号", "期数", "应还日期", "应还金额"]


def workbook(path: Path, far_cell: str | None = None) -> Path:
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("台账")
    sheet.write_row(0, 0, HEADER)
    sheet.write_row(1, 0, ["L1", "C1", "张三", "13800138000", 1, "2026-12-01", "100.00"])
    if far_cell:
        sheet.write(far_cell, "x")
    book.close()
    return path


def rewritten(source: Path, target: Path, change: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for item in old.infolist():
            new.writestr(item.filename, change.get(item.filename, old.read(item.filename)))
        for name, data in change.items():
            if name not in old.namelist():
                new.writestr(name, data)
    return target


def test_a_cell_at_the_last_column_and_row_is_refused_not_allocated(book: Path) -> None:
    """A 6 KB workbook with one cell at XFD1048576 aborted the process asking for 512 GiB."""
    path = workbook(book / "far.xlsx", "XFD1048576")
    assert path.stat().st_size < 20_000
    began = time.monotonic()
    done = capped(["import", "far.xlsx"], book, seconds=60)
    assert time.monotonic() - began < 20
    assert done.returncode == 3, done.stderr
    assert "A1:XFD1048576" in done.stderr and "Traceback" not in done.stderr


def test_a_compression_bomb_of_shared_strings_is_refused(book: Path) -> None:
    """A 1.7 MB workbook whose shared strings grew past 3.6 GB."""
    plain = workbook(book / "plain.xlsx")
    bomb = (
        b'<?xml version="1.0"?><sst count="1" uniqueCount="1"><si><t>'
        + b"A" * (200 << 20)
        + b"</t></si></sst>"
    )
    path = rewritten(plain, book / "bomb.xlsx", {"xl/sharedStrings.xml": bomb})
    assert path.stat().st_size < 2 << 20
    done = capped(["import", "bomb.xlsx"], book, seconds=60)
    assert done.returncode == 3, done.stderr
    assert "sharedStrings.xml" in done.stderr and "Traceback" not in done.stderr


def test_a_sheet_cut_short_is_refused_naming_it(book: Path) -> None:
    plain = workbook(book / "whole.xlsx")
    with zipfile.ZipFile(plain) as z:
        sheet = z.read("xl/worksheets/sheet1.xml")
    rewritten(plain, book / "cut.xlsx", {"xl/worksheets/sheet1.xml": sheet[: len(sheet) // 2]})
    done = capped(["import", "cut.xlsx"], book, seconds=60)
    assert done.returncode == 3, done.stderr
    assert "cut.xlsx" in done.stderr and "Traceback" not in done.stderr


def test_an_ordinary_workbook_still_imports(book: Path) -> None:
    path = workbook(book / "ok.xlsx", "H2")  # a stray cell next to the data: fine
    done = capped(["import", path.name], book, seconds=60)
    assert "Traceback" not in done.stderr
    assert done.returncode in (0, 4), done.stderr  # imported, or rows refused with reasons
