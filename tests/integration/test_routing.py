"""Routing: a provider per message by country, prefix or step, and the fallback when the first
is down or refuses; never a second provider for a message whose fate is uncertain."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import Connection, Engine, select

from cuikuan.channels.base import Channel
from cuikuan.channels.sandbox import SandboxChannel
from cuikuan.channels.smpp.channel import SmppChannel
from cuikuan.channels.smpp.session import SessionConfig
from cuikuan.dispatch.sender import send_due
from cuikuan.domain.routing import RouteRule, providers_for
from cuikuan.services.planner import make_plan
from cuikuan.settings import Channels, Route, Settings
from cuikuan.store.schema import customer_phones, outbox
from tests.integration.conftest import DAY
from tests.integration.test_smpp import OPEN
from tests.smsc_helpers import CLOCK, running_smsc

DEFAULTS = {"sms": "smpp", "email": "smtp"}


def planned_ids(conn: Connection) -> list[int]:
    """The planned outbox rows' ids, oldest first."""
    query = select(outbox.c.id).where(outbox.c.status == "planned").order_by(outbox.c.id)
    return list(conn.execute(query).scalars())


def test_the_first_matching_rule_decides_and_the_default_takes_the_rest() -> None:
    rules = [
        RouteRule("twilio", countries=("HK",), fallback="smpp"),
        RouteRule("aliyun", steps=("m3_plus",)),
        RouteRule("tencent", prefixes=("+86170",)),
    ]
    assert providers_for("sms", "+85261234567", "m1", rules, DEFAULTS, {}) == ("twilio", "smpp")
    assert providers_for("sms", "+8613800138000", "m3_plus", rules, DEFAULTS, {}) == ("aliyun",)
    assert providers_for("sms", "+8617012345678", "m1", rules, DEFAULTS, {}) == ("tencent",)
    assert providers_for("sms", "+8613800138000", "m1", rules, DEFAULTS, {"sms": "aliyun"}) == (
        "smpp",
        "aliyun",
    )
    assert providers_for("email", "a@b.example", "m1", rules, DEFAULTS, {}) == ("smtp",)


def with_channels(settings: Settings, **values: object) -> Settings:
    return settings.model_copy(update={"channels": Channels(**values)})  # type: ignore[arg-type]


def providers_used(engine: Engine) -> Counter[tuple[str, str | None]]:
    with engine.connect() as conn:
        return Counter(
            (r.status, r.provider)
            for r in conn.execute(
                select(outbox.c.status, outbox.c.provider).where(outbox.c.control == 0)
            )
        )


def test_a_step_route_sends_through_its_own_provider(book: tuple[Settings, Engine]) -> None:
    settings, engine = book
    make_plan(engine, settings, DAY)
    with engine.connect() as conn:
        steps = Counter(conn.execute(select(outbox.c.step).where(outbox.c.control == 0)).scalars())
    step = steps.most_common(1)[0][0]
    main, special = SandboxChannel(engine), SandboxChannel(engine, name="sandbox_b")
    made = {"sandbox": main, "sandbox_b": special}
    routed = with_channels(settings, routes=(Route(provider="sandbox_b", steps=(step,)),))
    report = send_due(engine, routed, lambda name: made[name], OPEN)
    used = providers_used(engine)
    assert used[("sent", "sandbox_b")] == steps[step]
    assert used[("sent", "sandbox")] == report.sent - steps[step]


def test_a_provider_that_is_down_hands_its_messages_to_the_fallback(
    book: tuple[Settings, Engine],
) -> None:
    settings, engine = book
    make_plan(engine, settings, DAY)
    down = SmppChannel(SessionConfig(port=1, connect_timeout=0.3), clock=CLOCK)
    made: dict[str, Channel] = {"smpp": down, "sandbox": SandboxChannel(engine)}
    routed = with_channels(settings, sms="smpp", sms_fallback="sandbox")
    try:
        report = send_due(engine, routed, lambda name: made[name], OPEN)
    finally:
        down.close()
    assert report.sent > 0 and report.retried == 0
    assert set(providers_used(engine)) <= {("sent", "sandbox"), ("held", None)}


def test_a_refused_message_goes_to_the_fallback_and_the_rest_stay_with_the_first(
    book: tuple[Settings, Engine],
) -> None:
    settings, engine = book
    make_plan(engine, settings, DAY)
    with engine.begin() as conn:
        first = planned_ids(conn)[0]
        # The test SMSC refuses numbers ending in 0011 (ESME_RINVDSTADR).
        conn.execute(outbox.update().where(outbox.c.id == first).values(recipient="+8613900000011"))
        # The number is the borrower's (the send re-checks that the recipient is still theirs).
        owner, number = conn.execute(
            select(outbox.c.customer_id, customer_phones.c.e164)
            .join(customer_phones, customer_phones.c.customer_id == outbox.c.customer_id)
            .where(outbox.c.id == first)
            .order_by(customer_phones.c.position)
        ).first()  # type: ignore[misc]
        conn.execute(
            customer_phones.update()
            .where(customer_phones.c.customer_id == owner, customer_phones.c.e164 == number)
            .values(e164="+8613900000011")
        )
    with running_smsc() as smsc:
        smpp = smsc.channel()
        made: dict[str, Channel] = {"smpp": smpp, "sandbox": SandboxChannel(engine)}
        routed = with_channels(settings, sms="smpp", sms_fallback="sandbox")
        try:
            send_due(engine, routed, lambda name: made[name], OPEN)
        finally:
            smpp.close()
    with engine.connect() as conn:
        by_id = dict(
            conn.execute(
                select(outbox.c.id, outbox.c.provider).where(
                    outbox.c.status.in_(("sent", "delivered"))
                )
            ).all()
        )
    assert by_id.pop(first) == "sandbox"
    assert set(by_id.values()) == {"smpp"}


def test_a_message_beyond_a_providers_limits_goes_to_the_fallback_or_fails(
    book: tuple[Settings, Engine],
) -> None:
    settings, engine = book
    make_plan(engine, settings, DAY)
    with engine.begin() as conn:
        ids = planned_ids(conn)
        # Twelve parts of Chinese: beyond a provider that takes at most ten.
        conn.execute(
            outbox.update().where(outbox.c.id == ids[0]).values(text="催" * 800, segments=12)
        )
    short = SandboxChannel(engine, name="short", max_parts=10)
    long = SandboxChannel(engine, name="long")
    made: dict[str, Channel] = {"short": short, "long": long}
    send_due(
        engine, with_channels(settings, sms="short", sms_fallback="long"), lambda n: made[n], OPEN
    )
    with engine.connect() as conn:
        provider = dict(
            conn.execute(select(outbox.c.id, outbox.c.provider).where(outbox.c.id.in_(ids))).all()
        )
    assert provider[ids[0]] == "long" and provider[ids[1]] == "short"


def test_without_a_fallback_a_too_long_message_fails_with_the_reason(
    book: tuple[Settings, Engine],
) -> None:
    settings, engine = book
    make_plan(engine, settings, DAY)
    with engine.begin() as conn:
        first = planned_ids(conn)[0]
        conn.execute(outbox.update().where(outbox.c.id == first).values(segments=12))
    send_due(engine, settings, SandboxChannel(engine, max_parts=10), OPEN)
    with engine.connect() as conn:
        row = conn.execute(
            select(outbox.c.status, outbox.c.reason).where(outbox.c.id == first)
        ).one()
    assert row.status == "failed" and "too long for sandbox: 12 parts, at most 10" in row.reason


def test_two_named_smpp_carriers_routed_by_number_prefix(book: tuple[Settings, Engine]) -> None:
    from cuikuan.channels.registry import make_channel
    from cuikuan.settings import SmppProvider
    from tests.smsc_helpers import received_messages

    settings, engine = book
    make_plan(engine, settings, DAY)
    with engine.connect() as conn:
        numbers = (
            conn.execute(select(outbox.c.recipient).where(outbox.c.status == "planned"))
            .scalars()
            .all()
        )
    prefix = Counter(n[:6] for n in numbers).most_common(1)[0][0]
    with running_smsc() as cmcc, running_smsc() as unicom:
        routed = settings.model_copy(
            update={
                "providers": {
                    "cmcc": SmppProvider(kind="smpp", port=cmcc.port, tps=10_000),
                    "unicom": SmppProvider(kind="smpp", port=unicom.port, tps=10_000),
                },
                "channels": Channels(
                    sms="unicom", routes=(Route(provider="cmcc", prefixes=(prefix,)),)
                ),
            }
        )
        made: dict[str, Channel] = {}

        def resolve(name: str) -> Channel:
            made.setdefault(name, make_channel(name, engine, routed, CLOCK))
            return made[name]

        try:
            report = send_due(engine, routed, resolve, OPEN)
        finally:
            for channel in made.values():
                channel.close()  # type: ignore[attr-defined]
        to_cmcc = received_messages(list(cmcc.smsc.received))
        to_unicom = received_messages(list(unicom.smsc.received))
    assert report.sent > 0 and to_cmcc and to_unicom
    assert all(n.startswith(prefix.lstrip("+")) for n in to_cmcc)
    assert not any(n.startswith(prefix.lstrip("+")) for n in to_unicom)
    assert set(providers_used(engine)) <= {("delivered", "cmcc"), ("delivered", "unicom"),
                                           ("sent", "cmcc"), ("sent", "unicom"), ("held", None)}  # fmt: skip


def test_a_held_provider_sends_nothing_its_rows_go_to_the_fallback_or_wait_until_released(
    book: tuple[Settings, Engine],
) -> None:
    """An admin's hold (services/providers): nothing reaches the held provider, whatever
    dispatch finds; with a fallback its rows go there, without one they wait planned."""
    from datetime import timedelta

    from cuikuan.services import providers

    settings, engine = book
    make_plan(engine, settings, DAY)
    with engine.connect() as conn:
        to_send = len(planned_ids(conn))
    main, spare = SandboxChannel(engine), SandboxChannel(engine, name="sandbox_b")
    made: dict[str, Channel] = {"sandbox": main, "sandbox_b": spare}
    alone = with_channels(settings, sms="sandbox")
    providers.hold(engine, alone, "sandbox", "carrier maintenance", OPEN, "user:ops")
    report = send_due(engine, alone, lambda name: made[name], OPEN)
    assert report.sent == 0 and report.waiting == to_send
    assert "held by an admin: carrier maintenance" in report.stopped_channels["sandbox"]
    with engine.connect() as conn:
        assert len(planned_ids(conn)) == to_send
        reasons = set(
            conn.execute(select(outbox.c.reason).where(outbox.c.status == "planned")).scalars()
        )
    assert reasons == {"channel stopped: held by an admin: carrier maintenance"}
    # With a fallback, half the day goes there; the held one still takes nothing.
    later = OPEN + timedelta(minutes=20)
    fallback = with_channels(settings, sms="sandbox", sms_fallback="sandbox_b")
    report = send_due(engine, fallback, lambda name: made[name], later, limit=to_send // 2)
    used = providers_used(engine)
    assert report.sent > 0 and used[("sent", "sandbox_b")] == report.sent
    assert not any(p == "sandbox" for _, p in used)
    # Released: the next run sends the rest through it.
    providers.release(engine, "sandbox", later, "user:ops")
    report = send_due(engine, alone, lambda name: made[name], later + timedelta(minutes=20))
    assert report.sent > 0 and not report.stopped_channels
    assert providers_used(engine)[("sent", "sandbox")] == report.sent
