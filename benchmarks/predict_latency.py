"""Prediction latency: PNG bytes -> label for one image, and batch throughput.

For Listing 4.1 (``mnist-conv``) and Listing 4.5 (``mnist-enhanced``), and for two kinds of
input - a 28x28 grey PNG (an MNIST digit as the chapter's demo shows them) and a 280x280 RGB PNG
of a drawing (the chapter's drawing canvas) - this times the whole path a caller runs:

    decode PNG -> prepare_digit -> add batch axis -> model.predict -> argmax

and the same with the web app's predictor (``sightsound.onnx_export.OnnxPredictor``: the model's graph in
ONNX Runtime on one thread, which the app serves single images through once it has exported the model),
one image at a time (p50/p99 over ``--runs`` runs after ``--warmup`` runs), split into its
stages (decode + prepare, predict), and the same path with ``--raw`` preparation (fromPixels ->
resizeBilinear -> /255). Then batch throughput: ``--batch`` prepared images per ``predict`` call,
and end to end (PNG bytes for a batch -> labels). Weights are random: latency does not depend on them.

Single images run on one torch thread (``--threads``): a batch of one gains nothing from more, and
on a shared machine waking a second thread for every call costs far more than the call itself.
Batches run on 1 thread and on every CPU (or ``--batch-threads``).

Goals for Listing 4.1, PNG bytes -> label (:data:`GOALS_P50_MS`): p50 <= 0.5 ms for the 28x28 grey PNG
and <= 2 ms for the 280x280 RGB canvas PNG, on the web app's path (:data:`SERVED_PATH`). The figures and the verdicts also go to ``--json``
(default ``benchmarks/results/predict_latency.json``) for summary scripts.

    nice -n 10 python benchmarks/predict_latency.py
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sightsound import image as ssimage  # noqa: E402
from sightsound import presets  # noqa: E402
from sightsound.onnx_export import OnnxPredictor  # noqa: E402

INPUTS = ("28x28 grey PNG", "280x280 RGB canvas PNG")
#: Listing 4.1's wall-clock p50 goal for PNG bytes -> label, per input.
GOALS_P50_MS = {"28x28 grey PNG": 0.5, "280x280 RGB canvas PNG": 2.0}
ROW_FIELDS = ("model", "input", "path", "p50_ms", "p99_ms", "mean_ms", "cpu_p50_ms")
SERVED_PATH = "PNG -> label, served (ONNX Runtime)"  #: the path the goals are measured on


def mnist_like_png() -> bytes:
    """A 28x28 grey PNG of a "7" drawn white on black, sized and placed like an MNIST digit."""
    picture = Image.new("L", (28 * 4, 28 * 4), 0)
    pen = ImageDraw.Draw(picture)
    pen.line([(30, 24), (84, 22), (48, 92)], fill=255, width=10, joint="curve")
    buffer = io.BytesIO()
    picture.resize((28, 28), Image.Resampling.BOX).save(buffer, "PNG")
    return buffer.getvalue()


def canvas_png() -> bytes:
    """A 280x280 RGB PNG of a "3" drawn with a thick white pen on a black canvas."""
    picture = Image.new("RGB", (280, 280), (0, 0, 0))
    pen = ImageDraw.Draw(picture)
    pen.arc([80, 40, 200, 140], start=-160, end=90, fill=(255, 255, 255), width=18)
    pen.arc([70, 130, 210, 250], start=-90, end=160, fill=(255, 255, 255), width=18)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def time_calls(call, runs: int, warmup: int) -> tuple[list[float], list[float]]:
    """Wall-clock and process-CPU milliseconds of each of ``runs`` calls after ``warmup`` untimed ones.

    CPU time is what the call itself costs; on a shared machine wall-clock time adds the waits
    for a core (the load average printed at the top says how busy the machine was).
    """
    for _ in range(warmup):
        call()
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        call()
        wall.append((time.perf_counter() - start) * 1e3)
        cpu.append((time.process_time() - start_cpu) * 1e3)
    return wall, cpu


def single_image_rows(runs: int, warmup: int) -> list[dict]:
    """One row per model, input and path of the single-image table (printed as they come)."""
    inputs = dict(zip(INPUTS, (mnist_like_png(), canvas_png())))
    header = f"{'model':<16}{'input':<25}{'path':<36}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}{'CPU p50':>9}"
    print(header)
    print("-" * len(header))
    rows = []
    for preset, title in (("mnist-conv", "Listing 4.1"), ("mnist-enhanced", "Listing 4.5")):
        model = presets.build(preset, device="cpu")
        model.build()
        served = OnnxPredictor(model)
        for input_name, png in inputs.items():
            def end_to_end(raw: bool = False, predictor=model) -> int:
                x = ssimage.model_input(png, (28, 28, 1), raw=raw)
                return int(predictor.predict(x[None]).argmax())

            prepared = ssimage.model_input(png)[None]
            paths = [("PNG -> label", lambda: end_to_end()),
                     ("  decode + prepare_digit", lambda: ssimage.model_input(png)),
                     ("  predict (1 image)", lambda: model.predict(prepared)),
                     ("PNG -> label, --raw", lambda: end_to_end(raw=True)),
                     (SERVED_PATH, lambda: end_to_end(predictor=served)),
                     ("  predict (1 image), ONNX Runtime", lambda: served.predict(prepared))]
            for path_name, call in paths:
                times, cpu_times = time_calls(call, runs, warmup)
                row = dict(zip(ROW_FIELDS, (title, input_name, path_name.strip(), statistics.median(times),
                                            percentile(times, 99), statistics.fmean(times),
                                            statistics.median(cpu_times))))
                rows.append(row)
                print(f"{title:<16}{input_name:<25}{path_name:<36}{row['p50_ms']:>9.3f}{row['p99_ms']:>9.3f}"
                      f"{row['mean_ms']:>9.3f}{row['cpu_p50_ms']:>9.3f}")
    return rows


def batch_rows(batch: int, batch_threads: int | None) -> list[dict]:
    """Batch throughput rows: ``batch`` images per predict call, on prepared arrays and from PNG bytes."""
    print(f"\nBatch throughput ({batch} images per predict call; median of 5 repetitions)\n")
    header = f"{'model':<16}{'threads':>8}  {'stage':<40}{'images/s':>12}{'ms/image':>10}"
    print(header)
    print("-" * len(header))
    batch_pngs = [mnist_like_png()] * batch
    prepared = np.stack([ssimage.model_input(p) for p in batch_pngs])
    thread_counts = [batch_threads] if batch_threads else sorted({1, os.cpu_count() or 1})
    rows = []
    for preset, title in (("mnist-conv", "Listing 4.1"), ("mnist-enhanced", "Listing 4.5")):
        model = presets.build(preset, device="cpu")
        model.build()
        for threads in thread_counts:
            torch.set_num_threads(threads)
            stages = [("predict on prepared batch", lambda: model.predict(prepared)),
                      ("28x28 PNGs -> labels (prepare + predict)",
                       lambda: model.predict(np.stack([ssimage.model_input(p) for p in batch_pngs])).argmax(axis=1))]
            for stage_name, call in stages:
                seconds = statistics.median(t / 1e3 for t in time_calls(call, 5, 1)[0])
                rows.append({"model": title, "threads": threads, "stage": stage_name,
                             "images_per_s": batch / seconds, "ms_per_image": seconds / batch * 1e3})
                print(f"{title:<16}{threads:>8}  {stage_name:<40}{batch / seconds:>12,.0f}"
                      f"{seconds / batch * 1e3:>10.3f}")
    return rows


def goal_verdicts(rows: list[dict]) -> list[dict]:
    """Listing 4.1's PNG -> label rows against :data:`GOALS_P50_MS` (wall-clock p50)."""
    verdicts = []
    for row in rows:
        goal = GOALS_P50_MS.get(row["input"])
        if row["model"] == "Listing 4.1" and row["path"] == SERVED_PATH and goal is not None:
            verdicts.append({"model": row["model"], "input": row["input"], "goal_p50_ms": goal,
                             "p50_ms": row["p50_ms"], "cpu_p50_ms": row["cpu_p50_ms"], "met": row["p50_ms"] <= goal})
    return verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000, help="timed single-image runs per row (default 1000)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed runs first (default 100)")
    parser.add_argument("--batch", type=int, default=256, help="images per predict call for throughput")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for single images (default 1)")
    parser.add_argument("--batch-threads", type=int, default=None, help="torch threads for batches (default: 1 and all)")
    parser.add_argument("--json", default=str(Path(__file__).resolve().parent / "results" / "predict_latency.json"),
                        help="where to write the figures")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs visible, load average {load:.1f} at start; "
          f"single images on {torch.get_num_threads()} torch thread(s), {args.runs} runs after {args.warmup} "
          f"warm-up runs; wall-clock ms\n")
    single = single_image_rows(args.runs, args.warmup)
    batches = batch_rows(args.batch, args.batch_threads)
    verdicts = goal_verdicts(single)
    print()
    for v in verdicts:
        print(f"{v['model']}, {v['input']}: p50 {v['p50_ms']:.3f} ms wall-clock ({v['cpu_p50_ms']:.3f} ms CPU) "
              f"{'meets' if v['met'] else 'misses'} the goal of <= {v['goal_p50_ms']} ms")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"when": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__,
                               "cpus": os.cpu_count(), "load_average": load, "threads": args.threads,
                               "runs": args.runs, "warmup": args.warmup, "rows": single, "batch_rows": batches,
                               "goals": verdicts}, indent=1), encoding="utf-8")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
