"""Training targets."""

from __future__ import annotations

import numpy as np


def smooth_labels(y: np.ndarray, epsilon: float) -> np.ndarray:
    """One-hot targets ``y`` with label smoothing, as Keras' ``CategoricalCrossentropy(label_smoothing=)``.

    >>> smooth_labels(np.eye(4, dtype=np.float32)[:1], 0.2).tolist()
    [[0.8500000238418579, 0.05000000074505806, 0.05000000074505806, 0.05000000074505806]]
    """
    if not 0 <= epsilon < 1:
        raise ValueError(f"label_smoothing must be in [0, 1), got {epsilon!r}")
    if not epsilon:
        return y
    return y * np.float32(1 - epsilon) + np.float32(epsilon / y.shape[1])
