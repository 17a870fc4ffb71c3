"""2-D convolution: :class:`Conv2D` and the PyTorch block that runs it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ModelFormatError, ShapeError
from .. import activations, initializers
from .base import (ActivationMixin, Layer, WeightSpec, base_kwargs, check_padding, conv_out, init_params,
                   kernel_and_bias, no_extras, pair, positive, same_pads, shape_text)


class Conv2D(Layer, ActivationMixin):
    """2-D convolution over NHWC images (``tf.layers.conv2d``)."""

    class_name = "Conv2D"

    def __init__(self, filters: int, kernel_size, strides=1, padding="valid", data_format="channels_last",
                 dilation_rate=1, activation=None, use_bias=True, kernel_initializer=None,
                 bias_initializer=None, **base):
        super().__init__(**base)
        self.filters = int(positive(filters, f"{self.name}: filters"))
        self.kernel_size = pair(kernel_size, f"{self.name}: kernel_size")
        self.strides = pair(strides, f"{self.name}: strides")
        self.padding = check_padding(padding)
        if data_format != "channels_last":
            raise ModelFormatError(f"{self.name}: data_format {data_format!r} is not supported (channels_last only)")
        self.dilation_rate = pair(dilation_rate, f"{self.name}: dilation_rate")
        self._set_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.normalize(kernel_initializer)
        self.bias_initializer = initializers.normalize(bias_initializer or "zeros")

    def own_config(self):
        return {"filters": self.filters, "kernel_initializer": self.kernel_initializer,
                "kernel_regularizer": None, "kernel_constraint": None,
                "kernel_size": self.kernel_size, "strides": self.strides, "padding": self.padding,
                "data_format": "channels_last", "dilation_rate": self.dilation_rate,
                "activation": self.activation, "use_bias": self.use_bias,
                "bias_initializer": self.bias_initializer, "bias_regularizer": None,
                "activity_regularizer": None, "bias_constraint": None}

    @classmethod
    def from_config(cls, c):
        no_extras(cls.class_name, c, "kernel_regularizer", "kernel_constraint", "bias_regularizer",
                   "activity_regularizer", "bias_constraint")
        return cls(filters=c["filters"], kernel_size=c["kernel_size"], strides=c.get("strides", 1),
                   padding=c.get("padding", "valid"), data_format=c.get("data_format") or "channels_last",
                   dilation_rate=c.get("dilation_rate", 1), activation=c.get("activation"),
                   use_bias=c.get("use_bias", True), kernel_initializer=c.get("kernel_initializer"),
                   bias_initializer=c.get("bias_initializer"), **base_kwargs(c))

    def _check_input(self, input_shape):
        if len(input_shape) != 3:
            raise ShapeError(f"{self.name}: expects input [null,height,width,channels], got {shape_text(input_shape)}")

    def compute_output_shape(self, input_shape):
        self._check_input(input_shape)
        h, w, _ = input_shape
        oh = conv_out(h, self.kernel_size[0], self.strides[0], self.padding, self.dilation_rate[0])
        ow = conv_out(w, self.kernel_size[1], self.strides[1], self.padding, self.dilation_rate[1])
        if oh <= 0 or ow <= 0:
            raise ShapeError(f"{self.name}: input {shape_text(input_shape)} is smaller than the kernel "
                             f"{self.kernel_size}")
        return (oh, ow, self.filters)

    def weight_specs(self, input_shape):
        self._check_input(input_shape)
        specs = [WeightSpec("kernel", (*self.kernel_size, input_shape[2], self.filters), True,
                            self.kernel_initializer)]
        if self.use_bias:
            specs.append(WeightSpec("bias", (self.filters,), True, self.bias_initializer))
        return specs

    def build_module(self, input_shape):
        self.compute_output_shape(input_shape)
        h, w, c = input_shape
        pads = (0, 0, 0, 0)
        if self.padding == "same":
            top, bottom = same_pads(h, self.kernel_size[0], self.strides[0], self.dilation_rate[0])
            left, right = same_pads(w, self.kernel_size[1], self.strides[1], self.dilation_rate[1])
            pads = (left, right, top, bottom)
        symmetric = pads[0] == pads[1] and pads[2] == pads[3]
        conv = nn.Conv2d(c, self.filters, tuple(self.kernel_size), stride=tuple(self.strides),
                         padding=(pads[2], pads[0]) if symmetric else 0,
                         dilation=tuple(self.dilation_rate), bias=self.use_bias)
        module = _ConvBlock(conv, None if symmetric else pads, activations.module(self.activation))
        init_params(self.weight_specs(input_shape), self.tfjs_weights(module))
        return module

    def tfjs_weights(self, module):
        return kernel_and_bias(module.conv)


def _inference_on_cpu(x: torch.Tensor) -> bool:
    """True when no gradient is recorded and no autocast applies: plain float32 CPU inference."""
    return (not torch.is_grad_enabled() and x.device.type == "cpu" and x.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu"))


#: oneDNN's convolution with a fused post-op (what TF's grappler makes of Conv2D + BiasAdd + Relu).
_FUSED_CONV = getattr(torch.ops.mkldnn, "_convolution_pointwise", None) if torch.backends.mkldnn.is_available() \
    else None


class _ConvBlock(nn.Module):
    def __init__(self, conv, pads, activation):
        super().__init__()
        self.conv, self.pads, self.activation = conv, pads, activation

    def forward(self, x):
        if self.pads is not None:
            x = F.pad(x, self.pads)
        if _FUSED_CONV is not None and isinstance(self.activation, nn.ReLU) and _inference_on_cpu(x):
            # Inference: the relu is applied as the convolution writes its output (same numbers, one pass less).
            c = self.conv
            return _FUSED_CONV(x, c.weight, c.bias, list(c.padding), list(c.stride), list(c.dilation), c.groups,
                               "relu", [None], "")
        return self.activation(self.conv(x))
