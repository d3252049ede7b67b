"""`cuikuan listen`: keep the SMPP bind open for receipts and replies, and serve HTTP callbacks."""

from __future__ import annotations

import threading
import time

import typer

from cuikuan.channels.base import close_all
from cuikuan.channels.registry import make_channel
from cuikuan.channels.smpp.channel import SmppChannel
from cuikuan.cli import common
from cuikuan.dispatch.inbound import hear
from cuikuan.domain.templates import mask, mask_numbers
from cuikuan.settings import Settings
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
    """Receive what comes back: hold a bind to every SMPP provider the SMS routes use ([channels]
    sms, sms_fallback, routes; named [providers] included) and record
    every delivery receipt and every borrower reply (read and acted on at once: 退订 opts the
    number out, a promise pauses reminders...); with --public-url, also serve the provider
    callback endpoints (/twilio/status, /twilio/inbound), every request signed."""
    engine = common.database(ctx)
    settings = common.settings_from(ctx)
    server = None
    if public_url:
        server = callback_server(engine, settings, (host, port), public_url, common.clock)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        common.err.print(
            f"HTTP callbacks on http://{host}:{port}: {', '.join(ROUTES)}", markup=False
        )
    channels = []
    for name in _smpp_providers(settings):
        channel = make_channel(name, engine, settings, common.clock)
        if isinstance(channel, SmppChannel):
            channel.hear_only = True  # with separate binds, the receivers alone
        bound = channel.wait_bound(10.0)  # type: ignore[attr-defined]
        common.err.print(
            f"SMPP {name}: bound" if bound else f"SMPP {name}: not bound yet; retrying",
            markup=False,
        )
        channels.append(channel)
    if server is None and not channels:
        common.err.print("nothing to listen to: no --public-url and no SMPP provider in [channels]")
        raise typer.Exit(2)
    deadline = None if seconds is None else time.monotonic() + seconds
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
            for channel in channels:
                heard = hear(engine, settings, channel, common.clock())
                for reply in heard.replies:
                    common.err.print(
                        f"reply from {mask(reply.sender)}: {reply.reading.intent} -> {'; '.join(reply.done) or reply.reading.action}",
                        markup=False,
                    )
                for refused in heard.refused:
                    common.err.print(f"reply not recorded: {mask_numbers(refused)}")
                if heard.unplaced:
                    common.err.print(
                        f"{heard.unplaced} reply(ies) from numbers that could not be placed: "
                        "given to a person (tasks list)",
                        markup=False,
                    )
                if heard.unreadable:
                    common.err.print(
                        f"{heard.unreadable} inbound PDU(s) could not be read: kept, see "
                        "`outbox providers`",
                        markup=False,
                    )
    except KeyboardInterrupt:
        pass
    finally:
        close_all(channels)
        if server is not None:
            server.shutdown()
            server.server_close()


def _smpp_providers(settings: Settings) -> list[str]:
    """Every provider the SMS routes can use whose kind is SMPP: those hold a bind to listen on."""
    c = settings.channels
    names = [c.sms, c.sms_fallback] + [n for r in c.routes for n in (r.provider, r.fallback)]
    kinds = {n: (settings.providers[n].kind if n in settings.providers else n) for n in names if n}
    return sorted(n for n, kind in kinds.items() if kind == "smpp")
