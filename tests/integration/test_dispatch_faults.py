"""Fault injection for dispatch over real SMPP: SIGKILL at random moments, and several
dispatchers at once; the SMSC's own record is the judge of "never sent twice"."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from cuikuan.services.planner import make_plan
from cuikuan.settings import Settings
from cuikuan.store.schema import outbox
from tests.integration.conftest import DAY, build_book
from tests.integration.test_smpp import OPEN
from tests.smsc_helpers import received_messages, running_smsc

SETTLED = {
    "sent",
    "delivered",
    "undelivered",
    "expired",
    "failed",
    "suppressed",
    "uncertain",
    "held",
}
KILL_ROUNDS = int(os.environ.get("CUIKUAN_KILL_ROUNDS", "6"))


def dispatcher(
    config: Path, port: int, now: str, batch: int = 10, tps: int = 400
) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "CUIKUAN_CHANNELS__SMS": "smpp",
        "CUIKUAN_CHANNELS__BATCH": str(batch),
        "CUIKUAN_SMPP__PORT": str(port),
        "CUIKUAN_SMPP__TPS": str(tps),
        "CUIKUAN_SMPP__WINDOW": "8",
    }
    cuikuan = str(Path(sys.executable).parent / "cuikuan")
    cmd = [cuikuan, "-c", str(config), "send", "--now", now]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def statuses(engine: Engine) -> Counter[str]:
    with engine.connect() as conn:
        return Counter(
            dict(
                conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status)).all()
            )
        )


def rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(
            select(outbox.c.id, outbox.c.recipient, outbox.c.text, outbox.c.status)
        ).all()


def check_exactly_once(engine: Engine, records: list[dict[str, Any]]) -> None:
    arrived = received_messages(records)
    for number, texts in arrived.items():
        assert len(texts) == len(set(texts)), f"{number} received a message twice"
    got = {(n, t) for n, texts in arrived.items() for t in texts}
    for r in rows(engine):
        key = (r.recipient.lstrip("+"), r.text)
        if r.status in ("sent", "delivered", "undelivered"):
            assert key in got, f"outbox {r.id} is {r.status} but the SMSC never had it"
        elif r.status != "uncertain":
            assert key not in got, f"outbox {r.id} is {r.status} but the SMSC has it"


@pytest.fixture
def big_book(tmp_path: Path, db_url: str) -> tuple[Settings, Engine]:
    """3,000 accounts: about 170 messages on DAY, enough for kills to land mid-batch."""
    return build_book(tmp_path, db_url, 3000, 5)


def test_sigkill_at_random_moments_never_sends_twice(
    big_book: tuple[Settings, Engine], tmp_path: Path
) -> None:
    settings, engine = big_book
    make_plan(engine, settings, DAY)
    assert statuses(engine)["planned"] > 100
    rnd = random.Random(20261129)
    config = tmp_path / "cuikuan.toml"
    with running_smsc() as smsc:
        kills = 0
        for round_ in range(KILL_ROUNDS):
            # Each round acts after the lease of the one before, so its stuck rows settle first.
            now = (OPEN + timedelta(minutes=11 * round_)).strftime("%Y-%m-%dT%H:%M:%S")
            proc = dispatcher(config, smsc.port, now, tps=100)
            time.sleep(rnd.uniform(0.5, 2.5))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(30)
        final = (OPEN + timedelta(minutes=11 * KILL_ROUNDS)).strftime("%Y-%m-%dT%H:%M:%S")
        last = dispatcher(config, smsc.port, final)
        _, err = last.communicate(timeout=60)
        assert last.returncode == 0, err.decode()
        records = list(smsc.smsc.received)
    assert kills >= 1  # the test is only worth something if it killed mid-run
    left = statuses(engine)
    assert set(left) <= SETTLED, left
    check_exactly_once(engine, records)


def test_two_dispatchers_at_once_never_send_the_same_message(
    book: tuple[Settings, Engine], tmp_path: Path
) -> None:
    settings, engine = book
    make_plan(engine, settings, DAY)
    planned = statuses(engine)["planned"]
    config = tmp_path / "cuikuan.toml"
    now = OPEN.strftime("%Y-%m-%dT%H:%M:%S")
    with running_smsc() as smsc:
        procs = [dispatcher(config, smsc.port, now, batch=5, tps=2000) for _ in range(3)]
        for p in procs:
            _, err = p.communicate(timeout=60)
            assert p.returncode == 0, err.decode()
        records = list(smsc.smsc.received)
    left = statuses(engine)
    assert (
        left["sent"]
        + left["delivered"]
        + left["undelivered"]
        + sum(v for k, v in left.items() if k == "suppressed")
        == planned
    ), left
    check_exactly_once(engine, records)
