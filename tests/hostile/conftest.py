"""Hostile input: every case runs the user's command in a process of its own, with a memory cap
and a time limit, so that a regression fails fast (and says so) instead of hanging or swapping
the machine."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

MEMORY = 3 << 30  # bytes of address space a command may take
SECONDS = 90


def capped(args: list[str], cwd: Path, env: dict[str, str] | None = None,
           seconds: float = SECONDS) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """`cuikuan ARGS` in `cwd`, its memory capped and its time limited."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))

    full = {k: v for k, v in os.environ.items() if not k.startswith("CUIKUAN_")} | (env or {})
    try:
        return subprocess.run(
            [sys.executable, "-m", "cuikuan", *args], cwd=cwd, env=full, capture_output=True,
            text=True, timeout=seconds, preexec_fn=limit, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"cuikuan {' '.join(args)} took more than {seconds} s")


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated ledger of 20,000 accounts (about 120,000 rows), UTF-8 with Chinese names."""
    here = tmp_path_factory.mktemp("hostile")
    made = capped(["sim", "generate", "--accounts", "20000", "--seed", "4", "--as-of",
                   "2026-11-29", "--out", "ledger.csv"], here)  # fmt: skip
    assert made.returncode == 0, made.stderr
    return here / "ledger.csv"


@pytest.fixture
def book(tmp_path: Path) -> Path:
    assert capped(["init", "."], tmp_path).returncode == 0
    return tmp_path
