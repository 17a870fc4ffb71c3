"""Helpers shared by the tests: PNG bytes, a tiny synthetic MNIST, a tiny speech model, the test Host."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

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
