"""`cuikuan serve`: the HTTP API, the provider callbacks, health and metrics, on uvicorn."""

from __future__ import annotations

import typer

from cuikuan.cli import common


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
    public_url: str = typer.Option(
        "",
        "--public-url",
        help="The URL providers call back (Twilio signatures are checked against it, as "
        "`listen --public-url`); without it the Twilio routes answer 403.",
    ),
    workers: int = typer.Option(
        1, "--workers", min=1, max=64, help="Server processes (uvicorn workers)."
    ),
) -> None:
    """Serve the API under /api/v1 (OpenAPI at /api/v1/openapi.json, a docs page at
    /api/v1/docs), the console under /console (users: `cuikuan users add`), the provider
    callbacks (/twilio/status, /twilio/inbound, /aliyun/report, /tencent/report: the same paths
    as `listen --public-url`), /healthz, /readyz and /metrics (Prometheus). Callers need an API key: `cuikuan keys create NAME --scopes read,...`."""
    import os

    import uvicorn

    from cuikuan.settings import find_settings_file

    common.database(ctx)  # settings and database checked (and migrated) before binding
    os.environ["CUIKUAN_SERVE_CONFIG"] = str(
        find_settings_file(ctx.ensure_object(dict).get("config"))
    )
    os.environ["CUIKUAN_SERVE_PUBLIC_URL"] = public_url
    common.err.print(f"serving on http://{host}:{port} (API docs: /api/v1/docs)", markup=False)
    uvicorn.run(
        "cuikuan.api.serving:app_from_environment", factory=True, host=host, port=port,
        workers=workers, log_level="warning", access_log=False,
        timeout_keep_alive=10, limit_concurrency=256,
    )  # fmt: skip
