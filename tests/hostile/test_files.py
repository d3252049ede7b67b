"""Files that stopped the import: a stray quote, mixed encodings, a GBK copy left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.hostile.conftest import capped


def test_a_stray_quote_in_a_large_csv_is_refused_in_seconds_naming_its_line(
    ledger: Path, book: Path
) -> None:
    """One stray quote in 110,000 rows made the quote scan quadratic (114 s)."""
    lines = ledger.read_bytes().splitlines(keepends=True)
    assert len(lines) > 100_000
    lines[500] = lines[500].replace(b",", b',"', 1)
    (book / "bad.csv").write_bytes(b"".join(lines))
    began = time.monotonic()
    done = capped(["import", "bad.csv"], book, seconds=60)
    assert time.monotonic() - began < 30
    assert done.returncode == 3, done.stderr
    assert (
        "bad.csv:501:" in done.stderr and "quote" in done.stderr and "Traceback" not in done.stderr
    )


def test_a_utf8_file_with_gbk_rows_added_is_refused_not_garbled(ledger: Path, book: Path) -> None:
    text = ledger.read_text("utf-8").splitlines(keepends=True)
    head = "".join(text[:2000]).encode("utf-8")
    tail = "".join(text[2000:2100]).encode("gbk")
    (book / "mixed.csv").write_bytes(head + tail)
    done = capped(["import", "mixed.csv"], book)
    assert done.returncode == 3, done.stderr
    assert "mixed.csv:2001:" in done.stderr and "mixes encodings" in done.stderr


def test_a_gbk_import_leaves_no_copy_of_the_ledger_even_when_killed(
    ledger: Path, book: Path
) -> None:
    (book / "gbk.csv").write_bytes(ledger.read_text("utf-8").encode("gbk"))
    scratch = book / "scratch"
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUIKUAN_")}
    env["TMPDIR"] = str(scratch)
    proc = subprocess.Popen([sys.executable, "-m", "cuikuan", "import", "gbk.csv"], cwd=book,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(2.0)  # reading and copying the file
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    leftovers = [p for p in scratch.rglob("*") if p.is_file() and p.stat().st_size > 100_000]
    assert leftovers == []
    done = capped(["import", "gbk.csv"], book, env={"TMPDIR": str(scratch)})
    assert done.returncode == 0, done.stderr
    assert [p for p in scratch.rglob("*") if p.is_file() and p.stat().st_size > 100_000] == []


def test_a_custom_column_named_twice_is_refused_not_the_last_one_kept(
    ledger: Path, book: Path
) -> None:
    lines = ledger.read_text("utf-8").splitlines()
    rows = [lines[0] + ",备注,备注"] + [line + ",a,b" for line in lines[1:4]]
    (book / "twice.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    done = capped(["import", "twice.csv"], book)
    assert done.returncode == 3, done.stderr
    assert "'备注' appears twice" in done.stderr


def test_what_fuzzing_found_is_refused_with_a_line(book: Path) -> None:
    """`make fuzz` found these two ending in tracebacks: a header with a bare carriage return,
    and rows whose fields a quote swallows so that Polars sees fewer columns."""
    (book / "cr.csv").write_bytes(b"\xdc\xd4\r\xcd\xb4b\xa7\x97\n1,2\n")
    done = capped(["import", "cr.csv"], book)
    assert done.returncode == 3 and "Traceback" not in done.stderr, done.stderr
    header = "借据号,客户号,姓名,手机号,期数,应还日期,应还金额,已还金额\n"
    (book / "short.csv").write_text(header + '"a\n"\n', encoding="utf-8")
    done = capped(["import", "short.csv"], book)
    assert done.returncode in (3, 4) and "Traceback" not in done.stderr, done.stderr
    assert "short.csv" in done.stderr
