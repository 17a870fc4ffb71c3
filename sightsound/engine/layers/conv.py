"""Convolutions: :class:`Conv2D`, :class:`Conv1D`, their shared :class:`BaseConv`, and the blocks that run them."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ModelFormatError, ShapeError
from .. import activations, initializers
from .base import (ActivationMixin, Layer, WeightSpec, base_kwargs, check_data_format, check_dilation, check_padding,
                   conv_out, init_params, kernel_and_bias, no_extras, pair, positive, shape_text, single,
                   spatial_pads)


class BaseConv(Layer, ActivationMixin):
    """What TF.js's ``BaseConv`` holds for every convolution: window, strides, padding, dilation, activation, bias.

    ``rank`` is the number of spatial axes: 2 for images ``[h, w, c]``, 1 for sequences ``[steps, c]``.
    """

    rank: ClassVar[int] = 2
    #: refused unless null, as for every layer here: the engine has no regularizers or constraints
    EXTRAS: ClassVar[tuple[str, ...]] = ("kernel_regularizer", "kernel_constraint", "bias_regularizer",
                                         "activity_regularizer", "bias_constraint")

    def __init__(self, kernel_size, strides=1, padding="valid", data_format="channels_last", dilation_rate=1,
                 activation=None, use_bias=True, bias_initializer=None, **base):
        super().__init__(**base)
        sizes = pair if self.rank == 2 else single
        self.kernel_size = sizes(kernel_size, f"{self.name}: kernel_size")
        self.strides = sizes(strides, f"{self.name}: strides")
        self.padding = check_padding(padding, self.name)
        check_data_format(data_format, self.name)
        self.dilation_rate = sizes(dilation_rate, f"{self.name}: dilation_rate")
        check_dilation(self.strides, self.dilation_rate, self.name)
        self._set_activation(activation)
        self.use_bias = bool(use_bias)
        self.bias_initializer = initializers.normalize(bias_initializer or "zeros")

    def base_conv_config(self) -> dict:
        """TF.js's ``BaseConv.getConfig`` fields, in its order (1-D convolutions write no data_format)."""
        cfg = {"kernel_size": self.kernel_size, "strides": self.strides, "padding": self.padding,
               "data_format": "channels_last", "dilation_rate": self.dilation_rate, "activation": self.activation,
               "use_bias": self.use_bias, "bias_initializer": self.bias_initializer, "bias_regularizer": None,
               "activity_regularizer": None, "bias_constraint": None}
        if self.rank == 1:
            del cfg["data_format"]
        return cfg

    @classmethod
    def base_conv_kwargs(cls, c: dict) -> dict:
        """The constructor arguments every convolution reads from a saved config."""
        no_extras(cls.class_name, c, *cls.EXTRAS)
        if c.get("groups", 1) != 1:  # Keras 2.5+ writes groups; TF.js has no grouped convolution
            raise ModelFormatError(f"{cls.class_name}: groups={c['groups']!r} is not supported (only 1)")
        return {"kernel_size": c["kernel_size"], "strides": c.get("strides", 1), "padding": c.get("padding", "valid"),
                "data_format": c.get("data_format"), "dilation_rate": c.get("dilation_rate", 1),
                "activation": c.get("activation"), "use_bias": c.get("use_bias", True),
                "bias_initializer": c.get("bias_initializer"), **base_kwargs(c)}

    def check_input(self, input_shape) -> None:
        if len(input_shape) != self.rank + 1:
            expected = "[null,height,width,channels]" if self.rank == 2 else "[null,steps,channels]"
            raise ShapeError(f"{self.name}: expects input {expected}, got {shape_text(input_shape)}")

    def image_pads(self, input_shape) -> tuple[tuple[int, int, int, int] | None, tuple[int, int]]:
        """'same' padding of an image: (explicit ``F.pad`` pads or None, the convolution's own padding).
        TF's odd pixel goes after, which only an explicit pad can do; a symmetric one is the conv's."""
        pads = spatial_pads(input_shape[:2], self.kernel_size, self.strides, self.padding, self.dilation_rate)
        if pads is None:
            return None, (0, 0)
        if pads[0] == pads[1] and pads[2] == pads[3]:
            return None, (pads[2], pads[0])
        return pads, (0, 0)

    def output_space(self, input_shape) -> list[int]:
        """The output's spatial sizes (TF.js's ``convOutputLength``)."""
        self.check_input(input_shape)
        out = [conv_out(n, k, s, self.padding, d) for n, k, s, d in
               zip(input_shape[:-1], self.kernel_size, self.strides, self.dilation_rate)]
        if min(out) <= 0:
            raise ShapeError(f"{self.name}: input {shape_text(input_shape)} is smaller than the kernel "
                             f"{self.kernel_size}")
        return out


class Conv(BaseConv):
    """TF.js's ``Conv``: a convolution with ``filters`` outputs and one ``kernel`` weight."""

    def __init__(self, filters: int, kernel_size, strides=1, padding="valid", data_format="channels_last",
                 dilation_rate=1, activation=None, use_bias=True, kernel_initializer=None,
                 bias_initializer=None, **base):
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                         bias_initializer, **base)
        self.filters = int(positive(filters, f"{self.name}: filters"))
        self.kernel_initializer = initializers.normalize(kernel_initializer)

    def own_config(self):
        return {"filters": self.filters, "kernel_initializer": self.kernel_initializer,
                "kernel_regularizer": None, "kernel_constraint": None, **self.base_conv_config()}

    @classmethod
    def from_config(cls, c):
        return cls(filters=c["filters"], kernel_initializer=c.get("kernel_initializer"), **cls.base_conv_kwargs(c))

    def compute_output_shape(self, input_shape):
        return (*self.output_space(input_shape), self.filters)

    def weight_specs(self, input_shape):
        self.check_input(input_shape)
        specs = [WeightSpec("kernel", (*self.kernel_size, input_shape[-1], self.filters), True,
                            self.kernel_initializer)]
        if self.use_bias:
            specs.append(WeightSpec("bias", (self.filters,), True, self.bias_initializer))
        return specs


class Conv2D(Conv):
    """2-D convolution over NHWC images (``tf.layers.conv2d``)."""

    class_name = "Conv2D"

    def build_module(self, input_shape):
        self.compute_output_shape(input_shape)
        pads, padding = self.image_pads(input_shape)
        conv = nn.Conv2d(input_shape[2], self.filters, tuple(self.kernel_size), stride=tuple(self.strides),
                         padding=padding, dilation=tuple(self.dilation_rate), bias=self.use_bias)
        module = _ConvBlock(conv, pads, activations.module(self.activation))
        init_params(self.weight_specs(input_shape), self.tfjs_weights(module))
        return module

    def tfjs_weights(self, module):
        return kernel_and_bias(module.conv)


class Conv1D(Conv):
    """1-D convolution over ``[steps, channels]`` sequences (``tf.layers.conv1d``); no causal padding,
    which TF.js 4.22 refuses too."""

    class_name = "Conv1D"
    rank = 1

    def build_module(self, input_shape):
        self.compute_output_shape(input_shape)
        pads = spatial_pads((input_shape[0], 1), (self.kernel_size[0], 1), (self.strides[0], 1), self.padding,
                            (self.dilation_rate[0], 1))
        symmetric = pads is None or pads[2] == pads[3]
        conv = nn.Conv1d(input_shape[1], self.filters, self.kernel_size[0], stride=self.strides[0],
                         padding=pads[2] if pads is not None and symmetric else 0,
                         dilation=self.dilation_rate[0], bias=self.use_bias)
        module = _Conv1DBlock(conv, None if symmetric else pads[2:], activations.module(self.activation))
        init_params(self.weight_specs(input_shape), self.tfjs_weights(module))
        return module

    def tfjs_weights(self, module):
        return kernel_and_bias(module.conv)


class _Conv1DBlock(nn.Module):
    """[N, steps, channels] in and out (TF.js order); PyTorch's conv1d wants channels first."""

    def __init__(self, conv, pads, activation):
        super().__init__()
        self.conv, self.pads, self.activation = conv, pads, activation

    def forward(self, x):
        x = x.transpose(1, 2)
        if self.pads is not None:
            x = F.pad(x, self.pads)
        return self.activation(self.conv(x).transpose(1, 2))


def _inference_on_cpu(x: torch.Tensor) -> bool:
    """True when no gradient is recorded and no autocast applies: plain float32 CPU inference."""
    return (not torch.is_grad_enabled() and x.device.type == "cpu" and x.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu"))


#: oneDNN's convolution with a fused post-op (what TF's grappler makes of Conv2D + BiasAdd + Relu).
_FUSED_CONV = getattr(torch.ops.mkldnn, "_convolution_pointwise", None) if torch.backends.mkldnn.is_available() \
    else None


class _ConvBlock(nn.Module):
    def __init__(self, conv, pads, activation, add_bias: bool = True):
        super().__init__()
        self.conv, self.pads, self.activation, self.add_bias = conv, pads, activation, add_bias

    def without_activation(self, add_bias: bool = True) -> "_ConvBlock":
        """The same convolution (the same weights) with no activation after it, and without its bias when not
        ``add_bias`` (for a caller that adds the bias itself)."""
        return _ConvBlock(self.conv, self.pads, nn.Identity(), add_bias)

    def forward(self, x):
        if self.pads is not None:
            x = F.pad(x, self.pads)
        if _FUSED_CONV is not None and isinstance(self.activation, nn.ReLU) and _inference_on_cpu(x):
            # Inference: the relu is applied as the convolution writes its output (same numbers, one pass less).
            c = self.conv
            return _FUSED_CONV(x, c.weight, c.bias, list(c.padding), list(c.stride), list(c.dilation), c.groups,
                               "relu", [None], "")
        if not self.add_bias:
            c = self.conv
            return F.conv2d(x, c.weight, None, c.stride, c.padding, c.dilation, c.groups)
        return self.activation(self.conv(x))
