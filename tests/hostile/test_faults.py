"""Faults and personal data: a database that fails under a command ends in one line and exit 6,
never a traceback carrying a borrower's number or message; the book's files are private."""

from __future__ import annotations

import re
import stat
from pathlib import Path

from tests.hostile.conftest import capped


def test_a_database_that_refuses_writes_gives_exit_6_and_no_personal_data(
    ledger: Path, book: Path
) -> None:
    assert capped(["import", str(ledger)], book).returncode == 0
    url = "sqlite:///file:cuikuan.db?mode=ro&uri=true"  # read-only: every write refused
    done = capped(["plan", "--as-of", "2026-11-30"], book, env={"CUIKUAN_DATABASE__URL": url})
    assert done.returncode == 6, (done.stdout, done.stderr[-2000:])
    assert "Traceback" not in done.stderr and "readonly" in done.stderr
    assert not re.search(r"1[3-9]\d{9}", done.stderr + done.stdout)  # no mobile number
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_book_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    folder = tmp_path / "lender"
    assert capped(["init", str(folder)], tmp_path).returncode == 0
    for path, mode in (
        (folder, 0o700),
        (folder / "cuikuan.toml", 0o600),
        (folder / "cuikuan.db", 0o600),
    ):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path
