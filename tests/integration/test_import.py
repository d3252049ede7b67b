"""Importing ledgers, on SQLite and PostgreSQL: all or nothing, idempotent, never double-counted."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, func, select

from cuikuan.errors import ImportRejected, InputError
from cuikuan.services.importer import import_file
from cuikuan.services.portfolio import loan_positions
from cuikuan.sim.generator import GenerateOptions, generate
from cuikuan.store.engine import open_database
from cuikuan.store.schema import customer_phones, customers, loans, payments
from tests.helpers import RULES, dump, settings_for, write_csv

HEADER = [
    "客户编号",
    "姓名",
    "手机号",
    "借据号",
    "期数",
    "应还日期",
    "应还金额",
    "已还金额",
    "渠道来源",
]
ROWS = [
    ["C1", "张三", "13800138000", "L1", "1", "2026-09-15", "1000.00", "1000.00", "App"],
    ["C1", "张三", "13800138000", "L1", "2", "2026-10-15", "1000.00", "400.00", "App"],
    ["C1", "张三", "13800138000", "L1", "3", "2026-11-15", "1000.00", "0", "App"],
    ["C2", "李四", "13900139000;15000150000", "L2", "1", "2026-12-15", "2,500.50", "0", "门店"],
]
PAY_HEADER = ["还款流水号", "借据号", "还款时间", "还款金额"]


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = open_database(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = write_csv(tmp_path / "ledger.csv", HEADER, ROWS)
    stamp = datetime(2026, 11, 20, tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def positions(engine: Engine, db_url: str, day: date) -> dict[str, dict[str, object]]:
    frame = loan_positions(engine, day, settings_for(db_url))
    return {r["external_id"]: r for r in frame.iter_rows(named=True)}


def test_a_ledger_is_imported_and_reimporting_it_changes_nothing(
    engine: Engine, ledger: Path
) -> None:
    result = import_file(engine, ledger, RULES)
    assert result.kind == "instalments"
    assert result.changed["instalments"] == 4
    assert result.extra_columns == ["渠道来源"]
    before = dump(engine)
    again = import_file(engine, ledger, RULES)
    assert sum(again.changed.values()) == 0
    assert dump(engine) == before


def test_phones_are_stored_in_e164_and_custom_columns_as_attributes(
    engine: Engine, ledger: Path
) -> None:
    import_file(engine, ledger, RULES)
    with engine.connect() as conn:
        phones = (
            conn.execute(select(customer_phones.c.e164).order_by(customer_phones.c.e164))
            .scalars()
            .all()
        )
        attrs = conn.execute(
            select(loans.c.attributes).where(loans.c.external_id == "L2")
        ).scalar_one()
    assert phones == ["+8613800138000", "+8613900139000", "+8615000150000"]
    assert '"渠道来源":"门店"' in attrs


def test_dpd_and_outstanding_follow_the_snapshot(engine: Engine, ledger: Path, db_url: str) -> None:
    import_file(engine, ledger, RULES)
    pos = positions(engine, db_url, date(2026, 11, 29))
    assert (pos["L1"]["dpd"], pos["L1"]["outstanding"], pos["L1"]["overdue_amount"]) == (
        45,
        160000,
        160000,
    )
    assert (pos["L2"]["dpd"], pos["L2"]["days_to_due"], pos["L2"]["outstanding"]) == (0, 16, 250050)


def test_a_payment_is_never_counted_twice(
    engine: Engine, ledger: Path, db_url: str, tmp_path: Path
) -> None:
    import_file(engine, ledger, RULES)  # snapshot 2026-11-20 00:00 UTC; L1 has 1,400 paid in it
    inside = write_csv(tmp_path / "p1.csv", PAY_HEADER, [["P1", "L1", "2026-10-16 10:00", "400"]])
    import_file(engine, inside, RULES)
    assert positions(engine, db_url, date(2026, 11, 29))["L1"]["outstanding"] == 160000
    after = write_csv(
        tmp_path / "p2.csv",
        PAY_HEADER,
        [["P1", "L1", "2026-10-16 10:00", "400"], ["P2", "L1", "2026-11-25 09:30", "700"]],
    )
    import_file(engine, after, RULES)
    pos = positions(engine, db_url, date(2026, 11, 29))["L1"]
    assert (pos["outstanding"], pos["dpd"]) == (
        90000,
        14,
    )  # 700 cleared October's 600 and 100 of November
    # Before the payment was made it does not count.
    assert positions(engine, db_url, date(2026, 11, 24))["L1"]["outstanding"] == 160000
    # Re-importing the snapshot does not absorb the later payment either.
    import_file(engine, ledger, RULES)
    assert positions(engine, db_url, date(2026, 11, 29))["L1"]["outstanding"] == 90000


def test_a_later_snapshot_absorbs_the_payments_it_covers(
    engine: Engine, ledger: Path, db_url: str, tmp_path: Path
) -> None:
    import_file(engine, ledger, RULES)
    import_file(
        engine,
        write_csv(tmp_path / "p.csv", PAY_HEADER, [["P9", "L1", "2026-11-25 09:30", "700"]]),
        RULES,
    )
    newer = [r.copy() for r in ROWS]
    newer[1][7], newer[2][7] = "1000.00", "100.00"
    snapshot = write_csv(tmp_path / "ledger2.csv", HEADER, newer)
    import_file(engine, snapshot, RULES, snapshot_at=datetime(2026, 11, 26, tzinfo=UTC))
    assert positions(engine, db_url, date(2026, 11, 29))["L1"]["outstanding"] == 90000


def test_gbk_and_bom_files_read_like_utf8(engine: Engine, tmp_path: Path) -> None:
    gbk = write_csv(tmp_path / "gbk.csv", HEADER, ROWS, encoding="gbk")
    result = import_file(engine, gbk, RULES)
    assert result.encoding == "gb18030"
    before = dump(engine)
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + gbk.read_bytes().decode("gbk").encode("utf-8"))
    stamp = gbk.stat().st_mtime
    os.utime(bom, (stamp, stamp))  # the same export, so the same snapshot moment
    assert import_file(engine, bom, RULES).encoding == "utf-8-sig"
    assert dump(engine) == before


def test_xlsx_with_numeric_and_date_cells(engine: Engine, tmp_path: Path) -> None:
    import xlsxwriter

    path = tmp_path / "ledger.xlsx"
    book = xlsxwriter.Workbook(str(path))
    book.add_worksheet("说明")  # an empty first sheet is skipped
    sheet = book.add_worksheet("台账")
    sheet.write_row(0, 0, HEADER[:8])
    sheet.write_row(1, 0, ["C1", "张三", 13800138000, "L1", 1])
    sheet.write_datetime(
        1, 5, datetime(2026, 11, 15), book.add_format({"num_format": "yyyy-mm-dd"})
    )
    sheet.write_number(1, 6, 1234.5)
    sheet.write_number(1, 7, 0)
    book.close()
    result = import_file(engine, path, RULES)
    assert result.rows == 1
    with engine.connect() as conn:
        assert conn.execute(select(customer_phones.c.e164)).scalar_one() == "+8613800138000"


def test_map_option_maps_a_header_and_unknown_columns_survive(
    engine: Engine, tmp_path: Path
) -> None:
    header = [*HEADER[:2], "移动电话", *HEADER[3:]]
    path = write_csv(tmp_path / "mapped.csv", header, ROWS)
    import_file(engine, path, RULES, overrides={"移动电话": "phone"})
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(customers)).scalar_one() == 2


def test_generated_portfolio_imports_across_many_batches(engine: Engine, tmp_path: Path) -> None:
    out, pays = tmp_path / "g.csv", tmp_path / "gp.csv"
    summary = generate(GenerateOptions(300, 3, date(2026, 11, 29), out, pays))
    seen: list[tuple[int, int]] = []
    result = import_file(
        engine, out, RULES, batch_rows=500, progress=lambda d, t: seen.append((d, t))
    )
    assert result.rows == summary.instalment_rows
    assert len(seen) > 2 and seen[-1][0] == summary.instalment_rows
    import_file(engine, pays, RULES, batch_rows=700)
    with engine.connect() as conn:
        assert (
            conn.execute(select(func.count()).select_from(payments)).scalar_one()
            == summary.payment_rows
        )


# --- bad input: a clear error, and the database exactly as it was --------------------------


@pytest.fixture
def loaded(engine: Engine, ledger: Path) -> dict[str, list[tuple[object, ...]]]:
    import_file(engine, ledger, RULES)
    return dump(engine)


def rejected(engine: Engine, path: Path, **kwargs: object) -> ImportRejected:
    with pytest.raises(ImportRejected) as info:
        import_file(engine, path, RULES, **kwargs)  # type: ignore[arg-type]
    return info.value


def one_bad(tmp_path: Path, column: int, value: str) -> Path:
    rows = [r.copy() for r in ROWS] + [
        ["C3", "王五", "13700137000", "L3", "1", "2026-12-01", "500", "0", "App"]
    ]
    rows[-1][column] = value
    return write_csv(tmp_path / "bad.csv", HEADER, rows)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (6, "-100", "应还金额: amount must not be negative (got '-100')"),
        (6, "abc", "应还金额: expected an amount like 1,234.50 (got 'abc')"),
        (5, "2026-02-30", "应还日期: no such date (got '2026-02-30')"),
        (2, "12345", "手机号: not a valid phone number for its region (got '12345')"),
        (4, "x", "期数: expected an instalment number"),
    ],
)
def test_a_bad_cell_rejects_the_whole_file(
    engine: Engine,
    loaded: dict[str, list[tuple[object, ...]]],
    tmp_path: Path,
    column: int,
    value: str,
    message: str,
) -> None:
    error = rejected(engine, one_bad(tmp_path, column, value))
    assert error.total == 1
    assert f"bad.csv:6: {message}" in error.message
    assert dump(engine) == loaded


def test_conflicting_duplicate_ids_in_one_file_are_refused(
    engine: Engine, loaded: dict[str, list[tuple[object, ...]]], tmp_path: Path
) -> None:
    rows = [r.copy() for r in ROWS]
    rows[2][1] = "张山"
    error = rejected(engine, write_csv(tmp_path / "dup.csv", HEADER, rows), batch_rows=1)
    assert (
        "dup.csv:4: 姓名: customer 'C1' was given differently on line 2 ('张三' there) (got '张山')"
        in error.message
    )
    assert dump(engine) == loaded


def test_a_bad_row_after_many_written_batches_still_changes_nothing(
    engine: Engine, loaded: dict[str, list[tuple[object, ...]]], tmp_path: Path
) -> None:
    rows = [
        ["C9", "赵六", "13600136000", f"L9{k}", "1", "2026-12-01", "100", "0", ""]
        for k in range(40)
    ]
    rows.append(["C9", "赵六", "13600136000", "L999", "1", "2026-13-01", "100", "0", ""])
    error = rejected(engine, write_csv(tmp_path / "late.csv", HEADER, rows), batch_rows=7)
    assert "late.csv:42: 应还日期: no such date" in error.message
    assert dump(engine) == loaded


def test_many_problems_are_listed_fifty_then_counted(
    engine: Engine, loaded: dict[str, list[tuple[object, ...]]], tmp_path: Path
) -> None:
    rows = [
        ["C9", "赵六", "13600136000", f"L9{k}", "1", "2026-12-01", "-1", "0", ""]
        for k in range(120)
    ]
    error = rejected(engine, write_csv(tmp_path / "many.csv", HEADER, rows), batch_rows=25)
    assert error.total == 120
    assert "… and 70 more problems" in error.message
    assert "many.csv:2: " in error.message and "many.csv:51: " in error.message
    assert "many.csv:52: " not in error.message
    assert dump(engine) == loaded


def test_a_payment_for_an_unknown_loan_is_refused(
    engine: Engine, loaded: dict[str, list[tuple[object, ...]]], tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "p.csv",
        PAY_HEADER,
        [["P1", "L1", "2026-11-25", "100"], ["P2", "NOPE", "2026-11-25", "100"]],
    )
    error = rejected(engine, path)
    assert (
        "p.csv:3: 借据号: no such loan in the ledger (import its instalments first) (got 'NOPE')"
        in error.message
    )
    assert dump(engine) == loaded


def test_a_recorded_payment_cannot_change(
    engine: Engine, loaded: dict[str, list[tuple[object, ...]]], tmp_path: Path
) -> None:
    import_file(
        engine,
        write_csv(tmp_path / "p.csv", PAY_HEADER, [["P1", "L1", "2026-11-25", "100"]]),
        RULES,
    )
    before = dump(engine)
    error = rejected(
        engine, write_csv(tmp_path / "p2.csv", PAY_HEADER, [["P1", "L1", "2026-11-25", "200"]])
    )
    assert "payments cannot change" in error.message
    assert dump(engine) == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\x00\x01\x02garbage\xff\xfe" * 50, "not text in UTF-8 or GBK/GB18030"),
        (
            "客户编号,姓名,借据号,期数,应还日期,应还金额\nC1,张三,L1,1,2026-11-29,100\n".encode(),
            "missing required column phone",
        ),
        (b"foo,bar\n1,2\n", "cannot tell the kind of file"),
    ],
)
def test_unusable_files_get_a_clear_error(
    engine: Engine,
    loaded: dict[str, list[tuple[object, ...]]],
    tmp_path: Path,
    content: bytes,
    message: str,
) -> None:
    path = tmp_path / "odd.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        import_file(engine, path, RULES)
    assert dump(engine) == loaded


def test_an_xlsx_without_a_data_sheet_is_refused(engine: Engine, tmp_path: Path) -> None:
    import xlsxwriter

    path = tmp_path / "empty.xlsx"
    book = xlsxwriter.Workbook(str(path))
    book.add_worksheet("Sheet1")
    book.close()
    with pytest.raises(InputError, match="no sheet with data"):
        import_file(engine, path, RULES)


def test_a_missing_file_is_named(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        import_file(engine, tmp_path / "nope.csv", RULES)


def test_a_newer_file_replaces_phones_and_updates_changed_fields(
    engine: Engine, ledger: Path, tmp_path: Path
) -> None:
    import_file(engine, ledger, RULES)
    rows = [r.copy() for r in ROWS]
    rows[3][2] = "15000150000;13700137000"
    rows[3][1] = "李肆"
    result = import_file(engine, write_csv(tmp_path / "newer.csv", HEADER, rows), RULES)
    assert result.changed["customers"] == 1
    with engine.connect() as conn:
        phones = conn.execute(
            select(customer_phones.c.e164, customer_phones.c.position)
            .join(customers, customers.c.id == customer_phones.c.customer_id)
            .where(customers.c.external_id == "C2")
            .order_by(customer_phones.c.position)
        ).all()
        name = conn.execute(
            select(customers.c.name).where(customers.c.external_id == "C2")
        ).scalar_one()
    assert [tuple(p) for p in phones] == [("+8615000150000", 0), ("+8613700137000", 1)]
    assert name == "李肆"


def test_a_repeated_instalment_with_another_amount_names_the_field(
    engine: Engine, tmp_path: Path
) -> None:
    rows = [r.copy() for r in ROWS]
    rows.append(["C1", "张三", "13800138000", "L1", "2", "2026-10-15", "1000.00", "500.00", "App"])
    error = rejected(engine, write_csv(tmp_path / "rep.csv", HEADER, rows), batch_rows=2)
    assert (
        "rep.csv:6: 已还金额: instalment 'L1 #2' was given differently on line 3 (got '50000')"
        in error.message
    )
    assert error.total == 1


def test_an_instalment_repeated_identically_in_one_batch_is_taken_once(
    engine: Engine, tmp_path: Path
) -> None:
    rows = [r.copy() for r in ROWS]
    rows.append(rows[1].copy())  # the same instalment again, same values
    import_file(engine, write_csv(tmp_path / "again.csv", HEADER, rows), RULES)
    from cuikuan.store.schema import instalments

    with engine.connect() as conn:
        counted = conn.execute(select(func.count()).select_from(instalments)).scalar_one()
    assert counted == len({(r[3], r[4]) for r in ROWS})


def add_customer(conn: Connection, external_id: str, now: datetime) -> None:
    """A customer written by other code than the import (the table's own id)."""
    conn.execute(
        customers.insert().values(
            external_id=external_id, name="王五", tags="[]", flags="[]", attributes="{}",
            created_at=now, updated_at=now,
        )
    )  # fmt: skip


def test_keys_reserved_by_imports_never_meet_keys_given_elsewhere(
    engine: Engine, ledger: Path, tmp_path: Path
) -> None:
    """New customers and loans are written with ids the import reserved (max(id) under the write
    lock on SQLite, the sequence on PostgreSQL): rows inserted by other code before and after
    must keep theirs, and every loan must still point at its own customer."""
    import_file(engine, ledger, RULES)
    now = datetime(2026, 11, 21, tzinfo=UTC)
    with engine.begin() as conn:
        add_customer(conn, "X1", now)
    more = [
        ["C3", "赵六", "13700137000", "L3", "1", "2026-12-01", "500", "0", "App"],
        ["C1", "张三", "13800138000", "L4", "1", "2026-12-01", "800", "0", "App"],
    ]
    import_file(engine, write_csv(tmp_path / "more.csv", HEADER, more), RULES)
    with engine.begin() as conn:
        add_customer(conn, "X2", now)
        ids = conn.execute(select(customers.c.external_id, customers.c.id)).all()
        owners = dict(
            conn.execute(
                select(loans.c.external_id, customers.c.external_id).join(
                    customers, customers.c.id == loans.c.customer_id
                )
            ).all()
        )
    assert len({i for _, i in ids}) == len(ids) == 5
    assert owners == {"L1": "C1", "L2": "C2", "L3": "C3", "L4": "C1"}


def test_the_generator_writes_in_chunks_the_same_file_as_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows go out every FLUSH_LOANS loans (10 M accounts would not fit in memory otherwise);
    chunk edges must not show in the files, in UTF-8 or GBK."""
    from cuikuan.sim import generator

    def write(name: str, encoding: str) -> generator.GenerateSummary:
        out, pays = tmp_path / f"{name}.csv", tmp_path / f"{name}p.csv"
        return generator.generate(
            GenerateOptions(120, 5, date(2026, 11, 29), out, pays, encoding=encoding)
        )

    for encoding in ("utf-8", "gbk"):
        whole = write("a", encoding)
        monkeypatch.setattr(generator, "FLUSH_LOANS", 7)
        chunked = write("b", encoding)
        monkeypatch.undo()
        assert (whole.instalment_rows, whole.payment_rows) == (
            chunked.instalment_rows,
            chunked.payment_rows,
        )
        assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
        assert (tmp_path / "ap.csv").read_bytes() == (tmp_path / "bp.csv").read_bytes()
        assert (tmp_path / "a.csv").read_bytes().count(b"\n") == whole.instalment_rows + 1


# --- imports side by side (the API's batches from several clients) ---------------------------


def test_a_small_import_is_checked_before_it_waits_for_the_writer(
    engine: Engine, ledger: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source of one batch is checked before the import's transaction takes the write turn
    (SQLite's write lock; PostgreSQL's advisory lock), so two imports (two API clients) check at
    once while only their writes queue."""
    import threading

    from cuikuan.services import importer
    from cuikuan.store.bulk import LEDGER_WRITES_LOCK

    sqlite = db_url.startswith("sqlite")
    checking = threading.Event()
    real = importer.check_batch

    def spied(*args: object, **kwargs: object) -> object:
        checking.set()
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(importer, "check_batch", spied)
    holder = engine.raw_connection()  # another import holds the write turn
    turn = "BEGIN IMMEDIATE" if sqlite else f"SELECT pg_advisory_lock({LEDGER_WRITES_LOCK})"
    holder.cursor().execute(turn)
    done: list[object] = []
    worker = threading.Thread(target=lambda: done.append(import_file(engine, ledger, RULES)))
    worker.start()
    try:
        assert checking.wait(20), "the batch was not checked while another import wrote"
        assert not done
    finally:
        if not sqlite:
            holder.cursor().execute(f"SELECT pg_advisory_unlock({LEDGER_WRITES_LOCK})")
        holder.rollback()
        holder.close()
    worker.join(60)
    assert done and done[0].rows == len(ROWS)  # type: ignore[attr-defined]


def test_imports_side_by_side_all_land(engine: Engine, tmp_path: Path) -> None:
    """Four imports at once, sharing a customer: every row lands once, every loan with its own
    customer, on both databases."""
    from concurrent.futures import ThreadPoolExecutor

    files = []
    for n in range(4):
        rows = [
            [f"C{n}x", "王五", f"1370013700{n}", f"L{n}x", str(k), "2026-12-01", "500", "0", "App"]
            for k in (1, 2, 3)
        ] + [["C1", "张三", "13800138000", f"L{n}y", "1", "2026-12-01", "800", "0", "App"]]
        files.append(write_csv(tmp_path / f"part{n}.csv", HEADER, rows))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda p: import_file(engine, p, RULES), files))
    assert [r.rows for r in results] == [4] * 4
    with engine.connect() as conn:
        owners = dict(
            conn.execute(
                select(loans.c.external_id, customers.c.external_id).join(
                    customers, customers.c.id == loans.c.customer_id
                )
            ).all()
        )
        people = conn.execute(select(func.count()).select_from(customers)).scalar_one()
    assert owners == {f"L{n}{s}": (f"C{n}x" if s == "x" else "C1") for n in range(4) for s in "xy"}
    assert people == 5
