"""Channels by name, through the `cuikuan.channels` entry points; the built-in ones register the
same way a third party's would (pyproject.toml), so the extension point is always exercised.

    channel = make_channel("smtp", engine, settings)
"""

from __future__ import annotations

from importlib.metadata import entry_points

from sqlalchemy import Engine

from cuikuan.channels.base import Channel
from cuikuan.errors import ConfigError
from cuikuan.settings import Settings

GROUP = "cuikuan.channels"


def available() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


def make_channel(name: str, engine: Engine, settings: Settings) -> Channel:
    found = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not found:
        raise ConfigError(
            f"no channel provider {name!r}; installed: {', '.join(available()) or 'none'}"
        )
    factory = found[0].load()
    channel: Channel = factory(engine, settings)
    return channel


def sandbox(engine: Engine, settings: Settings) -> Channel:
    from cuikuan.channels.sandbox import SandboxChannel

    return SandboxChannel(engine)


def smtp(engine: Engine, settings: Settings) -> Channel:
    from cuikuan.channels.smtp import SmtpChannel

    s = settings.smtp
    return SmtpChannel(
        s.host, s.port, s.from_address, s.subject, s.security, s.username, s.password_env
    )


def twilio(engine: Engine, settings: Settings) -> Channel:
    from cuikuan.channels.twilio import TwilioChannel

    t = settings.twilio
    return TwilioChannel(
        t.account_sid, t.auth_token_env, t.from_number, t.messaging_service_sid, t.status_callback
    )


def smpp(engine: Engine, settings: Settings) -> Channel:
    import os

    from cuikuan.channels.smpp.channel import SmppChannel
    from cuikuan.channels.smpp.session import SessionConfig

    s = settings.smpp
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
    )


def aliyun(engine: Engine, settings: Settings) -> Channel:
    from cuikuan.channels.aliyun import AliyunChannel
    from cuikuan.channels.provider_templates import ProviderTemplate

    a = settings.aliyun
    return AliyunChannel(
        a.access_key_id,
        a.sign_name,
        {k: ProviderTemplate(t.code, t.text) for k, t in a.templates.items()},
        secret_env=a.secret_env,
        region=a.region,
        base_url=a.endpoint,
        max_tps=a.tps,
    )


def tencent(engine: Engine, settings: Settings) -> Channel:
    from cuikuan.channels.provider_templates import ProviderTemplate
    from cuikuan.channels.tencent import TencentChannel

    t = settings.tencent
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
