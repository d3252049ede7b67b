"""A small world of borrowers, written by the test itself (not the project's generator), and
what happens to them day by day: replies of every kind, payments, a changed number.

The world records every event with its time, so the checker (checker.py) can judge what the
gateway accepted without asking cuikuan anything.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Pack:
    name: str  # cn, us, eu
    region: str
    zone: str
    currency: str
    locale: str
    start: date
    days: int
    numbers: tuple[str, ...]  # national-format numbers to hand out, some in split area codes
    declared: tuple[str | None, ...]  # declared zones to hand out (None: not declared)


PACKS = {
    # Across the new year (2027 has no Chinese holiday data in the library).
    "cn": Pack(
        "cn",
        "CN",
        "Asia/Shanghai",
        "CNY",
        "zh-CN",
        date(2026, 12, 24),
        12,
        tuple(f"1380013{n:04d}" for n in range(120)),
        (None,) * 8 + ("Asia/Urumqi", "Asia/Tokyo"),
    ),
    # Across the start of daylight saving time (14 March 2027), with split area codes.
    "us": Pack(
        "us",
        "US",
        "America/New_York",
        "USD",
        "en",
        date(2027, 3, 9),
        10,
        tuple(
            [f"212555{n:04d}" for n in range(1000, 1020)]
            + [f"270555{n:04d}" for n in range(1000, 1010)]  # Kentucky: Central and Eastern
            + ["2087031234", "2087041234", "2085551234"]  # Idaho: Mountain, Pacific, unknown
            + [f"907555{n:04d}" for n in range(1000, 1004)]  # Alaska
            + [f"808555{n:04d}" for n in range(1000, 1004)]  # Hawaii
            + [f"415555{n:04d}" for n in range(1000, 1080)]
        ),
        (None,) * 6 + ("America/Chicago", "America/Los_Angeles", "America/Denver"),
    ),
    # Across the end of British summer time (25 October 2026).
    "eu": Pack(
        "eu",
        "GB",
        "Europe/London",
        "GBP",
        "en",
        date(2026, 10, 20),
        10,
        tuple(f"7911100{n:03d}" for n in range(100, 220)),
        (None,) * 8 + ("Europe/Berlin",),
    ),
}


@dataclass
class Person:
    cid: str
    numbers: list[str]  # national format, as the ledger writes them
    declared: str | None
    loans: list[str] = field(default_factory=list)


@dataclass
class World:
    pack: Pack
    people: list[Person]
    instalments: list[list[str]]  # rows of the ledger file
    # (moment, number in E.164, kind, text): every reply the borrowers sent
    replies: list[tuple[datetime, str, str, str]] = field(default_factory=list)
    # (moment, customer id, loan id): loans paid in full
    payoffs: list[tuple[datetime, str, str]] = field(default_factory=list)
    # (moment, customer id, old number, new number): a number replaced in the ledger
    changes: list[tuple[datetime, str, str, str]] = field(default_factory=list)
    # (moment, customer id, promised day): clear promises
    promises: list[tuple[datetime, str, date]] = field(default_factory=list)


def build(pack: Pack, seed: int) -> World:
    rng = random.Random(seed)
    numbers = list(pack.numbers)
    rng.shuffle(numbers)
    people: list[Person] = []
    rows: list[list[str]] = []
    for k in range(60):
        mine = [numbers.pop()]
        if k % 5 == 0:
            mine.append(numbers.pop())  # a second number
        if k in (3, 4):
            mine = [people[0].numbers[0]] if k == 3 else mine  # a number shared with person 0
        person = Person(f"{pack.name.upper()}{k:03d}", mine, rng.choice(pack.declared))
        people.append(person)
        for j in range(1 if k % 4 else 2):
            loan = f"{person.cid}-L{j}"
            person.loans.append(loan)
            # Due dates around the scenario: some already late, some due inside it.
            first_due = pack.start + timedelta(days=rng.randint(-36, pack.days - 24))
            for n in range(1, 4):
                due = first_due + timedelta(days=30 * (n - 1))
                rows.append(
                    [person.cid, f"Borrower {k}", ";".join(person.numbers), person.declared or "",
                     loan, str(n), due.isoformat(), "300.00"]
                )  # fmt: skip
    return World(pack, people, rows)


HEADER = ["customer_id", "name", "phone", "timezone", "loan_id", "instalment_no", "due_date",
          "amount_due"]  # fmt: skip


def write_ledger(world: World, path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows(world.instalments)
    return path


def local(pack: Pack, day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(pack.zone)).astimezone(UTC)


# Replies as borrowers write them, by what they must cause.
STOP_REPLIES = {
    "cn": ["钱上周就转了，以后别发了", "烦死了不要再发，再发我就打12378", "退订", "别发了行不行", "TD"],
    "us": ["quit messaging me or I'm calling my lawyer", "paid already. STOP", "stop texting me",
           "Leave me alone", "no more texts please"],
    "eu": ["please stop", "stop texting me, I know I owe", "unsubscribe", "leave me alone",
           "STOP"],
}  # fmt: skip
PERSON_STOPS = {
    "cn": [("deceased", "我是他老婆，他已经去世了"), ("complaint", "你们这是暴力催收，我要投诉"),
           ("dispute", "这不是我的借款，我没借过")],
    "us": [("deceased", "this was my father's phone, he died in May"),
           ("complaint", "I'm reporting you to the CFPB"), ("dispute", "not my debt, identity theft")],
    "eu": [("deceased", "she passed away last month"), ("complaint", "this is harassment"),
           ("dispute", "I never borrowed from you")],
}  # fmt: skip
WRONG = {
    "cn": "号码换人了，我不是你们要找的人",
    "us": "wrong number",
    "eu": "wrong person, never heard of him",
}
PROMISE = {"cn": "我下周一还300", "us": "I'll pay next Monday", "eu": "I will pay next Monday"}
