"""Shape changes, ``flatten`` and ``reshape``, in TF.js element order (H, W, C for images)."""

from __future__ import annotations

import math

from torch import nn

from ...errors import ModelFormatError, ShapeError
from .base import Layer, base_kwargs, shape_text


class Flatten(Layer):
    """Flattens all but the batch axis, in TF.js order (H, W, C for images)."""

    class_name = "Flatten"

    @classmethod
    def from_config(cls, c):
        return cls(**base_kwargs(c))

    def compute_output_shape(self, input_shape):
        return (math.prod(input_shape),)

    def build_module(self, input_shape):
        return _Flatten(image=len(input_shape) == 3)


class _Flatten(nn.Module):
    def __init__(self, image: bool):
        super().__init__()
        self.image = image

    def forward(self, x):
        if self.image:  # NCHW inside -> TF.js's H, W, C order (free for channels_last memory)
            x = x.permute(0, 2, 3, 1)
        return x.reshape(x.shape[0], -1)


class Reshape(Layer):
    """Reshape to ``target_shape`` (without the batch axis), TF.js element order."""

    class_name = "Reshape"

    def __init__(self, target_shape, **base):
        super().__init__(**base)
        if not isinstance(target_shape, (list, tuple)) or not target_shape or \
                any(not isinstance(d, int) or (d <= 0 and d != -1) for d in target_shape) or \
                list(target_shape).count(-1) > 1:
            raise ModelFormatError(f"{self.name}: target_shape must be positive ints (at most one -1), "
                                   f"got {target_shape!r}")
        self.target_shape = list(target_shape)

    def own_config(self):
        return {"target_shape": self.target_shape}

    @classmethod
    def from_config(cls, c):
        return cls(target_shape=c["target_shape"], **base_kwargs(c))

    def compute_output_shape(self, input_shape):
        total = math.prod(input_shape)
        known = math.prod(d for d in self.target_shape if d != -1)
        shape = [total // known if d == -1 else d for d in self.target_shape]
        if math.prod(shape) != total:
            raise ShapeError(f"{self.name}: cannot reshape {shape_text(input_shape)} ({total} values) "
                             f"to {self.target_shape}")
        return tuple(shape)

    def build_module(self, input_shape):
        return _Reshape(self.compute_output_shape(input_shape), from_image=len(input_shape) == 3)


class _Reshape(nn.Module):
    def __init__(self, target, from_image):
        super().__init__()
        self.target, self.from_image = tuple(target), from_image

    def forward(self, x):
        if self.from_image:
            x = x.permute(0, 2, 3, 1)
        x = x.reshape(x.shape[0], *self.target)
        if len(self.target) == 3:
            x = x.permute(0, 3, 1, 2)
        return x
