"""Depthwise and separable 2-D convolutions (``tf.layers.depthwiseConv2d``, ``tf.layers.separableConv2d``).

Both hold the depthwise kernel as TF.js shapes it, ``[kh, kw, in, multiplier]``; the engine keeps it as
``[in, multiplier, kh, kw]`` (a permutation, see :mod:`sightsound.tfjs.weights`), which reshapes to the
grouped convolution PyTorch runs: output channel ``i * multiplier + m`` as in TF.js.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ModelFormatError
from .. import activations, initializers
from .base import WeightSpec, init_params, positive_int
from .conv import BaseConv


class DepthwiseConv2D(BaseConv):
    """Each input channel convolved with its own ``depth_multiplier`` kernels (``tf.layers.depthwiseConv2d``)."""

    class_name = "DepthwiseConv2D"
    EXTRAS = BaseConv.EXTRAS + ("depthwise_regularizer", "depthwise_constraint")

    def __init__(self, kernel_size, depth_multiplier=1, depthwise_initializer=None, strides=1, padding="valid",
                 data_format="channels_last", dilation_rate=1, activation=None, use_bias=True, bias_initializer=None,
                 **base):
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                         bias_initializer, **base)
        if self.dilation_rate != [1, 1]:
            raise ModelFormatError(f"{self.name}: dilation_rate {self.dilation_rate} is not supported: TF.js 4.22's "
                                   f"DepthwiseConv2D ignores it (it runs an undilated convolution), so the model "
                                   f"would compute differently there")
        self.depth_multiplier = positive_int(depth_multiplier, f"{self.name}: depth_multiplier")
        self.depthwise_initializer = initializers.normalize(depthwise_initializer)  # TF.js: glorotNormal

    def own_config(self):
        return self.base_conv_config()

    def trailing_config(self):
        return {"depth_multiplier": self.depth_multiplier, "depthwise_initializer": self.depthwise_initializer,
                "depthwise_regularizer": None, "depthwise_constraint": None}

    @classmethod
    def from_config(cls, c):
        return cls(depth_multiplier=c.get("depth_multiplier", 1),
                   depthwise_initializer=c.get("depthwise_initializer"), **cls.base_conv_kwargs(c))

    def compute_output_shape(self, input_shape):
        return (*self.output_space(input_shape), input_shape[2] * self.depth_multiplier)

    def weight_specs(self, input_shape):
        self.check_input(input_shape)
        specs = [WeightSpec("depthwise_kernel", (*self.kernel_size, input_shape[2], self.depth_multiplier), True,
                            self.depthwise_initializer)]
        if self.use_bias:
            specs.append(WeightSpec("bias", (input_shape[2] * self.depth_multiplier,), True, self.bias_initializer))
        return specs

    def build_module(self, input_shape):
        self.compute_output_shape(input_shape)
        module = _DepthwiseBlock(self, input_shape, pointwise_filters=None)
        init_params(self.weight_specs(input_shape), self.tfjs_weights(module))
        return module

    def tfjs_weights(self, module):
        tensors = {"depthwise_kernel": module.depthwise}
        if module.bias is not None:
            tensors["bias"] = module.bias
        return tensors


class SeparableConv2D(BaseConv):
    """A depthwise convolution, then a 1x1 convolution to ``filters`` channels (``tf.layers.separableConv2d``).

    Without ``pointwise_initializer``, the pointwise kernel starts as the depthwise one is told to, as in TF.js
    (which ignores ``pointwise_initializer``; here a given one is used).
    """

    class_name = "SeparableConv2D"
    EXTRAS = BaseConv.EXTRAS + ("depthwise_regularizer", "pointwise_regularizer", "depthwise_constraint",
                                "pointwise_constraint")

    def __init__(self, filters: int, kernel_size, depth_multiplier=1, depthwise_initializer=None,
                 pointwise_initializer=None, strides=1, padding="valid", data_format="channels_last",
                 dilation_rate=1, activation=None, use_bias=True, bias_initializer=None, **base):
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                         bias_initializer, **base)
        self.filters = positive_int(filters, f"{self.name}: filters")
        self.depth_multiplier = positive_int(depth_multiplier, f"{self.name}: depth_multiplier")
        self.depthwise_initializer = initializers.normalize(depthwise_initializer or "glorotUniform")
        self.pointwise_initializer = initializers.normalize(pointwise_initializer or depthwise_initializer
                                                            or "glorotUniform")

    def own_config(self):
        return {"filters": self.filters, **self.base_conv_config()}

    def trailing_config(self):
        # TF.js 4.22 reads depth_multiplier but never writes it (so its own re-save of a multiplier above 1
        # cannot be loaded again); it is written here only when it is not 1, keeping TF.js's bytes otherwise.
        multiplier = {} if self.depth_multiplier == 1 else {"depth_multiplier": self.depth_multiplier}
        return {**multiplier, "depthwise_initializer": self.depthwise_initializer,
                "pointwise_initializer": self.pointwise_initializer, "depthwise_regularizer": None,
                "pointwise_regularizer": None, "depthwise_constraint": None, "pointwise_constraint": None}

    @classmethod
    def from_config(cls, c):
        return cls(filters=c["filters"], depth_multiplier=c.get("depth_multiplier", 1),
                   depthwise_initializer=c.get("depthwise_initializer"),
                   pointwise_initializer=c.get("pointwise_initializer"), **cls.base_conv_kwargs(c))

    def compute_output_shape(self, input_shape):
        return (*self.output_space(input_shape), self.filters)

    def weight_specs(self, input_shape):
        self.check_input(input_shape)
        channels = input_shape[2]
        specs = [WeightSpec("depthwise_kernel", (*self.kernel_size, channels, self.depth_multiplier), True,
                            self.depthwise_initializer),
                 WeightSpec("pointwise_kernel", (1, 1, channels * self.depth_multiplier, self.filters), True,
                            self.pointwise_initializer)]
        if self.use_bias:
            specs.append(WeightSpec("bias", (self.filters,), True, self.bias_initializer))
        return specs

    def build_module(self, input_shape):
        self.compute_output_shape(input_shape)
        module = _DepthwiseBlock(self, input_shape, pointwise_filters=self.filters)
        init_params(self.weight_specs(input_shape), self.tfjs_weights(module))
        return module

    def tfjs_weights(self, module):
        tensors = {"depthwise_kernel": module.depthwise, "pointwise_kernel": module.pointwise}
        if module.bias is not None:
            tensors["bias"] = module.bias
        return tensors


class _DepthwiseBlock(nn.Module):
    """Depthwise convolution (grouped by input channel), then the optional 1x1 pointwise one, bias, activation."""

    def __init__(self, layer: BaseConv, input_shape, pointwise_filters: int | None):
        super().__init__()
        channels, multiplier = input_shape[2], layer.depth_multiplier
        self.pads, self.padding = layer.image_pads(input_shape)
        self.strides, self.dilation = tuple(layer.strides), tuple(layer.dilation_rate)
        self.depthwise = nn.Parameter(torch.empty(channels, multiplier, *layer.kernel_size))
        self.pointwise = None if pointwise_filters is None else \
            nn.Parameter(torch.empty(pointwise_filters, channels * multiplier, 1, 1))
        outputs = channels * multiplier if pointwise_filters is None else pointwise_filters
        self.bias = nn.Parameter(torch.empty(outputs)) if layer.use_bias else None
        self.activation = activations.module(layer.activation)

    def forward(self, x):
        if self.pads is not None:
            x = F.pad(x, self.pads)
        w = self.depthwise
        kernel = w.reshape(w.shape[0] * w.shape[1], 1, w.shape[2], w.shape[3])
        depthwise_bias = self.bias if self.pointwise is None else None
        y = F.conv2d(x, kernel, depthwise_bias, self.strides, self.padding, self.dilation, groups=w.shape[0])
        if self.pointwise is not None:
            y = F.conv2d(y, self.pointwise, self.bias)
        return self.activation(y)
