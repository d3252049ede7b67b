"""Which provider sends a message, and which one takes over when it is down or refuses.

    rule = RouteRule("twilio", countries=("HK", "MO"), fallback="smpp")
    providers_for("sms", "+85261234567", "m1_firm", [rule], {"sms": "smpp"}, {})
    # ("twilio", "smpp")

Rules are tried in order; the first whose channel, countries or number prefixes, and steps all
match decides; with none, the channel's default provider and its fallback. A rule that names no
country, prefix or step matches every message of its channel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import phonenumbers


@dataclass(frozen=True)
class RouteRule:
    provider: str
    channel: str = "sms"
    countries: tuple[str, ...] = ()  # ISO regions of the recipient's number: "CN", "HK"
    prefixes: tuple[str, ...] = ()  # E.164 prefixes: "+852", "+86170"
    steps: tuple[str, ...] = ()
    fallback: str | None = None

    def matches(self, channel: str, recipient: str, step: str) -> bool:
        if channel != self.channel or (self.steps and step not in self.steps):
            return False
        if not self.countries and not self.prefixes:
            return True
        if any(recipient.startswith(p) for p in self.prefixes):
            return True
        return bool(self.countries) and region_of(recipient) in self.countries


def region_of(recipient: str) -> str | None:
    try:
        region: str | None = phonenumbers.region_code_for_number(phonenumbers.parse(recipient))
    except phonenumbers.NumberParseException:
        return None
    return region


def providers_for(
    channel: str,
    recipient: str,
    step: str,
    rules: Sequence[RouteRule],
    defaults: Mapping[str, str],
    fallbacks: Mapping[str, str | None],
) -> tuple[str, ...]:
    """The provider to try first, then the fallback if there is one (never the same twice)."""
    for rule in rules:
        if rule.matches(channel, recipient, step):
            chosen = (rule.provider, rule.fallback)
            break
    else:
        chosen = (defaults[channel], fallbacks.get(channel))
    first, second = chosen
    return (first,) if second is None or second == first else (first, second)
