"""Settings: one TOML file, validated on load, overridable by `CUIKUAN_<SECTION>__<KEY>` variables.

    settings = load_settings(Path("cuikuan.toml"))
    settings.database_url        # sqlite paths resolved against the file's folder

A bad value raises ConfigError naming the file, the line and the field (or the variable).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Mapping
from datetime import time, timedelta
from decimal import Decimal
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from babel import Locale, UnknownLocaleError
from babel.numbers import get_currency_precision, list_currencies
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cuikuan.config_files import describe, read_toml
from cuikuan.domain.holidays import YearDays
from cuikuan.domain.policy import PACKS, ContactPolicy, policy_for
from cuikuan.domain.routing import RouteRule
from cuikuan.errors import ConfigError

_log = logging.getLogger(__name__)

ENV_PREFIX = "CUIKUAN_"
CONFIG_ENV = "CUIKUAN_CONFIG"
CONFIG_NAME = "cuikuan.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Lender(_Section):
    name: str = Field(min_length=1)
    signature: str = Field(min_length=1)
    hotline: str = ""
    online_service_url: str = ""
    wechat: str = ""
    app_name: str = ""
    payment_link: str = ""


class Defaults(_Section):
    region: str = "CN"
    timezone: str = "Asia/Shanghai"
    currency: str = "CNY"
    locale: str = "zh-CN"

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        v = v.upper()
        if v not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"expected a two-letter region such as CN or US, got {v!r}")
        return v

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"expected an IANA time zone such as Asia/Shanghai, got {v!r}"
            ) from None
        return v

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        v = v.upper()
        if v not in list_currencies():
            raise ValueError(f"expected an ISO 4217 currency code such as CNY, got {v!r}")
        return v

    @field_validator("locale")
    @classmethod
    def _locale(cls, v: str) -> str:
        try:
            Locale.parse(v, sep="-")
        except (UnknownLocaleError, ValueError):
            raise ValueError(f"expected a locale such as zh-CN or en, got {v!r}") from None
        return v

    @property
    def currency_digits(self) -> int:
        return int(get_currency_precision(self.currency))


class Database(_Section):
    url: str = "sqlite:///cuikuan.db"


class Policy(_Section):
    """The contact policy: a jurisdiction pack's defaults, each value overridable here."""

    jurisdiction: Literal["cn", "us", "eu"] = "cn"
    # Every text must carry opt-out wording; unset means the pack's default (on for us).
    require_opt_out: bool | None = None
    # Regulation F: a debt collector's messages say so.
    debt_collector: bool = False
    window_start: str | None = None  # "HH:MM", borrower's local time
    window_end: str | None = None
    # At least 1: a cap of 0 would read as "no message at all", which caps (counted over the
    # messages before) cannot say; pause templates or steps for that.
    max_per_day: int | None = Field(default=None, ge=1)
    max_per_7_days: int | None = Field(default=None, ge=1)
    min_gap_hours: float | None = Field(default=None, ge=0, le=168)
    holiday_calendar: str | None = None  # "cn", a country code such as US or GB, or "none"
    opt_out_confirmation: bool | None = None  # one confirmation after an opt-out (pack default)
    # The lender's holiday data (docs/holidays.md), beside this file; it takes precedence over
    # the libraries for every year it lists.
    holidays_file: str = "holidays.toml"
    # A day of a year no one has holiday data for: "working" (an ordinary week) or "stop" (steps
    # that skip or shift holidays send nothing). Either way the trail says so.
    unknown_holidays: Literal["working", "stop"] = "working"
    # The window suits the declared zone and every zone the numbers may be in; true: only the
    # declared zone (document why, e.g. numbers known to roam).
    declared_zone_only: bool = False

    @field_validator("window_start", "window_end")
    @classmethod
    def _clock(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"([01]?[0-9]|2[0-3]):([0-5][0-9])", v.strip()):
            raise ValueError(f"expected a time of day like 08:00 or 21:00, got {v!r}")
        return v

    @model_validator(mode="after")
    def _window_in_order(self) -> Policy:
        """The window as it will apply: a value left unset is the pack's."""
        pack = PACKS[self.jurisdiction]
        start = _clock(self.window_start) if self.window_start else pack.window_start
        end = _clock(self.window_end) if self.window_end else pack.window_end
        if start >= end:
            whose = "" if self.window_end else f", the {self.jurisdiction} pack's"
            raise ValueError(
                f"window_start ({start:%H:%M}) must be before window_end ({end:%H:%M}{whose})"
            )
        return self

    @property
    def confirms_opt_out(self) -> bool:
        """One confirmation after an opt-out: allowed in the us pack (FCC 24-18); elsewhere off
        unless configured (cn: after a refusal, nothing more on that channel)."""
        return (
            self.opt_out_confirmation
            if self.opt_out_confirmation is not None
            else self.jurisdiction == "us"
        )

    @property
    def opt_out_required(self) -> bool:
        return (
            self.require_opt_out if self.require_opt_out is not None else self.jurisdiction == "us"
        )

    def contact_policy(self, holiday_years: Mapping[int, YearDays] | None = None) -> ContactPolicy:
        """The pack's policy with this section's values; `holiday_years`: the lender's own
        holiday data for the calendar (Settings.contact_policy reads the file)."""
        return policy_for(
            self.jurisdiction,
            window_start=_clock(self.window_start) if self.window_start else None,
            window_end=_clock(self.window_end) if self.window_end else None,
            max_per_day=self.max_per_day,
            max_per_7_days=self.max_per_7_days,
            min_gap=timedelta(hours=self.min_gap_hours) if self.min_gap_hours is not None else None,
            holiday_calendar=self.holiday_calendar,
            require_opt_out=self.opt_out_required,
            holiday_years=holiday_years or {},
            unknown_holidays=self.unknown_holidays,
            declared_zone_only=self.declared_zone_only,
        )


def _clock(text: str) -> time:
    hours, minutes = text.strip().split(":")
    return time(int(hours), int(minutes))


class Templates(_Section):
    dir: str = "templates"
    locales: tuple[str, ...] = ("zh-CN", "en")
    max_segments: int = Field(default=3, ge=1, le=10)
    max_cn_billing_units: int = Field(default=3, ge=1, le=10)
    # Extra banned-wording files (TOML, same form as the shipped ones), relative to this file.
    wording_dir: str = "wording"
    tips: bool = True
    tips_on_tones: tuple[str, ...] = ("gentle", "neutral")


class Plan(_Section):
    strategy: str = "strategy.toml"
    # Price of one billing unit (one SMS as the carrier counts it), for the dry run's estimate.
    price_per_billing_unit: Decimal = Decimal("0.045")
    # A promise to pay pauses reminders until its date plus these days; then kept or broken.
    promise_grace_days: int = Field(default=2, ge=0, le=30)
    # Guardrail: a template is paused when, over this many days and at least this many messages,
    # more than these shares of its recipients opt out or complain within 3 days.
    guardrail_window_days: int = Field(default=14, ge=1, le=90)
    guardrail_min_messages: int = Field(default=50, ge=1)
    guardrail_opt_out_share: float = Field(default=0.05, gt=0, le=1)
    guardrail_complaint_share: float = Field(default=0.01, gt=0, le=1)
    # Who is most urgent (one message a person; a shared number's one slot): "dpd" (the most
    # overdue first, then strategy order) or "strategy" (strategy order first).
    urgency: Literal["dpd", "strategy"] = "dpd"


class Schedule(_Section):
    """When `cuikuan worker` does the day's work (times in the book's zone, [defaults] timezone)."""

    plan_at: str = "07:30"  # the day's plan is made at or after this local time, once a day
    every_seconds: float = Field(default=30.0, gt=0, le=3600)  # how often windows are checked
    # PostgreSQL with several workers: the due messages are split into this many shards, which
    # workers take one at a time; the day's plan into parts of this many customers.
    dispatch_shards: int = Field(default=4, ge=1, le=256)
    plan_part_customers: int = Field(default=250_000, ge=1)

    @field_validator("plan_at")
    @classmethod
    def _plan_at(cls, v: str) -> str:
        try:
            _clock(v)
        except ValueError:
            raise ValueError(f"expected a local time like 07:30, got {v!r}") from None
        return v

    @property
    def plan_time(self) -> time:
        return _clock(self.plan_at)


class Route(_Section):
    """Send matching messages through `provider` (then `fallback` if it is down or refuses)."""

    provider: str = Field(min_length=1)
    channel: Literal["sms", "email"] = "sms"
    countries: tuple[str, ...] = ()  # regions of the recipient's number, e.g. ["HK", "MO"]
    prefixes: tuple[str, ...] = ()  # E.164 prefixes, e.g. ["+852", "+86170"]
    steps: tuple[str, ...] = ()  # strategy step ids
    fallback: str | None = None

    def rule(self) -> RouteRule:
        return RouteRule(
            self.provider, self.channel, self.countries, self.prefixes, self.steps, self.fallback
        )


class Channels(_Section):
    """Which provider sends each channel (entry points in group cuikuan.channels)."""

    sms: str = "sandbox"
    email: str = "smtp"
    # Tried when the first provider is down, stopped or refuses a message (never when its fate
    # is uncertain: that one might have been sent).
    sms_fallback: str | None = None
    email_fallback: str | None = None
    routes: tuple[Route, ...] = ()
    # Messages handed to a provider per recorded batch: a dispatcher killed mid-batch leaves at
    # most this many `uncertain` (never resent); smaller is safer, larger is faster.
    batch: int = Field(default=500, ge=1, le=100_000)
    # Transient failures (throttling that would not stop, a gateway down) are retried this many
    # times, waiting retry_seconds, then twice as long each time, and never past the window.
    max_attempts: int = Field(default=5, ge=1, le=50)
    retry_seconds: int = Field(default=30, ge=1)
    # The variable holding the token that unsigned provider pushes must carry (?token=...).
    callback_token_env: str = "CUIKUAN_CALLBACK_TOKEN"


class Smpp(_Section):
    """SMPP 3.4 binds to a carrier, an aggregator or `cuikuan smsc`: transceivers, or separate
    transmitter and receiver binds (`receivers`)."""

    host: str = "127.0.0.1"
    port: int = Field(default=2775, ge=1, le=65535)
    system_id: str = "cuikuan"
    # The name of the environment variable holding the password (never the password itself).
    password_env: str = "CUIKUAN_SMPP_PASSWORD"
    system_type: str = ""
    source_addr: str = "1069"  # sender id: a short code, a long number or an alphanumeric name
    # None: from source_addr (letters 5/0 alphanumeric, +country 1/1, a short code 0/1).
    source_ton: int | None = Field(default=None, ge=0, le=6)
    source_npi: int | None = Field(default=None, ge=0, le=18)
    # Where a sender number given in national form (or of unknown type) belongs; None: the
    # book's region ([defaults] region).
    region: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    sessions: int = Field(default=1, ge=1, le=16)  # binds held at once, sharing `tps`
    # 0: the sessions are transceivers. N: the carrier wants separate binds; the sessions bind
    # as transmitters and N receiver binds hear the receipts and replies.
    receivers: int = Field(default=0, ge=0, le=16)
    window: int = Field(default=64, ge=1, le=1024)  # submits in flight before waiting for answers
    tps: float = Field(default=200.0, gt=0)  # the rate the carrier agreed
    enquire_link_seconds: float = Field(default=30.0, gt=0)
    response_timeout_seconds: float = Field(default=10.0, gt=0)
    udh_reference_bits: Literal[8, 16] = 8
    registered_delivery: bool = True  # ask for delivery receipts


class Smtp(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = "starttls"
    username: str | None = None
    # The name of the environment variable holding the password (never the password itself).
    password_env: str | None = "CUIKUAN_SMTP_PASSWORD"
    from_address: str = "noreply@example.com"
    subject: str = "还款提醒 / Payment reminder"


class Twilio(_Section):
    account_sid: str = ""
    auth_token_env: str = "TWILIO_AUTH_TOKEN"  # the variable holding the token, never the token
    from_number: str | None = None
    messaging_service_sid: str | None = None
    status_callback: str | None = None


class ProviderTemplateSetting(_Section):
    code: str = Field(min_length=1)  # the template code or id registered at the provider
    text: str = Field(min_length=1)  # its registered text: ${name} (Aliyun) or {1} (Tencent)


class Aliyun(_Section):
    access_key_id: str = ""
    # The name of the environment variable holding the AccessKey secret, never the secret.
    secret_env: str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
    sign_name: str = ""
    region: str = "cn-hangzhou"
    endpoint: str = "https://dysmsapi.aliyuncs.com/"
    tps: float = Field(default=50.0, gt=0)
    # cuikuan template name -> the provider template it is registered as.
    templates: dict[str, ProviderTemplateSetting] = {}


class Tencent(_Section):
    secret_id: str = ""
    secret_env: str = "TENCENTCLOUD_SECRET_KEY"
    app_id: str = ""  # SmsSdkAppId
    sign_name: str = ""
    region: str = "ap-guangzhou"
    endpoint: str = "https://sms.tencentcloudapi.com/"
    tps: float = Field(default=50.0, gt=0)
    templates: dict[str, ProviderTemplateSetting] = {}


class SandboxProvider(_Section):
    kind: Literal["sandbox"]
    failure_share: float = Field(default=0.03, ge=0, le=1)


class SmppProvider(Smpp):
    kind: Literal["smpp"]


class SmtpProvider(Smtp):
    kind: Literal["smtp"]


class TwilioProvider(Twilio):
    kind: Literal["twilio"]


class AliyunProvider(Aliyun):
    kind: Literal["aliyun"]


class TencentProvider(Tencent):
    kind: Literal["tencent"]


# A named provider: its kind and that kind's own settings, e.g. two SMPP carriers at once.
Provider = Annotated[
    SandboxProvider
    | SmppProvider
    | SmtpProvider
    | TwilioProvider
    | AliyunProvider
    | TencentProvider,
    Field(discriminator="kind"),
]


class Bucket(_Section):
    name: str = Field(min_length=1)
    max_dpd: int | None = Field(default=None, ge=0)


DEFAULT_BUCKETS = (
    Bucket(name="current", max_dpd=0),
    Bucket(name="M1", max_dpd=30),
    Bucket(name="M2", max_dpd=60),
    Bucket(name="M3", max_dpd=90),
    Bucket(name="M3+"),
)


class LedgerRules(_Section):
    grace_days: int = Field(default=0, ge=0, le=365)
    buckets: tuple[Bucket, ...] = DEFAULT_BUCKETS

    @model_validator(mode="after")
    def _buckets_in_order(self) -> LedgerRules:
        edges = [b.max_dpd for b in self.buckets]
        if not edges or edges[-1] is not None:
            raise ValueError("the last bucket must have no max_dpd (it takes everything beyond)")
        bounded = [e for e in edges[:-1] if e is not None]
        if len(bounded) != len(edges) - 1:
            raise ValueError("only the last bucket may leave out max_dpd")
        if any(b <= a for a, b in pairwise(bounded)):
            raise ValueError("bucket max_dpd values must increase")
        names = [b.name for b in self.buckets]
        if len(set(names)) != len(names):
            raise ValueError("bucket names must be unique")
        return self


class Settings(_Section):
    lender: Lender
    defaults: Defaults = Defaults()
    database: Database = Database()
    policy: Policy = Policy()
    ledger: LedgerRules = LedgerRules()
    templates: Templates = Templates()
    plan: Plan = Plan()
    schedule: Schedule = Schedule()
    channels: Channels = Channels()
    smtp: Smtp = Smtp()
    smpp: Smpp = Smpp()
    aliyun: Aliyun = Aliyun()
    tencent: Tencent = Tencent()
    providers: dict[str, Provider] = {}
    twilio: Twilio = Twilio()
    source: Path | None = Field(default=None, exclude=True)

    def path(self, relative: str) -> Path:
        """A path from the settings, relative to the settings file's folder."""
        base = self.source.parent if self.source is not None else Path.cwd()
        return (base / relative).resolve()

    @property
    def database_url(self) -> str:
        return resolve_database_url(self.database.url, self.source)

    @property
    def holidays_path(self) -> Path:
        return self.path(self.policy.holidays_file)

    def contact_policy(self) -> ContactPolicy:
        """The contact policy, with the lender's holiday file for the pack's calendar."""
        from cuikuan.holiday_file import read_holiday_file

        base = self.policy.contact_policy()
        years = read_holiday_file(self.holidays_path).get(base.holiday_calendar, {})
        return self.policy.contact_policy(years)


def resolve_database_url(url: str, source: Path | None) -> str:
    """Resolve a relative SQLite path against the settings file's folder."""
    m = re.match(r"^(sqlite(?:\+\w+)?:///)(file:)?([^?]+)(\?.*)?$", url)
    if not m or m.group(3).startswith(("/", ":memory:")):
        return url
    base = source.parent if source is not None else Path.cwd()
    # A URI filename ("file:cuikuan.db?mode=ro&uri=true", read-only) keeps its form.
    return m.group(1) + (m.group(2) or "") + str((base / m.group(3)).resolve()) + (m.group(4) or "")


def default_settings_text() -> str:
    return resources.files("cuikuan.resources").joinpath("cuikuan.toml").read_text("utf-8")


def find_settings_file(explicit: Path | None = None, cwd: Path | None = None) -> Path:
    """The file named on the command line, else $CUIKUAN_CONFIG, else cuikuan.toml here or above."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"{explicit}: settings file not found")
        return explicit
    if os.environ.get(CONFIG_ENV):
        path = Path(os.environ[CONFIG_ENV])
        if not path.is_file():
            raise ConfigError(f"{path}: settings file named by {CONFIG_ENV} not found")
        return path
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder / CONFIG_NAME
    raise ConfigError(
        f"no {CONFIG_NAME} in {here} or above: run `cuikuan init` here, "
        f"pass --config FILE, or set {CONFIG_ENV}"
    )


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    data, text = read_toml(path)
    env_fields = _apply_environment(data, os.environ if environ is None else environ)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe(exc, path, text, env_fields)) from None
    return settings.model_copy(update={"source": path.resolve()})


def _apply_environment(
    data: dict[str, Any], environ: Mapping[str, str]
) -> dict[tuple[str, ...], str]:
    applied: dict[tuple[str, ...], str] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        path = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__") if part)
        if len(path) < 2:
            continue
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[path[-1]] = value
            applied[path] = name
    return applied


class SettingsWatch:
    """The settings as their file says now, for a process that runs for days (`serve`,
    `worker`): read again when the file changes, so that a policy approved in the console (which
    rewrites the file's `[policy]` table) governs the next plan, send and page without a restart.

        watch = SettingsWatch(settings)      # as loaded at start
        settings = watch.current()           # a stat a call; a new read only after a change

    A file changed into something invalid is reported once (logged) and the last good settings
    stay in force. What a process built at its start from the settings (its provider
    connections, its database) stays as it was until it restarts.
    """

    def __init__(self, settings: Settings, environ: Mapping[str, str] | None = None) -> None:
        self._settings = settings
        self._environ = environ
        self._seen = self._stamp()
        self._lock = threading.Lock()

    def _stamp(self) -> tuple[int, int, int] | None:
        if self._settings.source is None:
            return None
        try:
            found = self._settings.source.stat()
        except OSError:
            return None
        return found.st_mtime_ns, found.st_size, found.st_ino

    def current(self) -> Settings:
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return self._settings
        with self._lock:
            if stamp != self._seen:
                self._seen = stamp
                self._reload()
        return self._settings

    def _reload(self) -> None:
        source = self._settings.source
        assert source is not None  # a stamp was taken
        try:
            fresh = load_settings(source, self._environ)
        except ConfigError as exc:
            _log.error("%s changed but cannot be read; the settings before stay in force: %s",
                       source, exc.message)  # fmt: skip
            return
        if fresh.database_url != self._settings.database_url:
            _log.warning("%s: a new database url takes effect on restart", source)
            fresh = fresh.model_copy(update={"database": self._settings.database})
        _log.info("%s changed: settings read again", source)
        self._settings = fresh
