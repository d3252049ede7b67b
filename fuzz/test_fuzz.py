"""`make fuzz`: random files and template bodies thrown at the import and the renderer for a
while (FUZZ_SECONDS each, default 60). A refusal (CuikuanError, TemplateProblem) is the right
answer to garbage; any other exception, a hang past the deadline or a crash is a finding.
Findings are written by hypothesis to its example database and printed; the ones found so far
are listed in BENCHMARKS.md ("Fuzzing")."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cuikuan.domain.message_context import LenderFacts, sample_contexts
from cuikuan.domain.templates import Renderer, TemplateFile, TemplateProblem
from cuikuan.errors import CuikuanError
from cuikuan.ingest.validate import Rules
from cuikuan.services.importer import import_file
from cuikuan.store.engine import open_database

SECONDS = float(os.environ.get("FUZZ_SECONDS", "60"))
RULES = Rules("CN", "Asia/Shanghai", "CNY")
BUDGET = settings(
    max_examples=200, deadline=timedelta(seconds=10), database=None,
    suppress_health_check=list(HealthCheck),
)  # fmt: skip
HEADER = "借据号,客户号,姓名,手机号,期数,应还日期,应还金额,已还金额\n"
CELLS = st.one_of(
    st.text(max_size=12), st.from_regex(r"[0-9,.\-¥]{0,14}", fullmatch=True),
    st.sampled_from(["", '"', '""', "第3期", "2026-02-30", "13800138000", "=cmd|' /C calc'!A0", "\x00"]),
)  # fmt: skip


def until_time_is_up(run: object) -> None:
    """Rounds of 200 examples, each round from fresh random data, until SECONDS are up (the
    clock is read between rounds only, so a failing example fails again when shrunk)."""
    end = datetime.now() + timedelta(seconds=SECONDS)
    while datetime.now() < end:
        run()  # type: ignore[operator]


def _import(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"f{suffix}"
        path.write_bytes(data)
        engine = open_database(f"sqlite:///{Path(tmp) / 'x.db'}")
        try:
            import_file(engine, path, RULES, now=datetime(2026, 11, 29))
        except CuikuanError:
            pass
        finally:
            engine.dispose()


def test_random_bytes_are_imported_or_refused() -> None:
    @BUDGET
    @given(st.binary(max_size=4096))
    def run(data: bytes) -> None:
        _import(data, ".csv")

    until_time_is_up(run)


def test_random_ledger_rows_are_imported_or_refused() -> None:
    @BUDGET
    @given(st.lists(st.lists(CELLS, min_size=0, max_size=10), max_size=30))
    def run(rows: list[list[str]]) -> None:
        text = HEADER + "\n".join(",".join(r) for r in rows)
        _import(text.encode("utf-8"), ".csv")

    until_time_is_up(run)


def test_random_workbooks_are_imported_or_refused() -> None:
    parts = st.sampled_from([
        "[Content_Types].xml", "xl/workbook.xml", "xl/worksheets/sheet1.xml",
        "xl/sharedStrings.xml", "xl/_rels/workbook.xml.rels", "_rels/.rels", "xl/styles.xml",
    ])  # fmt: skip
    xml = st.one_of(
        st.binary(max_size=300),
        st.builds(lambda r, c, v: f'<worksheet><sheetData><row r="{r}"><c r="{c}{r}" t="inlineStr"><is><t>{v}</t></is></c></row></sheetData></worksheet>'.encode(),
                  st.integers(0, 2_000_000), st.from_regex(r"[A-Z]{1,4}", fullmatch=True), st.text(max_size=20)),
    )  # fmt: skip

    @BUDGET
    @given(st.dictionaries(parts, xml, max_size=7))
    def run(entries: dict[str, bytes]) -> None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as z:
            for name, data in entries.items():
                z.writestr(name, data)
        _import(buffer.getvalue(), ".xlsx")

    until_time_is_up(run)


def test_random_template_bodies_render_or_are_refused() -> None:
    lender = LenderFacts("示例金融", "【示例金融】", "400-000-0000", "", "", "", "")
    contexts = sample_contexts(lender, "zh-CN")
    pieces = st.sampled_from([
        "{{ ", " }}", "{% ", " %}", "for a in ", "endfor", "if ", "endif", "macro m()", "endmacro",
        "m()", "customer.name", "amounts.due", "'x'", " * ", " ** ", " // ", " + ", "9", "99999",
        "|replace('x','xx')", "|join", "|list", "loan.masked", "dpd", "set b = ", "attrs", "(", ")",
        "[", "]", "..", "__class__", "range(9)", "您好", "\n",
    ])  # fmt: skip

    @BUDGET
    @given(st.lists(pieces, max_size=40))
    def run(chosen: list[str]) -> None:
        body = "".join(chosen)
        template = TemplateFile("fuzz.zh-CN.txt", "fuzz", "zh-CN", "sms", "neutral", "x", body, 7)
        renderer = Renderer({template.path: template})
        for context in contexts[:2]:
            with contextlib.suppress(TemplateProblem):
                renderer.render(template, context)

    until_time_is_up(run)
