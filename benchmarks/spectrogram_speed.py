"""One-second clips per second through ``sightsound.audio.spectrogram()``.

Goal: at least 2,000 clips/s on 2 cores. Measures 44.1-kHz clips (45,056
samples: the browser-FFT front end alone) and 16-kHz clips (Speech Commands
files: polyphase resampling to 44.1 kHz included), in one process and in
``--workers`` processes each running ``spectrogram()`` on its share.

    python benchmarks/spectrogram_speed.py [--seconds 5] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from sightsound import audio


def _clips(rate: int, count: int = 64, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    n = audio.CLIP_SAMPLES if rate == audio.SAMPLE_RATE else rate
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for _ in range(count)]


def _run(args) -> tuple[int, float]:
    """Worker: spectrogram() on the clips for ``seconds``; returns (clips done, elapsed)."""
    rate, seconds, seed = args
    clips = _clips(rate, seed=seed)
    audio.spectrogram(clips[0], rate)  # warm-up (FFT plan)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for clip in clips:
            audio.spectrogram(clip, rate)
        done += len(clips)
    return done, time.perf_counter() - start


def measure(rate: int, seconds: float, workers: int) -> float:
    if workers == 1:
        done, elapsed = _run((rate, seconds, 0))
        return done / elapsed
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(_run, [(rate, seconds, i) for i in range(workers)]))
    return sum(d / e for d, e in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="time per measurement (default 5)")
    parser.add_argument("--workers", type=int, default=2, help="processes for the parallel figure (default 2)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(f"cores visible: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}")
    report = {}
    for rate, label in ((audio.SAMPLE_RATE, "44.1-kHz clips (45,056 samples)"), (16000, "16-kHz clips (resampled)")):
        single = measure(rate, args.seconds, 1)
        parallel = measure(rate, args.seconds, args.workers)
        report[str(rate)] = {"one_process": round(single), f"{args.workers}_processes": round(parallel)}
        print(f"{label:34s} 1 process: {single:8.0f} clips/s   {args.workers} processes: {parallel:8.0f} clips/s")
    goal = report[str(audio.SAMPLE_RATE)][f"{args.workers}_processes"] >= 2000
    print(f"goal >= 2,000 clips/s on {args.workers} cores (44.1-kHz clips): {'met' if goal else 'NOT met'}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
