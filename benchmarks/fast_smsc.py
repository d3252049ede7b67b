"""A fast SMPP peer for benchmarks: binds anything, accepts every submit_sm, and sends each
message's delivery receipt (deliver_sm, esm_class 0x04) on the same bind at once.

    python benchmarks/fast_smsc.py --port 2775          # prints "listening on PORT", then serves

`cuikuan smsc` is the simulator the tests drive (fates by number, faults, restarts; smpplib's
codec), and on two shared cores it, not the client, is what limits a benchmark: it takes about
3,000 submits a second. This peer does the least an SMSC must (headers with struct, one write per
read) so that a client's own speed shows. It is not used by the product and not by the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import time

HEADER = struct.Struct(">IIII")
BIND_RESP = {0x00000001: 0x80000001, 0x00000002: 0x80000002, 0x00000009: 0x80000009}
SUBMIT_SM, SUBMIT_SM_RESP = 0x00000004, 0x80000004
DELIVER_SM = 0x00000005
ENQUIRE_LINK, UNBIND = 0x00000015, 0x00000006


def frame(command: int, sequence: int, body: bytes = b"", status: int = 0) -> bytes:
    return HEADER.pack(16 + len(body), command, status, sequence) + body


def read_submit(body: bytes) -> tuple[bytes, bool]:
    """submit_sm's destination_addr, and whether it asks for a receipt (registered_delivery)."""
    at = body.index(b"\0") + 3  # service_type's NUL, source TON and NPI
    at = body.index(b"\0", at) + 3  # source_addr's NUL, destination TON and NPI
    end = body.index(b"\0", at)
    after = body.index(b"\0", end + 4) + 1  # esm_class, protocol_id, priority; the schedule
    after = body.index(b"\0", after) + 1  # the validity period
    return body[at:end], bool(body[after] & 1)


class Peer(asyncio.Protocol):
    # One id counter for every bind, as an SMSC has: message ids are unique per SMSC, not per
    # connection (a client holding several binds would otherwise see the same ids on each).
    ids = 0

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.out_seq = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        out: list[bytes] = []
        at = 0
        stamp = time.strftime("%y%m%d%H%M").encode()
        while len(buffer) - at >= 16:
            length, command, _, sequence = HEADER.unpack_from(buffer, at)
            if len(buffer) - at < length:
                break
            body = buffer[at + 16 : at + length]
            at += length
            if command == SUBMIT_SM:
                Peer.ids += 1
                mid = b"%x" % Peer.ids
                out.append(frame(SUBMIT_SM_RESP, sequence, mid + b"\0"))
                to, wanted = read_submit(body)
                if not wanted:
                    continue
                self.out_seq += 1
                text = (b"id:" + mid + b" sub:001 dlvrd:001 submit date:" + stamp
                        + b" done date:" + stamp + b" stat:DELIVRD err:000 text:")  # fmt: skip
                receipt = (b"\0\x01\x01" + to + b"\0\x00\x00" + b"1069\0"
                           + b"\x04\x00\x00\0\0\x00\x00\x00\x00" + bytes([len(text)]) + text)  # fmt: skip
                out.append(frame(DELIVER_SM, self.out_seq, receipt))
            elif command in BIND_RESP:
                out.append(frame(BIND_RESP[command], sequence, b"fast\0"))
            elif command == ENQUIRE_LINK:
                out.append(frame(ENQUIRE_LINK | 0x80000000, sequence))
            elif command == UNBIND:
                out.append(frame(UNBIND | 0x80000000, sequence))
            # responses (deliver_sm_resp) need nothing
        self.buffer = buffer[at:]
        if out and self.transport is not None:
            self.transport.write(b"".join(out))


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Peer, "127.0.0.1", port)
    print(f"listening on {port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=2775)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
