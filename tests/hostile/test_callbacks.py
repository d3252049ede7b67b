"""What strangers may send the callback endpoints: huge, lying, endless or idle requests. Each
is refused at once with its status, and the server keeps answering."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from cuikuan.web import callbacks
from tests.integration.conftest import build_book


@pytest.fixture
def server(
    tmp_path: object, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, int]]:
    settings, engine = build_book(tmp_path, db_url, 50, 3)  # type: ignore[arg-type]
    monkeypatch.setenv(settings.twilio.auth_token_env, "token")
    monkeypatch.setenv(settings.channels.callback_token_env, "push-token")
    monkeypatch.setattr(callbacks, "IDLE_SECONDS", 2.0)
    srv = callbacks.callback_server(engine, settings, ("127.0.0.1", 0), "https://x", lambda: None)  # type: ignore[arg-type,return-value]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


def raw(address: tuple[str, int], head: bytes, body: bytes = b"", wait: float = 5.0) -> bytes:
    with socket.create_connection(address, timeout=wait) as sock:
        sock.sendall(head + body)
        return sock.recv(4096)


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize(
    ("length", "code"), [("67108864", 413), ("1000000000", 413), ("-1", 400), ("abc", 400)]
)
def test_a_body_too_large_or_a_length_that_lies_is_refused_before_reading(
    server: tuple[str, int], length: str, code: int
) -> None:
    began = time.monotonic()
    head = (f"POST /twilio/inbound HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n\r\n").encode()  # fmt: skip
    assert status(raw(server, head)) == code
    assert time.monotonic() - began < 3


def test_no_length_many_fields_and_bad_bytes_are_400s(server: tuple[str, int]) -> None:
    base = f"http://{server[0]}:{server[1]}"
    head = b"POST /twilio/inbound HTTP/1.1\r\nHost: x\r\n\r\n"
    assert status(raw(server, head)) == 411
    fields = "&".join(f"f{i}=1" for i in range(20_000))
    began = time.monotonic()
    assert httpx.post(base + "/twilio/inbound", content=fields, timeout=10).status_code == 400
    assert time.monotonic() - began < 3
    assert (
        httpx.post(base + "/twilio/inbound", content=b"From=\xff\xfe", timeout=10).status_code
        == 400
    )
    pushed = httpx.post(base + "/aliyun/report?token=push-token", content=b"\xff{[", timeout=10)
    assert pushed.status_code == 400
    assert (
        httpx.post(base + "/aliyun/report?token=wrong", content=b"[]", timeout=10).status_code
        == 403
    )


def test_idle_connections_do_not_hold_the_server(server: tuple[str, int]) -> None:
    base = f"http://{server[0]}:{server[1]}"
    idle = [socket.create_connection(server, timeout=5) for _ in range(300)]
    try:
        answered = None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                got = httpx.post(
                    base + "/twilio/inbound", data={"From": "1"}, timeout=5
                ).status_code
            except httpx.TransportError:
                got = None
            if got == 403:  # served: the forged signature refused
                answered = got
                break
            time.sleep(0.3)
        assert answered == 403
        assert threading.active_count() < 80
    finally:
        for sock in idle:
            sock.close()
