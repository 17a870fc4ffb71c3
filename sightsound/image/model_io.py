"""Model inputs and outputs: one image as a model's input array; the top-k labels of its output."""

from __future__ import annotations

import numpy as np

from .decode import ImageSource
from .digits import MNIST_SIZE, prepare_digit
from .ops import from_pixels, normalize, resize_bilinear

__all__ = ["model_input", "top_k"]


def model_input(src: ImageSource, input_shape=(28, 28, 1), raw: bool = False, *,
                name: str | None = None) -> np.ndarray:
    """One image as a float32 ``input_shape`` array for a model (add the batch axis yourself).

    By default the digit is prepared with :func:`prepare_digit` (then resized/tiled if the model
    is not 28x28x1). ``raw=True`` does what the chapter's browser code does instead:
    ``fromPixels(img, channels)`` → ``resizeBilinear([h, w])`` → ``div(255)``.

    >>> model_input(np.zeros((50, 50), dtype=np.uint8), raw=True).shape
    (28, 28, 1)
    """
    height, width, channels = (int(s) for s in input_shape)
    if raw:
        pixels = from_pixels(src, num_channels=min(channels, 4), name=name)
        if pixels.shape[:2] != (height, width):
            pixels = resize_bilinear(pixels, (height, width))
        x = normalize(pixels)
    else:
        x = prepare_digit(src, name=name)
        if (height, width) != (MNIST_SIZE, MNIST_SIZE):
            x = resize_bilinear(x, (height, width))
    if x.shape[2] != channels:
        x = np.repeat(x[..., :1], channels, axis=2)
    return np.ascontiguousarray(x, dtype=np.float32)


def top_k(probabilities, k: int = 3) -> list[tuple[int, float]]:
    """The ``k`` most probable ``(label, probability)`` pairs, best first (ties: lower label first).

    >>> top_k([0.1, 0.7, 0.2], k=2)
    [(1, 0.7), (2, 0.2)]
    """
    probs = np.asarray(probabilities, dtype=np.float64).ravel()
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    order = np.argsort(-probs, kind="stable")[:k]
    return [(int(i), float(probs[i])) for i in order]
