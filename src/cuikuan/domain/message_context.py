"""What a template sees: plain values about one borrower, one loan and the lender.

    context = build_context(borrower, loan, lender, locale="zh-CN")

Only data goes in (strings, numbers, dates, Money): a template has nothing to call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta

from cuikuan.domain.templates import Money, mask

COMPOUND_SURNAMES = (
    "欧阳",
    "司马",
    "上官",
    "诸葛",
    "东方",
    "皇甫",
    "尉迟",
    "公孙",
    "慕容",
    "长孙",
    "宇文",
    "司徒",
    "夏侯",
    "令狐",
)
MALE = {"男", "m", "male", "先生", "mr"}
FEMALE = {"女", "f", "female", "女士", "ms", "mrs"}
GENDER_ATTRIBUTES = ("性别", "gender", "sex")


@dataclass(frozen=True)
class Borrower:
    name: str
    phone: str | None = None
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LoanFacts:
    external_id: str
    product: str | None
    currency: str
    overdue: int
    outstanding: int
    next_instalment: int
    due_date: date | None
    days_to_due: int | None
    dpd: int


@dataclass(frozen=True)
class LenderFacts:
    name: str
    signature: str
    hotline: str = ""
    online_service_url: str = ""
    wechat: str = ""
    app: str = ""
    payment_link: str = ""


@dataclass(frozen=True)
class Promise:
    date: date
    amount: int


@dataclass(frozen=True)
class Plan:
    next_date: date
    next_amount: int
    instalments_left: int


def attributes(*objects: str | None) -> dict[str, str]:
    """Custom attributes as a template sees them: JSON objects merged (later ones win), values
    as text, missing values left out."""
    merged: dict[str, object] = {}
    for text in objects:
        merged.update(json.loads(text or "{}"))
    return {k: str(v) for k, v in merged.items() if v is not None}


def surname(name: str) -> str:
    if name[:2] in COMPOUND_SURNAMES:
        return name[:2]
    if name and "\u4e00" <= name[0] <= "\u9fff":
        return name[0]
    return name.rsplit(maxsplit=1)[-1] if " " in name else name


def honorific(borrower: Borrower, locale: str) -> str:
    gender = (
        next((borrower.attrs[k] for k in GENDER_ATTRIBUTES if borrower.attrs.get(k)), "")
        .strip()
        .lower()
    )
    family = surname(borrower.name)
    if locale.startswith("zh"):
        if gender in MALE:
            return f"{family}先生"
        if gender in FEMALE:
            return f"{family}女士"
        return borrower.name
    if gender in MALE:
        return f"Mr {family}"
    if gender in FEMALE:
        return f"Ms {family}"
    return borrower.name


def build_context(
    borrower: Borrower,
    loan: LoanFacts,
    lender: LenderFacts,
    locale: str,
    promise: Promise | None = None,
    plan: Plan | None = None,
) -> dict[str, object]:
    def money(minor: int) -> Money:
        return Money(minor, loan.currency, locale)

    tail = loan.external_id[-4:]
    context: dict[str, object] = {
        "locale": locale,
        "currency": loan.currency,
        "customer": {
            "name": borrower.name,
            "surname": surname(borrower.name),
            "honorific": honorific(borrower, locale),
            "phone_masked": mask(borrower.phone) if borrower.phone else "",
        },
        "loan": {
            "id": loan.external_id,
            "tail": tail,
            "masked": f"尾号{tail}" if locale.startswith("zh") else f"ending {tail}",
            "product": loan.product or ("借款" if locale.startswith("zh") else "loan"),
        },
        "amounts": {
            "due": money(loan.overdue if loan.overdue else loan.next_instalment),
            "overdue": money(loan.overdue),
            "outstanding": money(loan.outstanding),
            "next_instalment": money(loan.next_instalment),
        },
        "due_date": loan.due_date,
        "days_to_due": loan.days_to_due,
        "dpd": loan.dpd,
        "lender": {
            "name": lender.name,
            "hotline": lender.hotline,
            "online_service_url": lender.online_service_url,
            "wechat": lender.wechat,
            "app": lender.app,
        },
        "payment_link": lender.payment_link,
        "signature": lender.signature,
        "attrs": dict(borrower.attrs),
    }
    if promise is not None:
        context["promise"] = {"date": promise.date, "amount": money(promise.amount)}
    if plan is not None:
        context["plan"] = {
            "next_date": plan.next_date,
            "next_amount": money(plan.next_amount),
            "instalments_left": plan.instalments_left,
        }
    return context


SAMPLE_DAY = date(2026, 11, 29)


def sample_contexts(lender: LenderFacts, locale: str) -> list[dict[str, object]]:
    """Borrowers a template must render for: before due, due today, a little and very late,
    a long name, large amounts; with a promise and a plan so every template can be tried."""
    zh = locale.startswith("zh")
    people = [
        Borrower("张伟" if zh else "Wei Zhang", "+8613800138000", {"性别": "男"}),
        Borrower(
            "欧阳娜娜" if zh else "Nana Ouyang", "+8613900139000", {"性别": "女", "渠道来源": "App"}
        ),
        Borrower("司马相如" if zh else "Alexandra Montgomery-Richardson", None, {}),
    ]
    loans = [
        LoanFacts(
            "L000001234",
            "消费贷" if zh else "consumer loan",
            "CNY",
            0,
            600000,
            150000,
            SAMPLE_DAY + timedelta(days=3),
            3,
            0,
        ),
        LoanFacts("L000005678", None, "CNY", 0, 300050, 100050, SAMPLE_DAY, 0, 0),
        LoanFacts(
            "L000009012",
            "分期购" if zh else "instalment purchase",
            "CNY",
            123450,
            987654,
            61725,
            SAMPLE_DAY - timedelta(days=5),
            -5,
            5,
        ),
        LoanFacts(
            "L000003456",
            "经营贷" if zh else "business loan",
            "CNY",
            9876543210,
            99876543210,
            1234567890,
            SAMPLE_DAY - timedelta(days=95),
            -95,
            95,
        ),
    ]
    promise = Promise(SAMPLE_DAY + timedelta(days=2), 123450)
    plan = Plan(SAMPLE_DAY + timedelta(days=10), 41150, 3)
    return [
        build_context(person, loan, lender, locale, promise, plan)
        for person in people
        for loan in loans
    ]
