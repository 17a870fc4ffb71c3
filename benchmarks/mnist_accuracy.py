"""Train the chapter's three MNIST models with the chapter's settings on real MNIST.

Prints a table (model, params, epochs, wall time, test accuracy mean/min over
seeds) and writes JSON. Targets on the mean: Listing 4.1 >= 99.0 %, 4.3 >= 97.0 %,
4.5 >= 99.5 %.

    python benchmarks/mnist_accuracy.py                      # all three, 3 seeds each
    python benchmarks/mnist_accuracy.py --models conv --seeds 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from sightsound.data import mnist
from sightsound.training.mnist import train_mnist

TARGETS = {"mnist-conv": 0.990, "mnist-dense": 0.970, "mnist-enhanced": 0.995}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["conv", "dense", "enhanced"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None, help="override the chapter's epochs (for quick looks)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", default="benchmarks/results/mnist_accuracy.json")
    args = parser.parse_args()

    data = mnist.load_mnist(args.data_dir)
    rows = []
    for name in args.models:
        runs = []
        for seed in range(args.seeds):
            result = train_mnist(name, data=data, seed=seed, epochs=args.epochs, device=args.device)
            runs.append({"seed": seed, "seconds": result.seconds, "test_accuracy": result.test_accuracy,
                         "test_loss": result.test_loss})
            print(f"{result.preset} seed {seed}: test accuracy {result.test_accuracy:.4f} "
                  f"in {result.seconds:.1f} s", file=sys.stderr, flush=True)
        accs = [r["test_accuracy"] for r in runs]
        rows.append({"model": result.preset, "params": result.params, "epochs": result.epochs,
                     "seconds_mean": statistics.mean(r["seconds"] for r in runs),
                     "accuracy_mean": statistics.mean(accs), "accuracy_min": min(accs),
                     "target": TARGETS[result.preset], "runs": runs})

    print(f"\n| model | params | epochs | wall time (s, mean) | test acc mean | test acc min | target |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ok = "met" if r["accuracy_mean"] >= r["target"] else "missed"
        print(f"| {r['model']} | {r['params']:,} | {r['epochs']} | {r['seconds_mean']:.1f} | "
              f"{100 * r['accuracy_mean']:.2f} % | {100 * r['accuracy_min']:.2f} % | "
              f"{100 * r['target']:.1f} % ({ok}) |")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"when": time.strftime("%Y-%m-%d %H:%M"), "seeds": args.seeds, "rows": rows},
                              indent=1))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
