"""`make bench`: every performance figure of the project in one run, then the goals side by side.

Runs, each in its own process and in this order (so that no two compete for the cores):

  roofline          benchmarks/roofline.py for Listings 4.1 (batch 320), 4.5 (64) and 4.8 (64): the kernel
                    ceilings, float32 (and bfloat16 where the CPU has bfloat16 instructions)
  throughput        benchmarks/throughput.py: sightsound against the plain PyTorch loop as written and on
                    sightsound's heap settings, Keras 3 on PyTorch, TensorFlow + Keras 3 (float32 and,
                    where the CPU has bfloat16 instructions, mixed bfloat16, whose lead is taken against
                    the autocast loop on sightsound's heap settings)
  speech            benchmarks/speech_throughput.py: Listing 4.8 against the same plain loops (float32, and
                    mixed bfloat16 where the CPU has the instructions)
  time-to-accuracy  benchmarks/time_to_accuracy.py: the fast-99 recipe to 99.0 % and fast-99.5 to 99.5 %,
                    3 seeds each, every run from its own process start
  latency           benchmarks/predict_latency.py: PNG bytes -> label for one image

and prints one table of the goals of the performance issue with the measured figures, read back from the JSON
files the scripts write under benchmarks/results/. ``--only`` runs some steps; ``--summary`` only prints the
table from the JSON files already there; ``--quick`` runs everything small (a smoke run, not figures).

    python benchmarks/bench.py               # about 25-40 minutes on 2 quiet cores (23 min on 2026-12-02)
    python benchmarks/bench.py --summary
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ROOFLINE = {"conv": 320, "enhanced": 64, "speech": 64}
TITLES = {"conv": "Listing 4.1", "enhanced": "Listing 4.5", "speech": "Listing 4.8"}
#: The goals: share of the float32 kernel ceiling, lead over the plain loop on the same heap, seconds.
CEILING_SHARE = {"conv": 0.75, "enhanced": 0.85, "speech": 0.85}
LEAD_OVER_PLAIN = 1.2
SECONDS_TO_99_0, SECONDS_TO_99_5 = 6.0, 60.0


def steps(quick: bool) -> dict[str, list[list[str]]]:
    """The commands of each step (script and arguments, run with this interpreter)."""
    seeds = "1" if quick else "3"
    small = ["--quick"] if quick else []
    return {
        "roofline": [["roofline.py", "--model", m, "--batch", str(b), "--json", str(RESULTS / f"roofline-{m}.json")]
                     for m, b in ROOFLINE.items()],
        "throughput": [["throughput.py", "--engines", "sightsound", "torch", "torch-heap", "keras-torch",
                        "tensorflow", "sightsound-bf16", "torch-bf16", "torch-heap-bf16", "tensorflow-bf16",
                        *small]],
        "speech": [["speech_throughput.py", "--repeats", "1" if quick else "3",
                    "--samples", "320" if quick else "1280"]],
        "time-to-accuracy": [
            ["time_to_accuracy.py", "--recipe", "fast-99", "--seeds", seeds, "--json",
             str(RESULTS / "time_to_accuracy-fast-99.json")],
            ["time_to_accuracy.py", "--recipe", "fast-99.5", "--seeds", seeds, "--json",
             str(RESULTS / "time_to_accuracy-fast-99.5.json")]],
        "latency": [["predict_latency.py", *(["--runs", "100", "--warmup", "10"] if quick else [])]],
    }


def _load(name: str) -> dict | None:
    path = RESULTS / name
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _result(results: dict, engine: str, model: str) -> dict:
    """throughput.py's figures for ``engine`` and ``model`` ({} when it did not run)."""
    return (results.get(engine) or {}).get(model) or {}


def _verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("met" if ok else "**not met**")


def throughput_rows() -> list[tuple[str, str, str, str]]:
    """(goal, figure, verdict, source) for the ceiling shares and the lead over the plain loop."""
    rows = []
    mnist = (_load("throughput.json") or {}).get("results", {})
    speech = (_load("speech_throughput.json") or {}).get("results", {})
    for model in ROOFLINE:
        roof = _load(f"roofline-{model}.json") or {}
        if model == "speech":
            precisions = {"float32": (speech.get("sightsound") or {}, speech.get("plain-heap") or {}),
                          "bfloat16": (speech.get("sightsound-bf16") or {}, speech.get("plain-heap-bf16") or {})}
        else:
            precisions = {"float32": (_result(mnist, "sightsound", model), _result(mnist, "torch-heap", model)),
                          "bfloat16": (_result(mnist, "sightsound-bf16", model),
                                       _result(mnist, "torch-heap-bf16", model))}
        for precision, (ours, plain) in precisions.items():
            rate = ours.get("train_median")
            ceiling = (roof.get("kernel_ceiling_per_s") or {}).get(precision)
            title = f"{TITLES[model]} training, {precision}"
            if rate is None:
                why = ours.get("reason") or ours.get("status") or "not measured"
                rows.append((f"{title}: ≥ {CEILING_SHARE[model]:.0%} of the kernel ceiling", why, "–", ""))
                continue
            share = rate / ceiling if ceiling else None
            rows.append((f"{title}: ≥ {CEILING_SHARE[model]:.0%} of the kernel ceiling",
                         f"{rate:,.0f} of {ceiling:,.0f} samples/s = {share:.0%}" if share else f"{rate:,.0f}/s, "
                         "no ceiling measured", _verdict(share >= CEILING_SHARE[model] if share else None),
                         "throughput / roofline"))
            plain_rate = plain.get("train_median")
            lead = rate / plain_rate if plain_rate else None
            rows.append((f"{title}: ≥ {LEAD_OVER_PLAIN}× the plain loop, same heap",
                         f"{lead:.2f}× ({rate:,.0f} vs {plain_rate:,.0f})" if lead else "no plain loop measured",
                         _verdict(lead >= LEAD_OVER_PLAIN if lead else None), "throughput"))
    return rows


def accuracy_rows() -> list[tuple[str, str, str, str]]:
    rows = []
    for name, goal in (("fast-99", SECONDS_TO_99_0), ("fast-99.5", SECONDS_TO_99_5)):
        data = _load(f"time_to_accuracy-{name}.json") or {}
        for row in data.get("rows", []):
            runs = [r for r in row["runs"] if "failed" not in r]
            seconds = [r["seconds_to_target"] if r.get("reached") else float("inf") for r in row["runs"]
                       if "failed" not in r] + [float("inf")] * (len(row["runs"]) - len(runs))
            median = statistics.median(seconds) if seconds else float("inf")
            figure = (f"{median:.1f} s median of {len(seconds)} seeds ({', '.join(f'{s:.1f}' for s in seconds)})"
                      if seconds else "no runs")
            rows.append((f"time to {100 * data['target']:.1f} % MNIST test accuracy, recipe {name}: ≤ {goal:g} s",
                         figure, _verdict(median <= goal), "time_to_accuracy"))
    return rows


def latency_rows() -> list[tuple[str, str, str, str]]:
    """The goals predict_latency.py itself judged (its GOALS_P50_MS)."""
    return [(f"{goal['model']}, {goal['input']} -> label: p50 ≤ {goal['goal_p50_ms']:g} ms",
             f"{goal['p50_ms']:.3f} ms (CPU {goal['cpu_p50_ms']:.3f} ms)", _verdict(goal["met"]), "predict_latency")
            for goal in (_load("predict_latency.json") or {}).get("goals", [])]


def summary() -> None:
    rows = throughput_rows() + accuracy_rows() + latency_rows()
    print("\n| goal | measured | verdict | from |\n|---|---|---|---|")
    for goal, figure, verdict, source in rows:
        print(f"| {goal} | {figure} | {verdict} | {source} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=list(steps(False)), help="run only these steps")
    parser.add_argument("--summary", action="store_true", help="print the goals table from the last results")
    parser.add_argument("--quick", action="store_true", help="everything small: checks that it runs")
    args = parser.parse_args(argv)
    if not args.summary:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(HERE.parent),
                                                                        os.environ.get("PYTHONPATH")])))
        for name, commands in steps(args.quick).items():
            if args.only and name not in args.only:
                continue
            for command in commands:
                print(f"\n== {name}: {' '.join(command)}", flush=True)
                start = time.perf_counter()
                done = subprocess.run([sys.executable, str(HERE / command[0]), *command[1:]], env=env, check=False)
                print(f"== {name}: exit {done.returncode} after {time.perf_counter() - start:.0f} s", flush=True)
                if done.returncode != 0:
                    return done.returncode
    summary()
    return 0


if __name__ == "__main__":
    sys.exit(main())
