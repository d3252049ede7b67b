"""Search by the start of a name, on both databases: exactly the customers whose name starts
with the words typed (letters of any case; %, _ and / mean themselves), served by the name
index, which an import that dwarfs the book builds once at its end and a refused import leaves
as it was."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from cuikuan.errors import ImportRejected
from cuikuan.services.customers import find_customers
from cuikuan.services.importer import import_file
from cuikuan.store.engine import open_database
from tests.helpers import RULES, write_csv
from tests.integration.test_import import HEADER

# Letters both databases fold alike (ASCII), CJK, and the characters LIKE would read as its own.
ALPHABET = "aAbBzZ王李伟%_/ .'"
NAMES = [
    "王伟", "王伟强", "王五", "李四", "wang li", "Wang Li", "WANG", "w%ng", "w_ng", "wxng",
    "a/b", "a//b", "100%", "_x", "Ab", "ab", "aB c",
]  # fmt: skip


def _rows(names: list[str], start: int = 1) -> list[list[str]]:
    return [
        [f"C{start + i}", name, f"1380013{start + i:04d}", f"L{start + i}", "1", "2026-12-15",
         "100.00", "0", ""]
        for i, name in enumerate(names)
    ]  # fmt: skip


@pytest.fixture
def book(db_url: str, tmp_path: Path) -> Iterator[Engine]:
    engine = open_database(db_url)
    import_file(engine, write_csv(tmp_path / "names.csv", HEADER, _rows(NAMES)), RULES)
    yield engine
    engine.dispose()


def _fold(s: str) -> str:
    return s.translate(str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"))


def _found(engine: Engine, q: str) -> list[str]:
    return [name for _, _, name in find_customers(engine, "CN", q=q, limit=5000)]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(prefix=st.text(alphabet=ALPHABET, min_size=1, max_size=4))
def test_a_name_search_finds_exactly_the_names_that_start_so(book: Engine, prefix: str) -> None:
    expected = [n for n in NAMES if _fold(n).startswith(_fold(prefix))]
    found = _found(book, prefix)
    # An exact customer or loan id matches as well; none of these prefixes is one.
    assert found == expected


def test_ids_still_match_exactly_and_the_search_is_served_by_an_index(book: Engine) -> None:
    assert _found(book, "C3") == ["王五"]  # customer id, not C30...
    assert _found(book, "L4") == ["李四"]  # loan id
    assert _found(book, "wang") == ["wang li", "Wang Li", "WANG"]
    assert _index_exists(book)
    if book.dialect.name == "sqlite":
        with book.connect() as conn:
            plan = " ".join(
                str(r[-1]) for r in conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN SELECT id FROM customers "
                    "WHERE lower(name) >= lower('wa') AND lower(name) < lower('wa') || char(1114111)"
                )
            )  # fmt: skip
        assert "ix_customers_name_prefix" in plan, plan


def _index_exists(engine: Engine) -> bool:
    query = (
        "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = :n"
        if engine.dialect.name == "sqlite"
        else "SELECT count(*) FROM pg_indexes WHERE indexname = :n"
    )
    with engine.connect() as conn:
        return bool(conn.execute(text(query), {"n": "ix_customers_name_prefix"}).scalar_one())


def test_a_large_first_load_builds_the_index_at_its_end_and_a_refused_one_keeps_it(
    db_url: str, tmp_path: Path
) -> None:
    engine = open_database(db_url)
    try:
        many = _rows([f"客户{i}" for i in range(300)])
        import_file(engine, write_csv(tmp_path / "first.csv", HEADER, many), RULES)
        assert _index_exists(engine) and _found(engine, "客户29") == [
            "客户29",
            *[f"客户29{i}" for i in range(10)],
        ]
        # A refused import (the last row is bad) that would have deferred the index: still there.
        bigger = _rows([f"新{i}" for i in range(2000)], start=1000)
        bigger[-1][5] = "2026-13-01"
        with pytest.raises(ImportRejected):
            import_file(engine, write_csv(tmp_path / "bad.csv", HEADER, bigger), RULES)
        assert _index_exists(engine) and _found(engine, "新") == []
        bigger[-1][5] = "2026-12-15"
        import_file(engine, write_csv(tmp_path / "good.csv", HEADER, bigger), RULES)
        assert _index_exists(engine) and len(_found(engine, "新1")) == 1111
    finally:
        engine.dispose()
