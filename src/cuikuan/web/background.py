"""Slow reads a console page needs, computed in a thread of this server while the page answers
at once and asks again (htmx) until the result is there.

    job = SLOW.start("report|2026-11-01|2026-11-30|3", lambda: report_store.for_range(...))
    job.wait(GRACE)           # a quick one is shown in the first answer
    job.done(), job.failed    # else the page shows "computing" and polls

On a large book the portfolio of a new ledger version or the report of a range of one's own
takes seconds; a page should not. The result is kept where every server reads it (the database:
store/snapshots, services/report_store), so the poll that finds the job done reads it from
there as any later view does. One computation per key at a time: ten managers opening the same
range wait for one run. A failed run is shown once, then forgotten so that a reload tries again;
a finished one is forgotten a minute after it ended.

Waiting is done by short sleeps, never by a timed lock wait: under libfaketime (the suite runs a
year ahead) a timed wait's deadline is read on the faked clock and slept on the real one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

log = logging.getLogger(__name__)

GRACE = 0.05  # seconds a page waits for a quick result before answering with "computing"
POLL = "500ms"  # how soon the page asks again (htmx delay)
KEEP = 60.0  # seconds a finished job is remembered (a poll in flight finds it)
_STEP = 0.005


class Job:
    def __init__(self, future: Future[object]) -> None:
        self.future = future
        self.ended: float | None = None  # time.monotonic() when it ended

    def wait(self, seconds: float) -> bool:
        """True once it has ended (within `seconds`), else False."""
        deadline = time.monotonic() + seconds
        while not self.future.done():
            if time.monotonic() >= deadline:
                return False
            time.sleep(_STEP)
        return True

    def done(self) -> bool:
        return self.future.done()

    @property
    def failed(self) -> BaseException | None:
        return self.future.exception() if self.future.done() else None


class Slow:
    def __init__(self, threads: int = 2) -> None:
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="cuikuan-console-slow")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(self, key: str, work: Callable[[], object]) -> Job:
        """The running (or just finished) job for `key`, else a new one running `work`."""
        with self._lock:
            self._forget_old()
            job = self._jobs.get(key)
            if job is None:
                job = self._jobs[key] = Job(self._pool.submit(self._run, key, work))
            return job

    def _run(self, key: str, work: Callable[[], object]) -> object:
        try:
            return work()
        except Exception:
            log.exception("console: computing %s failed", key.split("|", maxsplit=1)[0])
            raise
        finally:
            with self._lock:
                job = self._jobs.get(key)
                if job is not None:
                    job.ended = time.monotonic()

    def _forget_old(self) -> None:
        now = time.monotonic()
        for key in [
            k for k, j in self._jobs.items() if j.ended is not None and now - j.ended > KEEP
        ]:
            del self._jobs[key]

    def forget(self, key: str) -> None:
        """After a failure was shown: the next view starts afresh."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.done():
                del self._jobs[key]


SLOW = Slow()
