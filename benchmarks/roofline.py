"""How close Listing 4.1/4.5/4.8 training is to what this CPU can compute at all.

Measures, on PyTorch's CPU kernels (oneDNN for convolutions, MKL/oneDNN for
matrix products):

* the machine's practical peak: a large square matrix product in float32 and
  in bfloat16 (GFLOP/s);
* each convolution and dense layer of the model, forward and backward
  (input and weight gradients) at the benchmark's batch size, as GFLOP/s;
* the FLOPs of one training sample (forward + backward, multiply-adds x 2)
  and the *kernel ceiling*: samples/s if a training step were nothing but
  these layers' kernels at the measured speeds; no engine built on the same
  kernels (the plain loop, Keras, TensorFlow's oneDNN) can train faster;
* the GFLOP/s that given throughput figures imply (``--compare``
  NAME=SAMPLES_PER_S, e.g. from ``benchmarks/throughput.py``).

    python benchmarks/roofline.py --model enhanced --batch 64 \\
        --compare "2x TensorFlow best=7908" "sightsound=4299"
    python benchmarks/roofline.py --model speech --batch 64 --json benchmarks/results/roofline-speech.json

Pooling, relu, dropout, the loss and the optimizer do no multiply-adds but
move memory; they are why real training stays below the ceiling.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from sightsound.engine.trainer import bfloat16_is_fast
from sightsound.runtime import tune_cpu_heap

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}

#: (kind, in_channels, out_channels, kernel (h, w), input (h, w)) per layer with multiply-adds
LAYERS = {
    "conv": [("conv", 1, 16, (3, 3), (28, 28)), ("conv", 16, 32, (3, 3), (13, 13)), ("dense", 800, 64, None, None),
             ("dense", 64, 10, None, None)],
    "enhanced": [("conv", 1, 32, (3, 3), (28, 28)), ("conv", 32, 32, (3, 3), (26, 26)),
                 ("conv", 32, 64, (3, 3), (12, 12)), ("conv", 64, 64, (3, 3), (10, 10)),
                 ("dense", 1024, 512, None, None), ("dense", 512, 10, None, None)],
    "speech": [("conv", 1, 8, (2, 8), (43, 232)), ("conv", 8, 32, (2, 4), (21, 112)),
               ("conv", 32, 32, (2, 4), (10, 54)), ("conv", 32, 32, (2, 4), (4, 25)),
               ("dense", 704, 2000, None, None), ("dense", 2000, 20, None, None)],
}
TITLES = {"conv": "Listing 4.1", "enhanced": "Listing 4.5", "speech": "Listing 4.8"}


def timed(fn, seconds: float = 1.0) -> float:
    """Median seconds per call over about ``seconds`` of calls (after a warm-up)."""
    for _ in range(3):
        fn()
    samples = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(samples) < 5:
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def matmul_peak(dtype: torch.dtype, n: int = 2048) -> float:
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    return 2 * n ** 3 / timed(lambda: a @ b) / 1e9


def layer_rows(model: str, batch: int, dtype: torch.dtype):
    rows, total_flops = [], 0.0
    for kind, cin, cout, k, size in LAYERS[model]:
        if kind == "conv":
            (kh, kw), (h, w_in) = k, size
            x = torch.randn(batch, cin, h, w_in).to(dtype).to(memory_format=torch.channels_last)
            w = torch.randn(cout, cin, kh, kw).to(dtype).to(memory_format=torch.channels_last)
            macs = batch * (h - kh + 1) * (w_in - kw + 1) * cout * cin * kh * kw
            x.requires_grad_(cin > 1)  # the first layer needs no input gradient
            w.requires_grad_()
            y = F.conv2d(x, w)
            g = torch.randn_like(y)
            fwd = timed(lambda: F.conv2d(x.detach(), w.detach()))
            bwd = timed(lambda: torch.autograd.grad(F.conv2d(x, w), [t for t in (x, w) if t.requires_grad], g))
            bwd -= fwd
            name = f"conv {cin}->{cout} {kh}x{kw} on {h}x{w_in}"
        else:
            x = torch.randn(batch, cin).to(dtype).requires_grad_()
            w = torch.randn(cin, cout).to(dtype).requires_grad_()
            macs = batch * cin * cout
            g = torch.randn(batch, cout).to(dtype)
            fwd = timed(lambda: x.detach() @ w.detach())
            bwd = timed(lambda: torch.autograd.grad(x @ w, [x, w], g)) - fwd
            name = f"dense {cin}->{cout}"
        passes = 3 if x.requires_grad else 2  # forward, weight gradient, input gradient
        flops = 2 * macs
        total_flops += passes * flops
        rows.append((name, flops / fwd / 1e9, (passes - 1) * flops / max(bwd, 1e-9) / 1e9, fwd + bwd))
    return rows, total_flops / batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--model", choices=sorted(LAYERS), default="enhanced",
                        help="conv = Listing 4.1, enhanced = Listing 4.5 (default), speech = Listing 4.8")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: PyTorch's)")
    parser.add_argument("--dtypes", nargs="+", choices=sorted(DTYPES), default=None,
                        help="kernel precisions to measure (default: float32, and bfloat16 where this CPU has "
                        "bfloat16 instructions; emulated bfloat16 runs at a few GFLOP/s and takes many minutes)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--compare", nargs="*", default=[], metavar="NAME=SAMPLES_PER_S",
                        help="throughput figures to express as GFLOP/s")
    args = parser.parse_args()
    tune_cpu_heap()  # the kernels' speed, not page faults on their freshly allocated outputs
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"model {args.model}")
    names = args.dtypes or ["float32"] + (["bfloat16"] if bfloat16_is_fast(torch.device("cpu")) else [])
    dtypes = [DTYPES[name] for name in names]
    if "bfloat16" not in names:
        print("bfloat16: not measured (this CPU has no bfloat16 instructions; --dtypes bfloat16 forces it)")
    peaks = {}
    for dtype in dtypes:
        peaks[dtype] = matmul_peak(dtype)
        print(f"matmul 2048x2048 {str(dtype)[6:]:9s} {peaks[dtype]:7.1f} GFLOP/s  (practical peak)")
    ceilings, layers = {}, {}
    for dtype in dtypes:
        rows, per_sample = layer_rows(args.model, args.batch, dtype)
        print(f"\n{str(dtype)[6:]}: layer                      forward GFLOP/s   backward GFLOP/s")
        for name, f, b, _ in rows:
            print(f"  {name:36s} {f:8.1f}          {b:8.1f}")
        kernels = args.batch / sum(seconds for *_, seconds in rows)
        print(f"  training FLOPs per sample: {per_sample / 1e6:.1f} M. Kernel ceiling: if these layers' "
              f"kernels were all a step did (no pooling, relu, dropout, loss, optimizer, data), "
              f"{kernels:,.0f} samples/s ({kernels * per_sample / 1e9:.0f} GFLOP/s)")
        ceilings[dtype] = kernels
        layers[str(dtype)[6:]] = [{"layer": name, "forward_gflops": f, "backward_gflops": b, "seconds": t}
                                  for name, f, b, t in rows]
    for item in args.compare:
        name, _, rate = item.partition("=")
        rate = float(rate)
        shares = ", ".join(f"{rate / ceiling:.0%} of the {str(dtype)[6:]} kernel ceiling"
                           for dtype, ceiling in ceilings.items())
        print(f"{name}: {rate:,.0f} samples/s = {rate * per_sample / 1e9:.0f} GFLOP/s ({shares})")
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({
            "when": time.strftime("%Y-%m-%d %H:%M:%S"), "model": args.model, "title": TITLES[args.model],
            "batch": args.batch, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "training_flops_per_sample": per_sample, "matmul_peak_gflops": {str(d)[6:]: v for d, v in peaks.items()},
            "kernel_ceiling_per_s": {str(d)[6:]: v for d, v in ceilings.items()}, "layers": layers}, indent=1))
        print(f"wrote {out}")


if __name__ == "__main__":
    main()

