"""Dense and Activation layers, and :func:`pre_softmax` for losses that skip a final softmax."""

from __future__ import annotations

import torch
from torch import nn

from ...errors import ShapeError
from .. import activations, initializers
from .base import ActivationMixin, Layer, WeightSpec, base_kwargs, init_params, kernel_and_bias, no_extras, positive


class Dense(Layer, ActivationMixin):
    """Fully connected layer over the last axis (``tf.layers.dense``)."""

    class_name = "Dense"

    def __init__(self, units: int, activation=None, use_bias=True, kernel_initializer=None,
                 bias_initializer=None, **base):
        super().__init__(**base)
        self.units = int(positive(units, f"{self.name}: units"))
        self._set_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.normalize(kernel_initializer)
        self.bias_initializer = initializers.normalize(bias_initializer or "zeros")

    def own_config(self):
        return {"units": self.units, "activation": self.activation, "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer, "bias_initializer": self.bias_initializer,
                "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
                "kernel_constraint": None, "bias_constraint": None}

    @classmethod
    def from_config(cls, c):
        no_extras(cls.class_name, c, "kernel_regularizer", "kernel_constraint", "bias_regularizer",
                   "activity_regularizer", "bias_constraint")
        return cls(units=c["units"], activation=c.get("activation"), use_bias=c.get("use_bias", True),
                   kernel_initializer=c.get("kernel_initializer"), bias_initializer=c.get("bias_initializer"),
                   **base_kwargs(c))

    def compute_output_shape(self, input_shape):
        if len(input_shape) < 1:
            raise ShapeError(f"{self.name}: needs an input with at least one feature axis")
        return (*input_shape[:-1], self.units)

    def weight_specs(self, input_shape):
        specs = [WeightSpec("kernel", (input_shape[-1], self.units), True, self.kernel_initializer)]
        if self.use_bias:
            specs.append(WeightSpec("bias", (self.units,), True, self.bias_initializer))
        return specs

    def build_module(self, input_shape):
        linear = nn.Linear(input_shape[-1], self.units, bias=self.use_bias)
        module = _DenseBlock(linear, activations.module(self.activation), channels_first=len(input_shape) == 3)
        init_params(self.weight_specs(input_shape), self.tfjs_weights(module))
        return module

    def tfjs_weights(self, module):
        return kernel_and_bias(module.linear)


class _DenseBlock(nn.Module):
    def __init__(self, linear, activation, channels_first: bool):
        super().__init__()
        self.linear, self.activation, self.channels_first = linear, activation, channels_first

    def forward(self, x):
        if self.channels_first:  # an image tensor: features are on axis 1 inside the engine
            return self.activation(self.linear(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))
        return self.activation(self.linear(x))


def pre_softmax(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What a final softmax block of a Dense or Activation layer applies its softmax to: the logits."""
    if isinstance(block, _DenseBlock):
        return block.linear(x)
    return x  # an Activation("softmax") block: its input is the logits


class Activation(Layer, ActivationMixin):
    """Applies an activation function (``tf.layers.activation``)."""

    class_name = "Activation"

    def __init__(self, activation, **base):
        super().__init__(**base)
        self._set_activation(activation)

    def own_config(self):
        return {"activation": self.activation}

    @classmethod
    def from_config(cls, c):
        return cls(activation=c["activation"], **base_kwargs(c))

    def build_module(self, input_shape):
        return activations.module(self.activation)
