"""Helpers shared by the tests: PNG bytes and a tiny synthetic MNIST."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


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
