"""`cuikuan smsc`: a local SMPP simulator; `cuikuan smsc-mo`: make a borrower "reply" through it."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from pathlib import Path

import typer

from cuikuan.cli import common
from cuikuan.errors import InputError
from cuikuan.sim.smsc import FATES, Smsc, SmscConfig


def register(app: typer.Typer) -> None:
    app.command("smsc")(smsc)
    app.command("smsc-mo")(smsc_mo)


_FATES_HELP = "; ".join(f"…{suffix}: {fate[0]} {fate[1]}" for suffix, fate in FATES.items())


def smsc(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(2775, "--port", help="SMPP port (0: any free port, printed)."),
    control_port: int = typer.Option(
        2776, "--control-port", help="Port for `cuikuan smsc-mo` and stats (one JSON line each)."
    ),
    system_id: str | None = typer.Option(
        None, "--system-id", help="Accept only this system id (default: any)."
    ),
    password: str | None = typer.Option(None, "--password", help="…and this password."),
    receipt_delay: float = typer.Option(
        0.0, "--receipt-delay", min=0, help="Seconds between accepting and the receipt."
    ),
    receipt_ids: str = typer.Option(
        "hex", "--receipt-ids", help="Spell receipt ids as submitted (hex) or in decimal."
    ),
    no_seconds: bool = typer.Option(
        False, "--no-seconds", help="Receipt dates as YYMMDDhhmm (no seconds)."
    ),
    lowercase: bool = typer.Option(False, "--lowercase", help="Receipt states in lower case."),
    no_tlvs: bool = typer.Option(False, "--no-tlvs", help="Receipts as text only, no TLVs."),
    data_sm: bool = typer.Option(
        False, "--data-sm", help="Send receipts as data_sm (message_payload), not deliver_sm."
    ),
    max_tps: float | None = typer.Option(
        None, "--max-tps", help="Answer ESME_RTHROTTLED beyond this many submits a second."
    ),
    drop_after: int | None = typer.Option(
        None, "--drop-after", help="Take the N-th submit, then drop the connection unanswered."
    ),
    log: Path | None = typer.Option(
        None, "--log", help="Append every accepted submit to this JSON-lines file."
    ),
) -> None:
    """Run an SMPP 3.4 simulator on loopback: accepts binds, answers submits, sends delivery
    receipts, and injects borrower replies on request (`cuikuan smsc-mo`). Point [smpp] at it
    (host, port) and set [channels] sms = "smpp" to try the real SMPP path without a carrier.

    Destinations pick their fate by their last four digits:"""
    if receipt_ids not in ("hex", "decimal"):
        raise InputError("--receipt-ids must be hex or decimal")
    config = SmscConfig(
        host=host,
        port=port,
        control_port=control_port,
        system_id=system_id,
        password=password,
        receipt_delay=receipt_delay,
        receipt_ids=receipt_ids,
        receipt_seconds=not no_seconds,
        receipt_lowercase=lowercase,
        receipt_tlvs=not no_tlvs,
        data_sm=data_sm,
        max_tps=max_tps,
        drop_after=drop_after,
        log_path=log,
    )
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")

    async def main() -> None:
        server = Smsc(config)
        await server.start()
        # One line a script can wait for and parse: where the SMSC listens.
        print(
            json.dumps({"smpp": [host, server.port], "control": [host, control_port]}), flush=True
        )
        await server.serve()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


smsc.__doc__ = (smsc.__doc__ or "") + _FATES_HELP + "."


def smsc_mo(
    sender: str = typer.Argument(..., help="The borrower's number, e.g. +8613800138000."),
    text: str = typer.Argument(..., help="What they wrote, e.g. 退订."),
    to: str = typer.Option("1069", "--to", help="The number they wrote to."),
    control: str = typer.Option(
        "127.0.0.1:2776", "--control", help="The simulator's control address (host:port)."
    ),
    json_out: bool = common.JsonOption,
) -> None:
    """Make the running `cuikuan smsc` deliver a borrower's message (in concatenated parts when
    long) to a bind that may hear it, one of each system id's, as a carrier would; kept for the
    next such bind when none is up. `cuikuan listen` stores and reads it."""
    host, _, port_text = control.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port_text)), timeout=5) as sock:
            request = {"cmd": "mo", "from": sender, "to": to, "text": text}
            sock.sendall((json.dumps(request, ensure_ascii=False) + "\n").encode())
            answer = json.loads(sock.makefile("rb").readline() or b"{}")
    except (OSError, ValueError) as exc:
        raise InputError(f"no SMSC control port at {control}: {exc}") from None
    if not answer.get("ok"):
        raise InputError(f"the SMSC refused: {answer.get('error')}")
    if json_out:
        common.print_json(answer)
    else:
        common.out.print(
            f"kept by the SMSC in {answer['parts']} part(s) for the next bind that may hear it "
            "(none is bound now)"
            if answer.get("kept")
            else f"delivered in {answer['parts']} part(s) to {answer['sessions']} bound session(s)"
        )
