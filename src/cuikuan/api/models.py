"""What the API answers, declared once: the OpenAPI document shows these shapes and the schema
tests hold every answer to them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field


class Money(BaseModel):
    amount: str | None = Field(description="Major units as a decimal string, e.g. 1234.50")
    minor: int | None = Field(description="Integer minor units (fen, cents)")


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[dict[str, Any]] | None = None


class CustomerRef(BaseModel):
    id: str
    name: str


class CustomerPage(BaseModel):
    items: list[CustomerRef]
    next_cursor: str | None


class Loan(BaseModel):
    id: str
    currency: str
    dpd: int
    bucket: str
    paid_off: bool
    outstanding: Money
    overdue: Money
    next_due_date: date | None
    days_to_due: int | None
    next_due_amount: Money


class Customer(BaseModel):
    id: str
    name: str
    phones: list[str]
    email: str | None
    as_of: date
    dpd: int
    bucket: str
    loans: list[Loan]


class Event(BaseModel):
    at: datetime
    kind: str
    summary: str


class Timeline(BaseModel):
    items: list[Event]


class Bucket(BaseModel):
    bucket: str
    currency: str
    accounts: int
    customers: int
    outstanding: Money
    overdue: Money


class Band(BaseModel):
    band: str
    accounts: int


class Portfolio(BaseModel):
    as_of: date
    buckets: list[Bucket]
    dpd: list[Band]
    closed_accounts: int


class Message(BaseModel):
    id: int
    customer: str
    channel: str
    recipient: str
    step: str
    template: str | None
    variant: str | None
    plan_date: date
    status: str
    reason: str | None
    provider: str | None
    provider_id: str | None
    segments: int | None
    earliest_at: datetime | None
    latest_at: datetime | None
    sent_at: datetime | None
    updated_at: datetime | None


class MessagePage(BaseModel):
    items: list[Message]
    next_cursor: str | None


class Task(BaseModel):
    id: int
    customer: str | None
    kind: str
    priority: int
    state: str
    assignee: str | None
    due_at: datetime
    summary: str
    notes: list[dict[str, Any]]


class TaskPage(BaseModel):
    items: list[Task]
    next_cursor: str | None


class Promise(BaseModel):
    id: int
    customer: str
    promised_date: date
    amount: Money
    made_at: datetime
    source: str
    status: str
    settled_at: datetime | None


class PromisePage(BaseModel):
    items: list[Promise]
    next_cursor: str | None


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    object: str
    before: Any
    after: Any


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The problem documents a route may answer with, for the OpenAPI document."""
    schema = Problem.model_json_schema()
    return {
        code: {"description": "A problem document (RFC 9457)",
               "content": {"application/problem+json": {"schema": schema}}}
        for code in codes
    }  # fmt: skip
