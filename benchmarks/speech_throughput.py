"""Training samples/s of Listing 4.8 (speech convnet, input [43, 232, 1], 20 classes, batch 64, sgd 0.01).

sightsound's model.fit against a plain PyTorch eager loop of the same network, in one run, on random
spectrogram-shaped inputs (throughput does not depend on the values): the plain loop as written, and
again with the heap settings sightsound makes in its own process (``plain-heap``: glibc's
MALLOC_TOP_PAD_/MALLOC_MMAP_THRESHOLD_ from sightsound.runtime.heap_environment), so that the ratio
compares engines, not allocators. Where the CPU has bfloat16 instructions, both
run again in mixed precision: sightsound with dtype_policy mixed_bfloat16 against the heap-matched plain
loop under torch.autocast(bfloat16). Median of --repeats timed epochs, each in a fresh process
(interleaved). JSON goes to benchmarks/results/speech_throughput.json.

    python benchmarks/speech_throughput.py --samples 1280 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sightsound import presets
from sightsound.engine.trainer import bfloat16_is_fast
from sightsound.runtime import heap_environment

ENGINES = {"sightsound": "sightsound (model.fit)", "plain": "plain PyTorch eager loop (as written)",
           "plain-heap": "plain PyTorch eager loop, sightsound's heap settings",
           "sightsound-bf16": "sightsound, dtype_policy mixed_bfloat16",
           "plain-heap-bf16": "plain loop under torch.autocast(bfloat16), sightsound's heap settings"}
#: Each engine's reference: the heap-matched plain loop of the same precision.
REFERENCE = {engine: "plain-heap-bf16" if engine.endswith("-bf16") else "plain-heap" for engine in ENGINES}


def plain_loop_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, (2, 8)), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(8, 32, (2, 4)), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 32, (2, 4)), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 32, (2, 4)), nn.ReLU(), nn.MaxPool2d(2, (1, 2)),
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(704, 2000), nn.ReLU(), nn.Dropout(0.5), nn.Linear(2000, 20))


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def time_plain(x: np.ndarray, labels: np.ndarray, batch: int, bf16: bool = False) -> float:
    net = plain_loop_net()
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    xs = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    ys = torch.from_numpy(labels)
    faults, start = _faults(), time.perf_counter()
    order = torch.randperm(len(xs))
    for i in range(0, len(xs), batch):
        idx = order[i:i + batch]
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = nn.functional.cross_entropy(net(xs[idx]), ys[idx])
        loss.backward()
        opt.step()
    rate = len(xs) / (time.perf_counter() - start)
    print("faults per step", (_faults() - faults) / -(-len(xs) // batch))
    return rate


def time_sightsound(x: np.ndarray, onehot: np.ndarray, batch: int, bf16: bool = False) -> float:
    model = presets.build("speech-conv", device="cpu")
    model.compile(optimizer="sgd", learning_rate=0.01, loss="categoricalCrossentropy", metrics=["accuracy"],
                  dtype_policy="mixed_bfloat16" if bf16 else "float32")
    model.fit(x[:batch * 2], onehot[:batch * 2], batch_size=batch, epochs=1)  # warm-up
    faults, start = _faults(), time.perf_counter()
    model.fit(x, onehot, batch_size=batch, epochs=1)
    rate = len(x) / (time.perf_counter() - start)
    print("faults per step", (_faults() - faults) / -(-len(x) // batch))
    return rate


def one_epoch(engine: str, samples: int, batch: int) -> float:
    """Samples/s of one timed epoch of ``engine`` after a warm-up, in this process; prints the page faults
    per step of the timed epoch (memory the heap returned and faulted in again: what makes runs swing)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((samples, 43, 232, 1), dtype=np.float32)
    labels = rng.integers(0, 20, samples)
    bf16 = engine.endswith("-bf16")
    if engine.startswith("plain"):
        time_plain(x[:batch * 2], labels[:batch * 2], batch, bf16)  # warm-up
        return time_plain(x, labels, batch, bf16)
    return time_sightsound(x, np.eye(20, dtype=np.float32)[labels], batch, bf16)


def in_fresh_process(engine: str, args) -> tuple[float, float]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                                    os.environ.get("PYTHONPATH")])))
    if engine.startswith("plain-heap"):
        env.update(heap_environment())
    out = subprocess.run([sys.executable, __file__, "--worker", engine, "--samples", str(args.samples),
                          "--batch-size", str(args.batch_size)], env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{engine} worker failed:\n{out.stderr}")
    faults = [float(line.split()[-1]) for line in out.stdout.splitlines() if line.startswith("faults per step")]
    return float(out.stdout.split()[-1]), faults[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1280)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=str(Path(__file__).resolve().parent / "results" / "speech_throughput.json"))
    parser.add_argument("--force-bf16", action="store_true",
                        help="run the -bf16 engines on a CPU without bfloat16 instructions (emulated: slow)")
    parser.add_argument("--worker", choices=list(ENGINES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(one_epoch(args.worker, args.samples, args.batch_size))
        return
    bf16 = args.force_bf16 or bfloat16_is_fast(torch.device("cpu"))
    engines = [e for e in ENGINES if bf16 or not e.endswith("-bf16")]
    skipped = {e: "skipped: this CPU has no bfloat16 instructions (--force-bf16)" for e in ENGINES if e not in engines}
    runs = {engine: [] for engine in engines}
    for _ in range(args.repeats):  # interleaved so drifting load hits every engine alike
        for engine, results in runs.items():
            results.append(in_fresh_process(engine, args))
    medians = {engine: [statistics.median(column) for column in zip(*runs[engine])] for engine in engines}
    print(f"Listing 4.8 training, batch {args.batch_size}, {args.samples} samples, median of {args.repeats} "
          f"(one process each), {torch.get_num_threads()} threads")
    print("| engine | samples/s | × plain (float32, as written) | × plain, same heap and precision "
          "| page faults per step |\n|---|---:|---:|---:|---:|")
    for engine in engines:
        rate, faults = medians[engine]
        print(f"| {ENGINES[engine]} | {rate:,.0f} | {rate / medians['plain'][0]:.2f}× | "
              f"{rate / medians[REFERENCE[engine]][0]:.2f}× | {faults:,.0f} |")
    for engine, why in skipped.items():
        print(f"| {ENGINES[engine]} | {why} | | | |")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"when": time.strftime("%Y-%m-%d %H:%M:%S"), "samples": args.samples,
                               "batch": args.batch_size, "repeats": args.repeats,
                               "threads": torch.get_num_threads(), "load_average_end": os.getloadavg(),
                               "results": {**{engine: {"train_per_s": [r for r, _ in runs[engine]],
                                                       "train_median": medians[engine][0],
                                                       "faults_per_step": medians[engine][1]}
                                              for engine in engines},
                                           **{engine: {"status": "skipped", "reason": why}
                                              for engine, why in skipped.items()}}}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
