"""Provider callbacks over HTTP: Twilio status callbacks (receipts) and inbound messages
(replies); Alibaba Cloud and Tencent Cloud delivery-report pushes (receipts).

    server = callback_server(engine, settings, ("127.0.0.1", 8080), "https://lender.example", clock)
    server.serve_forever()

Every Twilio request must carry a valid X-Twilio-Signature for the public URL it was sent to;
the Aliyun and Tencent pushes, which are not signed, must carry ?token=<the value of the variable
named by [channels] callback_token_env> in the URL configured at the provider. Others get 403
and change nothing. The standard library's threading HTTP server is enough for a handful of
callback routes; an operator web app would bring a framework.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, parse_qsl, urlsplit

from sqlalchemy import Engine

from cuikuan.channels import aliyun, tencent
from cuikuan.channels.twilio import receipt_from_callback, valid_signature
from cuikuan.dispatch.receipts import record_receipts
from cuikuan.errors import CuikuanError
from cuikuan.services.replies import receive_reply
from cuikuan.settings import Settings

ROUTES = ("/twilio/status", "/twilio/inbound", "/aliyun/report", "/tencent/report")
PUSHES = {"/aliyun/report": ("aliyun", aliyun.receipts_from_push),
          "/tencent/report": ("tencent", tencent.receipts_from_push)}  # fmt: skip


def callback_server(
    engine: Engine,
    settings: Settings,
    address: tuple[str, int],
    public_url: str,
    clock: Callable[[], datetime],
) -> ThreadingHTTPServer:
    """`clock`: when a request arrives (the server is an edge, like the command line: the one
    place below which nothing reads the wall clock; tests pass their own)."""
    token = os.environ.get(settings.twilio.auth_token_env, "")
    push_token = os.environ.get(settings.channels.callback_token_env, "")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            if path in PUSHES:
                self._push(path)
                return
            if self.path not in ROUTES:
                self._reply(404, "no such endpoint")
                return
            length = int(self.headers.get("Content-Length") or 0)
            params = dict(
                parse_qsl(self.rfile.read(length).decode("utf-8"), keep_blank_values=True)
            )
            url = public_url.rstrip("/") + self.path
            if not token or not valid_signature(
                token, url, params, self.headers.get("X-Twilio-Signature", "")
            ):
                self._reply(403, "bad signature")
                return
            now = clock()
            if self.path == "/twilio/status":
                receipt = receipt_from_callback(params, now)
                if receipt is not None:
                    record_receipts(engine, "twilio", [receipt], now)
                self._reply(204, "")
                return
            try:
                receive_reply(
                    engine,
                    settings,
                    params.get("From", ""),
                    params.get("Body", ""),
                    now,
                    source="twilio",
                    # Twilio retries a callback it thinks failed: the same message, once.
                    message_id=params.get("MessageSid") or None,
                )
            except CuikuanError as exc:
                self._reply(422, exc.message)
                return
            self._reply(204, "")

        def _push(self, path: str) -> None:
            given = parse_qs(urlsplit(self.path).query).get("token", [""])[0]
            if not push_token or not hmac.compare_digest(given, push_token):
                self._reply(403, "bad token")
                return
            length = int(self.headers.get("Content-Length") or 0)
            provider, parse = PUSHES[path]
            now = clock()
            try:
                found = parse(self.rfile.read(length).decode("utf-8"), now)
            except (ValueError, KeyError) as exc:
                self._reply(400, f"unreadable report: {exc}")
                return
            record_receipts(engine, provider, found, now)
            # Both providers want this exact answer, or they push the same report again.
            self._reply(200, '{"result":0,"errmsg":"OK","code":0,"msg":"成功"}')

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

    return ThreadingHTTPServer(address, Handler)
