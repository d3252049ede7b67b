"""Channels by name: a named provider from the settings (`[providers.NAME] kind = "smpp"` ...,
so a lender can bind to two carriers at once), or else a kind through the `cuikuan.channels`
entry points, configured by its own section ([smpp], [aliyun] ...). The built-in kinds register
the same way a third party's would (pyproject.toml), so the extension point is always exercised.

    channel = make_channel("cmcc", engine, settings, clock)   # [providers.cmcc], kind smpp
    channel = make_channel("smtp", engine, settings, clock)   # the smtp kind, [smtp]

`clock` is the caller's (the command line's): a channel that hears things (an SMPP bind) stamps
what arrives with it, never with the wall clock of its own. An entry point is called as
`factory(engine, settings, clock)`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from importlib.metadata import entry_points
from typing import Any

from sqlalchemy import Engine

from cuikuan.channels.base import Channel
from cuikuan.errors import ConfigError
from cuikuan.settings import Aliyun, Settings, Smpp, Smtp, Tencent, Twilio

GROUP = "cuikuan.channels"
Clock = Callable[[], datetime]


def available() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


def make_channel(name: str, engine: Engine, settings: Settings, clock: Clock) -> Channel:
    declared = settings.providers.get(name)
    if declared is not None:
        channel: Channel = BUILDERS[declared.kind](engine, declared, clock)
        channel.name = name  # parts and receipts are kept per provider name
        return channel
    found = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not found:
        named = ", ".join(sorted(settings.providers)) or "none"
        raise ConfigError(
            f"no channel provider {name!r}; named in [providers]: {named}; "
            f"installed kinds: {', '.join(available()) or 'none'}"
        )
    factory = found[0].load()
    made: Channel = factory(engine, settings, clock)
    return made


# --- the built-in kinds: one builder each, from its settings section ------------------------


def build_sandbox(engine: Engine, section: Any, clock: Clock) -> Channel:
    from cuikuan.channels.sandbox import SandboxChannel

    return SandboxChannel(engine, failure_share=getattr(section, "failure_share", 0.03))


def build_smtp(engine: Engine, s: Smtp, clock: Clock) -> Channel:
    from cuikuan.channels.smtp import SmtpChannel

    return SmtpChannel(
        s.host, s.port, s.from_address, s.subject, s.security, s.username, s.password_env
    )


def build_twilio(engine: Engine, t: Twilio, clock: Clock) -> Channel:
    from cuikuan.channels.twilio import TwilioChannel

    return TwilioChannel(
        t.account_sid, t.auth_token_env, t.from_number, t.messaging_service_sid, t.status_callback
    )


def build_smpp(engine: Engine, s: Smpp, clock: Clock) -> Channel:
    from cuikuan.channels.smpp.channel import SmppChannel
    from cuikuan.channels.smpp.session import SessionConfig
    from cuikuan.store.inbound_pdus import StoredJournal

    config = SessionConfig(
        host=s.host,
        port=s.port,
        system_id=s.system_id,
        password=os.environ.get(s.password_env, ""),
        system_type=s.system_type,
        window=s.window,
        tps=s.tps,
        enquire_link_interval=s.enquire_link_seconds,
        response_timeout=s.response_timeout_seconds,
    )
    return SmppChannel(
        config,
        source_addr=s.source_addr,
        source_ton=s.source_ton,
        source_npi=s.source_npi,
        registered_delivery=1 if s.registered_delivery else 0,
        reference_bits=s.udh_reference_bits,
        sessions=s.sessions,
        receivers=s.receivers,
        journal=StoredJournal(engine),
        clock=clock,
    )


def build_aliyun(engine: Engine, a: Aliyun, clock: Clock) -> Channel:
    from cuikuan.channels.aliyun import AliyunChannel
    from cuikuan.channels.provider_templates import ProviderTemplate

    return AliyunChannel(
        a.access_key_id,
        a.sign_name,
        {k: ProviderTemplate(t.code, t.text) for k, t in a.templates.items()},
        secret_env=a.secret_env,
        region=a.region,
        base_url=a.endpoint,
        max_tps=a.tps,
    )


def build_tencent(engine: Engine, t: Tencent, clock: Clock) -> Channel:
    from cuikuan.channels.provider_templates import ProviderTemplate
    from cuikuan.channels.tencent import TencentChannel

    return TencentChannel(
        t.secret_id,
        t.app_id,
        t.sign_name,
        {k: ProviderTemplate(v.code, v.text) for k, v in t.templates.items()},
        secret_env=t.secret_env,
        region=t.region,
        base_url=t.endpoint,
        max_tps=t.tps,
    )


BUILDERS: dict[str, Any] = {
    "sandbox": build_sandbox,
    "smtp": build_smtp,
    "twilio": build_twilio,
    "smpp": build_smpp,
    "aliyun": build_aliyun,
    "tencent": build_tencent,
}


# --- entry points: each kind configured by its own section ------------------------------


def sandbox(engine: Engine, settings: Settings, clock: Clock) -> Channel:
    return build_sandbox(engine, None, clock)


def smtp(engine: Engine, settings: Settings, clock: Clock) -> Channel:
    return build_smtp(engine, settings.smtp, clock)


def twilio(engine: Engine, settings: Settings, clock: Clock) -> Channel:
    return build_twilio(engine, settings.twilio, clock)


def smpp(engine: Engine, settings: Settings, clock: Clock) -> Channel:
    return build_smpp(engine, settings.smpp, clock)


def aliyun(engine: Engine, settings: Settings, clock: Clock) -> Channel:
    return build_aliyun(engine, settings.aliyun, clock)


def tencent(engine: Engine, settings: Settings, clock: Clock) -> Channel:
    return build_tencent(engine, settings.tencent, clock)
