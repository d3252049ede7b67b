"""Drives cuikuan through its command line, day by day, as a lender's operators would: plan in
the morning, replies and payments arriving between the plan and the sends, sends at hours
inside and outside the window, a number replaced in the ledger.

    world, sent = run(pack, folder, seed)

Commands run in this process (typer's runner) so a test can switch a rule off around them.
"""

from __future__ import annotations

import csv
import sqlite3
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from typer.testing import CliRunner

from cuikuan.cli.app import build
from tests.scenarios.checker import Sent
from tests.scenarios.world import (
    HEADER,
    PERSON_STOPS,
    PROMISE,
    STOP_REPLIES,
    WRONG,
    Pack,
    World,
    local,
    write_ledger,
)
from tests.scenarios.world import (
    build as build_world,
)

SEND_HOURS = ((6, 30), (9, 15), (12, 0), (16, 45), (21, 30), (23, 0))


class Cli:
    def __init__(self, folder: Path, pack: Pack) -> None:
        self.folder = folder
        self.config = folder / "cuikuan.toml"
        self.env = {
            "CUIKUAN_POLICY__JURISDICTION": pack.name,
            "CUIKUAN_DEFAULTS__REGION": pack.region,
            "CUIKUAN_DEFAULTS__TIMEZONE": pack.zone,
            "CUIKUAN_DEFAULTS__CURRENCY": pack.currency,
            "CUIKUAN_DEFAULTS__LOCALE": pack.locale,
            "CUIKUAN_SQLITE_WORKER": "off",
        }
        self.runner = CliRunner()

    def __call__(self, *args: str, extra: dict[str, str] | None = None) -> str:
        argv = ["--config", str(self.config), *args] if args[0] != "init" else list(args)
        result = self.runner.invoke(build(), argv, env={**self.env, **(extra or {})})
        if result.exit_code != 0:
            raise AssertionError(f"cuikuan {' '.join(args)}: {result.output}\n{result.exception!r}")
        return result.output


def run(
    pack: Pack, folder: Path, seed: int, extra: dict[str, str] | None = None
) -> tuple[World, list[Sent]]:
    world = build_world(pack, seed)
    cli = Cli(folder, pack)
    cli("init", str(folder))
    ledger = write_ledger(world, folder / "ledger.csv")
    cli("import", str(ledger), "--at", local(pack, pack.start - timedelta(days=1), 20).isoformat())
    db = folder / "cuikuan.db"
    for offset in range(pack.days):
        day = pack.start + timedelta(days=offset)
        cli(
            "plan", "--as-of", day.isoformat(), "--at", local(pack, day, 7).isoformat(), extra=extra
        )
        _events(cli, world, db, day, offset, folder, extra)
        for hour, minute in SEND_HOURS:
            cli("send", "--now", local(pack, day, hour, minute).isoformat(), extra=extra)
    return world, gateway(db)


def gateway(db: Path) -> list[Sent]:
    """What the sandbox gateway accepted: its own record, nothing of cuikuan's decisions."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT accepted_at, recipient, text FROM sandbox_messages").fetchall()
    from datetime import UTC, datetime

    out = []
    for at, recipient, text in rows:
        moment = datetime.fromisoformat(str(at))
        out.append(Sent(moment if moment.tzinfo else moment.replace(tzinfo=UTC), recipient, text))
    return out


def _planned_today(db: Path, day: date) -> list[tuple[str, str]]:
    """(customer external id, recipient) of today's planned SMS: whom to have reply."""
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT c.external_id, o.recipient FROM outbox o JOIN customers c ON c.id = o.customer_id "
            "WHERE o.plan_date = ? AND o.status = 'planned' AND o.channel = 'sms' ORDER BY o.id",
            (day.isoformat(),),
        ).fetchall()


def _events(
    cli: Cli,
    world: World,
    db: Path,
    day: date,
    offset: int,
    folder: Path,
    extra: dict[str, str] | None,
) -> None:
    """Between the plan (07:00) and the first send inside the window (09:15): replies at 08:30,
    a changed number at 08:15, a payment at 08:45 (a send at 08:33 between them carries the
    opt-out confirmations where the pack sends them); each recorded for the checker."""
    pack = world.pack
    planned = _planned_today(db, day)
    if not planned:
        return
    # Whom the payment and the changed number concern: nobody who replies today.
    pay_to = planned[(offset + 3) % len(planned)][0]
    change_for = planned[(offset + 5) % len(planned)][0]
    if offset == 4:  # in time order: the number changes first
        _change_number(cli, world, db, change_for, local(pack, day, 8, 15), folder)
    at = local(pack, day, 8, 30)
    kind_text: list[tuple[str, str]] = [("stop", STOP_REPLIES[pack.name][offset % 5])]
    if offset % 3 == 1:
        kind_text.append(PERSON_STOPS[pack.name][(offset // 3) % 3])
    if offset % 4 == 2:
        kind_text.append(("wrong", WRONG[pack.name]))
    if offset % 4 == 3:
        kind_text.append(("promise", PROMISE[pack.name]))
    for k, (kind, text) in enumerate(kind_text):
        cid, number = planned[(offset + k * 7) % len(planned)]
        moment = at + timedelta(minutes=k)
        cli("reply", number, text, "--at", moment.isoformat())
        world.replies.append((moment, number, kind, text))
        if kind == "promise":
            local_day = moment.astimezone(ZoneInfo(pack.zone)).date()
            monday = local_day + timedelta(days=7 - local_day.weekday())
            world.promises.append((moment, cid, monday))
    cli("send", "--now", local(pack, day, 8, 33).isoformat(), extra=extra)
    if offset % 3 == 0:
        _pay_off(cli, world, pay_to, local(pack, day, 8, 45), folder, day)


def _pay_off(cli: Cli, world: World, cid: str, at_utc: object, folder: Path, day: date) -> None:
    person = next(p for p in world.people if p.cid == cid)
    path = folder / f"pay-{cid}-{day}.csv"
    moment = at_utc.astimezone(ZoneInfo(world.pack.zone))  # type: ignore[attr-defined]
    rows = [
        [f"P-{loan}-{day}-{n}", loan, moment.strftime("%Y-%m-%d %H:%M:%S"), "300.00"]
        for loan in person.loans
        for n in range(1, 4)
    ]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["payment_id", "loan_id", "paid_at", "amount"])
        writer.writerows(rows)
    cli("import", str(path), "--at", at_utc.isoformat())  # type: ignore[attr-defined]
    world.payoffs.append((at_utc, cid, ""))  # type: ignore[arg-type]


def _change_number(
    cli: Cli, world: World, db: Path, cid: str, at_utc: object, folder: Path
) -> None:
    person = next(p for p in world.people if p.cid == cid)
    old = person.numbers[0]
    new = {"cn": "13900139000", "us": "4155559999", "eu": "7911100999"}[world.pack.name]
    person.numbers[0] = new
    rows = [r for r in world.instalments if r[0] == cid]
    for r in rows:
        r[2] = ";".join(person.numbers)
    path = folder / f"change-{cid}.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows(rows)
    cli("import", str(path), "--at", at_utc.isoformat())  # type: ignore[attr-defined]
    world.changes.append((at_utc, cid, old, new))  # type: ignore[arg-type]
