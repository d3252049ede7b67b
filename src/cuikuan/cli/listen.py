"""`cuikuan listen`: receive provider callbacks (receipts and replies) over HTTP."""

from __future__ import annotations

import typer

from cuikuan.cli import common
from cuikuan.web.callbacks import ROUTES, callback_server


def register(app: typer.Typer) -> None:
    app.command("listen")(listen)


def listen(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", help="Port to listen on."),
    public_url: str = typer.Option(
        ..., "--public-url", help="The URL the provider calls (signatures are checked against it)."
    ),
) -> None:
    """Serve the provider callback endpoints (/twilio/status for receipts, /twilio/inbound for
    replies); every request must be signed. Stop with Ctrl-C. SMPP binds come with issue 5."""
    server = callback_server(
        common.database(ctx), common.settings_from(ctx), (host, port), public_url
    )
    common.err.print(f"listening on http://{host}:{port} for {', '.join(ROUTES)}", markup=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
