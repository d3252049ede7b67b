"""Text to SMPP short messages and back: data_coding, concatenation by UDH, reassembly.

    done, waiting = assemble(pieces, now, wait)      # replies joined from their parts

    parts = encode_parts("您的账单...", reference=17)   # [(esm_class, data_coding, octets), ...]
    text = decode(data_coding, octets)

The parts are the ones `domain.sms.split` counts, so what the plan measured (segments, billing
units) is exactly what goes out. GSM-7 travels unpacked, one septet per octet (data_coding 0,
the SMSC packs it); anything else is UCS-2 (data_coding 8, UTF-16BE, so a character outside the
BMP is a surrogate pair that `split` never cuts). A long message carries a concatenation UDH,
8-bit (IEI 0x00) or 16-bit (IEI 0x08) reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cuikuan.channels.smpp import pdu
from cuikuan.domain.sms import GSM7_BASIC, GSM7_EXTENSION, split

DC_DEFAULT, DC_LATIN1, DC_UCS2, DC_GBK = 0x00, 0x03, 0x08, 0x0F
_EXT_CODES = dict(
    zip(GSM7_EXTENSION, (0x0A, 0x14, 0x28, 0x29, 0x2F, 0x3C, 0x3D, 0x3E, 0x40, 0x65), strict=True)
)
_GSM_ENCODE = {c: bytes((i,)) for i, c in enumerate(GSM7_BASIC) if c != "\x1b"} | {
    c: bytes((0x1B, code)) for c, code in _EXT_CODES.items()
}
_GSM_DECODE_EXT = {code: c for c, code in _EXT_CODES.items()}


@dataclass(frozen=True)
class Part:
    esm_class: int
    data_coding: int
    octets: bytes


def gsm7_encode(text: str) -> bytes:
    return b"".join(_GSM_ENCODE[c] for c in text)


def gsm7_decode(octets: bytes) -> str:
    out, escape = [], False
    for b in octets:
        if escape:
            out.append(_GSM_DECODE_EXT.get(b, GSM7_BASIC[b & 0x7F]))
            escape = False
        elif b == 0x1B:
            escape = True
        else:
            out.append(GSM7_BASIC[b & 0x7F])
    return "".join(out)


def encode_parts(text: str, reference: int, reference_bits: int = 8) -> list[Part]:
    encoding, texts, _units = split(text)
    gsm = encoding == "GSM-7"
    coding = DC_DEFAULT if gsm else DC_UCS2
    bodies = [gsm7_encode(t) if gsm else t.encode("utf-16-be") for t in texts] or [b""]
    if len(bodies) == 1:
        return [Part(0, coding, bodies[0])]
    total = len(bodies)
    if total > 255:
        raise ValueError("a message of more than 255 parts cannot be concatenated")
    parts = []
    for seq, body in enumerate(bodies, start=1):
        if reference_bits == 16:
            udh = bytes((6, 0x08, 4, (reference >> 8) & 0xFF, reference & 0xFF, total, seq))
        else:
            udh = bytes((5, 0x00, 3, reference & 0xFF, total, seq))
        parts.append(Part(pdu.ESM_UDHI, coding, udh + body))
    return parts


def decode(data_coding: int, octets: bytes) -> str:
    """Text of a short message; unknown codings read as Latin-1 rather than failing a reply."""
    coding = data_coding & 0x0F if data_coding & 0xF0 == 0xF0 else data_coding
    if coding == DC_UCS2:
        return octets.decode("utf-16-be", "replace")
    if coding == DC_GBK:
        return octets.decode("gb18030", "replace")
    if coding in (DC_DEFAULT, 0x01):
        return gsm7_decode(octets)
    return octets.decode("latin-1")


@dataclass(frozen=True)
class Concat:
    reference: int
    total: int
    seq: int


def strip_udh(sm: pdu.ShortMessage) -> tuple[Concat | None, bytes]:
    """The concatenation header (UDH or SAR TLVs), if any, and the payload without the UDH."""
    octets = sm.short_message
    concat = None
    if sm.esm_class & pdu.ESM_UDHI and octets:
        udh_len = octets[0]
        udh, octets = octets[1 : 1 + udh_len], octets[1 + udh_len :]
        i = 0
        while i + 2 <= len(udh):
            iei, length = udh[i], udh[i + 1]
            value = udh[i + 2 : i + 2 + length]
            if iei == 0x00 and length == 3:
                concat = Concat(value[0], value[1], value[2])
            elif iei == 0x08 and length == 4:
                concat = Concat((value[0] << 8) | value[1], value[2], value[3])
            i += 2 + length
    sar = sm.tlvs
    if concat is None and pdu.TLV_SAR_MSG_REF_NUM in sar and pdu.TLV_SAR_TOTAL_SEGMENTS in sar:
        concat = Concat(
            int.from_bytes(sar[pdu.TLV_SAR_MSG_REF_NUM], "big"),
            int.from_bytes(sar[pdu.TLV_SAR_TOTAL_SEGMENTS], "big"),
            int.from_bytes(sar.get(pdu.TLV_SAR_SEGMENT_SEQNUM, b"\x01"), "big"),
        )
    return concat, octets


@dataclass(frozen=True)
class Piece:
    """One inbound short message and where it is kept (`key`: its stored row)."""

    key: int
    sm: pdu.ShortMessage
    at: datetime


@dataclass(frozen=True)
class Assembled:
    keys: tuple[int, ...]  # every piece it was made of, duplicates included
    sm: pdu.ShortMessage  # the first piece: sender, its TON and NPI, our number
    text: str
    at: datetime  # when its last piece came
    complete: bool


def assemble(
    pieces: Sequence[Piece], now: datetime, wait: timedelta
) -> tuple[list[Assembled], list[int]]:
    """Join concatenated messages (any order, duplicates ignored) by sender, reference and
    total. Returns the messages that are whole, and those whose parts stopped arriving `wait`
    before `now`, released as they are and marked incomplete rather than lost; and the keys of
    the pieces still waiting for the rest. Stateless, so the pieces can come from storage."""
    done: list[Assembled] = []
    groups: dict[tuple[str, int, int, int], list[tuple[int, Piece, bytes]]] = {}
    for piece in pieces:
        concat, octets = strip_udh(piece.sm)
        if concat is None or concat.total <= 1:
            text = decode(piece.sm.data_coding, octets)
            done.append(Assembled((piece.key,), piece.sm, text, piece.at, True))
            continue
        key = (piece.sm.source_addr, piece.sm.source_addr_ton, concat.reference, concat.total)
        groups.setdefault(key, []).append((concat.seq, piece, octets))
    waiting: list[int] = []
    for (_, _, _, total), group in groups.items():
        parts: dict[int, bytes] = {}
        for seq, _, octets in sorted(group, key=lambda g: g[1].key):
            parts.setdefault(seq, octets)  # the first copy of a part counts
        first = min(group, key=lambda g: g[1].key)[1]
        whole = len(parts) >= total
        if not whole and now - first.at < wait:
            waiting += [p.key for _, p, _ in group]
            continue
        # Join the octets before decoding: a sender may cut a surrogate pair or an escape.
        text = decode(first.sm.data_coding, b"".join(parts[i] for i in sorted(parts)))
        keys = tuple(sorted(p.key for _, p, _ in group))
        last = max(p.at for _, p, _ in group)
        done.append(
            Assembled(keys, first.sm, text if whole else text + " […incomplete]", last, whole)
        )
    return done, waiting
