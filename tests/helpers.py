"""Small tools the tests share: settings for a URL, a full dump of the ledger tables."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from sqlalchemy import Engine, select

from cuikuan.ingest.validate import Rules
from cuikuan.settings import Database, Lender, Settings
from cuikuan.store.schema import customer_phones, customers, instalments, loans, payments

RULES = Rules(region="CN", timezone="Asia/Shanghai", currency="CNY")
LEDGER_TABLES = (customers, customer_phones, loans, instalments, payments)


def settings_for(url: str) -> Settings:
    return Settings(
        lender=Lender(name="测试金融", signature="【测试金融】"), database=Database(url=url)
    )


def dump(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every ledger table, ordered: equal dumps mean nothing changed at all."""
    with engine.connect() as conn:
        return {
            t.name: [tuple(r) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
            for t in LEDGER_TABLES
        }


def write_csv(
    path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8"
) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path
