"""Batch normalisation with TF.js's defaults and its biased moving variance."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ModelFormatError, ShapeError
from .. import initializers
from .base import Layer, WeightSpec, base_kwargs, engine_axis, init_params, no_extras, shape_text


class BatchNormalization(Layer):
    """Batch normalisation over one feature axis, TF.js defaults (``tf.layers.batchNormalization``).

    ``axis`` counts the batch (TF.js and Keras): -1, the channels of ``[h, w, c]`` images, by default; 3 for
    those too; 1 for the first axis after the batch (the channels of channels-first data). Keras 2 writes a
    list of one axis, such as ``[3]``: TF.js takes that for 3 and so does this layer, saving it as given.
    """

    class_name = "BatchNormalization"

    def __init__(self, axis=-1, momentum=0.99, epsilon=0.001, center=True, scale=True,
                 beta_initializer=None, gamma_initializer=None, moving_mean_initializer=None,
                 moving_variance_initializer=None, **base):
        super().__init__(**base)
        self.axis = _check_axis(axis, self.name)
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.normalize(beta_initializer or "zeros")
        self.gamma_initializer = initializers.normalize(gamma_initializer or "ones")
        self.moving_mean_initializer = initializers.normalize(moving_mean_initializer or "zeros")
        self.moving_variance_initializer = initializers.normalize(moving_variance_initializer or "ones")

    def own_config(self):
        return {"axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon, "center": self.center,
                "scale": self.scale, "beta_initializer": self.beta_initializer,
                "gamma_initializer": self.gamma_initializer,
                "moving_mean_initializer": self.moving_mean_initializer,
                "moving_variance_initializer": self.moving_variance_initializer,
                "beta_regularizer": None, "gamma_regularizer": None, "beta_constraint": None,
                "gamma_constraint": None}

    @classmethod
    def from_config(cls, c):
        no_extras(cls.class_name, c, "beta_regularizer", "gamma_regularizer", "beta_constraint",
                   "gamma_constraint")
        return cls(axis=c.get("axis", -1), momentum=c.get("momentum", 0.99), epsilon=c.get("epsilon", 0.001),
                   center=c.get("center", True), scale=c.get("scale", True),
                   beta_initializer=c.get("beta_initializer"), gamma_initializer=c.get("gamma_initializer"),
                   moving_mean_initializer=c.get("moving_mean_initializer"),
                   moving_variance_initializer=c.get("moving_variance_initializer"), **base_kwargs(c))

    @property
    def _axis(self) -> int:
        return self.axis[0] if isinstance(self.axis, list) else self.axis

    def _features(self, input_shape) -> int:
        """The size of the normalised axis of ``input_shape`` (ShapeError if it has no such feature axis)."""
        rank, axis = len(input_shape), self._axis
        if not -rank <= axis <= rank or axis == 0:
            raise ShapeError(f"{self.name}: axis {self.axis} is not a feature axis of input {shape_text(input_shape)}")
        return input_shape[axis - 1 if axis > 0 else axis]

    def compute_output_shape(self, input_shape):
        self._features(input_shape)
        return tuple(input_shape)

    def weight_specs(self, input_shape):
        c = (self._features(input_shape),)
        specs = []
        if self.scale:
            specs.append(WeightSpec("gamma", c, True, self.gamma_initializer))
        if self.center:
            specs.append(WeightSpec("beta", c, True, self.beta_initializer))
        specs += [WeightSpec("moving_mean", c, False, self.moving_mean_initializer),
                  WeightSpec("moving_variance", c, False, self.moving_variance_initializer)]
        return specs

    def build_module(self, input_shape):
        bn = _BatchNorm(self._features(input_shape), eps=self.epsilon, momentum=1.0 - self.momentum,
                        axis=engine_axis(self._axis, len(input_shape), self.name))
        if not self.scale:
            bn.weight.requires_grad_(False)
        if not self.center:
            bn.bias.requires_grad_(False)
        init_params(self.weight_specs(input_shape), self.tfjs_weights(bn))
        return bn

    def tfjs_weights(self, module):
        tensors = {"moving_mean": module.running_mean, "moving_variance": module.running_var}
        if self.scale:
            tensors["gamma"] = module.weight
        if self.center:
            tensors["beta"] = module.bias
        return tensors


def _check_axis(axis, name: str):
    """An int, or a list of one int as Keras 2 writes it; a negative one in a list is kept as the int
    (TF.js 4.22 misreads ``[-1]``, and -1 is what this layer has always saved for it)."""
    value = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
    if isinstance(value, bool) or not isinstance(value, int):
        raise ModelFormatError(f"{name}: axis must be an int or a list of one int, got {axis!r:.80}")
    return [value] if value >= 0 and isinstance(axis, (list, tuple)) else value


class _BatchNorm(nn.BatchNorm1d):
    """Batch norm whose moving variance tracks the *biased* batch variance, as TF.js's does.

    (``torch.nn.BatchNorm*`` feeds the unbiased variance into its running average.)
    ``axis`` is the engine dimension of the features: 1 for [N, C] and NCHW images; any other is moved
    to 1 for PyTorch's batch norm and back.
    """

    reads_training_mode = True  # batch statistics in training, the moving ones in inference

    def __init__(self, num_features: int, eps: float, momentum: float, axis: int = 1):
        super().__init__(num_features, eps=eps, momentum=momentum)
        self.axis = axis

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"expected an input of at least 2 dimensions, got {x.dim()}-D")

    def forward(self, x):
        if self.axis != 1:
            return self._forward(x.movedim(self.axis, 1)).movedim(1, self.axis)
        return self._forward(x)

    def _forward(self, x):
        if not self.training:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        if x.numel() == x.shape[1]:
            raise ValueError(f"batch normalisation in training needs more than 1 value per channel, got "
                             f"input of shape {list(x.shape)}")
        # The batch statistics come from the normalising kernel itself (its mean and 1/sqrt(var + eps)):
        # a separate var_mean pass over a channels_last activation costs as much as the normalisation.
        out, mean, inv_std = torch.native_batch_norm(x, self.weight, self.bias, None, None, True, 0.0, self.eps)
        with torch.no_grad():
            var = inv_std.to(self.running_var.dtype).pow(-2).sub_(self.eps).clamp_(min=0.0)
            self.running_mean.lerp_(mean.to(self.running_mean.dtype), self.momentum)
            self.running_var.lerp_(var, self.momentum)
        return out
