"""The contact policy applied to the day's chosen messages: planned, held, suppressed, and why.

    decided = decide(chosen, history, contact, default_zone, as_of, blocked)

`chosen` has one row per person (the step the strategy picked for them); `history` the messages
that count against caps (customer_id, recipient, step, plan_date, key, at, status, control).
Rows are decided most urgent first (most overdue, then step, then largest, then customer; or step
first with `urgency="strategy"`), so when a number shared by several borrowers has room for one
message, the most urgent one gets it.

Most rows are decided as columns: every rule up to the caps depends on the row alone. The caps
depend on order only among rows that share a number with another row of the day or that have
history: those go through `decide_row`, in order. `decide(..., row_by_row=True)` sends every row
through `decide_row`: the reference the column path is property-tested against.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import polars as pl

from cuikuan.domain import json_text, policy
from cuikuan.domain.frame_types import CHOSEN, HISTORY, require
from cuikuan.domain.zones import zone_key_expr

LIVE = ("planned", "claimed", "sending", "sent", "delivered", "undelivered", "uncertain")
UTC_US = pl.Datetime("us", "UTC")
SCHEMA: dict[str, pl.DataType] = {
    "status": pl.String(), "reason": pl.String(), "recipient": pl.String(),
    "earliest_at": UTC_US, "latest_at": UTC_US, "send_day": pl.Date(), "zones": pl.String(),
    "trail": pl.String(), "opens_at": UTC_US,
}  # fmt: skip
# A row "reached the draw" when every rule before the control draw let it through: it is held
# (control) or went on to the caps, which plan it or stop it. Such rows are the members the
# report compares (intention to treat), and `opens_at`, the opening of their window, is when
# both arms' pay windows start.
CAP_PREFIX = policy.CAP_PREFIX
# A reason's first words: the rule that fired, without the particulars ("cap: 3 message(s) ...").
RULE = pl.col("reason").str.extract(r"^([^:]+(?::\s*[a-z_]+)?)", 1)
# A reason with its numbers and dates as N: the same rule however many messages, hours or days
# ("cap: N message(s) in the last N days (max N)"), for counting reasons in the report.
REASON_KIND = pl.col("reason").str.replace_all(r"\b[0-9][0-9.:-]*", "N")
# Most urgent first: by days past due (then the strategy's order), or by the strategy's order
# (then days past due) when the lender sets `plan.urgency = "strategy"`.
ORDERS = {
    "dpd": (["dpd", "step_index", "outstanding", "customer_id"], [True, False, True, False]),
    "strategy": (["step_index", "dpd", "outstanding", "customer_id"], [False, True, True, False]),
}


def idempotency_key(customer: str, step: str, day: date) -> str:
    return f"{customer}|{step}|{day.isoformat()}"


@dataclass
class Caps:
    """What each person and each number has already received (history plus this plan), each
    message once (a message to a person's own number is one message, not two)."""

    by_customer: dict[int, dict[str, datetime]]
    by_number: dict[str, dict[str, datetime]]
    steps: dict[int, list[tuple[str, date]]]
    keys: set[str]

    def sent(self, customer_id: int, recipient: str) -> list[datetime]:
        merged = {**self.by_customer.get(customer_id, {}), **self.by_number.get(recipient, {})}
        return sorted(merged.values())

    def add(self, customer_id: int, recipient: str, step: str, day: date, key: str, at: datetime) -> None:  # fmt: skip
        self.by_customer[customer_id][key] = at
        self.by_number[recipient][key] = at
        self.steps[customer_id].append((step, day))
        self.keys.add(key)


def live_history(history: pl.DataFrame) -> pl.DataFrame:
    return history.filter(
        ~pl.col("control") & pl.col("status").is_in(LIVE) & pl.col("at").is_not_null()
    )


def caps_horizon(as_of: date, contact: policy.ContactPolicy) -> datetime:
    """No message sent before this can count against a cap for a send on `as_of` or later.

    The caps look back 7 days, or the minimum gap if longer; a day's window opens at the
    earliest 14 hours before `as_of` in UTC (UTC+14), so a day more is margin enough. Only
    newer messages need the row-by-row caps: at steady state most people were messaged in the
    last month, few in the last week-and-a-day."""
    reach = max(timedelta(days=7), contact.min_gap)
    return datetime.combine(as_of, time(0), UTC) - reach - timedelta(days=1)


def caps_of(history: pl.DataFrame) -> Caps:
    caps = Caps(
        defaultdict(dict), defaultdict(dict), defaultdict(list), set(history["key"].to_list())
    )
    live = live_history(history).select(
        "customer_id", "recipient", "step", "plan_date", "key", "at"
    )
    for cid, recipient, step, day, key, at in live.iter_rows():
        caps.by_customer[cid][key] = at
        caps.by_number[recipient][key] = at
        caps.steps[cid].append((step, day))
    return caps


def recipient_expr() -> pl.Expr:
    """Where a row's message would go: the first mobile number for SMS, else the address."""
    return (
        pl.when(pl.col("channel") == "sms")
        .then(pl.col("mobiles").list.first())
        .otherwise(pl.col("email"))
    )


def ordered(chosen: pl.DataFrame, urgency: str = "dpd") -> pl.DataFrame:
    columns, descending = ORDERS[urgency]
    return chosen.sort(columns, descending=descending)


def decide(
    chosen: pl.DataFrame,
    history: pl.DataFrame,
    contact: policy.ContactPolicy,
    default_zone: str,
    as_of: date,
    blocked: dict[str, str],
    *,
    row_by_row: bool = False,
    urgency: str = "dpd",
) -> pl.DataFrame:
    """`chosen` in decision order with the SCHEMA columns added."""
    require(chosen, CHOSEN, "decide: chosen")
    require(history, HISTORY, "decide: history")
    rows = ordered(chosen, urgency)
    zones = policy.ZoneCache(default_zone, contact.declared_zone_only)
    if row_by_row or rows.height == 0:
        caps = caps_of(history)
        windows: dict[tuple[date, tuple[str, ...]], tuple[datetime, datetime] | None] = {}
        out = [
            blocked_row(r, blocked[r["template"]])
            if r["template"] in blocked
            else decide_row(r, caps, contact, as_of, zones, windows)
            for r in rows.iter_rows(named=True)
        ]
        return pl.concat([rows, pl.DataFrame(out, schema=SCHEMA, orient="row")], how="horizontal")
    return _decide_columns(rows, history, contact, as_of, zones, blocked)


# --- one row at a time (the reference, and the rows whose caps depend on order) -------------


def blocked_row(row: dict[str, Any], why: str) -> tuple[object, ...]:
    reason = f"template {row['template']} {why}"
    trail = [f"step {row['step']} matched loan {row['external_id']}", reason]
    return ("suppressed", reason, None, None, None, None, "", _json(trail), None)


def _json(trail: list[str]) -> str:
    return json.dumps(trail, ensure_ascii=False, separators=(",", ":"))


def first_line(row: dict[str, Any]) -> list[str]:
    trail = [
        f"step {row['step']} matched loan {row['external_id']} (DPD {row['dpd']}, days to due {row['days_to_due']})"
    ]
    if row.get("on_plan"):
        trail.append("on a current instalment plan: due dates and amounts are the plan's")
    return trail


def no_recipient(channel: str) -> str:
    return "no usable phone number" if channel == "sms" else "no e-mail address"


def window_line(lo: datetime, hi: datetime, contact: policy.ContactPolicy, zones: list[str]) -> str:
    return f"window {lo:%Y-%m-%d %H:%M}-{hi:%H:%M} UTC ({contact.window_start:%H:%M}-{contact.window_end:%H:%M} in {', '.join(zones)})"


def decide_row(
    row: dict[str, Any],
    caps: Caps,
    contact: policy.ContactPolicy,
    as_of: date,
    zone_cache: policy.ZoneCache,
    windows: dict[tuple[date, tuple[str, ...]], tuple[datetime, datetime] | None],
) -> tuple[object, ...]:
    cid = int(row["customer_id"])
    step, channel = str(row["step"]), str(row["channel"])
    trail = first_line(row)
    phones = list(row["phones"] or [])
    recipient = (list(row["mobiles"] or [])[:1] or [None])[0] if channel == "sms" else row["email"]
    zones = zone_cache.zones(row["timezone"], phones)

    def done(
        status: str,
        reason: str | None,
        lo: datetime | None = None,
        hi: datetime | None = None,
        day: date | None = None,
        opens: datetime | None = None,
    ) -> tuple[object, ...]:
        if reason:
            trail.append(reason)
        return (status, reason, recipient, lo, hi, day, ",".join(zones), _json(trail), opens)

    key = idempotency_key(str(row["customer"]), step, as_of)
    if key in caps.keys:
        return done("exists", "already planned for this date")
    reasons = policy.suppression_reasons(
        row["flags"] or [],
        row["opted_out"] or [],
        channel,
        bool(row["paid_off"]),
        promise_pending=bool(row["promise_pending"]),
    )
    if reasons:
        return done("suppressed", f"suppressed: {reasons[0]}")
    if row["paused"]:
        return done("suppressed", f"suppressed: paused after a reply ({row['paused']})")
    if recipient is None:
        return done("suppressed", no_recipient(channel))
    holiday = policy.holiday_outcome(as_of, row["holidays"], contact, row["days_to_due"])
    trail.extend(holiday.notes)
    if holiday.day is None:
        return done("skipped", holiday.reason)
    day = holiday.day
    wkey = (day, tuple(zones))
    if wkey not in windows:
        windows[wkey] = policy.allowed_window(day, zones, contact)
    window = windows[wkey]
    if window is None:
        return done("suppressed", f"no contact window common to the zones {', '.join(zones)}")
    lo, hi = window
    trail.append(window_line(lo, hi, contact, zones))
    repeat = int(row["repeat_every_days"])
    if any(s == step and (as_of - d).days < repeat for s, d in caps.steps.get(cid, [])):
        return done("suppressed", f"step {step} repeats at most every {repeat} days")
    if row["control"]:
        return done("held", "control group: held back to measure the step", lo, hi, day, lo)
    status, reason, earliest = cap_decision(cid, str(recipient), lo, hi, zones[0], caps, contact)
    if status == "suppressed":
        return done(status, reason, opens=lo)
    caps.add(cid, str(recipient), step, as_of, key, earliest)
    return done("planned", None, earliest, hi, day, lo)


def cap_decision(
    cid: int,
    recipient: str,
    lo: datetime,
    hi: datetime,
    zone: str,
    caps: Caps,
    contact: policy.ContactPolicy,
) -> tuple[str, str | None, datetime]:
    """planned at the earliest moment the caps allow inside (lo, hi), or suppressed and why."""
    # A message parked on a later day (a shift past a holiday) does not count against this one:
    # it is re-checked when it goes.
    sent = [s for s in caps.sent(cid, recipient) if s < hi]
    earliest = max([lo, *(s + contact.min_gap for s in sent[-1:])])
    if earliest >= hi:
        hours = contact.min_gap.total_seconds() / 3600
        return "suppressed", f"{CAP_PREFIX} at least {hours:g} h between messages", earliest
    reason = policy.cap_reason(sent, earliest, contact, zone)
    if reason:
        return "suppressed", reason, earliest
    return "planned", None, earliest


def cap_reason_at(
    caps: Caps, cid: int, recipient: str, at: datetime, contact: policy.ContactPolicy, zone: str
) -> str | None:
    """The caps for one more message at `at` (the send-time check): the same counting as the
    plan's, each earlier message once whether it reached the person or the number."""
    return policy.cap_reason([s for s in caps.sent(cid, recipient) if s <= at], at, contact, zone)


# --- as columns -------------------------------------------------------------------------------


def _per_distinct(
    frame: pl.DataFrame, keys: list[str], compute: Any, name: str, dtype: pl.DataType
) -> pl.DataFrame:
    """`frame` with `name` = compute(*key values), called once per distinct key."""
    distinct = frame.select(keys).unique()
    values = [compute(*row) for row in distinct.iter_rows()]
    return frame.join(
        distinct.with_columns(pl.Series(name, values, dtype=dtype)),
        on=keys,
        how="left",
        nulls_equal=True,
    )


NOTES = ("_hn0", "_hn1", "_hn2")


def _holidays(w: pl.DataFrame, as_of: date, contact: policy.ContactPolicy) -> pl.DataFrame:
    """send_day, _hreason and the trail notes _hn0.. from `policy.holiday_outcome`, computed
    once per distinct (rule, days to due)."""
    distinct = w.select("holidays", "days_to_due").unique()
    got = [policy.holiday_outcome(as_of, rule, contact, dtd) for rule, dtd in distinct.iter_rows()]
    if any(len(g.notes) > len(NOTES) for g in got):
        raise AssertionError("more holiday notes than the trail columns hold")
    distinct = distinct.with_columns(
        pl.Series("send_day", [g.day for g in got], dtype=pl.Date),
        pl.Series("_hreason", [g.reason for g in got], dtype=pl.String),
        *(
            pl.Series(
                name, [g.notes[k] if k < len(g.notes) else None for g in got], dtype=pl.String
            )
            for k, name in enumerate(NOTES)
        ),
    )
    return w.join(distinct, on=["holidays", "days_to_due"], how="left", nulls_equal=True)


def _decide_columns(
    rows: pl.DataFrame,
    history: pl.DataFrame,
    contact: policy.ContactPolicy,
    as_of: date,
    zone_cache: policy.ZoneCache,
    blocked: dict[str, str],
) -> pl.DataFrame:
    sep = "\x1f"
    w = rows.with_row_index("_i").with_columns(
        recipient_expr().alias("recipient"),
        pl.concat_str(
            pl.col("customer"), pl.lit("|"), pl.col("step"), pl.lit(f"|{as_of.isoformat()}")
        ).alias("_key"),
        pl.col("timezone").fill_null("").alias("_tz"),
        pl.col("phones").list.eval(zone_key_expr(pl.element())).list.join(sep).alias("_prefixes"),
        pl.col("flags").list.join(sep).fill_null("").alias("_flags"),
        pl.col("opted_out").list.join(sep).fill_null("").alias("_opted"),
    )

    def zones_of(tz: str, keys: str) -> str:
        return ",".join(zone_cache.by_keys(tz or None, tuple(keys.split(sep)) if keys else ()))

    # The zones go by the declared zone and the numbers' zone keys (ZoneCache), once per
    # distinct combination.
    firsts = w.select("_tz", "_prefixes").unique(maintain_order=True)
    firsts = firsts.with_columns(
        pl.Series("zones", [zones_of(t, p) for t, p in firsts.iter_rows()], dtype=pl.String)
    )
    w = w.join(firsts, on=["_tz", "_prefixes"], how="left")

    def suppressed(flags: str, opted: str, channel: str, paid_off: bool, promise: bool) -> str | None:  # fmt: skip
        found = policy.suppression_reasons(
            flags.split(sep) if flags else [],
            opted.split(sep) if opted else [],
            channel,
            bool(paid_off),
            promise_pending=bool(promise),
        )
        return f"suppressed: {found[0]}" if found else None

    w = _per_distinct(
        w, ["_flags", "_opted", "channel", "paid_off", "promise_pending"], suppressed, "_supp", pl.String()
    )  # fmt: skip
    w = _holidays(w, as_of, contact)

    def window(day: date | None, zones: str) -> tuple[datetime | None, datetime | None, str | None]:
        if day is None:
            return None, None, None
        found = policy.allowed_window(day, zones.split(","), contact)
        if found is None:
            return None, None, None
        return found[0], found[1], window_line(found[0], found[1], contact, zones.split(","))

    distinct = w.select("send_day", "zones").unique()
    got = [window(d, z) for d, z in distinct.iter_rows()]
    distinct = distinct.with_columns(
        pl.Series("_lo", [g[0] for g in got], dtype=UTC_US),
        pl.Series("_hi", [g[1] for g in got], dtype=UTC_US),
        pl.Series("_wline", [g[2] for g in got], dtype=pl.String),
    )
    w = w.join(distinct, on=["send_day", "zones"], how="left", nulls_equal=True)

    live = live_history(history)
    last_step = live.group_by("customer_id", "step").agg(pl.col("plan_date").max().alias("_last"))
    w = w.join(last_step, on=["customer_id", "step"], how="left")
    keys = (
        history.select(pl.col("key").alias("_key"))
        .unique()
        .with_columns(pl.lit(True).alias("_exists"))
    )
    w = w.join(keys, on="_key", how="left")

    template_blocked = pl.col("template").is_in(list(blocked))
    why_blocked = (
        pl.col("template").replace_strict(blocked, default=None, return_dtype=pl.String)
        if blocked
        else pl.lit(None, dtype=pl.String)
    )
    repeat = pl.col("_last").is_not_null() & (
        (pl.lit(as_of) - pl.col("_last")).dt.total_days() < pl.col("repeat_every_days")
    )
    zones_text = pl.col("zones").str.replace_all(",", ", ", literal=True)
    status_reason = [
        (template_blocked, "suppressed", pl.concat_str(
            pl.lit("template "), pl.col("template"), pl.lit(" "),
            why_blocked)),
        (pl.col("_exists").fill_null(False), "exists", pl.lit("already planned for this date")),
        (pl.col("_supp").is_not_null(), "suppressed", pl.col("_supp")),
        (pl.col("paused").is_not_null() & (pl.col("paused") != ""), "suppressed",
         pl.concat_str(pl.lit("suppressed: paused after a reply ("), pl.col("paused"), pl.lit(")"))),
        (pl.col("recipient").is_null(), "suppressed",
         pl.when(pl.col("channel") == "sms").then(pl.lit(no_recipient("sms"))).otherwise(pl.lit(no_recipient("email")))),
        (pl.col("send_day").is_null(), "skipped", pl.col("_hreason")),
        (pl.col("_lo").is_null(), "suppressed",
         pl.concat_str(pl.lit("no contact window common to the zones "), zones_text)),
        (repeat, "suppressed", pl.concat_str(
            pl.lit("step "), pl.col("step"), pl.lit(" repeats at most every "),
            pl.col("repeat_every_days").cast(pl.String), pl.lit(" days"))),
        (pl.col("control"), "held", pl.lit("control group: held back to measure the step")),
    ]  # fmt: skip
    status: pl.Expr = pl.lit(None, dtype=pl.String)
    reason: pl.Expr = pl.lit(None, dtype=pl.String)
    stage: pl.Expr = pl.lit(len(status_reason))
    for i, (cond, name, why) in reversed(list(enumerate(status_reason))):
        status = pl.when(cond).then(pl.lit(name)).otherwise(status)
        reason = pl.when(cond).then(why).otherwise(reason)
        stage = pl.when(cond).then(pl.lit(i)).otherwise(stage)
    w = w.with_columns(status.alias("status"), reason.alias("reason"), stage.alias("_stage"))
    drawn_stage = len(status_reason) - 1  # the control draw is the last rule before the caps

    # The caps: rows still undecided. Order matters only where a number is shared by several of
    # them (planning one adds to the other's count); those go row by row, most urgent first. The
    # others depend on history alone: without recent history they are planned at the window's
    # start, with it the caps are counted over the column (`_caps_from_history`).
    at_caps = pl.col("status").is_null()
    recent = live.filter(pl.col("at") >= caps_horizon(as_of, contact))
    talked = recent["customer_id"].cast(pl.Int64).unique()
    numbers = recent["recipient"].unique()
    w = w.with_columns(
        (at_caps & (pl.col("recipient").count().over(pl.col("recipient"), at_caps) > 1)).alias(
            "_ordered"
        ),
        (
            at_caps
            & (
                pl.col("customer_id").is_in(talked.implode())
                | pl.col("recipient").is_in(numbers.implode())
            )
        ).alias("_heard"),
    )
    w = w.with_columns(
        pl.when(at_caps & ~pl.col("_ordered") & ~pl.col("_heard")).then(pl.lit("planned")).otherwise(pl.col("status")).alias("status"),
        pl.col("_lo").alias("earliest_at"),
    )  # fmt: skip
    counted = w.filter(pl.col("_heard") & ~pl.col("_ordered"))
    if counted.height:
        w = _caps_from_history(w, counted, recent, contact)
    slow = w.filter(pl.col("_ordered"))
    if slow.height:
        # Only the history of these people and numbers can count against their caps.
        relevant = recent.filter(
            pl.col("customer_id").is_in(slow["customer_id"].implode())
            | pl.col("recipient").is_in(slow["recipient"].implode())
        )
        w = _caps_in_order(w, slow, caps_of(relevant), contact, as_of)
    return _finish(w, rows, as_of, drawn_stage)


def _caps_from_history(
    w: pl.DataFrame, rows: pl.DataFrame, recent: pl.DataFrame, contact: policy.ContactPolicy
) -> pl.DataFrame:
    """`cap_decision` over the column for rows whose caps depend on history alone (no other row
    of the day shares their number): each row's messages are its person's and its number's,
    each message once; the send moves past the minimum gap, then the day and week caps apply."""
    sent = recent.select("customer_id", "recipient", "key", "at").with_row_index("_h")
    cand = rows.select("_i", "customer_id", "recipient", "_lo", "_hi", pl.col("zones").str.split(",").list.first().alias("_zone"))  # fmt: skip
    # One message per key, as `Caps.sent` merges: the number's record over the person's, the
    # later record over the earlier (keys are unique in the outbox; the rule only settles ties).
    pairs = (
        pl.concat([
            cand.join(sent.drop("recipient"), on="customer_id").with_columns(pl.lit(0).alias("_src")),
            cand.join(sent.drop("customer_id"), on="recipient").with_columns(pl.lit(1).alias("_src")),
        ])
        .sort("_src", "_h")
        .unique(["_i", "key"], keep="last")
    )  # fmt: skip
    gap = contact.min_gap
    hours = gap.total_seconds() / 3600
    # As `cap_decision`: messages parked on a later day do not count against this one.
    pairs = (
        pairs.join(cand.select("_i", "_hi"), on="_i")
        .filter(pl.col("at") < pl.col("_hi"))
        .drop("_hi")
    )
    last = pairs.group_by("_i").agg(pl.col("at").max().alias("_last"))
    cand = cand.join(last, on="_i", how="left").with_columns(
        pl.max_horizontal("_lo", pl.col("_last") + pl.lit(gap)).alias("_at")
    )
    local = {
        z: (pl.col("at").dt.convert_time_zone(z).dt.date(), pl.col("_at").dt.convert_time_zone(z).dt.date())
        for z in cand["_zone"].unique().to_list()
    }  # fmt: skip
    sent_day: pl.Expr = pl.lit(None, dtype=pl.Date)
    send_day: pl.Expr = pl.lit(None, dtype=pl.Date)
    for z, (sent_local, send_local) in local.items():
        sent_day = pl.when(pl.col("_zone") == z).then(sent_local).otherwise(sent_day)
        send_day = pl.when(pl.col("_zone") == z).then(send_local).otherwise(send_day)
    counts = (
        pairs.join(cand.select("_i", "_at"), on="_i")
        .filter(pl.col("at") <= pl.col("_at"))
        .with_columns(sent_day.alias("_sent_day"), send_day.alias("_day"))
        .group_by("_i")
        .agg(
            (pl.col("_sent_day") == pl.col("_day")).sum().alias("_today"),
            (pl.col("_at") - pl.col("at") < pl.lit(timedelta(days=7))).sum().alias("_week"),
            pl.col("_day").first().alias("_local_day"),
        )
    )
    cand = cand.join(counts, on="_i", how="left").with_columns(
        pl.col("_today", "_week").fill_null(0)
    )
    too_soon = pl.col("_at") >= pl.col("_hi")
    full_day = pl.col("_today") >= contact.max_per_day
    full_week = pl.col("_week") >= contact.max_per_7_days
    decided = cand.select(
        "_i",
        pl.when(too_soon | full_day | full_week).then(pl.lit("suppressed")).otherwise(pl.lit("planned")).alias("_s"),
        pl.when(too_soon).then(pl.lit(f"{CAP_PREFIX} at least {hours:g} h between messages"))
        .when(full_day).then(pl.format(
            CAP_PREFIX + " {} message(s) already on {} (max {} a day)",
            "_today", pl.col("_local_day").cast(pl.String), pl.lit(contact.max_per_day)))
        .when(full_week).then(pl.format(
            CAP_PREFIX + " {} message(s) in the last 7 days (max {})", "_week", pl.lit(contact.max_per_7_days)))
        .alias("_r"),
        pl.when(too_soon | full_day | full_week).then(None).otherwise(pl.col("_at")).alias("_e"),
    )  # fmt: skip
    return _merge_decided(w, decided)


def _merge_decided(w: pl.DataFrame, decided: pl.DataFrame) -> pl.DataFrame:
    """`w` with status, reason and earliest_at taken from `decided` (_i, _s, _r, _e) where given."""
    return (
        w.join(decided, on="_i", how="left")
        .with_columns(
            pl.coalesce("_s", "status").alias("status"),
            pl.coalesce("_r", "reason").alias("reason"),
            pl.coalesce("_e", "earliest_at").alias("earliest_at"),
        )
        .drop("_s", "_r", "_e")
    )


def _caps_in_order(
    w: pl.DataFrame, slow: pl.DataFrame, caps: Caps, contact: policy.ContactPolicy, as_of: date
) -> pl.DataFrame:
    """The caps for rows whose outcome depends on order, most urgent first (`decide_row`'s)."""
    index, status, reason, earliest = [], [], [], []
    for i, cid, recipient, step, key, lo, hi, zones in slow.select(
        "_i", "customer_id", "recipient", "step", "_key", "_lo", "_hi", "zones"
    ).iter_rows():
        got, why, at = cap_decision(cid, recipient, lo, hi, zones.split(",")[0], caps, contact)
        if got == "planned":
            caps.add(cid, recipient, step, as_of, key, at)
        index.append(i)
        status.append(got)
        reason.append(why)
        earliest.append(at if got == "planned" else None)
    decided = pl.DataFrame(
        {"_i": index, "_s": status, "_r": reason, "_e": earliest},
        schema={"_i": pl.UInt32, "_s": pl.String, "_r": pl.String, "_e": UTC_US},
    )
    return _merge_decided(w, decided)


def _finish(w: pl.DataFrame, rows: pl.DataFrame, as_of: date, drawn_stage: int) -> pl.DataFrame:
    """The trail (as `decide_row` writes it) and the SCHEMA columns, in decision order."""
    blocked = pl.col("_stage") == 0
    first = pl.concat_str(
        pl.lit("step "), pl.col("step"), pl.lit(" matched loan "), pl.col("external_id"),
        pl.lit(" (DPD "), pl.col("dpd").cast(pl.String), pl.lit(", days to due "),
        pl.col("days_to_due").cast(pl.String).fill_null("None"), pl.lit(")"),
    )  # fmt: skip
    plan_line = (
        pl.lit("on a current instalment plan: due dates and amounts are the plan's")
        if "on_plan" in w.columns
        else pl.lit(None, dtype=pl.String)
    )
    on_plan = pl.col("on_plan").fill_null(False) if "on_plan" in w.columns else pl.lit(False)
    # Holiday notes are written once the holiday rule is reached (stage 5 and after).
    noted = [pl.when(pl.col("_stage") >= 5).then(pl.col(n)) for n in NOTES]
    kept = pl.col("status").is_in(["held", "planned"])
    trail = json_text.string_array(
        pl.when(blocked)
        .then(pl.concat_str(pl.lit("step "), pl.col("step"), pl.lit(" matched loan "), pl.col("external_id")))
        .otherwise(first),
        pl.when(~blocked & on_plan).then(plan_line),
        *noted,
        pl.when(pl.col("_stage") > 6).then(pl.col("_wline")),
        pl.col("reason"),
    )  # fmt: skip
    out = (
        w.with_columns(
            pl.col("send_day").dt.strftime("%Y-%m-%d").alias("_day_text"),
        )
        .with_columns(
            trail.alias("trail"),
            pl.when(blocked).then(None).otherwise(pl.col("recipient")).alias("recipient"),
            pl.when(blocked).then(pl.lit("")).otherwise(pl.col("zones")).alias("zones"),
            pl.when(kept).then(pl.col("send_day")).alias("send_day"),
            pl.when(kept).then(pl.col("earliest_at")).alias("earliest_at"),
            pl.when(kept).then(pl.col("_hi")).alias("latest_at"),
            pl.when(pl.col("_stage") >= drawn_stage).then(pl.col("_lo")).alias("opens_at"),
        )
        .sort("_i")
    )
    return pl.concat([rows, out.select(list(SCHEMA))], how="horizontal")
