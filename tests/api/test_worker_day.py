"""End to end: a book ingested through the API, `cuikuan worker` running the simulated day (its
clock started at 07:20 and running fast) over SMPP to the simulator, webhooks to a loopback
receiver that checks every signature; the outbox compared with `plan` and `send` on the same
book."""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from cuikuan.services.importer import import_file
from cuikuan.settings import default_settings_text, load_settings
from cuikuan.sim.generator import GenerateOptions, generate
from cuikuan.store.engine import open_database
from tests.api.conftest import NOW, serve
from tests.api.test_webhooks import Receiver, receiver  # noqa: F401  (the fixture)
from tests.helpers import RULES
from tests.integration.conftest import DAY
from tests.smsc_helpers import running_smsc

START = "2026-11-30T07:20:00+08:00"


def _cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CUIKUAN_")} | env
    return subprocess.Popen(
        [sys.executable, "-m", "cuikuan", *args], cwd=cwd, env=full, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _settings_file(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cuikuan.toml").write_text(default_settings_text(), encoding="utf-8")
    return folder / "cuikuan.toml"


def _messages(engine: Engine) -> list[tuple[Any, ...]]:
    """The day's messages as a borrower would see them, and whether they left."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.external_id, o.step, o.template, o.variant, o.recipient, o.text, "
                "o.status IN ('sent', 'delivered', 'undelivered') AS left_ FROM outbox o "
                "JOIN customers c ON c.id = o.customer_id"
            )
        ).all()
    return sorted(tuple(r) for r in rows)


def _day_done(engine: Engine, hooks: Receiver) -> bool:
    with engine.connect() as conn:
        counts = dict(conn.execute(text("SELECT status, count(*) FROM outbox GROUP BY 1")).all())
    waiting = sum(counts.get(s, 0) for s in ("planned", "claimed", "sending", "sent"))
    delivered = counts.get("delivered", 0)
    heard = sum(1 for e in hooks.got if e["type"] == "message.delivered")
    return bool(counts) and waiting == 0 and delivered > 0 and heard >= delivered


def test_the_worker_runs_the_day_as_plan_and_send_would(
    tmp_path: Path,
    receiver: Receiver,  # noqa: F811
) -> None:
    ledger = tmp_path / "ledger.csv"
    generate(GenerateOptions(300, 41, DAY, ledger))
    book = tmp_path / "book"
    settings = load_settings(_settings_file(book), environ={})
    engine = open_database(settings.database_url)
    server = serve(engine, settings)
    served = next(server)
    with ledger.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    answer = served.client("ingest").post(
        "/api/v1/instalments", json={"rows": rows, "snapshot_at": NOW.isoformat()}
    )
    assert answer.status_code == 201, answer.text
    hook = served.client("all").post("/api/v1/webhooks", json={"url": receiver.url})
    receiver.secret = hook.json()["secret"]
    receiver.tolerance = 86_400  # the worker signs with its simulated clock, hours before NOW

    with running_smsc() as smsc:
        env = {"CUIKUAN_CHANNELS__SMS": "smpp", "CUIKUAN_SMPP__PORT": str(smsc.port),
               "CUIKUAN_SMPP__TPS": "5000"}  # fmt: skip
        # From 07:20 local, ten simulated minutes a real second: the plan at 07:30, the window
        # opening at 08:00. Until every message planned has left and its receipt is in (and
        # the webhooks for them are out), with a deadline a loaded machine still meets.
        worker = _cli(["worker", "--at", START, "--speed", "600", "--every", "0.5"], book, env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _day_done(engine, receiver):
            time.sleep(0.5)
        time.sleep(1)  # a last tick: nothing more should happen
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err[-2000:]
        assert "planned 2026-11-30" in err
        # The reference: the same file imported, planned and sent by hand, through the sandbox.
        reference = tmp_path / "reference"
        ref_settings = load_settings(_settings_file(reference), environ={})
        ref_engine = open_database(ref_settings.database_url)
        import_file(ref_engine, ledger, RULES, snapshot_at=NOW, now=NOW)
        for args in (["plan", "--as-of", "2026-11-30", "--at", "2026-11-29T23:30:00Z"],
                     ["send", "--now", "2026-11-30T00:30:00Z"]):  # fmt: skip
            done = _cli(args, reference, {})
            _, ref_err = done.communicate(timeout=120)
            assert done.returncode == 0, ref_err[-2000:]

    ours, theirs = _messages(engine), _messages(ref_engine)
    assert ours == theirs
    sent = [m for m in ours if m[-1]]
    assert sent, "nothing was sent"
    assert receiver.forged == 0
    kinds = [e["type"] for e in receiver.got]
    assert kinds.count("message.sent") == len(sent)
    with engine.connect() as conn:
        delivered = conn.execute(
            text("SELECT count(*) FROM outbox WHERE status = 'delivered'")
        ).scalar_one()
    assert kinds.count("message.delivered") == delivered > 0
    with contextlib.suppress(StopIteration):
        next(server)
