"""An independent checker: what the gateway accepted, judged against the rules.

It reads only the sandbox gateway's own record (recipient, text, moment accepted) and what the
world did (world.py): the numbers each borrower had and when, the replies they sent, payments,
promises. It shares no code with cuikuan's rules: zones come from libphonenumber plus its own
list of split area codes, the window and caps are counted here.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as tz

from tests.scenarios.world import World

WINDOW = (time(8), time(21))
MAX_DAY, MAX_WEEK, MIN_GAP = 1, 3, timedelta(hours=20)
PROMISE_GRACE = timedelta(days=2)
# Area codes that span zones: a number whose exchange the checker does not know may be in any.
SPLIT = {
    "1270": ("America/New_York", "America/Chicago"),
    "1208": ("America/Denver", "America/Boise", "America/Los_Angeles"),
}
KNOWN_EXCHANGES = {"1208703": ("America/Denver",), "1208704": ("America/Los_Angeles",)}
CONFIRMATIONS = ("You will get no more", "您已退订")


@dataclass
class Sent:
    at: datetime
    recipient: str
    text: str


@dataclass
class Verdict:
    violations: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def add(self, rule: str, sent: Sent, why: str) -> None:
        self.violations[rule] += 1
        self.examples.setdefault(rule, f"{sent.at:%Y-%m-%d %H:%M} UTC to {sent.recipient}: {why}")


def e164(number: str, region: str) -> str:
    return phonenumbers.format_number(
        phonenumbers.parse(number, region), phonenumbers.PhoneNumberFormat.E164
    )


def zones_of(number: str) -> tuple[str, ...]:
    digits = number.lstrip("+")
    for prefix, zones in KNOWN_EXCHANGES.items():
        if digits.startswith(prefix):
            return zones
    for prefix, zones in SPLIT.items():
        if digits.startswith(prefix):
            return zones
    found = tz.time_zones_for_number(phonenumbers.parse(number))
    return tuple(z for z in found if z != "Etc/Unknown")


def check(world: World, sent: list[Sent]) -> Verdict:
    verdict = Verdict()
    region, pack = world.pack.region, world.pack
    owners: dict[str, list[tuple[str, datetime | None, datetime | None]]] = defaultdict(list)
    declared = {}
    for p in world.people:
        declared[p.cid] = p.declared
        for n in p.numbers:
            owners[e164(n, region)].append((p.cid, None, None))
    for at, cid, old, new in world.changes:
        # The world holds the numbers as they are now: the old one was the borrower's until
        # `at`, the new one only from then.
        old_e, new_e = e164(old, region), e164(new, region)
        owners[old_e] = [o for o in owners[old_e] if o[0] != cid] + [(cid, None, at)]
        owners[new_e] = [o for o in owners[new_e] if o[0] != cid] + [(cid, at, None)]
    stops: dict[str, datetime] = {}
    wrong: dict[str, datetime] = {}
    person_stop: dict[str, datetime] = {}
    for at, number, kind, _ in world.replies:
        if kind == "stop":
            stops.setdefault(number, at)
        elif kind == "wrong":
            wrong.setdefault(number, at)
        elif kind in ("deceased", "complaint", "dispute"):
            for cid, _, _ in owners.get(number, []):
                person_stop.setdefault(cid, at)
    paid_off = {cid: at for at, cid, _ in world.payoffs}
    promised = {cid: (at, day) for at, cid, day in world.promises}
    by_number: dict[str, list[Sent]] = defaultdict(list)
    by_person: dict[str, list[Sent]] = defaultdict(list)
    for s in sorted(sent, key=lambda s: s.at):
        confirmation = any(c in s.text for c in CONFIRMATIONS)
        holders = [
            c
            for c, a, b in owners.get(s.recipient, [])
            if (a is None or a <= s.at) and (b is None or s.at < b)
        ]
        if not holders:
            verdict.add("recipient_on_record", s, "the number is nobody's now")
        stop_at = stops.get(s.recipient)
        late = stop_at is not None and s.at > stop_at
        if late and not (confirmation and s.at - stop_at <= timedelta(minutes=5)):  # type: ignore[operator]
            verdict.add("opt_out", s, f"stopped at {stop_at:%m-%d %H:%M}")
        if s.recipient in wrong and s.at > wrong[s.recipient]:
            verdict.add("wrong_number", s, "wrong number reported")
        for cid in holders:
            if cid in person_stop and s.at > person_stop[cid]:
                verdict.add("person_stop", s, f"{cid} stopped (death, complaint or dispute)")
            if cid in paid_off and s.at > paid_off[cid] and not confirmation:
                verdict.add("paid", s, f"{cid} paid in full")
            if cid in promised and not confirmation:
                made, day = promised[cid]
                until = datetime.combine(day, time(0), ZoneInfo(pack.zone)) + PROMISE_GRACE
                if made < s.at < until:
                    verdict.add("promise", s, f"{cid} promised {day}")
        if confirmation:
            continue
        zones = set(zones_of(s.recipient))
        for cid in holders:
            if declared.get(cid):
                zones.add(str(declared[cid]))
        zones = zones or {pack.zone}
        for zone in zones:
            clock = s.at.astimezone(ZoneInfo(zone)).time()
            if not WINDOW[0] <= clock <= WINDOW[1]:
                verdict.add("window", s, f"{clock:%H:%M} in {zone}")
                break
        by_number[s.recipient].append(s)
        for cid in holders:
            by_person[cid].append(s)
    zone = ZoneInfo(pack.zone)
    for messages in [*by_number.values(), *by_person.values()]:
        _caps(verdict, messages, zone)
    return verdict


def _caps(verdict: Verdict, messages: list[Sent], zone: ZoneInfo) -> None:
    unique = {(m.at, m.recipient, m.text): m for m in messages}
    ordered = sorted(unique.values(), key=lambda m: m.at)
    for i, m in enumerate(ordered):
        earlier = ordered[:i]
        same_day = [
            e for e in earlier if e.at.astimezone(zone).date() == m.at.astimezone(zone).date()
        ]
        if len(same_day) >= MAX_DAY:
            verdict.add("cap_day", m, f"{len(same_day) + 1} on one day")
        week = [e for e in earlier if m.at - e.at < timedelta(days=7)]
        if len(week) >= MAX_WEEK:
            verdict.add("cap_week", m, f"{len(week) + 1} in 7 days")
        if earlier and m.at - earlier[-1].at < MIN_GAP:
            verdict.add("cap_gap", m, f"{m.at - earlier[-1].at} after the last")
