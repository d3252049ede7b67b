"""Provider callbacks over HTTP: Twilio status callbacks (receipts) and inbound messages
(replies); Alibaba Cloud and Tencent Cloud delivery-report pushes (receipts).

    server = callback_server(engine, settings, ("127.0.0.1", 8080), "https://lender.example", clock)
    server.serve_forever()

Every Twilio request must carry a valid X-Twilio-Signature for the public URL it was sent to;
the Aliyun and Tencent pushes, which are not signed, must carry ?token=<the value of the variable
named by [channels] callback_token_env> in the URL configured at the provider. Others get 403
and change nothing. The standard library's threading HTTP server is enough for a handful of
callback routes; an operator web app would bring a framework.

Strangers may send anything, so nothing is read without a bound: a body must declare its length
(411 without, 400 when it is not a number), at most MAX_BODY bytes (413, said before a byte of it
is read); a push's token is checked before its body is read; a form holds at most MAX_FIELDS
fields and must be UTF-8 (400); a connection idle for IDLE_SECONDS is closed; at most
MAX_HANDLERS requests are served at once, more are answered 503 at once rather than each holding
a thread. A Twilio status callback is recorded under the provider whose message it is (Twilio's
ids are unique across accounts): a provider declared as [providers.NAME] gets its receipts too.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import threading
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from sqlalchemy import Engine, select

from cuikuan.channels import aliyun, tencent
from cuikuan.channels.smpp.receipts import canonical_id
from cuikuan.channels.twilio import receipt_from_callback, valid_signature
from cuikuan.dispatch.receipts import record_receipts
from cuikuan.errors import CuikuanError
from cuikuan.services.replies import receive_reply
from cuikuan.settings import Settings
from cuikuan.store.schema import message_parts

ROUTES = ("/twilio/status", "/twilio/inbound", "/aliyun/report", "/tencent/report")
MAX_BODY = 256 * 1024  # a Twilio form is a few KB; a provider's batch of reports well under this
MAX_FIELDS = 200
IDLE_SECONDS = 10.0
MAX_HANDLERS = 32
PUSHES = {"/aliyun/report": ("aliyun", aliyun.receipts_from_push),
          "/tencent/report": ("tencent", tencent.receipts_from_push)}  # fmt: skip


class CallbackRoutes:
    """What each callback route does with a request whose body was read within the limits:
    (status, text) to answer. Both servers use it: `listen`'s own and `cuikuan serve`."""

    def __init__(self, engine: Engine, settings: Settings, public_url: str) -> None:
        self.engine, self.settings, self.public_url = engine, settings, public_url.rstrip("/")
        self.token = os.environ.get(settings.twilio.auth_token_env, "")
        self.push_token = os.environ.get(settings.channels.callback_token_env, "")
        self.twilio_names = [
            "twilio",
            *(n for n, p in settings.providers.items() if p.kind == "twilio"),
        ]

    def push_allowed(self, query: str) -> bool:
        """A push's token, checked before its body is read."""
        given = parse_qs(query).get("token", [""])[0]
        return bool(self.push_token) and hmac.compare_digest(given, self.push_token)

    def answer(
        self, path: str, query: str, signature: str, body: bytes, now: datetime
    ) -> tuple[int, str]:
        if path in PUSHES:
            if not self.push_allowed(query):
                return 403, "bad token"
            return self._push(path, body, now)
        if path not in ROUTES or query:
            return 404, "no such endpoint"
        try:
            params = dict(
                parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
            )
        except (UnicodeDecodeError, ValueError):
            return 400, f"expected a UTF-8 form of at most {MAX_FIELDS} fields"
        if not self.token or not valid_signature(
            self.token, self.public_url + path, params, signature
        ):
            return 403, "bad signature"
        if path == "/twilio/status":
            receipt = receipt_from_callback(params, now)
            if receipt is not None:
                provider = provider_of(self.engine, receipt.provider_id, self.twilio_names)
                record_receipts(self.engine, provider, [receipt], now)
            return 204, ""
        try:
            receive_reply(
                self.engine,
                self.settings,
                params.get("From", ""),
                params.get("Body", ""),
                now,
                source="twilio",
                # Twilio retries a callback it thinks failed: the same message, once.
                message_id=params.get("MessageSid") or None,
            )
        except CuikuanError as exc:
            return 422, exc.message
        return 204, ""

    def _push(self, path: str, body: bytes, now: datetime) -> tuple[int, str]:
        provider, parse = PUSHES[path]
        try:
            found = parse(body.decode("utf-8"), now)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return 400, f"unreadable report: {type(exc).__name__}"
        record_receipts(self.engine, provider, found, now)
        # Both providers want this exact answer, or they push the same report again.
        return 200, '{"result":0,"errmsg":"OK","code":0,"msg":"成功"}'


def callback_server(
    engine: Engine,
    settings: Settings,
    address: tuple[str, int],
    public_url: str,
    clock: Callable[[], datetime],
) -> ThreadingHTTPServer:
    """`clock`: when a request arrives (the server is an edge, like the command line: the one
    place below which nothing reads the wall clock; tests pass their own)."""
    routes = CallbackRoutes(engine, settings, public_url)

    class Handler(BaseHTTPRequestHandler):
        timeout = IDLE_SECONDS  # an idle or slow connection is closed, its thread freed

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            if parts.path not in PUSHES and parts.path not in ROUTES:
                self._reply(404, "no such endpoint")
                return
            if parts.path in PUSHES and not routes.push_allowed(parts.query):
                self._reply(403, "bad token")
                return
            body = self._body()
            if body is None:
                return
            signature = self.headers.get("X-Twilio-Signature", "")
            self._reply(*routes.answer(parts.path, parts.query, signature, body, clock()))

        def _body(self) -> bytes | None:
            """The request's body, at most MAX_BODY bytes, or None once refused."""
            declared = self.headers.get("Content-Length")
            if declared is None:
                self._reply(411, "Content-Length required")
                return None
            if not declared.strip().isdigit():
                self._reply(400, "Content-Length must be a number of bytes")
                return None
            length = int(declared)
            if length > MAX_BODY:
                self._reply(413, f"at most {MAX_BODY:,} bytes")
                return None
            body = self.rfile.read(length)
            if len(body) != length:
                self._reply(400, "the body ended early")
                return None
            return body

        def _reply(self, code: int, text: str) -> None:
            body = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # callbacks carry phone numbers: keep them out of stderr

    return _BoundedServer(address, Handler)


class _BoundedServer(ThreadingHTTPServer):
    """At most MAX_HANDLERS requests served at once; the rest answered 503 straight away."""

    daemon_threads = True
    request_queue_size = 128  # connections waiting to be accepted (a burst of callbacks)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.slots = threading.BoundedSemaphore(MAX_HANDLERS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                b"Connection: close\r\n\r\n")  # fmt: skip
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def provider_of(engine: Engine, provider_id: str, names: list[str]) -> str:
    """Which of `names` sent the message part with this id (the first name when none did)."""
    with engine.connect() as conn:
        found = conn.execute(
            select(message_parts.c.provider).where(
                message_parts.c.provider.in_(names),
                message_parts.c.provider_id == canonical_id(provider_id),
            )
        ).first()
    return str(found[0]) if found else names[0]
