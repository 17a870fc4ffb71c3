"""Pooling: max and average over windows (2-D and 1-D), and the global max and average."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ModelFormatError, ShapeError
from .base import Layer, base_kwargs, check_data_format, check_padding, conv_out, pair, shape_text, single, spatial_pads


class _Pooling2D(Layer):
    kind: ClassVar[str] = "max"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format="channels_last", **base):
        super().__init__(**base)
        self.pool_size = pair(pool_size, f"{self.name}: pool_size")
        self.strides = pair(strides if strides is not None else self.pool_size, f"{self.name}: strides")
        self.padding = check_padding(padding, self.name)
        check_data_format(data_format, self.name)

    def own_config(self):
        return {"pool_size": self.pool_size, "padding": self.padding, "strides": self.strides,
                "data_format": "channels_last"}

    @classmethod
    def from_config(cls, c):
        return cls(pool_size=c.get("pool_size", 2), strides=c.get("strides"), padding=c.get("padding", "valid"),
                   data_format=c.get("data_format"), **base_kwargs(c))

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ShapeError(f"{self.name}: expects input [null,height,width,channels], got {shape_text(input_shape)}")
        h, w, c = input_shape
        oh = conv_out(h, self.pool_size[0], self.strides[0], self.padding)
        ow = conv_out(w, self.pool_size[1], self.strides[1], self.padding)
        if oh <= 0 or ow <= 0:
            raise ShapeError(f"{self.name}: input {shape_text(input_shape)} is smaller than the pool {self.pool_size}")
        return (oh, ow, c)

    def build_module(self, input_shape):
        self.compute_output_shape(input_shape)
        pads = spatial_pads(input_shape[:2], self.pool_size, self.strides, self.padding)
        return _PoolBlock(self.kind, tuple(self.pool_size), tuple(self.strides), pads)


class _PoolBlock(nn.Module):
    def __init__(self, kind, pool, strides, pads):
        super().__init__()
        self.kind, self.pool, self.strides, self.pads = kind, pool, strides, pads

    def forward(self, x):
        if self.kind == "max":
            if self.pads is not None:
                x = F.pad(x, self.pads, value=float("-inf"))
            return F.max_pool2d(x, self.pool, self.strides)
        if self.pads is None:
            return F.avg_pool2d(x, self.pool, self.strides)
        # TF averages over the real pixels only: sum of values / count of real pixels.
        total = F.avg_pool2d(F.pad(x, self.pads), self.pool, self.strides, divisor_override=1)
        ones = torch.ones((1, 1, *x.shape[2:]), dtype=x.dtype, device=x.device)
        count = F.avg_pool2d(F.pad(ones, self.pads), self.pool, self.strides, divisor_override=1)
        return total / count


class MaxPooling2D(_Pooling2D):
    """Max pooling; strides default to the pool size (``tf.layers.maxPooling2d``)."""

    class_name = "MaxPooling2D"
    kind = "max"


class AveragePooling2D(_Pooling2D):
    """Average pooling; strides default to the pool size (``tf.layers.averagePooling2d``)."""

    class_name = "AveragePooling2D"
    kind = "avg"


class _Pooling1D(Layer):
    """TF.js's ``Pooling1D``: a 2-D pool of height ``pool_size`` and width 1 over ``[steps, channels]``."""

    kind: ClassVar[str] = "max"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format="channels_last", **base):
        super().__init__(**base)
        self.pool_size = single(pool_size, f"{self.name}: pool_size")
        self.strides = single(strides if strides is not None else self.pool_size, f"{self.name}: strides")
        self.padding = check_padding(padding, self.name)
        check_data_format(data_format, self.name)  # Keras writes it; TF.js's 1-D pools have no data_format

    def own_config(self):
        return {"pool_size": self.pool_size, "padding": self.padding, "strides": self.strides}

    @classmethod
    def from_config(cls, c):
        return cls(pool_size=c.get("pool_size", 2), strides=c.get("strides"), padding=c.get("padding", "valid"),
                   data_format=c.get("data_format"), **base_kwargs(c))

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 2:
            raise ShapeError(f"{self.name}: expects input [null,steps,channels], got {shape_text(input_shape)}")
        steps = conv_out(input_shape[0], self.pool_size[0], self.strides[0], self.padding)
        if steps <= 0:
            raise ShapeError(f"{self.name}: input {shape_text(input_shape)} is shorter than the pool {self.pool_size}")
        return (steps, input_shape[1])

    def build_module(self, input_shape):
        self.compute_output_shape(input_shape)
        pool, strides = (self.pool_size[0], 1), (self.strides[0], 1)
        pads = spatial_pads((input_shape[0], 1), pool, strides, self.padding)
        return _Pool1DBlock(_PoolBlock(self.kind, pool, strides, pads))


class _Pool1DBlock(nn.Module):
    """[N, steps, channels] as the [N, channels, steps, 1] image the 2-D pool (and TF.js) works on."""

    def __init__(self, pool: nn.Module):
        super().__init__()
        self.pool = pool

    def forward(self, x):
        return self.pool(x.transpose(1, 2).unsqueeze(-1)).squeeze(-1).transpose(1, 2)


class MaxPooling1D(_Pooling1D):
    """Max pooling over steps; strides default to the pool size (``tf.layers.maxPooling1d``)."""

    class_name = "MaxPooling1D"
    kind = "max"


class AveragePooling1D(_Pooling1D):
    """Average pooling over steps; strides default to the pool size (``tf.layers.averagePooling1d``)."""

    class_name = "AveragePooling1D"
    kind = "avg"


class _GlobalPooling(Layer):
    """Max or mean over all positions: images ``[h, w, c]`` (``rank`` 3) or sequences ``[steps, c]`` (2).

    ``keepdims`` (Keras 2.6+) keeps the pooled axes with size 1. TF.js 4.22 has no such option: it writes
    none (nor is one written here unless true) and would ignore one it reads.
    """

    kind: ClassVar[str] = "avg"
    rank: ClassVar[int] = 3

    def __init__(self, data_format="channels_last", keepdims=False, **base):
        super().__init__(**base)
        check_data_format(data_format, self.name)
        if not isinstance(keepdims, bool):
            raise ModelFormatError(f"{self.name}: keepdims must be true or false, got {keepdims!r:.80}")
        self.keepdims = keepdims

    def own_config(self):
        cfg = {"data_format": "channels_last"} if self.rank == 3 else {}
        return {**cfg, "keepdims": True} if self.keepdims else cfg

    @classmethod
    def from_config(cls, c):
        return cls(data_format=c.get("data_format"), keepdims=c.get("keepdims", False), **base_kwargs(c))

    def compute_output_shape(self, input_shape):
        if len(input_shape) != self.rank:
            expected = "[null,height,width,channels]" if self.rank == 3 else "[null,steps,channels]"
            raise ShapeError(f"{self.name}: expects input {expected}, got {shape_text(input_shape)}")
        pooled = (1,) * (self.rank - 1) if self.keepdims else ()
        return (*pooled, input_shape[-1])

    def build_module(self, input_shape):
        self.compute_output_shape(input_shape)
        return _GlobalPool(self.kind, (2, 3) if self.rank == 3 else (1,), self.keepdims)


class _GlobalPool(nn.Module):
    def __init__(self, kind: str, dims: tuple[int, ...], keepdims: bool):
        super().__init__()
        self.kind, self.dims, self.keepdims = kind, dims, keepdims

    def forward(self, x):
        if self.kind == "max":
            return x.amax(dim=self.dims, keepdim=self.keepdims)
        return x.mean(dim=self.dims, keepdim=self.keepdims)


class GlobalAveragePooling2D(_GlobalPooling):
    """Mean over height and width: [null,h,w,c] -> [null,c] (``tf.layers.globalAveragePooling2d``)."""

    class_name = "GlobalAveragePooling2D"
    kind = "avg"


class GlobalMaxPooling2D(_GlobalPooling):
    """Max over height and width: [null,h,w,c] -> [null,c] (``tf.layers.globalMaxPooling2d``)."""

    class_name = "GlobalMaxPooling2D"
    kind = "max"


class GlobalAveragePooling1D(_GlobalPooling):
    """Mean over steps: [null,steps,c] -> [null,c] (``tf.layers.globalAveragePooling1d``)."""

    class_name = "GlobalAveragePooling1D"
    kind = "avg"
    rank = 2


class GlobalMaxPooling1D(_GlobalPooling):
    """Max over steps: [null,steps,c] -> [null,c] (``tf.layers.globalMaxPooling1d``)."""

    class_name = "GlobalMaxPooling1D"
    kind = "max"
    rank = 2
