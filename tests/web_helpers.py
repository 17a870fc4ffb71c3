"""Helpers shared by the tests: PNG bytes, a tiny synthetic MNIST, a tiny speech model, the test Host, and
``sightsound serve`` in a subprocess with the Chromium settings for the browser tests."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("SIGHTSOUND_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BROWSER_MODEL = "conv-browser"  # the MNIST model the browser tests train once per session (conftest)
TESTCLIENT_HOST = "testserver"  # the Host starlette's TestClient sends (websockets always use it): allow it
SPEECH_WORDS = ["_background_noise_", "_unknown_", "no", "yes"]


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def synthetic_mnist(train: int, test: int, seed: int):
    """``(x_train, y_train, x_test, y_test)`` uint8 arrays: noise plus a learnable bright bar whose column
    depends on the label."""
    rng = np.random.default_rng(seed)

    def split(n):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            images[i, 4:24, 2 + 2 * label:4 + 2 * label] = 255
        return images, labels.astype(np.uint8)

    return (*split(train), *split(test))


def write_synthetic_mnist(root: Path, train: int, test: int, seed: int) -> Path:
    """:func:`synthetic_mnist` as ``root/mnist/mnist.npz`` (Keras layout)."""
    (root / "mnist").mkdir(parents=True, exist_ok=True)
    x_train, y_train, x_test, y_test = synthetic_mnist(train, test, seed)
    np.savez(root / "mnist" / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return root


def save_speech_model(folder: Path, filters: int = 4) -> Path:
    """A random-weight speech model over 43x232 spectrograms with :data:`SPEECH_WORDS` saved as ``folder``."""
    from sightsound.engine import layers as L
    from sightsound.engine.sequential import Sequential

    model = Sequential([L.conv2d(input_shape=[43, 232, 1], filters=filters, kernel_size=[2, 8], activation="relu"),
                        L.max_pooling2d(pool_size=[4, 8]), L.flatten(),
                        L.dense(units=len(SPEECH_WORDS), activation="softmax")], device="cpu")
    model.save(str(folder))
    (folder / "metadata.json").write_text(json.dumps({"words": SPEECH_WORDS, "frameSize": 232}))
    return folder


def _read_url(process: subprocess.Popen, timeout: float) -> str:
    """The URL ``sightsound serve`` prints on its first line."""
    found: list[str] = []

    def read():
        line = process.stdout.readline()
        found.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    match = re.search(r"http://127\.0\.0\.1:\d+/", found[0] if found else "")
    if not match:
        process.kill()
        raise RuntimeError(f"sightsound serve did not print its URL: {found} {process.stderr.read()[-2000:]}")
    return match.group(0)


@contextlib.contextmanager
def serve(models_dir: Path, *options: str) -> Iterator[str]:
    """``sightsound serve --port 0 --models models_dir *options`` (a free port) in a subprocess, with
    ``$SIGHTSOUND_DATA`` as its data folder; yields its base URL once it answers."""
    command = [sys.executable, "-m", "sightsound", "serve", "--host", "127.0.0.1", "--port", "0",
               "--models", str(models_dir), *options]
    if os.environ.get("SIGHTSOUND_DATA"):
        command += ["--data-dir", os.environ["SIGHTSOUND_DATA"]]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        url = _read_url(process, timeout=60)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "api/info", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
