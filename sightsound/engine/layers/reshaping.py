"""Shape changes, ``flatten``, ``reshape`` and ``permute``, in TF.js element order (H, W, C for images)."""

from __future__ import annotations

import math

from torch import nn

from ...errors import ModelFormatError, ShapeError
from .base import Layer, base_kwargs, shape_text, to_engine_layout, to_tfjs_layout


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
            x = to_tfjs_layout(x)
        return x.reshape(x.shape[0], -1)


class Reshape(Layer):
    """Reshape to ``target_shape`` (without the batch axis), TF.js element order.

    One dimension may be unknown (``-1`` or null), worked out from the input's size; TF.js saves it as null.
    """

    class_name = "Reshape"

    def __init__(self, target_shape, **base):
        super().__init__(**base)
        if not isinstance(target_shape, (list, tuple)) or not target_shape or \
                any(d is not None and (not isinstance(d, int) or isinstance(d, bool) or (d <= 0 and d != -1))
                    for d in target_shape) or \
                sum(d is None or d == -1 for d in target_shape) > 1:
            raise ModelFormatError(f"{self.name}: target_shape must be positive ints (at most one -1 or null), "
                                   f"got {target_shape!r:.80}")
        self.target_shape = [None if d == -1 else d for d in target_shape]

    def own_config(self):
        return {"target_shape": self.target_shape}

    @classmethod
    def from_config(cls, c):
        return cls(target_shape=c["target_shape"], **base_kwargs(c))

    def compute_output_shape(self, input_shape):
        total = math.prod(input_shape)
        known = math.prod(d for d in self.target_shape if d is not None)
        shape = [total // known if d is None else d for d in self.target_shape]
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
            x = to_tfjs_layout(x)
        return to_engine_layout(x.reshape(x.shape[0], *self.target))


class Permute(Layer):
    """Reorders the axes after the batch: ``dims`` is a permutation of 1..rank (``tf.layers.permute``);
    ``dims=[2, 1]`` swaps the two axes of ``[steps, features]``."""

    class_name = "Permute"

    def __init__(self, dims, **base):
        super().__init__(**base)
        if not isinstance(dims, (list, tuple)) or not dims or \
                sorted(dims) != list(range(1, len(dims) + 1)) or any(isinstance(d, bool) for d in dims):
            raise ModelFormatError(f"{self.name}: dims must be a permutation of 1..n (the batch axis 0 stays "
                                   f"first), got {dims!r:.80}")
        self.dims = [int(d) for d in dims]

    def own_config(self):
        return {"dims": self.dims}

    @classmethod
    def from_config(cls, c):
        return cls(dims=c["dims"], **base_kwargs(c))

    def compute_output_shape(self, input_shape):
        if len(input_shape) != len(self.dims):
            raise ShapeError(f"{self.name}: dims {self.dims} need an input of rank {len(self.dims) + 1}, "
                             f"got {shape_text(input_shape)}")
        return tuple(input_shape[d - 1] for d in self.dims)

    def build_module(self, input_shape):
        self.compute_output_shape(input_shape)
        return _Permute([0, *self.dims])


class _Permute(nn.Module):
    def __init__(self, dims: list[int]):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return to_engine_layout(to_tfjs_layout(x).permute(self.dims))
