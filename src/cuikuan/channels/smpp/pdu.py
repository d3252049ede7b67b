"""SMPP 3.4 PDUs: the few a transceiver needs, encoded and decoded with struct.

    frame = encode(SUBMIT_SM, seq, submit_body(sm))
    for pdu in Framer().feed(data): ...

Decoding is tolerant: a missing trailing field or a C-string without its NUL at the end of the
body reads as empty rather than failing, because the SMSCs we meet are not all strict.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import NamedTuple

GENERIC_NACK = 0x80000000
BIND_RECEIVER = 0x00000001
BIND_TRANSMITTER = 0x00000002
BIND_TRANSCEIVER = 0x00000009
BIND_TRANSCEIVER_RESP = 0x80000009
SUBMIT_SM = 0x00000004
SUBMIT_SM_RESP = 0x80000004
DELIVER_SM = 0x00000005
DELIVER_SM_RESP = 0x80000005
UNBIND = 0x00000006
UNBIND_RESP = 0x80000006
ENQUIRE_LINK = 0x00000015
ENQUIRE_LINK_RESP = 0x80000015
DATA_SM = 0x00000103
DATA_SM_RESP = 0x80000103
RESPONSE_BIT = 0x80000000

ESME_ROK = 0x00
ESME_RMSGQFUL = 0x14
ESME_RTHROTTLED = 0x58
ESME_RINVPASWD = 0x0E
ESME_RINVSYSID = 0x0F
ESME_RBINDFAIL = 0x0D
ESME_RINVDSTADR = 0x0B
ESME_RSYSERR = 0x08
ESME_RINVCMDID = 0x03
ESME_RINVBNDSTS = 0x04  # the command is not allowed in this bind (submit on a receiver)
ESME_RX_T_APPNACK = 0x64  # "temporary application error": the SMSC delivers it again later

# Optional parameters (TLVs) we read or write.
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427
TLV_NETWORK_ERROR_CODE = 0x0423
TLV_SAR_MSG_REF_NUM = 0x020C
TLV_SAR_TOTAL_SEGMENTS = 0x020E
TLV_SAR_SEGMENT_SEQNUM = 0x020F
TLV_MESSAGE_PAYLOAD = 0x0424

ESM_UDHI = 0x40
ESM_RECEIPT_MASK = 0x3C  # message type bits: 0x04 SMSC receipt, 0x08/0x10 acks, 0x20 intermediate

HEADER = struct.Struct(">IIII")
MAX_PDU = 64 * 1024  # well above any legitimate PDU; a bigger length means a broken stream


class PduError(Exception):
    pass


class Pdu(NamedTuple):  # two a message at full speed: a named tuple costs least to make
    command_id: int
    status: int
    sequence: int
    body: bytes = b""

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & RESPONSE_BIT)


@dataclass
class ShortMessage:
    """The body of submit_sm and deliver_sm (the same layout in SMPP 3.4)."""

    source_addr: str = ""
    destination_addr: str = ""
    short_message: bytes = b""
    esm_class: int = 0
    data_coding: int = 0
    registered_delivery: int = 0
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    dest_addr_ton: int = 1
    dest_addr_npi: int = 1
    service_type: str = ""
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    tlvs: dict[int, bytes] = field(default_factory=dict)


def encode(command_id: int, sequence: int, body: bytes = b"", status: int = 0) -> bytes:
    return HEADER.pack(16 + len(body), command_id, status, sequence) + body


def cstr(text: str) -> bytes:
    return text.encode("ascii", "replace") + b"\0"


def bind_body(
    system_id: str,
    password: str,
    system_type: str = "",
    ton: int = 0,
    npi: int = 0,
    address_range: str = "",
) -> bytes:
    return (
        cstr(system_id)
        + cstr(password)
        + cstr(system_type)
        + bytes((0x34, ton, npi))
        + cstr(address_range)
    )


def sm_body(sm: ShortMessage) -> bytes:
    if len(sm.short_message) > 254:
        raise PduError("short_message longer than 254 octets: split it or use message_payload")
    head = (
        cstr(sm.service_type)
        + bytes((sm.source_addr_ton, sm.source_addr_npi))
        + cstr(sm.source_addr)
        + bytes((sm.dest_addr_ton, sm.dest_addr_npi))
        + cstr(sm.destination_addr)
        + bytes((sm.esm_class, sm.protocol_id, sm.priority_flag))
        + cstr(sm.schedule_delivery_time)
        + cstr(sm.validity_period)
        + bytes((sm.registered_delivery, 0, sm.data_coding, 0, len(sm.short_message)))
        + sm.short_message
    )
    return head + b"".join(
        struct.pack(">HH", tag, len(value)) + value for tag, value in sm.tlvs.items()
    )


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def cstr(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            end = len(self.data)
        text = self.data[self.pos : end].decode("latin-1")
        self.pos = min(end + 1, len(self.data))
        return text

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def octets(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def tlvs(self) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        while self.pos + 4 <= len(self.data):
            tag, length = struct.unpack_from(">HH", self.data, self.pos)
            self.pos += 4
            found[tag] = self.octets(length)
        return found


def _addressed(r: _Reader) -> ShortMessage:
    """The service type and the two addresses that open deliver_sm, submit_sm and data_sm."""
    sm = ShortMessage(service_type=r.cstr())
    sm.source_addr_ton, sm.source_addr_npi = r.byte(), r.byte()
    sm.source_addr = r.cstr()
    sm.dest_addr_ton, sm.dest_addr_npi = r.byte(), r.byte()
    sm.destination_addr = r.cstr()
    return sm


def decode_sm(body: bytes) -> ShortMessage:
    r = _Reader(body)
    sm = _addressed(r)
    sm.esm_class, sm.protocol_id, sm.priority_flag = r.byte(), r.byte(), r.byte()
    sm.schedule_delivery_time, sm.validity_period = r.cstr(), r.cstr()
    sm.registered_delivery = r.byte()
    r.byte()  # replace_if_present_flag
    sm.data_coding = r.byte()
    r.byte()  # sm_default_msg_id
    sm.short_message = r.octets(r.byte())
    sm.tlvs = r.tlvs()
    if not sm.short_message and TLV_MESSAGE_PAYLOAD in sm.tlvs:
        sm.short_message = sm.tlvs[TLV_MESSAGE_PAYLOAD]
    return sm


def decode_data_sm(body: bytes) -> ShortMessage:
    """data_sm, which some SMSCs use for receipts and replies: the same addresses, no
    short_message (the text is the message_payload TLV)."""
    r = _Reader(body)
    sm = _addressed(r)
    sm.esm_class, sm.registered_delivery, sm.data_coding = r.byte(), r.byte(), r.byte()
    sm.tlvs = r.tlvs()
    sm.short_message = sm.tlvs.get(TLV_MESSAGE_PAYLOAD, b"")
    return sm


def decode_cstr(body: bytes) -> str:
    """The message_id of submit_sm_resp, or the system_id of bind_resp."""
    return _Reader(body).cstr() if body else ""


class Framer:
    """Cuts a byte stream into PDUs; keeps a partial PDU until the rest arrives."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Pdu]:
        self._buffer += data
        pdus = []
        buf = self._buffer
        start = 0
        while len(buf) - start >= 16:
            length, command_id, status, sequence = HEADER.unpack_from(buf, start)
            if length < 16 or length > MAX_PDU:
                raise PduError(f"impossible command_length {length}")
            if len(buf) - start < length:
                break
            pdus.append(Pdu(command_id, status, sequence, bytes(buf[start + 16 : start + length])))
            start += length
        if start:
            del buf[:start]
        return pdus
