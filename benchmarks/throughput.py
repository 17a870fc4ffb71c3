"""Training and prediction throughput of sightsound against its peers, side by side, on real MNIST.

Engines (one subprocess per engine and model, so imports, threads and peak
memory never mix):

  sightsound   model.fit / model.predict of the presets (the engine under test)
  torch        a plain PyTorch eager loop written here: NCHW nn.Sequential,
               torch.optim.RMSprop, index batching without a DataLoader, no
               tricks, run as written
  torch-heap   the same loop with the glibc heap settings sightsound makes in
               its own process (MALLOC_TOP_PAD_ and MALLOC_MMAP_THRESHOLD_ in
               its environment, from sightsound.runtime.heap_environment): the
               reference every ratio is taken against, so that ratios compare
               engines, not allocators (without it: the loop as written)
  torch-cl     the same loop with the model and batches in channels_last memory
               (an extra reference row: shows what the memory format alone buys)
  keras-torch  Keras 3 on the PyTorch backend (KERAS_BACKEND=torch), eager
  tensorflow   TensorFlow CPU + Keras 3 (KERAS_BACKEND=tensorflow), tf.function
               without XLA: the C++ kernels tfjs-node uses (--tf-xla to allow XLA);
               run by --tf-python when this interpreter has no TensorFlow
  tfjs         TF.js in Node, pure-JS CPU backend (benchmarks/js/tfjs_throughput.js),
               on a small sample; Listing 4.5 only with --tfjs-enhanced (too slow)
  *-bf16       sightsound, the plain loop and TensorFlow again in mixed precision:
               sightsound's dtype_policy="mixed_bfloat16", the plain loop's
               forward under torch.autocast(bfloat16), Keras' mixed_bfloat16
               policy (weights and optimizer stay float32 in all three; the
               kernels need AVX512-BF16/AMX to pay off; skipped on a CPU
               without bfloat16 instructions unless --force-bf16);
               torch-heap-bf16 is the autocast loop on sightsound's heap
               settings, the mixed-precision reference

Listing 4.1 trains at batch 320, Listing 4.5 at batch 64, rmsprop, categorical
cross-entropy (+ accuracy where the engine's API computes it). Every worker
first runs a short warm-up fit (3 batches) and a warm-up predict, then times
``--repeats`` one-epoch fits on the first ``--samples`` training images
(shuffled) and ``--repeats`` predictions on the first ``--predict-samples``
test images; the median is reported. Peak RSS is the worker's
``ru_maxrss`` right after its training repeats (before prediction), so it
covers interpreter + framework + data + training.

    python benchmarks/throughput.py                 # everything installed, 3 repeats
    python benchmarks/throughput.py --quick         # a smoke run (small subset, 2 repeats)
    python benchmarks/throughput.py --engines sightsound torch --models conv --repeats 5

Missing optional engines (keras, tensorflow-cpu, node/@tensorflow/tfjs) are
printed as "not installed" rows. JSON goes to benchmarks/results/throughput.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
JS_SCRIPT = HERE / "js" / "tfjs_throughput.js"
RESULT_MARK = "@@RESULT "
DEFAULT_TF_PYTHON = ROOT / ".venv-converter" / "bin" / "python"

MODELS = {"conv": {"title": "Listing 4.1", "batch": 320}, "enhanced": {"title": "Listing 4.5", "batch": 64}}
ENGINES = ["sightsound", "torch", "torch-heap", "torch-cl", "keras-torch", "tensorflow", "tfjs",
           "sightsound-bf16", "torch-bf16", "torch-heap-bf16", "tensorflow-bf16"]
LABELS = {
    "sightsound": "sightsound (model.fit / predict)",
    "torch": "plain PyTorch eager loop, NCHW, as written",
    "torch-heap": "plain PyTorch eager loop, NCHW, sightsound's heap settings (reference)",
    "torch-cl": "plain PyTorch eager loop, channels_last",
    "keras-torch": "Keras 3 on the PyTorch backend",
    "tensorflow": "TensorFlow CPU + Keras 3",
    "tfjs": "TF.js pure-JS CPU (Node)",
    "sightsound-bf16": "sightsound, dtype_policy mixed_bfloat16",
    "torch-bf16": "plain PyTorch loop under torch.autocast(bfloat16), as written",
    "torch-heap-bf16": "plain PyTorch loop under torch.autocast(bfloat16), sightsound's heap settings",
    "tensorflow-bf16": "TensorFlow CPU + Keras 3, policy mixed_bfloat16",
}
WARMUP_BATCHES = 3
NOISY_SPREAD = 1.5  # repeats whose fastest is this much faster than the slowest are flagged with a dagger
# Multiply-adds per sample, forward pass (convs + denses): used only to explain the TF.js 4.5 skip.
MACS = {"conv": 26 * 26 * 16 * 9 + 11 * 11 * 32 * 16 * 9 + 800 * 64 + 64 * 10,
        "enhanced": 26 * 26 * 32 * 9 + 24 * 24 * 32 * 32 * 9 + 10 * 10 * 64 * 32 * 9 + 8 * 8 * 64 * 64 * 9
        + 1024 * 512 + 512 * 10}


# =============================================================================== workers
# Each worker runs in its own process: ``throughput.py --worker ENGINE --model M --data DIR ...``
# and prints one "@@RESULT {json}" line.

def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _load_worker_data(data_dir: str, n_train: int, n_predict: int):
    import numpy as np

    d = Path(data_dir)
    x = np.load(d / "train_x.npy")[:n_train].astype(np.float32)[..., None] / np.float32(255)
    y = np.load(d / "train_y.npy")[:n_train].astype(np.int64)
    px = np.load(d / "test_x.npy")[:n_predict].astype(np.float32)[..., None] / np.float32(255)
    return np.ascontiguousarray(x), y, np.ascontiguousarray(px)


def _one_hot(y):
    import numpy as np

    out = np.zeros((len(y), 10), dtype=np.float32)
    out[np.arange(len(y)), y] = 1
    return out


def _minor_faults() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _timed_training(fn, n: int, a) -> dict:
    """The timed training repeats, and the page faults per step they cost (memory the heap gave back and
    had to fault in again: the main source of run-to-run swings on CPU)."""
    before = _minor_faults()
    rates = _timed_repeats(fn, n, a.repeats)
    steps = a.repeats * -(-n // a.batch)
    return {"train_per_s": rates, "faults_per_step": (_minor_faults() - before) / steps}


def _timed_repeats(fn, n: int, repeats: int) -> list[float]:
    rates = []
    for r in range(repeats):
        t0 = time.perf_counter()
        fn()
        rates.append(n / (time.perf_counter() - t0))
        print(f"  repeat {r + 1}: {rates[-1]:,.1f} samples/s", file=sys.stderr, flush=True)
    return rates


def _torch_threads(threads: int | None) -> int:
    import torch

    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def worker_sightsound(a, x, y, px) -> dict:
    import torch

    from sightsound import presets

    threads = _torch_threads(a.threads)
    torch.manual_seed(0)
    model = presets.build("mnist-conv" if a.model == "conv" else "mnist-enhanced", device="cpu")
    model.compile(optimizer="rmsprop", loss="categoricalCrossentropy", metrics=["accuracy"],
                  dtype_policy="mixed_bfloat16" if a.bf16 else "float32")
    yh = _one_hot(y)
    rss_setup = _peak_rss_mb()
    warm = min(WARMUP_BATCHES * a.batch, len(x))
    model.fit(x[:warm], yh[:warm], batch_size=a.batch, epochs=1)
    train = _timed_training(lambda: model.fit(x, yh, batch_size=a.batch, epochs=1), len(x), a)
    peak = _peak_rss_mb()
    model.predict(px, batch_size=a.predict_batch)
    predict = _timed_repeats(lambda: model.predict(px, batch_size=a.predict_batch), len(px), a.repeats)
    import sightsound

    return {"version": f"sightsound {sightsound.__version__}, torch {torch.__version__}", "threads": threads,
            **train, "predict_per_s": predict, "rss_setup_mb": rss_setup, "peak_rss_train_mb": peak}


def _plain_torch_model(kind: str):
    from torch import nn

    if kind == "conv":  # Listing 4.1, logits out (the softmax is in the loss / applied at predict)
        return nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Conv2d(16, 32, 3), nn.ReLU(),
                             nn.MaxPool2d(2, 2), nn.Flatten(), nn.Linear(800, 64), nn.ReLU(), nn.Linear(64, 10))
    return nn.Sequential(  # Listing 4.5
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.Conv2d(64, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(1024, 512), nn.ReLU(), nn.Dropout(0.5), nn.Linear(512, 10))


def worker_torch(a, x, y, px, channels_last: bool = False) -> dict:
    import torch
    import torch.nn.functional as F

    threads = _torch_threads(a.threads)
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = _plain_torch_model(a.model).to(memory_format=fmt)
    # TF.js's rmsprop hyper-parameters (decay 0.9, lr 1e-3); torch's default (for-loop) implementation.
    opt = torch.optim.RMSprop(net.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()
    xs = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=fmt)  # NHWC -> NCHW
    ys = torch.from_numpy(y)
    pxs = torch.from_numpy(px).permute(0, 3, 1, 2).contiguous(memory_format=fmt)

    def epoch(n: int) -> float:
        net.train()
        perm = torch.randperm(n)
        total = 0.0
        for i in range(0, n, a.batch):
            idx = perm[i:i + a.batch]
            xb, yb = xs[idx], ys[idx]
            if channels_last:
                xb = xb.contiguous(memory_format=fmt)
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
                logits = net(xb)
            loss = loss_fn(logits.float(), yb)
            loss.backward()
            opt.step()
            total += loss.item()  # the usual running-loss bookkeeping
        return total

    def predict():
        net.eval()
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            outs = [F.softmax(net(pxs[i:i + a.predict_batch]).float(), dim=1)
                    for i in range(0, len(pxs), a.predict_batch)]
            return torch.cat(outs).numpy()

    rss_setup = _peak_rss_mb()
    epoch(min(WARMUP_BATCHES * a.batch, len(xs)))
    train = _timed_training(lambda: epoch(len(xs)), len(xs), a)
    peak = _peak_rss_mb()
    predict()
    pred = _timed_repeats(predict, len(pxs), a.repeats)
    return {"version": f"torch {torch.__version__}", "threads": threads, **train,
            "predict_per_s": pred, "rss_setup_mb": rss_setup, "peak_rss_train_mb": peak}


def worker_keras(a, x, y, px) -> dict:
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "tensorflow":
        import tensorflow as tf

        if a.threads:
            tf.config.threading.set_intra_op_parallelism_threads(a.threads)
            tf.config.threading.set_inter_op_parallelism_threads(a.threads)
        version = f"tensorflow {tf.__version__}"
        threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    else:
        version = ""
        threads = _torch_threads(a.threads)
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    if a.bf16:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    if a.model == "conv":
        stack = [layers.Conv2D(16, 3, activation="relu"), layers.MaxPooling2D(2, 2),
                 layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2, 2), layers.Flatten(),
                 layers.Dense(64, activation="relu"), layers.Dense(10, activation="softmax")]
    else:
        stack = [layers.Conv2D(32, 3, activation="relu"), layers.Conv2D(32, 3, activation="relu"),
                 layers.MaxPooling2D(2), layers.Conv2D(64, 3, activation="relu"),
                 layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2), layers.Flatten(),
                 layers.Dropout(0.25), layers.Dense(512, activation="relu"), layers.Dropout(0.5),
                 layers.Dense(10, activation="softmax")]
    model = keras.Sequential([keras.Input((28, 28, 1))] + stack)
    jit = bool(a.tf_xla) if backend == "tensorflow" else False
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-3), loss="categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=jit)
    yh = _one_hot(y)
    rss_setup = _peak_rss_mb()
    warm = min(WARMUP_BATCHES * a.batch, len(x))
    model.fit(x[:warm], yh[:warm], batch_size=a.batch, epochs=1, verbose=0)
    train = _timed_training(lambda: model.fit(x, yh, batch_size=a.batch, epochs=1, verbose=0, shuffle=True),
                            len(x), a)
    peak = _peak_rss_mb()
    model.predict(px, batch_size=a.predict_batch, verbose=0)
    pred = _timed_repeats(lambda: model.predict(px, batch_size=a.predict_batch, verbose=0), len(px), a.repeats)
    if backend == "torch":
        import torch

        version = f"torch {torch.__version__}"
    return {"version": f"keras {keras.__version__}, {version}" + (", XLA" if jit else ""), "threads": threads,
            **train, "predict_per_s": pred, "rss_setup_mb": rss_setup, "peak_rss_train_mb": peak}


def run_worker(a) -> int:
    n_train = a.samples // a.batch * a.batch
    x, y, px = _load_worker_data(a.data, n_train, a.predict_samples)
    a.bf16 = a.worker.endswith("-bf16")
    a.worker = a.worker.removesuffix("-bf16")
    if a.worker == "sightsound":
        res = worker_sightsound(a, x, y, px)
    elif a.worker in ("torch", "torch-heap", "torch-cl"):
        res = worker_torch(a, x, y, px, channels_last=a.worker == "torch-cl")
    elif a.worker in ("keras-torch", "tensorflow"):
        res = worker_keras(a, x, y, px)
    else:
        raise SystemExit(f"unknown worker {a.worker}")
    res.update(engine=a.worker + ("-bf16" if a.bf16 else ""), model=a.model, batch=a.batch, load_average_end=os.getloadavg(),
               train_samples=len(x), predict_samples=len(px),
               train_median=statistics.median(res["train_per_s"]),
               predict_median=statistics.median(res["predict_per_s"]),
               train_best=max(res["train_per_s"]), predict_best=max(res["predict_per_s"]))
    print(RESULT_MARK + json.dumps(res), flush=True)
    return 0


# =============================================================================== parent

def engine_python(engine: str, a) -> str:
    """The interpreter that runs ``engine``'s worker: TensorFlow's from --tf-python when this one has no
    TensorFlow (the project's .venv-converter has TensorFlow and Keras 3), else this one."""
    if engine.startswith("tensorflow") and importlib.util.find_spec("tensorflow") is None and a.tf_python:
        return a.tf_python
    return sys.executable


def _has_modules(python: str, *modules: str) -> bool:
    if python == sys.executable:
        return all(importlib.util.find_spec(m) is not None for m in modules)
    probe = "import importlib.util, sys; sys.exit(any(importlib.util.find_spec(m) is None for m in sys.argv[1:]))"
    return subprocess.run([python, "-c", probe, *modules], capture_output=True, check=False).returncode == 0


def engine_missing(engine: str, a) -> str | None:
    """Why ``engine`` cannot run here, or None."""
    python = engine_python(engine, a)
    if engine.endswith("-bf16") and not a.force_bf16 and not _cpu_has_bfloat16():
        return "skipped: this CPU has no bfloat16 instructions, so mixed precision is emulated (--force-bf16)"
    if engine.startswith(("keras-torch", "tensorflow")) and not _has_modules(python, "keras"):
        return "not installed (pip install keras)"
    if engine.startswith("tensorflow") and not _has_modules(python, "tensorflow"):
        return "not installed (pip install tensorflow-cpu, or make converter for .venv-converter)"
    if engine == "tfjs":
        node = shutil.which("node")
        if node is None:
            return "not installed (no node on PATH)"
        found = subprocess.run([node, "-e", "require.resolve('@tensorflow/tfjs')"], cwd=JS_SCRIPT.parent,
                               capture_output=True, text=True)
        if found.returncode != 0:
            return "not installed (npm install @tensorflow/tfjs)"
    return None


def _cpu_has_bfloat16() -> bool:
    import torch

    from sightsound.engine.trainer import bfloat16_is_fast

    return bfloat16_is_fast(torch.device("cpu"))


def prepare_data(a, tmp: Path) -> dict:
    """Real MNIST subsets as .npy (Python workers) and raw little-endian files (the Node worker)."""
    import numpy as np

    from sightsound.data import mnist

    data = mnist.load_mnist(a.data_dir, progress=False, download=False)
    n = max(a.samples, a.tfjs_samples)
    if n > len(data.train_images):
        raise SystemExit(f"--samples {n} is more than the {len(data.train_images)} MNIST training images")
    np.save(tmp / "train_x.npy", data.train_images[:n])
    np.save(tmp / "train_y.npy", data.train_labels[:n].astype(np.uint8))
    np.save(tmp / "test_x.npy", data.test_images[:a.predict_samples])
    m = a.tfjs_samples
    (data.train_images[:m].astype("<f4") / np.float32(255)).tofile(tmp / "train_x.f32")
    data.train_labels[:m].astype(np.uint8).tofile(tmp / "train_y.u8")
    k = min(a.predict_samples, a.tfjs_predict_samples)
    (data.test_images[:k].astype("<f4") / np.float32(255)).tofile(tmp / "test_x.f32")
    data.test_labels[:k].astype(np.uint8).tofile(tmp / "test_y.u8")
    return {"train": len(data.train_images), "test": len(data.test_images)}


def _run(cmd: list[str], env: dict, timeout: float, cwd: Path) -> dict:
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            res = json.loads(line[len(RESULT_MARK):])
            res.update(status="ok", worker_wall_s=wall)
            return res
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-6:]
    return {"status": f"failed (exit {proc.returncode})", "error": "\n".join(tail)}


def run_engine(engine: str, model: str, a, tmp: Path) -> dict:
    batch = MODELS[model]["batch"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    if a.threads:
        env["OMP_NUM_THREADS"] = str(a.threads)
    if engine == "tfjs":
        if model == "enhanced" and not a.tfjs_enhanced:
            return {"status": "skipped", "reason": "skipped: pure-JS 4.5 has ~%.0fx the work of 4.1 per sample "
                    "(~%.1f samples/s expected); --tfjs-enhanced to run it" % (
                        MACS["enhanced"] / MACS["conv"], a._tfjs_conv_rate * MACS["conv"] / MACS["enhanced"])
                    if a._tfjs_conv_rate else "skipped: too slow in pure JS; --tfjs-enhanced to run it"}
        n = a.tfjs_samples // batch * batch
        if n == 0:
            return {"status": "skipped", "reason": f"--tfjs-samples {a.tfjs_samples} is less than one batch"}
        cmd = ["node", str(JS_SCRIPT), "--data", str(tmp), "--model", model, "--samples", str(n),
               "--batch", str(batch), "--repeats", str(a.tfjs_repeats),
               "--predict-samples", str(min(a.predict_samples, a.tfjs_predict_samples)),
               "--predict-batch", str(a.predict_batch)]
        return _run(cmd, env, a.timeout, ROOT)
    if engine.startswith("torch-heap"):
        from sightsound.runtime import heap_environment

        env.update(heap_environment())
    if engine == "keras-torch":
        env["KERAS_BACKEND"] = "torch"
    elif engine in ("tensorflow", "tensorflow-bf16"):
        env["KERAS_BACKEND"] = "tensorflow"
    cmd = [engine_python(engine, a), str(Path(__file__).resolve()), "--worker", engine, "--model", model, "--data", str(tmp),
           "--samples", str(a.samples), "--batch", str(batch), "--repeats", str(a.repeats),
           "--predict-samples", str(a.predict_samples), "--predict-batch", str(a.predict_batch)]
    if a.threads:
        cmd += ["--threads", str(a.threads)]
    if a.tf_xla:
        cmd += ["--tf-xla"]
    return _run(cmd, env, a.timeout, ROOT)


def _fmt_rate(r: dict | None, key: str) -> str:
    if r is None:
        return "–"
    if r.get("status") != "ok":
        return r.get("status", "?") if r.get("status") in ("not installed", "skipped") else "failed"
    v = r[key]
    text = f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"
    return text + ("†" if _spread(r, key) > NOISY_SPREAD else "")


def _spread(r: dict, key: str) -> float:
    """max / min of the repeats behind a median: far above 1 means the machine was busy."""
    values = r.get(key.replace("_median", "_per_s")) or []
    return max(values) / min(values) if values and min(values) > 0 else 1.0


def _fmt_ratio(r: dict | None, ref: dict | None, key: str) -> str:
    if not r or not ref or r.get("status") != "ok" or ref.get("status") != "ok":
        return "–"
    ratio = r[key] / ref[key]
    return f"{ratio:.2f}×" if ratio >= 0.1 else f"{ratio:.2g}×"


def reference_engine(engines: list[str]) -> str:
    """The row every ratio is taken against: the plain loop on sightsound's heap settings when it ran (engines
    compared, not allocators), else the plain loop as written."""
    return "torch-heap" if "torch-heap" in engines else "torch"


def print_table(results: dict, engines: list[str], models: list[str]) -> None:
    ref_engine = reference_engine(engines)
    cols = []
    for m in models:
        cols.append((m, "train_median", f"{MODELS[m]['title']} train (batch {MODELS[m]['batch']})"))
    for m in models:
        cols.append((m, "predict_median", f"{MODELS[m]['title']} predict"))
    ratio = "× plain, same heap" if ref_engine == "torch-heap" else "× plain"
    head = "| engine | " + " | ".join(f"{title}, samples/s | {ratio}" for _, _, title in cols)
    if "enhanced" in models:
        head += " | peak RSS, training 4.5 (MB)"
    print(head + " |")
    print("|---|" + "---:|---:|" * len(cols) + ("---:|" if "enhanced" in models else ""))
    notes = []
    for e in engines:
        cells = [LABELS[e]]
        for m, key, _ in cols:
            r = results.get(e, {}).get(m)
            ref = results.get(ref_engine, {}).get(m)
            cells += [_fmt_rate(r, key), _fmt_ratio(r, ref, key)]
        if "enhanced" in models:
            r = results.get(e, {}).get("enhanced")
            cells.append(f"{r['peak_rss_train_mb']:,.0f}" if r and r.get("status") == "ok" else "–")
        print("| " + " | ".join(cells) + " |")
        for m in models:
            r = results.get(e, {}).get(m) or {}
            if r.get("status") != "ok":
                why = r.get("reason") or r.get("status", "?")
                note = f"{LABELS[e]}, {MODELS[m]['title']}: {why}"
                if r.get("error"):
                    note += " -- " + r["error"].splitlines()[-1]
                notes.append(note)
    if any(_spread(results.get(e, {}).get(m) or {}, key) > NOISY_SPREAD
           for e in engines for m, key, _ in cols if (results.get(e, {}).get(m) or {}).get("status") == "ok"):
        notes.append(f"† the fastest and slowest repeats differ by more than {NOISY_SPREAD}×: the CPU was busy "
                     "(other processes, or OpenMP threads waiting on a descheduled peer); rerun on a quiet "
                     "machine, with --rounds, or with --threads 1")
    faults = []
    for e in engines:
        per_model = [(results.get(e, {}).get(m) or {}).get("faults_per_step") for m in models]
        if any(f is not None for f in per_model):
            faults.append(f"{e} " + " / ".join("–" if f is None else f"{f:,.0f}" for f in per_model))
    if faults:
        notes.append(f"page faults per training step ({' / '.join(MODELS[m]['title'] for m in models)}; memory "
                     f"the heap returned and faulted in again, the usual cause of swings): " + ", ".join(faults))
    for n in dict.fromkeys(notes):
        print(f"- {n}")


def merge_rounds(rounds: list[dict]) -> dict:
    """One result from several rounds of the same worker: all repeats pooled, median over the pool."""
    ok = [r for r in rounds if r.get("status") == "ok"]
    if not ok:
        return rounds[-1]
    if len(ok) == 1 and len(rounds) == 1:
        return ok[0]
    merged = dict(ok[-1])
    merged["train_per_s"] = [v for r in ok for v in r["train_per_s"]]
    merged["predict_per_s"] = [v for r in ok for v in r["predict_per_s"]]
    merged["train_median"] = statistics.median(merged["train_per_s"])
    merged["predict_median"] = statistics.median(merged["predict_per_s"])
    merged["train_best"] = max(merged["train_per_s"])
    merged["predict_best"] = max(merged["predict_per_s"])
    merged["peak_rss_train_mb"] = max(r["peak_rss_train_mb"] for r in ok)
    faults = [r["faults_per_step"] for r in ok if "faults_per_step" in r]
    if faults:
        merged["faults_per_step"] = statistics.median(faults)
    merged["rounds_ok"] = f"{len(ok)}/{len(rounds)}"
    return merged


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--engines", nargs="+", default=ENGINES, choices=ENGINES)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--samples", type=int, help="training images timed per repeat (default 12800; quick 3200); "
                   "rounded down to a multiple of the batch size")
    p.add_argument("--repeats", type=int, help="timed repetitions, median reported (default 3; quick 2)")
    p.add_argument("--predict-samples", type=int, help="test images per prediction run (default 10000; quick 2048)")
    p.add_argument("--predict-batch", type=int, default=1024, help="prediction batch size, all engines")
    p.add_argument("--tfjs-samples", type=int, help="training images for TF.js (default 640; quick 320)")
    p.add_argument("--tfjs-repeats", type=int, help="timed repetitions for TF.js (default 1: ~35 s a batch of 320)")
    p.add_argument("--tfjs-predict-samples", type=int, default=2048)
    p.add_argument("--tfjs-enhanced", action="store_true", help="also run Listing 4.5 in TF.js (minutes)")
    p.add_argument("--tf-xla", action="store_true", help="let Keras compile the TensorFlow step with XLA")
    p.add_argument("--tf-python", default=str(DEFAULT_TF_PYTHON) if DEFAULT_TF_PYTHON.exists() else None,
                   help="interpreter for the TensorFlow engines when this one has no TensorFlow "
                   "(default: .venv-converter/bin/python, made by make converter)")
    p.add_argument("--force-bf16", action="store_true", help="run the -bf16 engines on a CPU without bfloat16 "
                   "instructions too (emulated: slow)")
    p.add_argument("--threads", type=int, help="intra-op threads for every engine (default: each one's own)")
    p.add_argument("--rounds", type=int, default=1, help="run the whole engine sequence this many times and "
                   "pool the repeats (interleaves engines, so drifting machine load hits all of them alike)")
    p.add_argument("--quick", action="store_true", help="small subset and 2 repeats: checks that it all runs")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per engine and model")
    p.add_argument("--data-dir", help="dataset root (default $SIGHTSOUND_DATA)")
    p.add_argument("--json", default=str(HERE / "results" / "throughput.json"))
    # worker mode (internal)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    return p


def settle_settings(a, p: argparse.ArgumentParser) -> list[str]:
    """Fills in the sizes left unset (their defaults depend on --quick), checks them, and returns the engines to
    run in table order."""
    quick = a.quick
    a.samples = a.samples or (3200 if quick else 12800)
    a.repeats = a.repeats or (2 if quick else 3)
    a.predict_samples = a.predict_samples or (2048 if quick else 10000)
    a.tfjs_samples = a.tfjs_samples if a.tfjs_samples is not None else (320 if quick else 640)
    a.tfjs_repeats = a.tfjs_repeats or 1
    a._tfjs_conv_rate = None  # set once TF.js has run 4.1: run_engine uses it to explain skipping 4.5
    engines = [e for e in ENGINES if e in a.engines]
    biggest = max(MODELS[m]["batch"] for m in a.models)
    if a.samples < biggest or a.repeats < 1 or a.predict_samples < 1 or a.rounds < 1:
        p.error(f"--samples must be at least one batch ({biggest}); --repeats, --rounds and --predict-samples >= 1")
    if "torch" not in engines and "torch-heap" not in engines:
        print("note: no plain loop (torch, torch-heap) among --engines, so no ratios", file=sys.stderr)
    return engines


def run_round(rnd: int, a, engines: list[str], missing: dict, tmp: Path, raw: dict) -> None:
    """One pass over every model and engine (round ``rnd``), adding each worker's result to ``raw``."""
    for model in a.models:
        for engine in engines:
            tag = f"{engine:12s} {model:9s}" + (f" round {rnd + 1}" if a.rounds > 1 else "")
            if missing[engine]:
                if rnd == 0:
                    print(f"{tag}: {missing[engine]}", file=sys.stderr, flush=True)
                status = "skipped" if missing[engine].startswith("skipped") else "not installed"
                raw[engine][model] = [{"status": status, "reason": missing[engine]}]
                continue
            if engine == "tfjs" and rnd > 0:  # minutes per run: once is enough
                continue
            raw[engine][model].append(run_and_log(engine, model, a, tmp, tag))


def run_and_log(engine: str, model: str, a, tmp: Path, tag: str) -> dict:
    """One worker run, with its progress and outcome on stderr."""
    print(f"{tag}: running...", file=sys.stderr, flush=True)
    r = run_engine(engine, model, a, tmp)
    if engine == "tfjs" and model == "conv" and r.get("status") == "ok":
        a._tfjs_conv_rate = r["train_median"]
    if r.get("status") == "ok":
        print(f"{tag}: train {r['train_median']:,.1f}/s, predict {r['predict_median']:,.1f}/s, "
              f"peak RSS {r['peak_rss_train_mb']:,.0f} MB", file=sys.stderr, flush=True)
    else:
        print(f"{tag}: {r.get('reason') or r['status']}\n{r.get('error', '')}", file=sys.stderr, flush=True)
    return r


def print_report(a, engines: list[str], results: dict, load_start, load_end) -> None:
    """The settings line, the Markdown table and the engines' versions, on stdout."""
    print(f"\nMNIST throughput, samples/s (median of {a.repeats * a.rounds}; TF.js: {a.tfjs_repeats}), "
          f"{os.cpu_count()} CPUs, load average {load_start[0]:.2f} -> {load_end[0]:.2f}"
          f"{' (quick mode)' if a.quick else ''}")
    subset = ", ".join(f"{a.samples // MODELS[m]['batch'] * MODELS[m]['batch']} images for {MODELS[m]['title']}"
                       for m in a.models)
    print(f"training subset: {subset}; TF.js "
          f"{a.tfjs_samples} images; prediction {a.predict_samples} test images (TF.js "
          f"{min(a.predict_samples, a.tfjs_predict_samples)}), batch {a.predict_batch}\n")
    print_table(results, engines, a.models)
    versions = {e: next((r["version"] for r in results[e].values() if r.get("status") == "ok"), None)
                for e in engines}
    threads = {e: next((r["threads"] for r in results[e].values() if r.get("status") == "ok"), None)
               for e in engines}
    print("\n" + "; ".join(f"{e}: {v} ({threads[e]} thread{'s' if threads[e] != 1 else ''})"
                           for e, v in versions.items() if v))


def write_json(a, started: str, load_start, load_end, sizes: dict, results: dict) -> None:
    out = Path(a.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "when": started, "quick": a.quick, "cpu_count": os.cpu_count(), "platform": platform.platform(),
        "python": platform.python_version(), "load_average_start": load_start, "load_average_end": load_end,
        "settings": {"samples": a.samples, "repeats": a.repeats, "predict_samples": a.predict_samples,
                     "predict_batch": a.predict_batch, "tfjs_samples": a.tfjs_samples,
                     "tfjs_repeats": a.tfjs_repeats, "rounds": a.rounds, "threads": a.threads, "tf_xla": a.tf_xla,
                     "warmup_batches": WARMUP_BATCHES, "batches": {m: MODELS[m]["batch"] for m in MODELS},
                     "mnist": sizes},
        "results": results}, indent=1))
    print(f"wrote {out}")


def main(argv=None) -> int:
    p = build_parser()
    a = p.parse_args(argv)
    if a.worker:
        return run_worker(a)

    engines = settle_settings(a, p)
    load_start = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    raw: dict[str, dict[str, list]] = {e: {m: [] for m in a.models} for e in engines}
    missing = {e: engine_missing(e, a) for e in engines}
    with tempfile.TemporaryDirectory(prefix="sightsound-bench-") as tmpdir:
        tmp = Path(tmpdir)
        try:
            sizes = prepare_data(a, tmp)
        except Exception as error:  # missing or corrupt MNIST: say so without a traceback
            print(f"cannot load MNIST: {error}\n(set SIGHTSOUND_DATA or --data-dir to the dataset root)",
                  file=sys.stderr)
            return 2
        for rnd in range(a.rounds):
            run_round(rnd, a, engines, missing, tmp, raw)
    results = {e: {m: merge_rounds(raw[e][m]) for m in a.models} for e in engines}
    load_end = os.getloadavg()
    print_report(a, engines, results, load_start, load_end)
    write_json(a, started, load_start, load_end, sizes, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
