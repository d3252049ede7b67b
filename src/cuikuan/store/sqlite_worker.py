"""Large SQLite reads and bulk inserts, done as Arrow columns by a worker process.

Python's sqlite3 module makes a Python object of every value it returns or binds; at a million
loans that is most of the plan's time (the loan read: 1.3 s in-process, 0.36 s through ADBC's
SQLite driver, which fills Arrow columns in C; the outbox insert: 4.2 s as tuples through
executemany, 2.0 s as Arrow ingested by ADBC and moved by one INSERT ... SELECT). ADBC brings
its own copy of the SQLite library, and two copies in one process break each other's POSIX
locks on the same database (see `bulk._adbc_target`), so ADBC works on SQLite only in a process
of its own: the worker opens the database file as any other process would, and frames go to
and fro as Arrow IPC on its pipes.

The worker is started on first use (or by `warm`) and serves this process's requests one at a
time, for any database file; it ends when this process does (its input closes, and an open
transaction of it is rolled back). Its reads see what is committed, on a connection of their
own, as the ADBC path for PostgreSQL does: only for reads that need none of the caller's
uncommitted writes. Its inserts run in a transaction of their own (`begin`), committed or
rolled back as a whole. Whenever the worker cannot serve (no driver, an in-memory database, a
failure), `read` and `begin` return None and the caller works in-process instead, where a
real problem (a locked or broken database) is raised as usual.

A worker that stops answering is given up: while an answer is awaited, the worker must either
send bytes or use CPU; `_STALL` seconds of neither (it was paused by job control, a profiler or
a cgroup freezer and not resumed, or a pipe lost what it was sent) and it is killed, its open
transaction dies with it uncommitted, and the caller works in-process. Both ends move bytes with
`os.read`/`os.write` on the pipes' descriptors, each message whole or an error, never part of
one taken for all of it.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import io
import itertools
import json
import logging
import os
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from sqlalchemy import Engine  # not imported by the worker process: 0.14 s of its start

log = logging.getLogger(__name__)
# ADBC guesses each column's type from the first batch and fails on a later batch that does not
# fit the guess (a text after a batch of NULLs): one batch holds the whole result.
_ONE_BATCH = str(1 << 30)
_LENGTH = struct.Struct("<Q")
_DISABLE = "CUIKUAN_SQLITE_WORKER"  # "off": everything in-process
# Inserts posted and not yet done: the files they wait in stay few, however fast the caller.
_IN_FLIGHT = 4
# Seconds an awaited worker may go without sending a byte or using CPU before it is given up.
_STALL = float(os.environ.get("CUIKUAN_WORKER_STALL", "30"))
# The engine's own settings (store/engine.py), so the worker's writes wait and check as it does.
_PRAGMAS = (
    "PRAGMA busy_timeout=30000",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-65536",
)


class WorkerError(Exception):
    """The worker could not do what was asked (its message says why)."""


def database_file(engine: Engine) -> str | None:
    """The absolute path of a SQLite database on disk, else None (another database, memory)."""
    url = engine.url
    if url.get_backend_name() != "sqlite":
        return None
    name = url.database or ""
    if (
        name in ("", ":memory:")
        or name.startswith("file:")
        or url.query.get("mode") in ("memory", "ro")
    ):
        return None  # in memory, or opened read-only: the worker (which writes) keeps out
    return os.path.abspath(name)


def _uri(path: str) -> str:
    """The file as an SQLite URI the worker opens read-write, never creating it (a wrong path
    fails, and the caller works in-process, where the engine's own error is seen)."""
    return f"file:{urllib.parse.quote(path)}?mode=rw"


def _usable(engine: Engine) -> str | None:
    if os.environ.get(_DISABLE) == "off":
        return None
    return database_file(engine)


def read(engine: Engine, sql: str) -> pl.DataFrame | None:
    """`sql` on the engine's SQLite file through the worker, columns as ADBC typed them; None
    when the worker cannot serve it, or was never asked for in this process (`warm`): the
    caller then reads in-process."""
    path = _usable(engine)
    if path is None or not _WORKER.wanted:
        return None
    try:
        return _WORKER.ask({"op": "read", "path": path, "sql": sql}).frame()
    except WorkerError:
        return None


def warm(engine: Engine) -> None:
    """Start the worker now, so its start-up overlaps the caller's first work. Called by work
    on the whole book (the plan, the portfolio, the report): a command that reads a little,
    as explain does, is quicker in-process than waiting for a worker to start (0.2 s)."""
    if _usable(engine) is not None:
        _WORKER.wanted = True
        _WORKER.start()


class Inserting:
    """An open write transaction of the worker (from `begin`), ended by `commit` or `rollback`.
    Inserts are posted, not waited for: the worker writes one while the caller prepares the
    next."""

    def __init__(self, token: int) -> None:
        self.token = token
        self.written = 0
        # Frames wait for the worker in files, not in the pipe: a post never waits for the
        # worker to finish the insert before it.
        self.folder: Path | None = None
        self.posted = 0

    def insert(self, frame: pl.DataFrame, staging: str, sql: str) -> None:
        """`frame` into the temporary table `staging` (made on first use, emptied after), then
        `sql` (INSERT ... SELECT ... FROM staging ...), whose changed rows `settle` adds up.
        Dates and times must already be the text the table holds (`bulk.sqlite_text`)."""
        _WORKER.wait_below(self.token, _IN_FLIGHT)
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="cuikuan-insert-"))
        path = self.folder / f"{self.posted}.arrow"
        self.posted += 1
        frame.write_ipc(path, compression="uncompressed")
        request = {"op": "insert", "token": self.token, "staging": staging, "sql": sql,
                   "file": str(path)}  # fmt: skip
        _WORKER.post(self.token, request)

    def settle(self) -> int:
        """Wait for every insert posted; the rows they wrote in all. WorkerError if any failed."""
        answers = _WORKER.answers(self.token)
        failed = [a for a in answers if a.kind == b"E"]
        self.written += sum(a.number() for a in answers if a.kind != b"E")
        if failed:
            raise WorkerError(failed[0].payload.decode(errors="replace"))
        return self.written

    def commit(self) -> int:
        """Once every insert is in, commit; the rows written. WorkerError (and nothing
        committed: roll back) if an insert failed or the worker is gone."""
        try:
            written = self.settle()
            _WORKER.ask({"op": "commit", "token": self.token})
        finally:
            self._clean()
        return written

    def rollback(self) -> None:
        with contextlib.suppress(WorkerError):
            _WORKER.answers(self.token)
            _WORKER.ask({"op": "rollback", "token": self.token})
        self._clean()

    def _clean(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def begin(engine: Engine) -> Inserting | None:
    """A write transaction of the worker on the engine's SQLite file (its write lock taken);
    None when the worker cannot serve it."""
    path = _usable(engine)
    if path is None:
        return None
    token = next(_TOKENS)  # never reused, even by a worker started after one ended
    try:
        _WORKER.ask({"op": "begin", "path": path, "token": token})
    except WorkerError:
        return None
    return Inserting(token)


class _Answer:
    def __init__(self, kind: bytes, payload: bytes) -> None:
        self.kind, self.payload = kind, payload

    def frame(self) -> pl.DataFrame:
        return pl.read_ipc(io.BytesIO(self.payload))

    def number(self) -> int:
        return int(self.payload)


class _Worker:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        self.owner = 0
        self.unavailable = False
        self.wanted = False
        self.awaited: collections.deque[int] = collections.deque()  # owners of posted requests
        self.kept: dict[int, list[_Answer]] = {}

    def start(self) -> None:
        with self.lock:
            self._started()

    def _started(self) -> subprocess.Popen[bytes] | None:
        if self.unavailable:
            return None
        if self.proc is not None and self.owner == os.getpid() and self.proc.poll() is None:
            return self.proc
        self._stop()  # a worker that ended, or (after a fork) the parent's
        try:
            import adbc_driver_sqlite  # noqa: F401  (only to know the worker can run)
        except ImportError:
            self.unavailable = True
            return None
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cuikuan.store.sqlite_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.owner = os.getpid()
        return self.proc

    def ask(self, request: dict[str, Any]) -> _Answer:
        """One request and its answer; WorkerError when the worker failed at it or is gone."""
        with self.lock:
            proc = self._send(request)
            answer = self._next(proc)
        if answer.kind == b"E":
            raise WorkerError(answer.payload.decode(errors="replace"))
        return answer

    def post(self, owner: int, request: dict[str, Any]) -> None:
        """A request whose answer `owner` collects later (`answers`)."""
        with self.lock:
            self._send(request)
            self.awaited.append(owner)

    def wait_below(self, owner: int, most: int) -> None:
        """Wait until fewer than `most` of the requests `owner` posted are unanswered."""
        with self.lock:
            if self.proc is not None:
                self._collect(self.proc, lambda: self.awaited.count(owner) >= most)

    def answers(self, owner: int) -> list[_Answer]:
        """The answers to everything `owner` posted, waiting for those still to come."""
        with self.lock:
            if self.awaited and self.proc is not None:
                self._collect(self.proc)
            return self.kept.pop(owner, [])

    def _send(self, request: dict[str, Any]) -> subprocess.Popen[bytes]:
        proc = self._started()
        if proc is None or proc.stdin is None:
            raise WorkerError("no SQLite worker")
        try:
            _send(proc.stdin, json.dumps(request).encode())
        except OSError as exc:
            self._stop()
            raise WorkerError(f"the SQLite worker stopped: {exc}") from None
        return proc

    def _next(self, proc: subprocess.Popen[bytes]) -> _Answer:
        """The answer to the last request sent; answers to posted ones come first, and are kept."""
        self._collect(proc)
        return self._read(proc)

    def _collect(
        self, proc: subprocess.Popen[bytes], more: Callable[[], bool] = lambda: True
    ) -> None:
        """Read the answers to posted requests, oldest first, while `more()` (all by default)."""
        while self.awaited and self.proc is not None and more():
            owner = self.awaited.popleft()
            self.kept.setdefault(owner, []).append(self._read(proc))

    def _read(self, proc: subprocess.Popen[bytes]) -> _Answer:
        try:
            assert proc.stdout is not None
            watch = _Watch(proc.pid)
            fd = proc.stdout.fileno()
            kind = _read_fd(fd, 1, watch)
            (length,) = _LENGTH.unpack(_read_fd(fd, _LENGTH.size, watch))
            return _Answer(kind, _read_fd(fd, length, watch))
        except (OSError, EOFError) as exc:
            log.warning("SQLite worker given up, the work goes on in-process: %s", exc)
            self._stop(kill=isinstance(exc, _Stalled))
            raise WorkerError(f"the SQLite worker stopped: {exc}") from None

    def _stop(self, kill: bool = False) -> None:
        # Whatever was posted and not answered is lost with the worker: its owners are told.
        for owner in self.awaited:
            self.kept.setdefault(owner, []).append(_Answer(b"E", b"the SQLite worker stopped"))
        self.awaited.clear()
        proc, self.proc = self.proc, None
        if proc is not None and self.owner == os.getpid():
            if kill:  # stuck, or paused: it would not end by itself
                proc.kill()
            with contextlib.suppress(OSError):
                if proc.stdin is not None:
                    proc.stdin.close()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()  # stuck: its open transaction dies with it, uncommitted
                proc.wait()

    def close(self) -> None:
        with self.lock, contextlib.suppress(OSError, subprocess.TimeoutExpired):
            self._stop()


class _Stalled(EOFError):
    """The worker sent nothing and used no CPU for `_STALL` seconds."""


class _Watch:
    """Whether a worker process is getting on: its CPU time (Linux /proc) or bytes arriving."""

    def __init__(self, pid: int) -> None:
        self.stat = Path(f"/proc/{pid}/stat")
        self.cpu = self._cpu()
        self.since = time.monotonic()

    def _cpu(self) -> int | None:
        try:
            fields = self.stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        if fields[0] == "T":  # stopped: not getting on, however much CPU it used before
            return None
        return int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks

    def moved(self) -> None:
        self.since = time.monotonic()

    def check(self) -> None:
        cpu = self._cpu()
        if cpu is not None and cpu != self.cpu:
            self.cpu = cpu
            self.moved()
        elif time.monotonic() - self.since > _STALL:
            raise _Stalled(f"no answer and no work for {_STALL:g} s (paused or stuck)")


def _read_fd(fd: int, n: int, watch: _Watch) -> bytes:
    """Exactly `n` bytes from the pipe `fd`, watching the worker while waiting."""
    parts, got = [], 0
    while got < n:
        ready, _, _ = select.select([fd], [], [], min(1.0, _STALL))
        if not ready:
            watch.check()
            continue
        data = os.read(fd, min(n - got, 1 << 20))
        if not data:
            raise EOFError("the pipe closed")
        parts.append(data)
        got += len(data)
        watch.moved()
    return b"".join(parts)


def _send(out: IO[bytes], payload: bytes, kind: bytes = b"") -> None:
    """One message, all of it: os.write on the descriptor until every byte is taken (a write
    to a pipe may take part of what it is given, as when the process is stopped and resumed)."""
    out.flush()
    fd = out.fileno()
    view = memoryview(kind + _LENGTH.pack(len(payload)) + payload)
    while view:
        view = view[os.write(fd, view) :]


def _exactly(inp: IO[bytes], n: int) -> bytes:
    """Exactly `n` bytes from the pipe under `inp` (read on its descriptor, unbuffered)."""
    fd, parts, got = inp.fileno(), [], 0
    while got < n:
        data = os.read(fd, min(n - got, 1 << 20))
        if not data:
            raise EOFError("the pipe closed")
        parts.append(data)
        got += len(data)
    return b"".join(parts)


def _message(inp: IO[bytes]) -> bytes:
    (length,) = _LENGTH.unpack(_exactly(inp, _LENGTH.size))
    return _exactly(inp, length)


_WORKER = _Worker()
_TOKENS = itertools.count(1)
atexit.register(_WORKER.close)


# --- the worker process --------------------------------------------------------------------


class _Serving:
    """The worker's side: a read opens a connection of its own; a write transaction keeps one
    from begin to commit or rollback (one at a time)."""

    def __init__(self) -> None:
        import adbc_driver_sqlite.dbapi as driver

        self.driver = driver
        self.open: Any = None
        self.token = 0

    def read(self, request: dict[str, Any]) -> bytes:
        with self.driver.connect(_uri(request["path"])) as conn, conn.cursor() as cursor:
            cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": _ONE_BATCH})
            cursor.execute(request["sql"])
            frame = arrow_stream_frame(cursor.fetch_arrow())
        buffer = io.BytesIO()
        frame.write_ipc(buffer, compression="uncompressed")
        return buffer.getvalue()

    def begin(self, request: dict[str, Any]) -> bytes:
        if self.open is not None:
            raise WorkerError("a write transaction is already open")
        conn = self.driver.connect(_uri(request["path"]), autocommit=True)
        try:
            with conn.cursor() as cursor:
                for pragma in _PRAGMAS:
                    cursor.execute(pragma)
                cursor.execute("BEGIN IMMEDIATE")
        except Exception:
            conn.close()
            raise
        self.open, self.token = conn, request["token"]
        return b"0"

    def _transaction(self, request: dict[str, Any]) -> Any:
        if self.open is None or request["token"] != self.token:
            raise WorkerError("no such write transaction")
        return self.open

    def insert(self, request: dict[str, Any]) -> bytes:
        conn = self._transaction(request)
        staging = request["staging"]
        frame = pl.read_ipc(request["file"])
        os.unlink(request["file"])
        with conn.cursor() as cursor:
            cursor.adbc_ingest(staging, frame, mode="create_append", temporary=True)
            cursor.execute(request["sql"])
            cursor.execute("SELECT changes()")
            changed = arrow_stream_frame(cursor.fetch_arrow()).item()
            cursor.execute(f"DELETE FROM temp.{staging}")
        return str(changed).encode()

    def finish(self, request: dict[str, Any]) -> bytes:
        conn = self._transaction(request)
        self.open = None
        try:
            with conn.cursor() as cursor:
                cursor.execute("COMMIT" if request["op"] == "commit" else "ROLLBACK")
        finally:
            conn.close()
        return b"0"

    def close(self) -> None:
        if self.open is not None:
            self.open.close()  # rolls back what was not committed


def arrow_stream_frame(stream: Any) -> pl.DataFrame:
    """An ADBC cursor's Arrow stream as a frame (Polars reads a stream as one struct column)."""
    got = pl.from_arrow(stream)
    return got.struct.unnest() if isinstance(got, pl.Series) else got


def _serve(inp: IO[bytes], out: IO[bytes]) -> None:
    serving = _Serving()
    try:
        while True:
            try:
                request = json.loads(_message(inp))
            except EOFError:
                return
            op = request["op"]
            try:
                if op == "read":
                    _send(out, serving.read(request), b"A")
                elif op == "begin":
                    _send(out, serving.begin(request), b"N")
                elif op == "insert":
                    _send(out, serving.insert(request), b"N")
                else:
                    _send(out, serving.finish(request), b"N")
            except Exception as exc:  # told to the caller, who decides
                _send(out, f"{type(exc).__name__}: {exc}".encode(), b"E")
    finally:
        serving.close()


if __name__ == "__main__":
    _serve(sys.stdin.buffer, sys.stdout.buffer)
