"""The daily plan: for an as-of date, who gets which message, when, and why not.

    result = make_plan(engine, settings, date(2026, 11, 29))            # writes the outbox
    result = make_plan(engine, settings, day, dry_run=True)              # writes nothing
    result = make_plan(engine, settings, day, dry_run=True, only_customer="C001")   # explain

The strategy is evaluated set-at-a-time (domain.planning); the contact policy then decides each
chosen message in order of urgency (most urgent step first, then the most overdue), so when a
number shared by several borrowers has room for one message, the most urgent borrower gets it.
Re-running a plan for the same date adds nothing: one row per customer, step and date.

A book of more than CHUNK_CUSTOMERS customers is planned a range of customer ids at a time, so
its memory stays that of one range. Every rule but one looks at a person alone, and a person's
loans, history and numbers are all read with their range. The exception is a number or address
that several customers share: planning one may use up the room of another, most urgent first.
Those rows wait until every range is done and are then decided together, so the outcome is the
one a single pass over the book gives (tested).
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import (
    CompoundSelect,
    Connection,
    Engine,
    Select,
    func,
    literal_column,
    or_,
    select,
    union,
    union_all,
)

from cuikuan.domain import planning, sms
from cuikuan.domain.decide import (
    REASON_KIND,
    RULE,
    decide,
    idempotency_key,
    ordered,
    recipient_expr,
)
from cuikuan.domain.holidays import missing_data_warning
from cuikuan.domain.lint import WordingMatcher
from cuikuan.domain.lint_screen import screen_reason, wording_hits
from cuikuan.domain.message_context import (
    Borrower,
    LenderFacts,
    LoanFacts,
    attributes,
    build_context,
)
from cuikuan.domain.money import currency_digits
from cuikuan.domain.render_frame import NotFlat, flat_pieces, render_frame
from cuikuan.domain.strategy import Strategy, ordered_steps
from cuikuan.domain.templates import Renderer, TemplateFile, TemplateProblem
from cuikuan.domain.tips import with_tip_column
from cuikuan.errors import InputError, NotFound
from cuikuan.services import messages
from cuikuan.services.arrangements import plan_view, settle_arrangements
from cuikuan.services.guardrail import check_templates_guardrail
from cuikuan.services.portfolio import loan_positions
from cuikuan.services.promises import settle
from cuikuan.services.strategy_file import load_strategy
from cuikuan.settings import Settings
from cuikuan.store import calls as call_history
from cuikuan.store import ledger_reads, number_stops, plan_tallies, sqlite_worker
from cuikuan.store.bulk import Bulk, frame_from_rows, sqlite_text
from cuikuan.store.ledger_reads import Scope, among, read_frame, scoped, where
from cuikuan.store.schema import customer_phones, customers, opt_outs, outbox, pauses
from cuikuan.store.times import as_utc

HISTORY_DAYS = 35
# Customers per part of the plan: a larger book is planned a range of customer ids at a time,
# so memory stays that of a book this size (about 1.2 GB).
CHUNK_CUSTOMERS = 1_000_000

log = logging.getLogger(__name__)


@dataclass
class PlanResult:
    as_of: date
    candidates: pl.DataFrame  # one row per person with a matching step, with status and reason
    evaluated: pl.DataFrame  # explain only: one row per open loan with its step matches
    strategy: Strategy
    written: int = 0
    summary: pl.DataFrame = field(default_factory=pl.DataFrame)
    reasons: pl.DataFrame = field(default_factory=pl.DataFrame)  # suppressed_reasons
    candidate_count: int = 0
    warnings: list[str] = field(default_factory=list)
    # Templates the lint failed (never used) and how many rendered texts it stopped.
    lint_templates: dict[str, str] = field(default_factory=dict)
    lint_texts: int = 0

    def summary_json(self, dry_run: bool) -> dict[str, Any]:
        """What `plan --json` prints and the API's dry run answers."""
        return {"as_of": self.as_of.isoformat(), "dry_run": dry_run, "written": self.written,
                "steps": self.summary.to_dicts(), "suppressed": self.reasons.to_dicts(),
                "warnings": self.warnings, "lint_templates": self.lint_templates,
                "lint_texts": self.lint_texts}  # fmt: skip


@dataclass(frozen=True)
class _Day:
    """What every part of a plan shares: the rules, the day, and what was settled first."""

    settings: Settings
    strategy: Strategy
    as_of: date
    promised: set[int]
    on_plan: dict[int, tuple[date, int]]
    blocked: dict[str, str]
    paused: pl.DataFrame
    # The templates' lint (0.3 s of Jinja and matching), worked out while the book is read.
    lint: Future[tuple[WordingMatcher, dict[tuple[str, str], str]]]


def make_plan(
    engine: Engine,
    settings: Settings,
    as_of: date,
    *,
    dry_run: bool = False,
    only_customer: str | None = None,
    now: datetime | None = None,
    keep_candidates: bool = True,
    on_rows: Callable[[pl.DataFrame], None] | None = None,
) -> PlanResult:
    """`keep_candidates=False` keeps only the counts (the CLI: a large book's rows would not
    fit); `on_rows` is handed each part's candidates as they are decided (the export)."""
    now = now if now is not None else day_start(settings, as_of)
    write = not dry_run and only_customer is None
    if only_customer is None:
        sqlite_worker.warm(engine)  # its start-up overlaps settling promises and plans
    day = _make_day(engine, settings, as_of, now, write)
    if only_customer is not None:
        people = _customers(engine, only_customer)
        evaluated, chosen, history = _choose(engine, day, None, people)
        outcome = _Outcome(day, engine, None, None, keep_candidates, on_rows)
        outcome.add(_decide(chosen, history, day))
        return outcome.result(evaluated)
    scopes = _scopes(engine)
    # The parts' rows wait on disk and go into the outbox together, in one short transaction:
    # all or nothing, and on SQLite the write lock is not held while the parts are planned.
    spooling = write and len(scopes) > 1
    with (
        tempfile.TemporaryDirectory(prefix="cuikuan-plan-") if spooling else contextlib.nullcontext() as spool,
        _Outcome(day, engine, now if write else None, Path(spool) if spool else None, keep_candidates, on_rows) as outcome,
    ):  # fmt: skip
        # Rows to a number or address several customers share are decided last, all together:
        # one may take the room another would have had, whatever their part of the book.
        shared = _shared_addresses(engine) if len(scopes) > 1 else None
        later = []
        for scope in scopes:
            _, chosen, history = _choose(engine, day, scope, None)
            if shared is not None:
                chosen, held = _set_apart(chosen, shared)
                later.append(held)
            outcome.add(_decide(chosen, history, day))
        rest = pl.concat(later, how="vertical_relaxed") if later else None
        if rest is not None and rest.height:
            outcome.add(_decide(rest, _history(engine, as_of, rest), day))
        outcome.commit()
        result = outcome.result(pl.DataFrame())
        log.info(
            "plan done as_of=%s candidates=%d written=%d parts=%d in_process=%s",
            as_of, result.candidate_count, result.written, len(scopes), outcome.in_process,
        )  # fmt: skip
        return result


def day_start(settings: Settings, as_of: date) -> datetime:
    """No clock below the CLI: without a moment a plan is made as of its day's start."""
    return datetime.combine(as_of, time(0), ZoneInfo(settings.defaults.timezone)).astimezone(UTC)


def _make_day(engine: Engine, settings: Settings, as_of: date, now: datetime, write: bool) -> _Day:
    """What every part shares. With `write`, what settles first is recorded (promises kept or
    broken, plans, guardrail pauses): once a day, before any part; the parts then read it."""
    return _Day(
        settings,
        load_strategy(settings),
        as_of,
        settle(engine, settings, as_of, write=write, now=now),
        # Reminders follow a current plan's dates and its loan is never escalated.
        settle_arrangements(engine, settings, as_of, write=write, now=now),
        _blocked_templates(engine, settings, now, write),
        _paused(engine, as_of),
        _LINT_AHEAD.submit(_lint_templates, settings),
    )


# -- a plan in parts, for workers in several processes -------------------------------------------
# begin_plan once, then plan_part for each scope (in any process, in any order), then finish_plan
# with every part: the outbox is the one make_plan writes for the same book (tested).


@dataclass
class PlanPart:
    """One part's outcome: its rows to write, the rows to a shared number or address (decided
    at the end, all together), and its stops before the draw."""

    rows: pl.DataFrame
    held: pl.DataFrame
    stops: pl.DataFrame

    def to_bytes(self) -> dict[str, bytes]:
        return {name: _parquet(getattr(self, name)) for name in ("rows", "held", "stops")}

    @classmethod
    def from_bytes(cls, parts: dict[str, bytes]) -> PlanPart:
        return cls(*(pl.read_parquet(io.BytesIO(parts[n])) for n in ("rows", "held", "stops")))


def _parquet(frame: pl.DataFrame) -> bytes:
    out = io.BytesIO()
    frame.write_parquet(out)
    return out.getvalue()


def begin_plan(
    engine: Engine, settings: Settings, as_of: date, now: datetime, customers_per_part: int
) -> list[Scope | None]:
    """Settle what settles first, once; the scopes (customer id ranges) to plan as parts."""
    day = _make_day(engine, settings, as_of, now, write=True)
    day.lint.result()
    return _scopes(engine, customers_per_part)


def plan_part(
    engine: Engine, settings: Settings, as_of: date, now: datetime, scope: Scope | None
) -> PlanPart:
    day = _make_day(engine, settings, as_of, now, write=False)
    shared = _shared_addresses(engine)
    _, chosen, history = _choose(engine, day, scope, None)
    chosen, held = _set_apart(chosen, shared)
    with _Outcome(day, engine, now, None, False, None, post=False) as outcome:
        outcome.add(_decide(chosen, history, day))
    rows = [r for r in outcome.pending if isinstance(r, pl.DataFrame)]
    return PlanPart(
        pl.concat(rows, how="vertical_relaxed") if rows else pl.DataFrame(),
        held,
        _sum_stops(outcome.stops),
    )


def finish_plan(
    engine: Engine, settings: Settings, as_of: date, now: datetime, parts: Sequence[PlanPart]
) -> int:
    """The shared numbers' rows decided together, then every row into the outbox in one
    transaction (all or nothing, and again adds nothing); returns the rows written."""
    day = _make_day(engine, settings, as_of, now, write=False)
    with _Outcome(day, engine, now, None, False, None, post=False) as outcome:
        outcome.pending = [p.rows for p in parts if p.rows.height]
        outcome.stops = [p.stops for p in parts if p.stops.height]
        held = [p.held for p in parts if p.held.height]
        if held:
            rest = pl.concat(held, how="vertical_relaxed")
            outcome.add(_decide(rest, _history(engine, as_of, rest), day))
        outcome.commit()
        return outcome.written


def _choose(
    engine: Engine, day: _Day, scope: Scope | None, people: pl.DataFrame | None
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The loans of `scope` (or of `people`, explain) evaluated against the strategy; per
    person the step and loan picked, with what the policy needs to know of them; and the
    history that counts for them."""
    settings, strategy, as_of = day.settings, day.strategy, day.as_of
    # The people themselves are read for those the strategy picks (about a third on a busy
    # day); before that only tags, which few customers have, are needed to evaluate steps.
    tags = people.select("customer_id", "tags") if people is not None else _tags(engine, scope)
    # Explain shows every loan by its id; the plan reads ids and currencies for picked loans.
    # Explain: only the person's loans are read (a range of their id), not the whole book's.
    read_scope = scope if people is None or scope is not None else _range_of(people)
    positions = (
        loan_positions(
            engine, as_of, settings, scope=read_scope, lean=people is None, open_only=True
        )
        .filter(~pl.col("paid_off"))
        .join(tags, on="customer_id", how="inner" if people is not None else "left")
        .with_columns(pl.col("tags").fill_null(pl.lit([], dtype=pl.List(pl.String))))
    )
    history = _history(engine, as_of, people, scope)
    positions = plan_view(positions, day.on_plan, as_of, settings.ledger.buckets[0].name)
    loans = positions.with_columns(_first_delinquency(positions, history, strategy, as_of))
    evaluated = planning.evaluate(loans, strategy, currency_digits(settings.defaults.currency))
    picked = planning.pick_loans(evaluated, day.settings.plan.urgency)
    if people is None:  # the plan: what it left unread for every loan, for those it picked
        with engine.connect() as conn:
            facts = ledger_reads.loan_facts(conn, picked["loan_id"], snapshot=False)
        picked = picked.join(facts, on="loan_id", how="left")
        people = _customers(engine, None, picked.get_column("customer_id"))
    people = people.with_columns(
        pl.col("customer_id").is_in(sorted(day.promised)).alias("promise_pending"),
    ).join(day.paused, on="customer_id", how="left")
    chosen = planning.assign(
        picked.join(people.select("customer_id", "customer"), on="customer_id"), strategy
    ).join(people.drop("tags", "customer"), on="customer_id")
    return evaluated, chosen, history


def _blocked_templates(
    engine: Engine, settings: Settings, now: datetime, write: bool
) -> dict[str, str]:
    """Templates the plan must not use, with why: paused by the guardrail. (Templates failing
    the lint are held per locale once rendered: `_screen`.)"""
    return {
        name: f"paused by the guardrail: {why}"
        for name, why in check_templates_guardrail(engine, settings, now, write=write).items()
    }


def _set_apart(chosen: pl.DataFrame, shared: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`chosen` split into the rows to decide now and those to a shared number or address."""
    # A row with no recipient is decided now (suppressed, with the reason), not lost.
    apart = recipient_expr().is_in(shared.implode()).fill_null(False)
    return chosen.filter(~apart), chosen.filter(apart)


def _decide(chosen: pl.DataFrame, history: pl.DataFrame, day: _Day) -> pl.DataFrame:
    contact = day.settings.contact_policy()
    zone = day.settings.defaults.timezone
    return decide(
        chosen, history, contact, zone, day.as_of, day.blocked, urgency=day.settings.plan.urgency
    )


class _Outcome:
    """The decided parts of a plan: rendered, written, counted, handed on, kept if asked.

    Rendered a slice at a time; on a SQLite file each slice's rows go to the worker process as
    they are made (store/sqlite_worker.py), so it writes one while this process renders the
    next. With `spool`, the parts' rows wait on disk and go in at `commit`, still posted one
    after the other. The worker's transaction is committed at `commit`, rolled back on leaving
    the block any other way. When the worker cannot serve (or fails), the rows are written by
    this process at `commit` instead, all of them, in one transaction."""

    def __init__(
        self,
        day: _Day,
        engine: Engine,
        now: datetime | None,
        spool: Path | None,
        keep: bool,
        on_rows: Callable[[pl.DataFrame], None] | None,
        *,
        post: bool = True,
    ) -> None:
        """`now`: the rows are to be written (as created then); `spool`: a folder where each
        part's rows wait until `commit` (else they wait in memory); `post=False`: rows are not
        handed to the SQLite worker as they come (a part planned for another process)."""
        self.day, self.engine, self.now, self.spool = day, engine, now, spool
        self.keep, self.on_rows = keep, on_rows
        self.templates: _Templates | None = None
        self.pending: list[pl.DataFrame | Path] = []
        self.parts: list[pl.DataFrame] = []
        self.tallies: list[pl.DataFrame] = []
        self.reasons: list[pl.DataFrame] = []
        self.stops: list[pl.DataFrame] = []
        self.count = 0
        self.written = 0
        self.worker: sqlite_worker.Inserting | None = None
        self.in_process = not post  # the worker cannot serve, failed, or is not wanted

    def __enter__(self) -> _Outcome:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.worker is not None:  # not committed: the plan failed
            self.worker.rollback()
            self.worker = None

    def add(self, decided: pl.DataFrame) -> None:
        if self.templates is None:
            self.templates = _Templates(self.day.settings, *self.day.lint.result())
        for part in decided.iter_slices(WRITE_SLICE) if decided.height else [decided]:
            self._add(part, self.templates)

    def _add(self, decided: pl.DataFrame, templates: _Templates) -> None:
        rendered = _screen(_render(decided, self.day.settings, templates), templates)
        self.count += rendered.height
        self.tallies.append(_tally(rendered))
        self.reasons.append(suppressed_reasons(rendered))
        if self.now is not None:
            self.stops.append(stops_before_draw(rendered))
            rows = _outbox_rows(rendered, self.day.as_of, self.now)
            if self.spool is not None:
                path = self.spool / f"part-{len(self.pending)}.parquet"
                rows.write_parquet(path)
                self.pending.append(path)
            else:
                self.pending.append(rows)
                self._post(rows)
        if self.on_rows is not None:
            self.on_rows(rendered)
        if self.keep:
            self.parts.append(rendered)

    def _post(self, rows: pl.DataFrame) -> None:
        """`rows` to the worker's transaction (begun on the first rows)."""
        if self.in_process or rows.is_empty():
            return
        try:
            if self.worker is None:
                self.worker = sqlite_worker.begin(self.engine)
                if self.worker is None:
                    self.in_process = True
                    return
            _write(self.worker, rows)
        except sqlite_worker.WorkerError:
            self._give_up()

    def _give_up(self) -> None:
        if self.worker is not None:
            self.worker.rollback()
        self.worker, self.in_process = None, True

    def commit(self) -> None:
        """Every part's rows into the outbox, in one transaction; then the day's stops before
        the draw into plan_tallies (a count kept by the larger, so a re-run after a failure
        between the two writes loses nothing)."""
        self._commit_rows()
        stops = _sum_stops(self.stops)
        if stops.height:
            with self.engine.begin() as conn:
                plan_tallies.keep(conn, self.day.as_of, stops)

    def _commit_rows(self) -> None:
        if self.spool is not None and not self.in_process:
            for item in self.pending:
                self._post(_rows_of(item))
        if self.worker is not None:
            try:
                self.written = self.worker.commit()
                self.worker = None
                return
            except sqlite_worker.WorkerError:
                # Rolled back (a worker that committed and failed to say so keeps the rows,
                # which this process's writes then leave alone: one row per key).
                self._give_up()
        if not self.pending:
            return
        with self.engine.begin() as conn:
            for item in self.pending:
                self.written += _write(conn, _rows_of(item))

    def result(self, evaluated: pl.DataFrame) -> PlanResult:
        # Parts are each in decision order; together, in the order one plan would have decided.
        parts = [p for p in self.parts if p.height] or self.parts[:1]
        candidates = ordered(pl.concat(parts), self.day.settings.plan.urgency) if len(parts) > 1 else (
            parts[0] if parts else pl.DataFrame()
        )  # fmt: skip
        result = PlanResult(self.day.as_of, candidates, evaluated, self.day.strategy)
        result.written = self.written
        result.candidate_count = self.count
        tallies = [t for t in self.tallies if t.height]
        result.summary = (
            _summary(pl.concat(tallies), self.day.settings) if tallies else pl.DataFrame()
        )
        reasons = [r for r in self.reasons if r.height]
        result.reasons = _sum_reasons(pl.concat(reasons)) if reasons else self.reasons[0]
        if result.reasons.height:
            rules = result.reasons.with_columns(pl.col("rule").fill_null(""))
            result.lint_texts = int(
                rules.filter(pl.col("rule").str.starts_with("rendered text fails the lint"))[
                    "count"
                ].sum()
            )
            used = set(
                rules.filter(pl.col("rule").str.contains(r"^template .* fails the lint"))["rule"]
            )
            result.lint_templates = {
                f"{n} ({loc})": why
                for (n, loc), why in (self.templates.failing if self.templates else {}).items()
                if any(u.startswith(f"template {n} ({loc})") for u in used)
            }
        calendar = self.day.settings.contact_policy().calendar
        warning = missing_data_warning(self.day.as_of, calendar)
        if warning and calendar.name != "none":
            result.warnings.append(warning)
        return result


def _rows_of(item: pl.DataFrame | Path) -> pl.DataFrame:
    """A part's outbox rows, kept in memory or spooled to a Parquet file."""
    return pl.read_parquet(item) if isinstance(item, Path) else item


# --- reading ------------------------------------------------------------------------------


def _sql(conn: Connection, statement: Select[Any] | CompoundSelect[Any]) -> str:
    """A statement as the database's own SQL text, values inlined (for `read_frame`)."""
    return str(statement.compile(conn, compile_kwargs={"literal_binds": True}))


def _scopes(engine: Engine, size: int | None = None) -> list[Scope | None]:
    """The ranges of customer ids planned one at a time; [None] when the book fits in one."""
    size = size or CHUNK_CUSTOMERS
    with engine.connect() as conn:
        low, high = conn.execute(select(func.min(customers.c.id), func.max(customers.c.id))).one()
    if low is None or high - low < size:
        return [None]
    return [(start, start + size) for start in range(low, high + 1, size)]


def _shared_addresses(engine: Engine) -> pl.Series:
    """Numbers and e-mail addresses that more than one customer has."""
    with engine.connect() as conn:
        numbers = conn.execute(
            select(customer_phones.c.e164)
            .group_by(customer_phones.c.e164)
            .having(func.count(func.distinct(customer_phones.c.customer_id)) > 1)
        ).scalars()
        found = list(numbers)
        emails = conn.execute(
            select(customers.c.email)
            .where(customers.c.email.is_not(None))
            .group_by(customers.c.email)
            .having(func.count() > 1)
        ).scalars()
        return pl.Series(found + list(emails), dtype=pl.String)


def _range_of(people: pl.DataFrame) -> Scope | None:
    ids = people.get_column("customer_id")
    return (int(ids.min()), int(ids.max()) + 1) if people.height else None  # type: ignore[arg-type]


def _tags(engine: Engine, scope: Scope | None) -> pl.DataFrame:
    """customer_id and tags of the customers that have any."""
    condition = where("tags IS NOT NULL AND tags <> '[]'", scoped("id", scope, customer=True))
    with engine.connect() as conn:
        frame = read_frame(
            conn,
            "SELECT id, tags FROM customers" + condition,
            {"customer_id": pl.Int64, "tags": pl.String},
        )
    return frame.with_columns(pl.col("tags").str.json_decode(pl.List(pl.String)))


def _customers(engine: Engine, only: str | None, ids: pl.Series | None = None) -> pl.DataFrame:
    query = select(
        customers.c.id,
        customers.c.external_id,
        customers.c.name,
        customers.c.email,
        customers.c.locale,
        customers.c.timezone,
        customers.c.tags,
        customers.c.flags,
        customers.c.attributes,
    )
    # Put in order here, not by SQLite: it sorts by position in a temporary B-tree (0.27 s of
    # 0.48 for a busy day's 267 k people).
    phones_sql = select(
        customer_phones.c.customer_id,
        customer_phones.c.e164,
        customer_phones.c.kind,
        customer_phones.c.position,
    )
    if only is not None:
        query = query.where(customers.c.external_id == only)
        phones_sql = phones_sql.where(
            customer_phones.c.customer_id.in_(
                select(customers.c.id).where(customers.c.external_id == only).scalar_subquery()
            )
        )
    person_schema = {"customer_id": pl.Int64, "customer": pl.String, "name": pl.String, "email": pl.String,
                     "locale": pl.String, "timezone": pl.String, "tags": pl.String, "flags": pl.String,
                     "attributes": pl.String}  # fmt: skip
    phone_schema = {"customer_id": pl.Int64, "e164": pl.String, "kind": pl.String,
                    "position": pl.Int64}  # fmt: skip
    opted_sql = select(opt_outs.c.customer_id, opt_outs.c.channel)
    with engine.connect() as conn:

        def of_ids(statement: Select[Any], column: str) -> str:
            # literal_column, not text(): text() scans the megabytes of ids for bind parameters.
            if ids is not None:
                statement = statement.where(literal_column(among(conn, column, ids)))
            return _sql(conn, statement)

        frame = read_frame(conn, of_ids(query, "customers.id"), person_schema)
        phones = of_ids(phones_sql, "customer_phones.customer_id")
        phone_frame = read_frame(conn, phones, phone_schema)
        opted = conn.exec_driver_sql(of_ids(opted_sql, "opt_outs.customer_id")).all()
        stops = number_stops.stopped(conn)
    if only is not None and frame.is_empty():
        raise NotFound(f"no customer {only!r} in the ledger")
    return _with_contacts(frame, phone_frame, opted, stops)


def _with_contacts(
    frame: pl.DataFrame,
    phone_frame: pl.DataFrame,
    opted: Sequence[Any],
    stops: dict[tuple[str, str], str],
) -> pl.DataFrame:
    """People with their numbers (`phones`, for zones), the mobiles a text may go to (`mobiles`:
    stopped numbers left out, so the first usable one is chosen), and the channels they are
    opted out of. A person whose every mobile (or whose address) is stopped is opted out of the
    channel, else flagged wrong_number, else reply_unread (held until a person reads a reply)."""
    stopped = frame_from_rows(
        [(a, c, r) for (a, c), r in stops.items()],
        {"_address": pl.String, "_channel": pl.String, "_stop": pl.String},
    )
    sms_stops = stopped.filter(pl.col("_channel") == "sms").select(
        pl.col("_address").alias("e164"), "_stop"
    )
    mobile = pl.col("kind").is_in(["mobile", "fixed_or_mobile"])
    lists = (
        phone_frame.join(sms_stops, on="e164", how="left")
        .sort("customer_id", "position")
        .group_by("customer_id", maintain_order=True)
        .agg(
            pl.col("e164").alias("phones"),
            pl.col("e164").filter(mobile & pl.col("_stop").is_null()).alias("mobiles"),
            pl.col("_stop").filter(mobile).drop_nulls().alias("_stops"),
        )
    )
    mail_stops = stopped.filter(pl.col("_channel") == "email").select(
        pl.col("_address").alias("email"), pl.col("_stop").alias("_mail_stop")
    )
    opted_frame = (
        frame_from_rows([tuple(r) for r in opted], {"customer_id": pl.Int64, "channel": pl.String})
        .group_by("customer_id")
        .agg(pl.col("channel").alias("opted_out"))
    )
    empty = pl.lit([], dtype=pl.List(pl.String))
    all_stopped = (pl.col("mobiles").list.len() == 0) & (pl.col("_stops").list.len() > 0)
    sms_opted = all_stopped & pl.col("_stops").list.contains("opt_out")
    sms_wrong = all_stopped & ~sms_opted & pl.col("_stops").list.contains("wrong_number")
    sms_unread = all_stopped & ~sms_opted & ~pl.col("_stops").list.contains("wrong_number")
    return (
        frame.with_columns(
            pl.col("tags").str.json_decode(pl.List(pl.String)),
            pl.col("flags").str.json_decode(pl.List(pl.String)),
        )
        .join(lists, on="customer_id", how="left")
        .join(opted_frame, on="customer_id", how="left")
        .join(mail_stops, on="email", how="left")
        .with_columns(pl.col("phones", "mobiles", "opted_out", "_stops").fill_null(empty))
        .with_columns(
            pl.when(sms_opted)
            .then(pl.col("opted_out").list.concat(pl.lit(["sms"])))
            .otherwise(pl.col("opted_out"))
            .alias("opted_out"),
            pl.when(sms_wrong)
            .then(pl.col("flags").fill_null(empty).list.concat(pl.lit(["wrong_number"])))
            .when(sms_unread)
            .then(pl.col("flags").fill_null(empty).list.concat(pl.lit(["reply_unread"])))
            .otherwise(pl.col("flags"))
            .alias("flags"),
            pl.when(pl.col("_mail_stop").is_null()).then(pl.col("email")).alias("email"),
        )
        .with_columns(
            pl.when(pl.col("_mail_stop") == "opt_out")
            .then(pl.col("opted_out").list.concat(pl.lit(["email"])))
            .otherwise(pl.col("opted_out"))
            .alias("opted_out"),
        )
        .drop("_stops", "_mail_stop")
    )


def _paused(engine: Engine, as_of: date) -> pl.DataFrame:
    """Customers whose automated reminders are paused on `as_of`, with the latest reason."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(pauses.c.customer_id, pauses.c.reason)
            .where(pauses.c.until >= as_of)
            .order_by(pauses.c.created_at)
        ).all()
    latest = {cid: reason for cid, reason in rows}
    return frame_from_rows(list(latest.items()), {"customer_id": pl.Int64, "paused": pl.String})


def _history(
    engine: Engine, as_of: date, only: pl.DataFrame | None, scope: Scope | None = None
) -> pl.DataFrame:
    """Messages that count against caps (sent, or planned and not yet settled), recent ones.

    At steady state this is the plan's largest read (a month of a busy book's messages), so it
    goes through `read_frame`, not row objects. With `only` (explain, or the rows to shared
    numbers), just what can count for those people: their own messages and those to their
    numbers and addresses; with `scope`, for the customers in that range."""
    since = as_of - timedelta(days=HISTORY_DAYS)
    query = select(
        outbox.c.customer_id,
        outbox.c.recipient,
        outbox.c.step,
        outbox.c.plan_date,
        outbox.c.idempotency_key,
        func.coalesce(outbox.c.sent_at, outbox.c.earliest_at).label("at"),
        outbox.c.status,
        outbox.c.control,
    ).where(outbox.c.plan_date >= since)
    statement: Select[Any] | CompoundSelect[Any] = query
    if scope is not None:
        low, high = scope
        theirs = (outbox.c.customer_id >= low) & (outbox.c.customer_id < high)
        theirs_at = union(
            select(customer_phones.c.e164).where(
                customer_phones.c.customer_id >= low, customer_phones.c.customer_id < high
            ),
            select(customers.c.email).where(
                customers.c.id >= low, customers.c.id < high, customers.c.email.is_not(None)
            ),
        )
        # Two parts, so each can go by its index (customer, recipient).
        statement = union_all(
            query.where(theirs), query.where(~theirs, outbox.c.recipient.in_(theirs_at))
        )
    elif only is not None:
        addresses = only.select(pl.col("phones").explode()).to_series().drop_nulls().to_list()
        addresses += only.get_column("email").drop_nulls().to_list()
        statement = query.where(
            or_(
                outbox.c.customer_id.in_(only.get_column("customer_id").to_list()),
                outbox.c.recipient.in_(addresses),
            )
        )
    with engine.connect() as conn:
        frame = read_frame(conn, _sql(conn, statement), {
            "customer_id": pl.Int64, "recipient": pl.String, "step": pl.String,
            "plan_date": pl.Date, "key": pl.String, "at": pl.Datetime("us", "UTC"),
            "status": pl.String, "control": pl.Int64,
        })  # fmt: skip
        made = _calls(conn, since, only, scope)
    frame = frame.with_columns(pl.col("control").cast(pl.Boolean))
    return pl.concat([frame, made]) if made.height else frame


def _calls(
    conn: Connection, since: date, only: pl.DataFrame | None, scope: Scope | None
) -> pl.DataFrame:
    """Agents' calls as history rows (store/calls.py): each counts against the caps like a
    delivered message, for its customer and for the number called."""
    start = datetime.combine(since, time(0), UTC)
    if scope is not None:
        low, high = scope
        numbers = select(customer_phones.c.e164).where(
            customer_phones.c.customer_id >= low, customer_phones.c.customer_id < high
        )
        ids = select(customers.c.id).where(customers.c.id >= low, customers.c.id < high)
        rows = call_history.recent(conn, start, ids, numbers)
    elif only is not None:
        addresses = only.select(pl.col("phones").explode()).to_series().drop_nulls().to_list()
        rows = call_history.recent(conn, start, only.get_column("customer_id").to_list(), addresses)
    else:
        rows = call_history.recent(conn, start)
    return pl.DataFrame(
        [(r.customer_id, r.number, call_history.STEP, as_utc(r.at).date(), call_history.key(r.id),
          as_utc(r.at), "delivered", False) for r in rows],
        schema={"customer_id": pl.Int64, "recipient": pl.String, "step": pl.String,
                "plan_date": pl.Date, "key": pl.String, "at": pl.Datetime("us", "UTC"),
                "status": pl.String, "control": pl.Boolean},
        orient="row",
    )  # fmt: skip


def _first_delinquency(
    positions: pl.DataFrame, history: pl.DataFrame, strategy: Strategy, as_of: date
) -> pl.Expr:
    """A person is a repeat delinquent when an overdue step reached them before this episode."""
    overdue_steps = [s.id for s in strategy.steps if s.targets_overdue]
    earlier = (
        history.filter(pl.col("step").is_in(overdue_steps))
        .group_by("customer_id")
        .agg(pl.col("plan_date").min().alias("_first"))
    )
    start = positions.group_by("customer_id").agg(
        (pl.lit(as_of) - pl.duration(days=pl.col("dpd").max())).alias("_start")
    )
    repeat = (
        start.join(earlier, on="customer_id")
        .filter(pl.col("_first") < pl.col("_start"))
        .get_column("customer_id")
    )
    return (~pl.col("customer_id").is_in(repeat.to_list())).alias("first_delinquency")


# --- rendering and writing ----------------------------------------------------------------


_LINT_AHEAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cuikuan-lint")


def _lint_templates(
    settings: Settings,
) -> tuple[WordingMatcher, dict[tuple[str, str], str]]:
    return messages.lint_state(settings)


class _Templates:
    """The templates, tips and lender facts a plan renders with, loaded once per plan."""

    def __init__(
        self,
        settings: Settings,
        matcher: WordingMatcher,
        failing: dict[tuple[str, str], str],
    ) -> None:
        templates, problems = messages.load_templates(messages.templates_dir(settings))
        if problems:
            raise InputError("\n".join(p.render() for p in problems))
        self.by_key: dict[tuple[str, str], TemplateFile] = {t.key: t for t in templates}
        self.renderer = Renderer({t.path: t for t in templates})
        self.lender = messages.lender_facts(settings)
        self.tips = {loc: messages.load_tips(loc) for loc in settings.templates.locales}
        self.matcher, self.failing = matcher, failing
        self.default_locale = settings.defaults.locale
        self.max_segments = settings.templates.max_segments
        self.max_units = (
            settings.templates.max_cn_billing_units
            if settings.policy.jurisdiction == "cn"
            else None
        )
        self.known = pl.DataFrame(
            [{"template": name, "locale": loc} for name, loc in self.by_key],
            schema={"template": pl.String, "locale": pl.String},
        ).with_columns(pl.lit(True).alias("_known"))


def _render(decided: pl.DataFrame, settings: Settings, kit: _Templates) -> pl.DataFrame:
    """Text, segments and billing units of every message to send or hold back: per (template,
    locale), over the column when the template is flat (render_frame), else row by row."""
    by_key, renderer, lender, tips = kit.by_key, kit.renderer, kit.lender, kit.tips
    known = kit.known
    todo = (
        decided.with_row_index("_r")
        .filter(pl.col("status").is_in(["planned", "held"]))
        .join(known, on=["template", "locale"], how="left")
        .select(
            "_r", "template", "customer", "send_day",
            pl.col("name"),
            pl.when(pl.col("channel") == "sms").then(pl.col("recipient")).alias("phone"),
            "attributes", "external_id", "currency",
            pl.when(pl.col("_known")).then(pl.col("locale"))
            .otherwise(pl.lit(settings.defaults.locale)).alias("locale"),
            pl.col("overdue_amount").alias("overdue"), "outstanding",
            pl.col("next_due_amount").alias("next_instalment"),
            pl.col("next_due_date").alias("due_date"), "days_to_due", "dpd",
        )
    )  # fmt: skip
    parts = []
    for (name, locale), group in todo.group_by("template", "locale", maintain_order=True):
        template = by_key[(str(name), str(locale))]
        texts = _render_group(renderer, template, group, lender)
        if settings.templates.tips and template.tone in settings.templates.tips_on_tones:
            # Which tip is tried first turns with the customer and the day ("C001/2026-11-30").
            keys = (
                group.select(
                    pl.concat_str(
                        "customer",
                        pl.lit("/"),
                        pl.col("send_day").cast(pl.String).fill_null("None"),
                    )
                )
                .to_series()
                .to_list()
            )
            texts = with_tip_column(texts, keys, tips.get(str(locale), []))
        parts.append(group.select("_r").with_columns(texts.alias("text")))
    schema = {"_r": pl.UInt32, "text": pl.String}
    texts_frame = pl.concat(parts) if parts else pl.DataFrame(schema=schema)
    measured = texts_frame.with_columns(
        sms.segments_column(texts_frame["text"]).alias("segments"),
        sms.cn_billing_units_expr(pl.col("text")).alias("billing_units"),
    )
    return (
        decided.with_row_index("_r")
        .join(measured, on="_r", how="left")
        .sort("_r")
        .drop("_r")
        .with_columns(pl.col("segments", "billing_units").fill_null(0))
    )


def _screen(rendered: pl.DataFrame, kit: _Templates) -> pl.DataFrame:
    """The lint over every rendered message to send (domain.lint_screen): a text the data made
    banned or overlong is suppressed, saying why; e-mail is not measured in segments."""
    if rendered.is_empty():
        return rendered
    sms_only = pl.col("channel") == "sms"
    sending = rendered["status"] == "planned"
    hits = pl.Series("_hit", [False] * rendered.height, dtype=pl.Boolean)
    if sending.any():
        hits = hits.scatter(
            sending.arg_true(), wording_hits(rendered.filter(sending)["text"], kit.matcher)
        )
    rendered = rendered.with_columns(hits)
    why = screen_reason(
        pl.col("_hit"), pl.when(sms_only).then(pl.col("segments")).otherwise(0),
        pl.when(sms_only).then(pl.col("billing_units")).otherwise(0), kit.max_segments, kit.max_units,
    )  # fmt: skip
    # A template (in the locale the row is rendered in) that fails the lint is never sent.
    failing = pl.DataFrame(
        [(n, loc, f"template {n} ({loc}) fails the lint: {why}") for (n, loc), why in kit.failing.items()],
        schema={"template": pl.String, "_loc": pl.String, "_tfail": pl.String},
        orient="row",
    )  # fmt: skip
    rendered = (
        rendered.join(kit.known, on=["template", "locale"], how="left")
        .with_columns(
            pl.when(pl.col("_known")).then(pl.col("locale")).otherwise(pl.lit(kit.default_locale)).alias("_loc")
        )
        .join(failing, on=["template", "_loc"], how="left")
        .drop("_known", "_loc")
    )  # fmt: skip
    # Held rows are never sent: only what would leave is gated.
    flagged = pl.when(pl.col("status") == "planned").then(pl.coalesce("_tfail", why))
    return rendered.with_columns(flagged.alias("_lint")).with_columns(
        pl.when(pl.col("_lint").is_not_null()).then(pl.lit("suppressed")).otherwise(pl.col("status")).alias("status"),
        pl.coalesce("_lint", "reason").alias("reason"),
    ).drop("_lint", "_tfail", "_hit")  # fmt: skip


def _render_group(
    renderer: Renderer, template: TemplateFile, group: pl.DataFrame, lender: LenderFacts
) -> pl.Series:
    try:
        pieces = flat_pieces(renderer, template)
    except TemplateProblem as exc:
        raise InputError(str(exc)) from None
    if pieces is not None:
        try:
            return render_frame(group, pieces, lender)
        except NotFlat:
            pass  # some row needs Jinja (which reports what is wrong with it)
    texts = []
    for row in group.iter_rows(named=True):
        attrs = attributes(row["attributes"])
        facts = LoanFacts(row["external_id"], None, row["currency"], row["overdue"], row["outstanding"],
                          row["next_instalment"], row["due_date"], row["days_to_due"], row["dpd"])  # fmt: skip
        context = build_context(
            Borrower(row["name"], row["phone"], attrs), facts, lender, row["locale"]
        )
        try:
            texts.append(renderer.render(template, context))
        except TemplateProblem as exc:
            raise InputError(str(exc)) from None
    return pl.Series("text", texts, dtype=pl.String)


WRITE_SLICE = 50_000
OUTBOX_COLUMNS = (
    "idempotency_key", "plan_date", "customer_id", "loan_id", "step", "template", "variant",
    "channel", "recipient", "text", "control", "earliest_at", "latest_at", "segments",
    "billing_units", "status", "reason", "trail", "created_at", "updated_at", "opens_at",
)  # fmt: skip
OUTBOX_TYPES = (
    "text, date, bigint, bigint, text, text, integer, text, text, text, integer, timestamptz, "
    "timestamptz, integer, integer, text, text, text, timestamptz, timestamptz, timestamptz"
)


def _outbox_rows(rendered: pl.DataFrame, as_of: date, now: datetime) -> pl.DataFrame:
    """The rows that reached the control draw (planned, held, and those the caps or the lint
    stopped after it, which the report counts as treated: `decide.CAP_PREFIX`) as outbox
    columns (OUTBOX_COLUMNS), in key order: the unique index (and the customer one) then grow
    at their ends, not all over."""
    stopped = pl.col("status") == "suppressed"
    return rendered.filter(pl.col("opens_at").is_not_null()).sort("customer").select(
        pl.concat_str(
            pl.col("customer"), pl.lit("|"), pl.col("step"), pl.lit(f"|{as_of.isoformat()}")
        ).alias("idempotency_key"),
        pl.lit(as_of).alias("plan_date"),
        "customer_id", "loan_id", "step", "template", "variant", "channel", "recipient",
        # A stopped row's text is not kept: it never leaves, and may be what the lint refused.
        pl.when(stopped).then(pl.lit("")).otherwise(pl.col("text").fill_null("")).alias("text"),
        pl.col("control").cast(pl.Int64),
        pl.coalesce("earliest_at", "opens_at").alias("earliest_at"),
        pl.coalesce("latest_at", "opens_at").alias("latest_at"),
        pl.when(stopped).then(0).otherwise(pl.col("segments")).alias("segments"),
        pl.when(stopped).then(0).otherwise(pl.col("billing_units")).alias("billing_units"),
        "status", "reason", "trail",
        pl.lit(now).dt.convert_time_zone("UTC").alias("created_at"),
        pl.lit(now).dt.convert_time_zone("UTC").alias("updated_at"),
        "opens_at",
    )  # fmt: skip


def _write(target: Connection | sqlite_worker.Inserting, frame: pl.DataFrame) -> int:
    """Outbox rows (`_outbox_rows`) into the outbox, in the caller's transaction: posted as
    Arrow to the SQLite worker, else as plain tuples (executemany on SQLite, COPY on
    PostgreSQL); a row whose key is already there is left alone. Returns the rows added (by
    this process: the worker's are counted when they are in)."""
    if frame.is_empty():
        return 0
    names = ", ".join(OUTBOX_COLUMNS)
    written = 0
    if isinstance(target, sqlite_worker.Inserting):
        # "WHERE true": SQLite would read the ON of ON CONFLICT as a join's.
        upsert = (
            f"INSERT INTO outbox ({names}) SELECT {names} FROM temp._plan_outbox WHERE true "
            "ON CONFLICT (idempotency_key) DO NOTHING"
        )
        for part in frame.iter_slices(WRITE_SLICE):
            target.insert(sqlite_text(part), "_plan_outbox", upsert)
        return 0  # counted when the worker's inserts are in (Inserting.commit)
    bulk = Bulk(target)
    # In slices: Python tuples of every row at once would be the largest thing the plan holds
    # (about 1 KB a row).
    for part in frame.iter_slices(WRITE_SLICE):
        rows = bulk.rows(part)
        if bulk.sqlite:
            sql = f"INSERT INTO outbox ({names}) VALUES ({bulk.placeholders(len(OUTBOX_COLUMNS))}) "
            written += bulk.many(sql + "ON CONFLICT (idempotency_key) DO NOTHING", rows)
            continue
        columns = ", ".join(f"{n} {t}" for n, t in zip(OUTBOX_COLUMNS, OUTBOX_TYPES.split(", "), strict=True))  # fmt: skip
        written += bulk.copy_upsert(
            "_plan_outbox",
            columns,
            rows,
            f"INSERT INTO outbox ({names}) SELECT {names} FROM _plan_outbox "
            "ON CONFLICT (idempotency_key) DO NOTHING",
        )
    return written


def summarise(rendered: pl.DataFrame, settings: Settings) -> pl.DataFrame:
    """Per step and variant: candidates, control, suppressed, to send, segments, estimated cost."""
    return _summary(_tally(rendered), settings)


def _tally(rendered: pl.DataFrame) -> pl.DataFrame:
    """The counts of `summarise`, which add up across the parts of a plan."""
    if rendered.height == 0:
        return pl.DataFrame()
    return rendered.group_by("step_index", "step", "variant", "template").agg(
        pl.len().alias("candidates"),
        (pl.col("status") == "held").sum().alias("control"),
        pl.col("status").is_in(["suppressed", "skipped"]).sum().alias("suppressed"),
        (pl.col("status") == "planned").sum().alias("to_send"),
        (pl.col("status") == "exists").sum().alias("already_planned"),
        pl.col("segments").filter(pl.col("status") == "planned").sum().alias("segments"),
        pl.col("billing_units").filter(pl.col("status") == "planned").sum().alias("billing_units"),
    )


def _summary(tallies: pl.DataFrame, settings: Settings) -> pl.DataFrame:
    if tallies.height == 0:
        return pl.DataFrame()
    price = settings.plan.price_per_billing_unit
    keys = ["step_index", "step", "variant", "template"]
    return (
        tallies.group_by(keys)
        .agg(pl.exclude(keys).sum())
        .with_columns(
            (pl.col("billing_units").cast(pl.Float64) * float(price))
            .round(2)
            .alias("estimated_cost")
        )
        .sort("step_index", "variant")
        .drop("step_index")
    )


def stops_before_draw(rendered: pl.DataFrame) -> pl.DataFrame:
    """The rows stopped before the control draw (not written to the outbox), counted per step,
    variant, template, status and rule (store.plan_tallies)."""
    return (
        rendered.filter(
            pl.col("status").is_in(["suppressed", "skipped"]) & pl.col("opens_at").is_null()
        )
        .with_columns(REASON_KIND.alias("rule"))
        .group_by("step", "variant", "template", "status", "rule")
        .agg(pl.len().alias("count"))
    )


def _sum_stops(stops: list[pl.DataFrame]) -> pl.DataFrame:
    keys = ["step", "variant", "template", "status", "rule"]
    found = [s for s in stops if s.height]
    if not found:
        return pl.DataFrame()
    return pl.concat(found).group_by(keys).agg(pl.col("count").sum())


def suppressed_reasons(rendered: pl.DataFrame) -> pl.DataFrame:
    """How many were stopped by each reason (the reason's first words), per step."""
    return (
        rendered.filter(pl.col("status").is_in(["suppressed", "skipped"]))
        .with_columns(RULE.alias("rule"))
        .group_by("step", "rule")
        .agg(pl.len().alias("count"))
        .sort("step", "count", descending=[False, True])
    )


def _sum_reasons(reasons: pl.DataFrame) -> pl.DataFrame:
    return (
        reasons.group_by("step", "rule")
        .agg(pl.col("count").sum())
        .sort("step", "count", "rule", descending=[False, True, False])
    )


def steps_of(strategy: Strategy) -> list[str]:
    return [s.id for s in ordered_steps(strategy)]


def planned_row(engine: Engine, customer: str, step: str, day: date) -> dict[str, Any] | None:
    """The outbox row an earlier plan wrote for this customer, step and date, if any."""
    with engine.connect() as conn:
        row = conn.execute(
            select(outbox).where(outbox.c.idempotency_key == idempotency_key(customer, step, day))
        ).first()
    return dict(row._mapping) if row is not None else None
