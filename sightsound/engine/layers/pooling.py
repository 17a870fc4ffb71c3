"""Pooling: max and average over windows, and the global average."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ModelFormatError, ShapeError
from .base import Layer, base_kwargs, check_padding, conv_out, pair, same_pads, shape_text


class _Pooling2D(Layer):
    kind: ClassVar[str] = "max"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format="channels_last", **base):
        super().__init__(**base)
        self.pool_size = pair(pool_size, f"{self.name}: pool_size")
        self.strides = pair(strides if strides is not None else self.pool_size, f"{self.name}: strides")
        self.padding = check_padding(padding)
        if data_format != "channels_last":
            raise ModelFormatError(f"{self.name}: data_format {data_format!r} is not supported (channels_last only)")

    def own_config(self):
        return {"pool_size": self.pool_size, "padding": self.padding, "strides": self.strides,
                "data_format": "channels_last"}

    @classmethod
    def from_config(cls, c):
        return cls(pool_size=c.get("pool_size", 2), strides=c.get("strides"), padding=c.get("padding", "valid"),
                   data_format=c.get("data_format") or "channels_last", **base_kwargs(c))

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
        h, w, _ = input_shape
        pads = None
        if self.padding == "same":
            top, bottom = same_pads(h, self.pool_size[0], self.strides[0])
            left, right = same_pads(w, self.pool_size[1], self.strides[1])
            if top or bottom or left or right:
                pads = (left, right, top, bottom)
        return _PoolBlock(self.kind, tuple(self.pool_size), tuple(self.strides), pads)


class _PoolBlock(nn.Module):
    def __init__(self, kind, pool, strides, pads):
        super().__init__()
        self.kind, self.pool, self.strides, self.pads = kind, pool, strides, pads
        self.post_activation = None  # the previous conv's relu, moved after max pooling by the model

    def forward(self, x):
        if self.kind == "max":
            if self.pads is not None:
                x = F.pad(x, self.pads, value=float("-inf"))
            x = F.max_pool2d(x, self.pool, self.strides)
            return x if self.post_activation is None else self.post_activation(x)
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


class GlobalAveragePooling2D(Layer):
    """Mean over height and width: [null,h,w,c] -> [null,c]."""

    class_name = "GlobalAveragePooling2D"

    def own_config(self):
        return {"data_format": "channels_last"}

    @classmethod
    def from_config(cls, c):
        if (c.get("data_format") or "channels_last") != "channels_last":
            raise ModelFormatError(f"{cls.class_name}: data_format {c['data_format']!r} is not supported")
        return cls(**base_kwargs(c))

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ShapeError(f"{self.name}: expects input [null,height,width,channels], got {shape_text(input_shape)}")
        return (input_shape[2],)

    def build_module(self, input_shape):
        return _GlobalAverage()


class _GlobalAverage(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))
