"""`cuikuan listen`: keep the SMPP bind open for receipts and replies, and serve HTTP callbacks."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import typer

from cuikuan.channels.registry import make_channel
from cuikuan.cli import common
from cuikuan.dispatch.listener import drain
from cuikuan.web.callbacks import ROUTES, callback_server


def register(app: typer.Typer) -> None:
    app.command("listen")(listen)


def listen(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address for the HTTP callbacks."),
    port: int = typer.Option(8080, "--port", help="Port for the HTTP callbacks."),
    public_url: str | None = typer.Option(
        None,
        "--public-url",
        help="The URL providers call (Twilio signatures are checked against it); "
        "without it no HTTP endpoint is served.",
    ),
    seconds: float | None = typer.Option(
        None, "--seconds", min=0, help="Stop after this long (default: until Ctrl-C)."
    ),
) -> None:
    """Receive what comes back: with [channels] sms = "smpp", keep the SMPP bind open and record
    every delivery receipt and every borrower reply (read and acted on at once: 退订 opts the
    number out, a promise pauses reminders...); with --public-url, also serve the provider
    callback endpoints (/twilio/status, /twilio/inbound), every request signed."""
    engine = common.database(ctx)
    settings = common.settings_from(ctx)
    server = None
    if public_url:
        server = callback_server(engine, settings, (host, port), public_url)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        common.err.print(
            f"HTTP callbacks on http://{host}:{port}: {', '.join(ROUTES)}", markup=False
        )
    channel = None
    if settings.channels.sms == "smpp":
        channel = make_channel("smpp", engine, settings)
        bound = channel.wait_bound(10.0)  # type: ignore[attr-defined]
        where = f"{settings.smpp.host}:{settings.smpp.port}"
        common.err.print(
            f"SMPP bound to {where}" if bound else f"SMPP not bound yet to {where}; retrying",
            markup=False,
        )
    if server is None and channel is None:
        common.err.print("nothing to listen to: no --public-url and [channels] sms is not smpp")
        raise typer.Exit(2)
    deadline = None if seconds is None else time.monotonic() + seconds
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
            if channel is not None:
                heard = drain(engine, settings, channel, datetime.now(UTC))
                for reply in heard.replies:
                    common.err.print(
                        f"reply from {reply.sender}: {reply.reading.intent} -> {'; '.join(reply.done) or reply.reading.action}",
                        markup=False,
                    )
                for refused in heard.refused:
                    common.err.print(f"reply not recorded: {refused}", markup=False)
    except KeyboardInterrupt:
        pass
    finally:
        if channel is not None:
            channel.close()  # type: ignore[attr-defined]
        if server is not None:
            server.shutdown()
            server.server_close()
