"""The tables. Money is integer minor units (BigInteger); times are UTC."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

customers = Table(
    "customers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("external_id", String(64), nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("email", Text),
    Column("locale", String(16)),
    Column("timezone", String(64)),
    # JSON text (portable, comparable in SQL on both databases): tags and flags are lists of
    # strings, flags being the suppression-relevant states (deceased, dispute, ...).
    Column("tags", Text, nullable=False),
    Column("flags", Text, nullable=False),
    Column("attributes", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
# Search by the start of a name (the console, the API): case folded as the search folds it.
# An import that dwarfs the book builds it once at the end instead (store/ledger_writes).
NAME_INDEX = Index(
    "ix_customers_name_prefix",
    func.lower(customers.c.name).label("lower_name"),
    postgresql_ops={"lower_name": "text_pattern_ops"},  # LIKE 'x%' whatever the collation
)

customer_phones = Table(
    "customer_phones",
    metadata,
    Column("customer_id", ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True),
    Column("e164", String(20), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    # Caps are shared by everyone behind one number, so lookups by number must be cheap.
    Index("ix_customer_phones_e164", "e164"),
    sqlite_with_rowid=False,
)

loans = Table(
    "loans",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("external_id", String(64), nullable=False, unique=True),
    Column("customer_id", ForeignKey("customers.id"), nullable=False, index=True),
    Column("product", Text),
    Column("currency", String(3), nullable=False),
    # The moment the instalments' paid amounts describe; payments after it count on top.
    Column("paid_snapshot_at", DateTime(timezone=True)),
    # Columns the import mapping did not know, as a JSON object, for templates and strategies.
    Column("attributes", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Its open schedule, kept by the import (store/schedules.py): the plan reads these instead
    # of summing every open instalment.
    Column("open_amount", BigInteger, nullable=False, server_default="0"),
    Column("first_open_due", Date),
    Column("first_open_left", BigInteger, nullable=False, server_default="0"),
)

# Keyed by (loan, number) alone: on SQLite a WITHOUT ROWID table is then one B-tree, not a table
# plus a unique index, which nearly halves the cost of writing a million instalments.
instalments = Table(
    "instalments",
    metadata,
    Column("loan_id", ForeignKey("loans.id", ondelete="CASCADE"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("due_date", Date, nullable=False),
    Column("amount_due", BigInteger, nullable=False),
    Column("amount_paid", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

payments = Table(
    "payments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("external_id", String(64), nullable=False, unique=True),
    Column("loan_id", ForeignKey("loans.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("paid_at", DateTime(timezone=True), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

imports = Table(
    "imports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("file_name", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("summary", Text, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
)

# Planned messages. Dispatch works only from here. One row per (customer, step, plan date):
# the idempotency key keeps a re-run plan from adding anything.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("plan_date", Date, nullable=False),
    Column("customer_id", ForeignKey("customers.id"), nullable=False, index=True),
    Column("loan_id", ForeignKey("loans.id"), nullable=False),
    Column("step", String(64), nullable=False),
    Column("template", String(64), nullable=False),
    Column("variant", Integer, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("recipient", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("control", Integer, nullable=False),  # 1: held back as control, never sent
    Column("earliest_at", DateTime(timezone=True), nullable=False),
    Column("latest_at", DateTime(timezone=True), nullable=False),
    Column("segments", Integer, nullable=False),
    Column("billing_units", Integer, nullable=False),
    # planned, held, claimed (taken by a dispatcher, not yet handed over), sending (being handed
    # over), sent, delivered, undelivered, failed, expired, suppressed, uncertain, cancelled
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("trail", Text, nullable=False),  # JSON list of the rules that fired
    Column("provider", String(32)),
    Column("provider_id", String(128)),
    Column("sent_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Transient failures so far; dispatch gives up at the configured limit.
    Column("attempts", Integer, nullable=False, server_default="0"),
    # The opening of the contact window on the send day, for every row that reached the control
    # draw (held, planned, or stopped after the draw by the caps or the lint): the report starts
    # both arms' pay windows here. NULL on rows planned before migration 0013.
    Column("opens_at", DateTime(timezone=True)),
    Index("ix_outbox_recipient_sent_at", "recipient", "sent_at"),
    # By status, then by when each may go: dispatch takes the due rows in that order, a round
    # at a time, and must not sort every planned row of a busy day for each round.
    Index("ix_outbox_status_earliest_at", "status", "earliest_at"),
    # The day's plan by step and status (Today, the report's reading of a range): an index
    # range, not the whole outbox.
    Index("ix_outbox_plan_date_step_status", "plan_date", "step", "status"),
)

# The candidates a plan stopped before the control draw (not written to the outbox), counted per
# plan date, step, variant, template, status (suppressed or skipped) and rule. A re-run of the
# day's plan keeps the larger count of each cell.
plan_tallies = Table(
    "plan_tallies",
    metadata,
    Column("plan_date", Date, primary_key=True),
    Column("step", String(64), primary_key=True),
    Column("variant", Integer, primary_key=True),
    Column("template", String(64), primary_key=True),
    Column("status", String(16), primary_key=True),
    Column("rule", Text, primary_key=True),
    Column("count", Integer, nullable=False),
)

# The provider's id of every part a message went out as: receipts come per part (SMPP) and are
# matched here. `state` is that part's final outcome once its receipt has come.
message_parts = Table(
    "message_parts",
    metadata,
    Column("provider", String(32), primary_key=True),
    Column("provider_id", String(128), primary_key=True),  # canonical: lower case, no leading 0
    Column("outbox_id", ForeignKey("outbox.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("part", Integer, nullable=False),
    Column("state", String(16)),
    # When the SMSC accepted it (the dispatcher's clock): a receipt never matches a part
    # submitted after the receipt came, so an SMSC that restarts its id counter cannot hand a
    # new message an old message's receipt.
    Column("submitted_at", DateTime(timezone=True)),
)

# Which messages preceded each payment: every message sent (or held back as control) to the
# payment's customer in the window before it was paid. The report measures from here.
payment_touches = Table(
    "payment_touches",
    metadata,
    Column("payment_id", ForeignKey("payments.id", ondelete="CASCADE"), primary_key=True),
    Column("outbox_id", ForeignKey("outbox.id", ondelete="CASCADE"), primary_key=True),
    Column("hours_before", Float, nullable=False),
    Column("control", Integer, nullable=False),  # 1: it was held back, never sent
    Index("ix_payment_touches_outbox_id", "outbox_id"),
)

# Small named positions of incremental work (e.g. the last payment scanned for touches).
markers = Table(
    "markers",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# Every final delivery receipt as it came, matched to its message when it can be (a receipt may
# come before its submit is recorded, or from another process; it is matched later).
receipts = Table(
    "receipts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("provider", String(32), nullable=False),
    Column("provider_id", String(128), nullable=False),
    Column("outcome", String(16), nullable=False),  # delivered, undelivered, expired
    Column("detail", Text, nullable=False),
    # On the dispatcher's clock (which `--at` and a simulation set), when it first applied the
    # receipt: NULL while only the bind that heard it has stored it (store/inbound_pdus.py).
    Column("received_at", DateTime(timezone=True)),
    Column("outbox_id", Integer, index=True),  # NULL until matched
    Index("ix_receipts_provider_id", "provider", "provider_id"),
)

# Every deliver_sm and data_sm any SMPP bind received, stored raw before it is acknowledged (the
# SMSC sends again what we do not acknowledge): receipts and borrowers' replies are read from
# here, so one the dispatcher was killed holding is read by the next. `state`: new (not read
# yet), done, or unreadable; `note` says what became of it.
inbound_pdus = Table(
    "inbound_pdus",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("provider", String(32), nullable=False),
    Column("session", String(64), nullable=False),  # which bind it came on
    Column("command_id", BigInteger, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("arrived_at", DateTime(timezone=True), nullable=False),
    Column("state", String(16), nullable=False),
    Column("note", Text),
    Index("ix_inbound_pdus_provider_state", "provider", "state"),
)

# A provider that could not be reached (an outage) is down until its next try: dispatch leaves
# its messages planned inside their windows (or to the route's fallback) rather than failing
# them, and says so in `outbox providers`. An admin may hold a provider (nothing is sent through
# it until released: a carrier's maintenance, a suspected leak).
provider_states = Table(
    "provider_states",
    metadata,
    Column("provider", String(32), primary_key=True),
    Column("state", String(16), nullable=False),  # up, down or held
    Column("since", DateTime(timezone=True), nullable=False),
    Column("next_try_at", DateTime(timezone=True)),
    Column("detail", Text),
)

# Opt-outs per customer and channel (the replies issue writes them from 退订/STOP; operators
# can too). A row means: do not send on this channel.
opt_outs = Table(
    "opt_outs",
    metadata,
    Column("customer_id", ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("source", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Stops that are facts about a number (or address) on a channel, whoever is behind it now or
# later: an opt-out (退订/STOP from that number) or a wrong number (the person there is not
# ours). The borrower's other numbers keep their own state.
number_stops = Table(
    "number_stops",
    metadata,
    Column("address", String(320), primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("reason", String(16), primary_key=True),  # opt_out, wrong_number
    Column("source", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# What the sandbox gateway "sent": the embedded default channel's own record.
sandbox_messages = Table(
    "sandbox_messages",
    metadata,
    Column("provider_id", String(64), primary_key=True),
    Column("outbox_id", Integer, nullable=False, index=True),
    Column("channel", String(16), nullable=False),
    Column("recipient", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("accepted_at", DateTime(timezone=True), nullable=False),
    Column("receipt_due_at", DateTime(timezone=True), nullable=False),
    Column("delivered", Boolean, nullable=False),
    Column("receipt_sent", Boolean, nullable=False),
)

# Replies as they came in (gateway or typed by an agent), with how they were read and what was done.
replies = Table(
    "replies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("sender", String(32), nullable=False, index=True),
    Column("channel", String(16), nullable=False),
    Column("source", String(32), nullable=False),  # "manual", "sandbox", "smpp", ...
    Column("text", Text, nullable=False),
    Column("intent", String(32), nullable=False),
    Column("confidence", Float, nullable=False),
    Column("promised_date", Date),
    Column("promised_amount", Text),
    Column("customer_ids", Text, nullable=False),  # JSON list: everyone behind the number
    Column("action", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # The provider's id of the inbound message (Twilio's MessageSid), when it gives one: a
    # delivery sent again is recognised by it and not read twice.
    Column("message_id", String(128)),
    Index("ux_replies_source_message_id", "source", "message_id", unique=True),
)

# Promises to pay, from replies or agents; settled as kept or broken from payments.
promises = Table(
    "promises",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "customer_id", ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("promised_date", Date, nullable=False),
    Column("amount", BigInteger),
    Column("made_at", DateTime(timezone=True), nullable=False),
    Column("source", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("settled_at", DateTime(timezone=True)),
)

# Work for people: created by replies (and later by guardrails), taken and closed by agents.
tasks = Table(
    "tasks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", ForeignKey("customers.id", ondelete="CASCADE"), index=True),
    Column("kind", String(32), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("state", String(16), nullable=False, index=True),  # open, taken, done
    Column("assignee", Text),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("reply_id", Integer),
    Column("summary", Text, nullable=False),
    Column("notes", Text, nullable=False),  # JSON list of {at, by, text}
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Calls an agent made (services/calls.py). Each counts against the contact caps like a message,
# for the person and for the number (the plan's history and the send-time re-check read it).
calls = Table(
    "calls",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "customer_id", ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("number", String(20), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("outcome", String(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Four eyes: every version of a template file, proposed, approved or not (services/versions.py).
# The file in the templates folder is the approved one; drafts never touch it.
config_versions = Table(
    "config_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("content", Text, nullable=False),
    Column("state", String(16), nullable=False),  # draft, approved, rejected, superseded
    Column("author", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("decided_by", Text),
    Column("decided_at", DateTime(timezone=True)),
    Column("note", Text, nullable=False),
    Index("ix_config_versions_kind_name", "kind", "name"),
)

# Automated reminders paused for a customer until a day, and why (hardship, dispute, ...).
pauses = Table(
    "pauses",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "customer_id", ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("until", Date, nullable=False),
    Column("reason", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Templates the guardrail paused (too many opt-outs or complaints after them), until resumed.
template_pauses = Table(
    "template_pauses",
    metadata,
    Column("template", String(64), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("since", DateTime(timezone=True), nullable=False),
)

# Instalment plans agreed with a borrower for one loan, and their agreed payments.
arrangements = Table(
    "arrangements",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("loan_id", ForeignKey("loans.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("agreed_at", DateTime(timezone=True), nullable=False),
    Column("agreed_by", Text, nullable=False),
    Column("schedule", Text, nullable=False),  # JSON [{"due": "2026-12-05", "amount": 50000}, ...]
    Column("status", String(16), nullable=False),  # current, kept, broken
    Column("settled_at", DateTime(timezone=True)),
)

# Keys for the HTTP API: the secret is shown once and only its SHA-256 kept (a random 256-bit
# secret needs no slow hash; passwords, which people choose, would).
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("secret_sha256", String(64), nullable=False),
    Column("scopes", String(64), nullable=False),  # comma-separated: read,ingest,operate,admin
    Column("rate_per_minute", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

# Who changed what, when, with the values before and after (JSON). Append-only: the database
# refuses UPDATE and DELETE on it (triggers made by migration 0015).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("actor", String(128), nullable=False),  # key:NAME, user:NAME, cli
    Column("action", String(64), nullable=False),
    Column("object", String(200), nullable=False),
    Column("before", Text),
    Column("after", Text),
)

# Write requests made with an Idempotency-Key: a retry with the same body gets the first answer,
# one with another body 409. `status` stays null while the first is still being served.
api_requests = Table(
    "api_requests",
    metadata,
    Column("key_id", ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True),
    Column("idempotency_key", String(200), primary_key=True),
    Column("route", String(100), nullable=False),
    Column("body_sha256", String(64), nullable=False),
    Column("status", Integer),
    Column("response", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Webhooks: where a lender wants to hear of events, the events, and each delivery's attempts.
webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", Text, nullable=False),
    Column("events", Text, nullable=False),  # comma-separated event types, or *
    Column("secret", String(64), nullable=False),  # signs the deliveries (HMAC-SHA256)
    Column("active", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("type", String(32), nullable=False),
    Column("customer_id", Integer),  # the order of delivery is kept per customer
    Column("payload", Text, nullable=False),  # JSON
    Column("occurred_at", DateTime(timezone=True), nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "subscription_id",
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("event_id", ForeignKey("webhook_events.id", ondelete="CASCADE"), nullable=False),
    Column("customer_id", Integer),
    Column("status", String(16), nullable=False),  # pending, delivered, dead
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_order", "subscription_id", "customer_id", "status"),
)

# PostgreSQL with several workers: a provider's line, shared (store/rate_slots.py).
provider_slots = Table(
    "provider_slots",
    metadata,
    Column("provider", String(64), primary_key=True),
    Column("free_at", DateTime(timezone=True), nullable=False),
)

# PostgreSQL with several `serve` processes: each API key's token bucket, shared
# (store/api_buckets.py). `at` in seconds since the epoch, by the server's clock.
api_buckets = Table(
    "api_buckets",
    metadata,
    Column("key_id", Integer, primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("at", Float, nullable=False),
)

# A day's plan made in parts by several workers: the run, and each part's outcome until the
# last part is in and the plan is written (services/planner: begin_plan, plan_part, finish_plan).
plan_runs = Table(
    "plan_runs",
    metadata,
    Column("plan_date", Date, primary_key=True),
    Column("parts", Integer, nullable=False),
    Column("planned_at", DateTime(timezone=True), nullable=False),  # the plan's `now`
    Column("scopes", Text, nullable=False),  # JSON [[low, high] | null, ...], one per part
    Column("finished_at", DateTime(timezone=True)),
)

plan_part_results = Table(
    "plan_part_results",
    metadata,
    Column("plan_date", ForeignKey("plan_runs.plan_date", ondelete="CASCADE"), primary_key=True),
    Column("part", Integer, primary_key=True),
    Column("rows", LargeBinary, nullable=False),
    Column("held", LargeBinary, nullable=False),
    Column("stops", LargeBinary, nullable=False),
)


# The console's people: agents, supervisors, compliance officers, admins. Passwords are argon2
# hashes (pwdlib); repeated failures lock the account for a while.
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),  # agent, supervisor, compliance, admin
    Column("team", String(64)),
    Column("password_hash", Text, nullable=False),
    Column("locale", String(8)),  # zh or en; None: the browser's Accept-Language
    Column("failed_logins", Integer, nullable=False),
    Column("locked_until", DateTime(timezone=True)),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# A console user's saved work-list views ("promises due today" with their own name): the list's
# query string, kept as the console wrote it from known keys only.
saved_views = Table(
    "saved_views",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, nullable=False),
    Column("name", String(80), nullable=False),
    Column("query", String(400), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("user_id", "name", name="uq_saved_views_user_name"),
)

# Console sessions, kept in the database: the cookie holds a random token, this table its hash
# (a stolen database gives no live session), the form token (CSRF) and when it lapses.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

# The portfolio by bucket for a day and ledger version, as the worker (or the first page that
# asked) computed it: every server process reads it instead of positioning the whole book.
portfolio_snapshots = Table(
    "portfolio_snapshots",
    metadata,
    Column("key", String(200), primary_key=True),  # day | ledger version | ledger settings
    Column("as_of", Date, nullable=False, index=True),
    Column("buckets", LargeBinary, nullable=False),  # Arrow IPC
    Column("dpd", LargeBinary, nullable=False),  # Arrow IPC
    Column("meta", Text, nullable=False),  # JSON: closed_accounts, currency_digits
    Column("made_at", DateTime(timezone=True), nullable=False),
)

# The report over the console's default range (the last 30 days), as the worker last computed it:
# on a large book a report takes seconds, and managers open it many times a day.
report_snapshots = Table(
    "report_snapshots",
    metadata,
    Column("key", String(64), primary_key=True),  # first | last | pay window
    Column("steps", LargeBinary, nullable=False),  # Arrow IPC, as the other frames
    Column("delivery", LargeBinary, nullable=False),
    Column("templates", LargeBinary, nullable=False),
    Column("daily", LargeBinary, nullable=False),
    Column("meta", Text, nullable=False),  # JSON: the report's other fields
    Column("made_at", DateTime(timezone=True), nullable=False),
)
