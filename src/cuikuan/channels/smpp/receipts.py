"""Delivery receipts in deliver_sm, read the tolerant way SMSCs require.

    r = parse_receipt(sm)   # ReceiptInfo(message_id="1a2b", state="DELIVRD", ...) or None

The id and state come from the receipted_message_id and message_state TLVs when present, else
from the SMPP 3.4 appendix B text ("id:.. sub:.. dlvr:.. submit date:.. done date:.. stat:..
err:.. text:.."), whose fields we find by name in any order and case; dates may carry seconds
or not. `id_candidates` gives every spelling of an id (hex or decimal, case, leading zeros),
because some SMSCs answer submit_sm in hex and report receipts in decimal, or the reverse.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import NamedTuple

from cuikuan.channels.smpp import pdu

FINAL = {
    "DELIVRD": "delivered",
    "DELIVERED": "delivered",
    "UNDELIV": "undelivered",
    "UNDELIVERABLE": "undelivered",
    "REJECTD": "undelivered",
    "REJECTED": "undelivered",
    "DELETED": "undelivered",
    "UNKNOWN": "undelivered",
    "EXPIRED": "expired",
}
_STATE_TLV = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}
_KEY = re.compile(r"(?i)\b(id|sub|dlvr|submit[ _]date|done[ _]date|stat|err|text)\s*:")
_DATE = re.compile(r"^\d{10}(\d{2})?$")
_HEX = re.compile(r"[0-9a-fA-F]+")


class ReceiptInfo(NamedTuple):  # one a receipt read: cheaper to make than a dataclass
    message_id: str
    state: str  # upper case SMPP state name: DELIVRD, UNDELIV, EXPIRED, ...
    error: str = ""
    done_text: str | None = None  # as the receipt gave it (YYMMDDhhmm[ss])

    @property
    def done_at(self) -> datetime | None:
        """Read when asked: a bind reads thousands of receipts a second and stores none of it."""
        return _date(self.done_text)

    @property
    def outcome(self) -> str | None:
        """delivered, undelivered or expired; None for an intermediate state (ENROUTE...)."""
        return FINAL.get(self.state)


def is_receipt(sm: pdu.ShortMessage) -> bool:
    return bool(sm.esm_class & pdu.ESM_RECEIPT_MASK) or pdu.TLV_RECEIPTED_MESSAGE_ID in sm.tlvs


def parse_receipt(sm: pdu.ShortMessage) -> ReceiptInfo | None:
    found = receipt_fields(sm.short_message.decode("latin-1"))
    message_id = found.get("id", "")
    state = found.get("stat", "").upper()
    if pdu.TLV_RECEIPTED_MESSAGE_ID in sm.tlvs:
        message_id = sm.tlvs[pdu.TLV_RECEIPTED_MESSAGE_ID].rstrip(b"\0").decode("latin-1")
    if sm.tlvs.get(pdu.TLV_MESSAGE_STATE):
        state = _STATE_TLV.get(sm.tlvs[pdu.TLV_MESSAGE_STATE][0], state or "UNKNOWN")
    if not message_id or not state:
        return None
    return ReceiptInfo(message_id, state, found.get("err", ""), found.get("done date"))


def receipt_fields(text: str) -> dict[str, str]:
    """id, stat, err and done date as `fields` reads them: the text in the appendix's own
    order and spelling (nearly every receipt) by one pattern, anything else by `fields`."""
    standard = _STANDARD.match(text)
    if standard is None:
        return fields(text)
    return dict(zip(("id", "done date", "stat", "err"), standard.groups(), strict=True))


# The appendix B text, values without spaces or colons (no key can hide in one), the id, state
# and error not empty: here `fields` finds the same first values (tested against it).
_STANDARD = re.compile(
    r"id:([^\s:]+) sub:[^\s:]* dlvr:[^\s:]* submit date:[^\s:]* done date:([^\s:]*)"
    r" stat:([^\s:]+) err:([^\s:]+)(?: |\Z)"
)


def fields(text: str) -> dict[str, str]:
    """Each known key's value: the first word between it and the next key."""
    keys = list(_KEY.finditer(text))
    found: dict[str, str] = {}
    for i, key in enumerate(keys):
        following = keys[i + 1] if i + 1 < len(keys) else None
        value = text[key.end() : following.start() if following else len(text)].strip()
        name = key.group(1).lower().replace("_", " ")
        found.setdefault(name, value.split(" ")[0] if value and name != "text" else value)
    return found


def _date(text: str | None) -> datetime | None:
    if not text or not _DATE.match(text):
        return None
    # By hand, not strptime: a busy day reads hundreds of thousands of these (YYMMDDhhmm[ss]).
    n = [int(text[i : i + 2]) for i in range(0, len(text), 2)]
    try:
        return datetime(2000 + n[0], n[1], n[2], n[3], n[4], n[5] if len(n) == 6 else 0)
    except ValueError:
        return None


def canonical_id(message_id: str) -> str:
    """Hex-looking ids in lower case without leading zeros; any other id exactly as given
    (HTTP providers' ids, like Twilio's SM..., are case-sensitive)."""
    text = message_id.strip()
    if not _HEX.fullmatch(text):
        return text
    return text.lower().lstrip("0") or "0"


def id_candidates(message_id: str) -> set[str]:
    """Canonical spellings the SMSC may have meant: as given, read as decimal and as hex."""
    raw = message_id.strip()
    found = {canonical_id(raw)}
    if raw.isdigit():
        found.add(canonical_id(format(int(raw), "x")))
    if _HEX.fullmatch(raw) and len(raw) <= 32:
        found.add(canonical_id(str(int(raw, 16))))
    return found
