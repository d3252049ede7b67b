"""SMPP PDUs, text coding, concatenation and receipts, checked against smpplib where it can be."""

from __future__ import annotations

import random
import struct
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from smpplib import smpp as ssmpp

from cuikuan.channels.smpp import coding, pdu
from cuikuan.channels.smpp.receipts import _date, canonical_id, id_candidates, parse_receipt
from cuikuan.dispatch.receipts import message_status
from cuikuan.domain.sms import GSM7_BASIC, GSM7_EXTENSION, measure

T0 = datetime(2026, 11, 30, 3, tzinfo=UTC)


class _Seq:
    sequence = 0

    def next_sequence(self) -> int:
        return 0


def test_our_submit_sm_reads_the_same_in_smpplib() -> None:
    sm = pdu.ShortMessage(
        source_addr="1069",
        source_addr_ton=5,
        destination_addr="8613800138000",
        short_message="您好".encode("utf-16-be"),
        data_coding=8,
        esm_class=0,
        registered_delivery=1,
    )
    frame = pdu.encode(pdu.SUBMIT_SM, 42, pdu.sm_body(sm))
    theirs = ssmpp.parse_pdu(frame, client=_Seq(), allow_unknown_opt_params=True)
    assert theirs.command == "submit_sm" and theirs.sequence == 42
    assert theirs.destination_addr == b"8613800138000" and theirs.source_addr == b"1069"
    assert theirs.short_message.decode("utf-16-be") == "您好"
    assert (theirs.data_coding, theirs.registered_delivery, theirs.source_addr_ton) == (8, 1, 5)


def test_smpplib_deliver_sm_with_tlvs_reads_the_same_here() -> None:
    theirs = ssmpp.make_pdu(
        "deliver_sm",
        client=_Seq(),
        source_addr="8613800138000",
        destination_addr="1069",
        esm_class=4,
        short_message=b"id:1a2b sub:001 dlvr:001 submit date:2611291200 done date:2611291201 "
        b"stat:DELIVRD err:000 text:",
        receipted_message_id="1a2b",
        message_state=2,
    )
    theirs.sequence = 7
    frames = pdu.Framer().feed(theirs.generate())
    assert len(frames) == 1 and frames[0].command_id == pdu.DELIVER_SM
    sm = pdu.decode_sm(frames[0].body)
    assert sm.source_addr == "8613800138000" and sm.esm_class == 4
    assert sm.tlvs[pdu.TLV_RECEIPTED_MESSAGE_ID].rstrip(b"\0") == b"1a2b"
    info = parse_receipt(sm)
    assert info is not None and (info.message_id, info.outcome) == ("1a2b", "delivered")


@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=20), st.randoms())
def test_the_framer_cuts_any_chunking_of_a_stream_into_the_same_pdus(
    seqs: list[int], rnd: random.Random
) -> None:
    frames = [pdu.encode(pdu.SUBMIT_SM_RESP, s, f"{s:x}".encode() + b"\0") for s in seqs]
    stream = b"".join(frames)
    cuts = sorted(rnd.sample(range(1, len(stream)), min(len(stream) - 1, rnd.randint(0, 30))))
    framer = pdu.Framer()
    got = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        got += framer.feed(stream[a:b])
    assert [p.sequence for p in got] == seqs
    assert [pdu.decode_cstr(p.body) for p in got] == [f"{s:x}" for s in seqs]


def test_an_impossible_length_is_a_broken_stream() -> None:
    with pytest.raises(pdu.PduError):
        pdu.Framer().feed(struct.pack(">IIII", 8, 4, 0, 1))


def test_a_short_body_decodes_without_failing() -> None:
    sm = pdu.decode_sm(b"\x00\x01\x01123\x00")
    assert sm.source_addr == "123" and sm.destination_addr == "" and sm.short_message == b""


TEXT = st.text(
    alphabet=st.sampled_from(
        list(GSM7_BASIC.replace("\x1b", "")) + list(GSM7_EXTENSION) + list("您好还款账单😀€")
    ),
    max_size=700,
)


@given(TEXT, st.integers(0, 65535), st.sampled_from([8, 16]), st.randoms())
def test_parts_reassemble_exactly_in_any_order_and_match_the_measured_segments(
    text: str, ref: int, bits: int, rnd: random.Random
) -> None:
    parts = coding.encode_parts(text, ref, bits)
    assert len(parts) == max(1, measure(text).segments)
    for p in parts:
        limit = 140 if p.data_coding == coding.DC_UCS2 else 160
        udh = p.octets[0] + 1 if p.esm_class & pdu.ESM_UDHI else 0
        assert len(p.octets) - udh <= limit
    shuffled = parts[:]
    rnd.shuffle(shuffled)
    if len(parts) > 1:  # a duplicate part changes nothing (a whole message twice is two)
        shuffled.append(shuffled[0])
    pieces = [
        coding.Piece(
            key,
            pdu.ShortMessage(
                source_addr="8613800138000",
                short_message=p.octets,
                esm_class=p.esm_class,
                data_coding=p.data_coding,
            ),
            T0,
        )
        for key, p in enumerate(shuffled)
    ]
    done, waiting = coding.assemble(pieces, T0, timedelta(minutes=5))
    assert [d.text for d in done] == [text] and done[0].complete and not waiting
    assert sorted(done[0].keys) == list(range(len(shuffled)))  # the duplicate is read too
    # Any part missing: nothing is read until the wait is over, then it is, marked incomplete.
    if len(pieces) > 2:
        early, held = coding.assemble(pieces[1:-1], T0, timedelta(minutes=5))
        assert not early and len(held) == len(pieces) - 2
        late, _ = coding.assemble(pieces[1:-1], T0 + timedelta(minutes=5), timedelta(minutes=5))
        assert len(late) == 1 and not late[0].complete and late[0].text.endswith("[…incomplete]")


def test_sar_tlvs_and_a_lost_part_released_as_incomplete() -> None:
    wait = timedelta(seconds=60)

    def part(seq: int, text: str, total: int = 2) -> pdu.ShortMessage:
        return pdu.ShortMessage(
            source_addr="86138",
            short_message=text.encode("utf-16-be"),
            data_coding=8,
            tlvs={
                pdu.TLV_SAR_MSG_REF_NUM: b"\x01\x02",
                pdu.TLV_SAR_TOTAL_SEGMENTS: bytes((total,)),
                pdu.TLV_SAR_SEGMENT_SEQNUM: bytes((seq,)),
            },
        )

    pieces = [coding.Piece(1, part(2, "十五号还"), T0), coding.Piece(2, part(1, "我"), T0),
              coding.Piece(3, part(1, "分期", total=3), T0)]  # fmt: skip
    done, waiting = coding.assemble(pieces, T0 + timedelta(seconds=30), wait)
    assert [(d.text, d.keys) for d in done] == [("我十五号还", (1, 2))] and waiting == [3]
    done, waiting = coding.assemble(pieces[2:], T0 + timedelta(seconds=61), wait)
    assert [(d.sm.source_addr, d.text) for d in done] == [("86138", "分期 […incomplete]")]


def test_gsm7_round_trip_keeps_extension_characters() -> None:
    text = "Pay {now} [€5] ~ ^ | \\"
    assert coding.gsm7_decode(coding.gsm7_encode(text)) == text
    assert coding.decode(0x0F, "你好".encode("gb18030")) == "你好"


def sm_text(text: bytes, **tlvs: bytes) -> pdu.ShortMessage:
    return pdu.ShortMessage(
        short_message=text, esm_class=4, tlvs={int(k[1:], 16): v for k, v in tlvs.items()}
    )


@pytest.mark.parametrize(
    ("text", "tlvs", "expected"),
    [
        (
            b"id:1A2B sub:001 dlvr:001 submit date:2611291200 done date:2611291201 stat:DELIVRD err:000 text:x",
            {},
            ("1A2B", "DELIVRD", "delivered"),
        ),
        (
            b"id:6699 sub:001 dlvr:000 submit date:261129120001 done date:261129120105 stat:undeliv err:034",
            {},
            ("6699", "UNDELIV", "undelivered"),
        ),
        (b"ID:77 STAT:expired ERR:0", {}, ("77", "EXPIRED", "expired")),
        (b"stat:ENROUTE id:5", {}, ("5", "ENROUTE", None)),
        (b"", {"x001E": b"abc\0", "x0427": b"\x05"}, ("abc", "UNDELIV", "undelivered")),
        (
            b"id:1 stat:DELIVRD",
            {"x001E": b"ff01\0", "x0427": b"\x02"},
            ("ff01", "DELIVRD", "delivered"),
        ),
    ],
)
def test_receipts_are_read_tolerantly(
    text: bytes, tlvs: dict[str, bytes], expected: tuple[str, str, str | None]
) -> None:
    info = parse_receipt(sm_text(text, **tlvs))
    assert info is not None
    assert (info.message_id, info.state, info.outcome) == expected


def test_receipt_dates_with_and_without_seconds() -> None:
    a = parse_receipt(sm_text(b"id:1 done date:2611291201 stat:DELIVRD"))
    b = parse_receipt(sm_text(b"id:1 done date:261129120159 stat:DELIVRD"))
    assert a is not None and b is not None and a.done_at is not None and b.done_at is not None
    assert (a.done_at.minute, b.done_at.second) == (1, 59)


def test_ids_in_hex_or_decimal() -> None:
    assert canonical_id("000ABC") == "abc" and canonical_id("SMabc") == "SMabc"
    assert "abc" in id_candidates("2748") and "2748" in id_candidates("ABC")


def test_a_message_is_delivered_only_when_every_part_is() -> None:
    assert message_status(["delivered", None]) is None
    assert message_status(["delivered", "delivered"]) == "delivered"
    assert message_status([None, "undelivered"]) == "undelivered"
    assert message_status(["delivered", "expired"]) == "expired"


def test_receipts_and_replies_in_data_sm_read_like_deliver_sm() -> None:
    theirs = ssmpp.make_pdu(
        "data_sm",
        client=_Seq(),
        source_addr="8613800138000",
        destination_addr="1069",
        esm_class=4,
        receipted_message_id="abc",
        message_state=5,
        message_payload=b"id:abc stat:UNDELIV",
    )
    theirs.sequence = 9
    frame = pdu.Framer().feed(theirs.generate())[0]
    assert frame.command_id == pdu.DATA_SM
    sm = pdu.decode_data_sm(frame.body)
    info = parse_receipt(sm)
    assert info is not None and (info.message_id, info.outcome) == ("abc", "undelivered")
    reply = ssmpp.make_pdu(
        "data_sm",
        client=_Seq(),
        source_addr="8613800138000",
        destination_addr="1069",
        data_coding=8,
        message_payload="退订".encode("utf-16-be"),
    )
    reply.sequence = 10
    mo = pdu.decode_data_sm(pdu.Framer().feed(reply.generate())[0].body)
    done, _ = coding.assemble([coding.Piece(1, mo, T0)], T0, timedelta(minutes=5))
    assert [d.text for d in done] == ["退订"]


@given(st.datetimes(datetime(2000, 1, 1), datetime(2068, 12, 31)), st.booleans(), st.booleans())
def test_receipt_dates_read_as_strptime_reads_them(
    moment: datetime, seconds: bool, bad: bool
) -> None:
    fmt = "%y%m%d%H%M%S" if seconds else "%y%m%d%H%M"
    text = moment.strftime(fmt)
    if bad:
        text = text[:2] + "13" + text[4:]  # month 13
    try:
        expected: datetime | None = datetime.strptime(text, fmt)
    except ValueError:
        expected = None
    assert _date(text) == expected


_RECEIPT_KEYS = ("id", "done date", "stat", "err")
# Values that may fool a reader: keys, colons, spaces, case, empty.
_VALUE = st.one_of(
    st.text(alphabet="0123456789abcdefABCDEF", max_size=12),
    st.sampled_from(["", "stat", "text", "id", "err:1", "a b", "Stat:", "DELIVRD", "x:y", " "]),
    st.text(alphabet=" :abcdeistxrDLVRT0-_\t", max_size=10),
)


@given(
    st.lists(_VALUE, min_size=7, max_size=7),
    st.sampled_from(
        ["", " text:hello", " Text:stat:UNDELIV id:9", " garbage", "  text:x", "\ttext:"]
    ),
    st.booleans(),
)
def test_a_standard_receipt_reads_the_same_by_its_pattern_as_field_by_field(
    values: list[str], tail: str, upper_key: bool
) -> None:
    """The one-pattern reading of the appendix B text (what nearly every SMSC sends) finds
    exactly what the tolerant field-by-field reading finds, whatever the values hold; texts the
    pattern does not take are read field by field (replacing the pattern with a looser one, or
    dropping its no-colon rule, fails here)."""
    from cuikuan.channels.smpp.receipts import fields, receipt_fields

    names = ["id", "sub", "dlvr", "submit date", "done date", "stat", "err"]
    if upper_key:
        names[5] = "STAT"
    text = " ".join(f"{n}:{v}" for n, v in zip(names, values, strict=True)) + tail
    tolerant, fast = fields(text), receipt_fields(text)
    assert {k: fast.get(k) for k in _RECEIPT_KEYS} == {k: tolerant.get(k) for k in _RECEIPT_KEYS}


def test_a_standard_receipt_is_read_by_its_pattern() -> None:
    from cuikuan.channels.smpp.receipts import _STANDARD

    text = "id:1a2b sub:001 dlvr:001 submit date:2612011200 done date:2612011201 stat:DELIVRD err:000 text:hi"
    assert _STANDARD.match(text) is not None
