"""A consumer lender's ledger, made up but realistic: Chinese names, valid-in-form mobile numbers,
loan sizes and schedules by product, most borrowers paying on time, some late, some partly paid,
a few long in default.

    summary = generate(GenerateOptions(accounts=5000, seed=7, as_of=date(2026, 11, 29), out=path))

The same seed gives the same files. The instalments file is a snapshot taken at the start of the
as-of day (its modification time says so); every payment in the payments file is earlier.
"""

from __future__ import annotations

import calendar
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from zoneinfo import ZoneInfo

import polars as pl

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志红玉兰俊峰海燕晨阳思琪子涵浩然雨欣宇轩梓萱欣怡博文佳怡嘉豪雪梅春花建华丽娟文博晓东小龙"
MOBILE_PREFIXES = [
    "130",
    "131",
    "132",
    "133",
    "134",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "153",
    "155",
    "156",
    "157",
    "158",
    "159",
    "173",
    "176",
    "177",
    "180",
    "181",
    "182",
    "183",
    "184",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "198",
    "199",
]
CHANNELS = ("App", "微信小程序", "合作渠道", "门店")
# product: (weight, terms in months, principal median in yuan, monthly rate)
PRODUCTS = {
    "消费贷": (0.40, (6, 12), 8_000, 0.012),
    "现金贷": (0.25, (3, 6), 3_000, 0.018),
    "分期购": (0.25, (12, 24), 6_000, 0.010),
    "经营贷": (0.10, (12, 24, 36), 60_000, 0.009),
}
LENDER_TZ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class GenerateOptions:
    accounts: int
    seed: int
    as_of: date
    out: Path
    payments_out: Path | None = None
    encoding: str = "utf-8"
    loans_per_customer: float = 1.15


@dataclass
class GenerateSummary:
    accounts: int = 0
    customers: int = 0
    instalment_rows: int = 0
    payment_rows: int = 0
    delinquent_accounts: int = 0
    files: list[str] = field(default_factory=list)


def _add_months(day: date, months: int, anchor: int) -> date:
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    return date(year, month, min(anchor, calendar.monthrange(year, month)[1]))


def _principal(rng: random.Random, median: int) -> int:
    yuan = max(500, min(median * 8, rng.lognormvariate(0, 0.6) * median))
    return int(round(yuan / 100) * 100) * 100  # whole hundreds of yuan, in fen


def _schedule(principal: int, months: int, rate: float) -> list[int]:
    total = principal + int(principal * rate * months)
    each = total // months
    return [each] * (months - 1) + [total - each * (months - 1)]


def _behaviour(rng: random.Random) -> tuple[str, int]:
    """(kind, number of instalments missed): most pay, some are a little or very late."""
    r = rng.random()
    if r < 0.80:
        return "good", 0
    if r < 0.90:
        return "late", 1
    if r < 0.95:
        return "slipping", rng.randint(2, 3)
    return "default", rng.randint(4, 12)


class _Book:
    def __init__(self, opts: GenerateOptions) -> None:
        self.opts = opts
        self.rng = random.Random(opts.seed)
        self.inst: dict[str, list[object]] = {k: [] for k in INSTALMENT_HEADER}
        self.pay: dict[str, list[object]] = {k: [] for k in PAYMENT_HEADER}
        self.summary = GenerateSummary(accounts=opts.accounts)
        self.snapshot = datetime.combine(opts.as_of, time(0), LENDER_TZ)
        self.payment_no = 0

    def customers(self) -> list[tuple[str, str, str, str | None]]:
        n = max(1, round(self.opts.accounts / self.opts.loans_per_customer))
        rng, people = self.rng, []
        phones: list[str] = []
        for i in range(n):
            name = rng.choice(SURNAMES) + "".join(
                rng.choice(GIVEN) for _ in range(rng.choice((1, 2)))
            )
            if phones and rng.random() < 0.02:  # a family sharing one number
                phone = rng.choice(phones)
            else:
                phone = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
                phones.append(phone)
            email = f"user{i + 1}@example.com" if rng.random() < 0.3 else None
            people.append((f"C{i + 1:08d}", name, phone, email))
        self.summary.customers = n
        return people

    def loan(self, number: int, person: tuple[str, str, str, str | None]) -> None:
        rng, as_of = self.rng, self.opts.as_of
        product = rng.choices(list(PRODUCTS), [p[0] for p in PRODUCTS.values()])[0]
        _, terms, median, rate = PRODUCTS[product]
        months = rng.choice(terms)
        start = as_of - timedelta(days=rng.randint(5, months * 30 + 60))
        anchor = min(start.day, 28)
        amounts = _schedule(_principal(rng, median), months, rate)
        dues = [_add_months(start, k + 1, anchor) for k in range(months)]
        past = [i for i, d in enumerate(dues) if d < as_of]
        kind, missed = _behaviour(rng)
        missed = min(missed, len(past))
        if missed:
            self.summary.delinquent_accounts += 1
        paid_through = len(past) - missed
        loan_id = f"L{number:09d}"
        channel = rng.choice(CHANNELS)
        for k, (due, amount) in enumerate(zip(dues, amounts, strict=True)):
            paid = amount if k < paid_through else 0
            if k == paid_through and missed and rng.random() < 0.3:
                paid = (amount * rng.choice((20, 30, 50))) // 100 // 100 * 100
            if k >= len(past) and kind == "good" and rng.random() < 0.03:
                paid = amount  # paid ahead of time
            if paid:
                self._payment(loan_id, due, paid, kind)
            self._instalment(person, loan_id, product, k + 1, due, amount, paid, channel)

    def _payment(self, loan_id: str, due: date, amount: int, kind: str) -> None:
        rng = self.rng
        delay = rng.choice((-3, -1, 0, 0, 0, 0, 1, 2)) if kind == "good" else rng.randint(0, 20)
        moment = datetime.combine(
            due + timedelta(days=delay), time(rng.randint(8, 22), rng.randrange(60)), LENDER_TZ
        )
        moment = min(moment, self.snapshot - timedelta(minutes=rng.randint(1, 600)))
        self.payment_no += 1
        self.pay["还款流水号"].append(f"P{self.payment_no:010d}")
        self.pay["借据号"].append(loan_id)
        self.pay["还款时间"].append(moment.strftime("%Y-%m-%d %H:%M:%S"))
        self.pay["还款金额"].append(_yuan(amount))

    def _instalment(
        self,
        person: tuple[str, str, str, str | None],
        loan_id: str,
        product: str,
        no: int,
        due: date,
        amount: int,
        paid: int,
        channel: str,
    ) -> None:
        for key, value in zip(
            INSTALMENT_HEADER,
            (
                *person[:3],
                person[3],
                loan_id,
                product,
                no,
                due.isoformat(),
                _yuan(amount),
                _yuan(paid),
                channel,
            ),
            strict=True,
        ):
            self.inst[key].append(value)


INSTALMENT_HEADER = (
    "客户编号",
    "姓名",
    "手机号",
    "邮箱",
    "借据号",
    "产品名称",
    "期数",
    "应还日期",
    "应还金额",
    "已还金额",
    "渠道来源",
)
PAYMENT_HEADER = ("还款流水号", "借据号", "还款时间", "还款金额")


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


FLUSH_LOANS = 50_000


def generate(opts: GenerateOptions) -> GenerateSummary:
    """Write the ledger (and payments) file. Rows go out every FLUSH_LOANS loans, so memory stays
    that of the customers plus one chunk whatever the size (10 M accounts is 116 M rows); the
    file is the same as written whole (XLSX, which cannot be appended to, is written whole)."""
    book = _Book(opts)
    people = book.customers()
    inst_out = _Sink(opts.out, opts.encoding, INSTALMENT_SCHEMA)
    pay_out = _Sink(opts.payments_out, opts.encoding, PAYMENT_SCHEMA)
    for number in range(1, opts.accounts + 1):
        person = people[number - 1] if number <= len(people) else book.rng.choice(people)
        book.loan(number, person)
        if number % FLUSH_LOANS == 0 or number == opts.accounts:
            book.summary.instalment_rows += inst_out.write(book.inst)
            book.summary.payment_rows += pay_out.write(book.pay)
    inst_out.close()
    pay_out.close()
    stamp = book.snapshot.astimezone(UTC).timestamp()
    os.utime(opts.out, (stamp, stamp))
    book.summary.files.append(str(opts.out))
    if opts.payments_out is not None:
        book.summary.files.append(str(opts.payments_out))
    else:
        book.summary.payment_rows = 0
    return book.summary


INSTALMENT_SCHEMA = dict.fromkeys(INSTALMENT_HEADER, pl.String) | {"期数": pl.Int64}
PAYMENT_SCHEMA = dict.fromkeys(PAYMENT_HEADER, pl.String)


class _Sink:
    """One output file written a chunk at a time (columns as lists, emptied after each write)."""

    def __init__(
        self, path: Path | None, encoding: str, schema: Mapping[str, PolarsDataType]
    ) -> None:
        self.path, self.schema = path, schema
        self.encoding = "utf-8" if encoding.lower().replace("-", "") in ("utf8", "") else encoding
        self.xlsx = path is not None and path.suffix.lower() == ".xlsx"
        self.held: list[pl.DataFrame] = []
        self.fh: BinaryIO | None = None
        if path is not None and not self.xlsx:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.fh = path.open("wb")
        self.header = True

    def write(self, columns: dict[str, list[object]]) -> int:
        frame = pl.DataFrame(columns, schema=self.schema)
        for values in columns.values():
            values.clear()
        if self.path is None:
            return 0
        if self.xlsx:
            self.held.append(frame)
        elif self.fh is not None:
            self.fh.write(frame.write_csv(include_header=self.header).encode(self.encoding))
            self.header = False
        return frame.height

    def close(self) -> None:
        if self.fh is not None:
            if self.header:  # no rows at all: still a header
                self.fh.write(pl.DataFrame(schema=self.schema).write_csv().encode(self.encoding))
            self.fh.close()
        if self.xlsx and self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            frame = pl.concat(self.held) if self.held else pl.DataFrame(schema=self.schema)
            frame.write_excel(self.path, worksheet="台账")
