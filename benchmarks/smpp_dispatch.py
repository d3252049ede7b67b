"""Benchmark: SMPP dispatch from one process to a loopback SMSC, receipts recorded.

    python benchmarks/smpp_dispatch.py --messages 20000 --runs 3

Numbers ending in the simulator's fate digits (0000, 0011, ...) get those fates on purpose.
Setup (not timed): a generated portfolio imported once, and one planned outbox row per customer
(a typical one-part Chinese reminder) written straight into a copy of the database per run;
`cuikuan smsc` started as its own process (smpplib's codec, receipts at once), or with `--peer
fast` benchmarks/fast_smsc.py (accepts everything, a receipt for each at once: the simulator, not
the client, limits the first on two shared cores).
Timed, in a fresh process per run:
  - dispatch: `send_due` (claim, re-check, hand over in batches, record) and then the receipts
    until every message is `delivered` in the database: messages a second, end to end;
  - receipts: as many receipts recorded (stored, matched to parts, rolled up) in one call;
  - channel only: the same messages through `SmppChannel.send` with no database, receipts drained;
  - baseline: smpplib's blocking client, one submit_sm at a time (what a simple script does).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))

from plan_portfolio import prepared  # noqa: E402

FILL = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from sqlalchemy import insert, select
from cuikuan.settings import load_settings
from cuikuan.store.engine import open_database
from cuikuan.store.schema import customer_phones, loans, outbox
settings = load_settings(Path(sys.argv[1]))
engine = open_database(settings.database_url)
n = int(sys.argv[2])
now = datetime(2026, 11, 30, 1, tzinfo=UTC)
with engine.begin() as conn:
    conn.execute(outbox.delete())
    people = conn.execute(
        select(loans.c.customer_id, loans.c.id, customer_phones.c.e164)
        .join(customer_phones, customer_phones.c.customer_id == loans.c.customer_id)
        .where(customer_phones.c.position == 0)
        .order_by(loans.c.customer_id)
    ).all()
    seen, rows = set(), []
    for cid, lid, e164 in people:
        if cid in seen or e164 in seen:
            continue
        seen.update((cid, e164))
        rows.append(dict(
            idempotency_key=f"bench:{cid}", plan_date=now.date(), customer_id=cid, loan_id=lid,
            step="bench", template="bench", variant=0, channel="sms", recipient=e164,
            text=f"【示例金融】尊敬的客户，您本期账单1,234.50元将于12月1日到期，请按时还款。编号{cid}",
            control=0, earliest_at=now, latest_at=datetime(2026, 11, 30, 12, tzinfo=UTC),
            segments=1, billing_units=1, status="planned", trail="[]", created_at=now,
            updated_at=now, attempts=0,
        ))
        if len(rows) == n:
            break
    conn.execute(insert(outbox), rows)
print(len(rows))
"""

DISPATCH = """
import json, sys, time
from datetime import UTC, datetime
from pathlib import Path
from sqlalchemy import func, select
from cuikuan.channels.registry import make_channel
from cuikuan.dispatch.inbound import hear
from cuikuan.dispatch.sender import send_due
from cuikuan.settings import load_settings
from cuikuan.store.engine import open_database
from cuikuan.store.schema import outbox
settings = load_settings(Path(sys.argv[1]))
engine = open_database(settings.database_url)
channel = make_channel("smpp", engine, settings, lambda: datetime.now(UTC))
channel.wait_bound(10)
now = datetime(2026, 11, 30, 3, tzinfo=UTC)
start, cpu = time.perf_counter(), time.process_time()
report = send_due(engine, settings, channel, now)
handed = time.perf_counter() - start
final = report.delivered + report.undelivered + report.receipt_expired
while final < report.sent and time.perf_counter() - start < float(sys.argv[2]):
    time.sleep(0.05)
    final += sum(hear(engine, settings, channel, now).receipts.values())
total = time.perf_counter() - start
with engine.connect() as conn:
    in_db = conn.execute(
        select(func.count()).where(outbox.c.status.in_(("delivered", "undelivered", "expired")))
    ).scalar_one()
channel.close()
print(json.dumps({"sent": report.sent, "delivered": in_db, "suppressed": sum(report.suppressed.values()), "handed_seconds": handed, "seconds": total, "cpu_seconds": time.process_time() - cpu}))
"""

RECEIPTS = """
import json, sys, time
from datetime import UTC, datetime
from pathlib import Path
from sqlalchemy import delete, select, update
from cuikuan.channels.base import Receipt
from cuikuan.dispatch.receipts import record_receipts
from cuikuan.settings import load_settings
from cuikuan.store.engine import open_database
from cuikuan.store.schema import message_parts, outbox, receipts
settings = load_settings(Path(sys.argv[1]))
engine = open_database(settings.database_url)
now = datetime(2026, 11, 30, 3, tzinfo=UTC)
with engine.begin() as conn:
    ids = conn.execute(select(message_parts.c.provider_id).where(message_parts.c.provider == "smpp")).scalars().all()
    conn.execute(update(outbox).where(outbox.c.status.in_(("delivered", "undelivered", "expired"))).values(status="sent"))
    conn.execute(update(message_parts).values(state=None))
    conn.execute(delete(receipts))
batch = [Receipt(pid.upper(), True, now, "DELIVRD") for pid in ids]
start = time.perf_counter()
moved = record_receipts(engine, "smpp", batch, now)
print(json.dumps({"sent": sum(moved.values()), "seconds": time.perf_counter() - start}))
"""

CHANNEL_ONLY = """
import json, sys, time
from datetime import UTC, datetime
from cuikuan.channels.base import OutgoingMessage
from cuikuan.channels.smpp.channel import SmppChannel
from cuikuan.channels.smpp.session import SessionConfig
n, port = int(sys.argv[1]), int(sys.argv[2])
channel = SmppChannel(SessionConfig(port=port, tps=1e9, window=int(sys.argv[3])), source_addr="1069",
                      clock=lambda: datetime.now(UTC))
channel.wait_bound(10)
batch = [OutgoingMessage(i, "sms", f"+86139{i:07d}7", f"【示例金融】尊敬的客户，您本期账单1,234.50元将于12月1日到期，请按时还款。编号{i}") for i in range(n)]
now = datetime.now(UTC)
start = time.perf_counter()
results = []
for k in range(0, n, 500):
    results += channel.send(batch[k:k + 500], now)
got, sent = 0, sum(r.error is None for r in results)
while got < sent and time.perf_counter() - start < 120:
    got += len(channel.receipts(now))
    time.sleep(0.01)
seconds = time.perf_counter() - start
channel.close()
print(json.dumps({"sent": sent, "receipts": got, "seconds": seconds}))
"""

SMPPLIB = """
import json, sys, time
import smpplib.client, smpplib.consts
n, port = int(sys.argv[1]), int(sys.argv[2])
client = smpplib.client.Client("127.0.0.1", port, allow_unknown_opt_params=True)
client.set_message_received_handler(lambda pdu: None)
client.connect()
client.bind_transceiver(system_id="bench", password="")
start = time.perf_counter()
for i in range(n):
    text = f"【示例金融】尊敬的客户，您本期账单1,234.50元将于12月1日到期，请按时还款。编号{i}"
    client.send_message(
        source_addr_ton=5, source_addr="1069", dest_addr_ton=1, dest_addr_npi=1,
        destination_addr=f"86139{i:07d}7", short_message=text.encode("utf-16-be"),
        data_coding=8, registered_delivery=0,
    )
    client.read_once()  # its submit_sm_resp: one at a time, as the simple scripts do
seconds = time.perf_counter() - start
client.unbind()
client.disconnect()
print(json.dumps({"sent": n, "seconds": seconds}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run(args: list[str], cwd: Path | None = None) -> dict[str, float]:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{args[:3]} failed:\n{proc.stderr}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def start_smsc(port: int) -> subprocess.Popen[str]:
    smsc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cuikuan",
            "smsc",
            "--port",
            str(port),
            "--control-port",
            str(free_port()),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert smsc.stdout is not None
    smsc.stdout.readline()  # the line that says it listens
    return smsc


def start_fast_peer(port: int) -> subprocess.Popen[str]:
    """benchmarks/fast_smsc.py: accepts everything, a receipt for each at once."""
    peer = subprocess.Popen([sys.executable, str(HERE / "fast_smsc.py"), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert peer.stdout is not None
    peer.stdout.readline()  # the line that says it listens
    return peer


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--baseline-messages", type=int, default=3_000)
    parser.add_argument(
        "--sessions", type=int, default=1,
        help="binds the dispatch holds to the SMSC at once, sharing the rate ([smpp] sessions)",
    )  # fmt: skip
    parser.add_argument(
        "--accounts",
        type=int,
        default=None,
        help="book size (default: 30,000 or the messages and 5,000 more): the re-check reads "
        "only the claimed rows' loans, so the CPU per message should not grow with it",
    )
    parser.add_argument(
        "--peer",
        choices=("simulator", "fast"),
        default="simulator",
        help="the SMSC: `cuikuan smsc` (fates by number; about 3,000 submits a second on two "
        "shared cores) or benchmarks/fast_smsc.py (accepts everything, so the client shows)",
    )
    opts = parser.parse_args()
    book = prepared(opts.accounts or max(30_000, opts.messages + 5_000), 1)
    dispatch, receipts, channel_only, baseline = [], [], [], []
    for _ in range(opts.runs):
        port = free_port()
        smsc = start_smsc(port) if opts.peer == "simulator" else start_fast_peer(port)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                for name in ("cuikuan.toml", "cuikuan.db", "strategy.toml"):
                    shutil.copy(book / name, work / name)
                shutil.copytree(book / "templates", work / "templates")
                config = work / "cuikuan.toml"
                filled = run([sys.executable, "-c", FILL, str(config), str(opts.messages)])
                os.environ.update({
                    "CUIKUAN_SMPP__PORT": str(port), "CUIKUAN_SMPP__TPS": "1000000",
                    "CUIKUAN_SMPP__WINDOW": str(opts.window), "CUIKUAN_CHANNELS__BATCH": "2000",
                    "CUIKUAN_SMPP__SESSIONS": str(opts.sessions),
                })  # fmt: skip
                got = run([sys.executable, "-c", DISPATCH, str(config), "120"], cwd=work)
                # Rows of paid-off loans are suppressed at the re-check, as they should be
                # ("delivered" counts every final receipt: delivered, undelivered, expired;
                # (the SMSC's fates by last four digits also fail or refuse a few, on purpose).
                assert got["delivered"] == got["sent"] and got["sent"] > 0.7 * filled, (got, filled)
                dispatch.append(got)
                receipts.append(run([sys.executable, "-c", RECEIPTS, str(config)], cwd=work))
            channel_only.append(
                run(
                    [
                        sys.executable,
                        "-c",
                        CHANNEL_ONLY,
                        str(opts.messages),
                        str(port),
                        str(opts.window),
                    ]
                )
            )
            baseline.append(
                run([sys.executable, "-c", SMPPLIB, str(opts.baseline_messages), str(port)])
            )
        finally:
            smsc.terminate()
            smsc.wait(10)

    def rate(runs: list[dict[str, float]], key: str = "sent") -> dict[str, object]:
        rates = [r[key] / r["seconds"] for r in runs]
        return {
            "per_second": [round(x) for x in rates],
            "median_per_second": round(statistics.median(rates)),
        }

    results = {
        "messages": opts.messages,
        "accounts": opts.accounts or max(30_000, opts.messages + 5_000),
        "window": opts.window,
        "sessions": opts.sessions,
        "peer": opts.peer,
        "dispatch_cpu_seconds_per_10000": round(
            statistics.median(r["cpu_seconds"] / r["sent"] * 10_000 for r in dispatch), 3
        ),
        "dispatch_with_receipts_in_db": rate(dispatch)
        | {"handed_over_per_second": round(statistics.median(r["sent"] / r["handed_seconds"] for r in dispatch))},
        "receipts_recorded": rate(receipts),
        "channel_only": rate(channel_only),
        "baseline_smpplib_one_at_a_time": rate(baseline),
    }  # fmt: skip
    OUT.mkdir(exist_ok=True)
    (OUT / f"smpp-{opts.peer}-{results['accounts']}-s{opts.sessions}.json").write_text(
        json.dumps(results, indent=2)
    )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"benchmark took {time.perf_counter() - started:.0f} s", file=sys.stderr)
