"""A bounded pool of long-lived threads for CPU-heavy request work (image predictions).

Starlette's default thread pool lets up to 40 requests run at once: 40 threads
each decoding an image and calling PyTorch oversubscribe a 2-core machine,
starve the live audio streams, and leave glibc a malloc arena per thread, so
the server's memory creeps up under load. Predictions go through this pool
instead: at most ``workers`` run at a time on the same threads for the life of
the server, the others wait in order, and beyond ``max_waiting`` a request is
answered at once with 503 and a message saying the server is busy.

>>> pool = WorkPool(workers=1, max_waiting=8)
>>> asyncio.run(pool.run(sum, [1, 2, 3]))
6
>>> pool.shutdown()
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

from .predict import UploadRejected


def default_workers() -> int:
    """Half the CPUs (at least one): the other half stays free for audio streams and training."""
    return max(1, (os.cpu_count() or 2) // 2)


class ServerBusy(UploadRejected):
    """Too many requests are already waiting for the pool (HTTP 503)."""

    status = 503
    code = "server_busy"


class WorkPool:
    """Run blocking functions on ``workers`` threads, with at most ``max_waiting`` calls queued."""

    def __init__(self, workers: int | None = None, max_waiting: int = 256, name: str = "sightsound-work"):
        workers = default_workers() if workers is None else workers
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if max_waiting < 0:
            raise ValueError(f"max_waiting must be 0 or more, got {max_waiting}")
        self.workers = workers
        self.max_waiting = max_waiting
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._in_pool = 0  # running + waiting; only touched on the event loop's thread

    @property
    def pending(self) -> int:
        """Calls running or waiting right now."""
        return self._in_pool

    async def run(self, fn, *args):
        """``fn(*args)`` on a pool thread; :class:`ServerBusy` when the queue is full."""
        if self._in_pool >= self.workers + self.max_waiting:
            raise ServerBusy(f"the server is busy: {self._in_pool} requests are running or waiting "
                             f"(at most {self.workers + self.max_waiting}); retry shortly")
        self._in_pool += 1
        try:
            return await asyncio.wrap_future(self._executor.submit(fn, *args))
        finally:
            self._in_pool -= 1

    def shutdown(self) -> None:
        """Let running calls finish, drop waiting ones."""
        self._executor.shutdown(wait=True, cancel_futures=True)
