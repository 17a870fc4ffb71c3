"""The prediction pool: bounded concurrency on long-lived threads, 503 when the queue is full."""

import asyncio
import threading
import time

import httpx
import numpy as np
import pytest

from sightsound.web import app as web_app
from sightsound.web.pool import ServerBusy, WorkPool
from test_web_api import data_dir, digit_one_png, models_dir  # noqa: F401 - shared fixtures


def run_async(coroutine):
    """``asyncio.run`` on a fresh thread: browser tests may leave an event loop running on this one."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as runner:
        return runner.submit(asyncio.run, coroutine).result()


class Probe:
    """A blocking job that records how many run at once and on which threads."""

    def __init__(self, seconds: float = 0.02):
        self.seconds = seconds
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.threads = set()

    def __call__(self, value=None):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.threads.add(threading.get_ident())
        time.sleep(self.seconds)
        with self.lock:
            self.running -= 1
        return value


def test_pool_runs_at_most_workers_at_once_on_the_same_threads():
    probe = Probe()
    pool = WorkPool(workers=2, max_waiting=100)

    async def main():
        return await asyncio.gather(*(pool.run(probe, i) for i in range(20)))

    try:
        assert run_async(main()) == list(range(20))
    finally:
        pool.shutdown()
    assert probe.most == 2
    assert len(probe.threads) == 2
    assert pool.pending == 0


def test_pool_refuses_beyond_its_queue_and_recovers():
    release = threading.Event()
    pool = WorkPool(workers=1, max_waiting=2)

    async def main():
        held = [asyncio.ensure_future(pool.run(release.wait, 5)) for _ in range(3)]
        await asyncio.sleep(0.05)
        with pytest.raises(ServerBusy, match="busy: 3 requests"):
            await pool.run(int)
        release.set()
        await asyncio.gather(*held)
        return await pool.run(int, "7")

    try:
        assert run_async(main()) == 7
    finally:
        pool.shutdown()


@pytest.mark.parametrize("workers, waiting", [(0, 1), (1, -1)])
def test_pool_checks_its_sizes(workers, waiting):
    with pytest.raises(ValueError):
        WorkPool(workers=workers, max_waiting=waiting)


def test_a_flood_of_predictions_runs_one_at_a_time(models_dir, data_dir, monkeypatch):  # noqa: F811
    app = web_app.create_app(models_dir, data_dir=data_dir, predict_workers=1)
    probe = Probe(0.005)
    real = web_app.predict_image

    def watched(*args, **kwargs):
        probe()
        return real(*args, **kwargs)

    monkeypatch.setattr(web_app, "predict_image", watched)
    png = digit_one_png()

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await asyncio.gather(*(client.post("/api/predict", files={"file": ("d.png", png, "image/png")})
                                          for _ in range(24)))

    try:
        answers = run_async(main())
    finally:
        app.state.web.predictions.shutdown()
    assert [a.status_code for a in answers] == [200] * 24
    assert probe.most == 1 and len(probe.threads) == 1
    assert {a.json()["top"][0][0] for a in answers} == {answers[0].json()["top"][0][0]}
    assert np.isclose(sum(answers[0].json()["probabilities"]), 1.0, atol=1e-4)
