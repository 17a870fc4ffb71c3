"""Batch normalisation with TF.js's defaults and its biased moving variance."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ModelFormatError, ShapeError
from .. import initializers
from .base import Layer, WeightSpec, base_kwargs, init_params, no_extras, shape_text


class BatchNormalization(Layer):
    """Batch normalisation over the channel (last) axis, TF.js defaults."""

    class_name = "BatchNormalization"

    def __init__(self, axis=-1, momentum=0.99, epsilon=0.001, center=True, scale=True,
                 beta_initializer=None, gamma_initializer=None, moving_mean_initializer=None,
                 moving_variance_initializer=None, **base):
        super().__init__(**base)
        if axis not in (-1, [-1]):
            raise ModelFormatError(f"{self.name}: only axis -1 (channels_last) is supported, got {axis!r}")
        self.axis = -1
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

    def weight_specs(self, input_shape):
        c = (input_shape[-1],)
        specs = []
        if self.scale:
            specs.append(WeightSpec("gamma", c, True, self.gamma_initializer))
        if self.center:
            specs.append(WeightSpec("beta", c, True, self.beta_initializer))
        specs += [WeightSpec("moving_mean", c, False, self.moving_mean_initializer),
                  WeightSpec("moving_variance", c, False, self.moving_variance_initializer)]
        return specs

    def build_module(self, input_shape):
        if len(input_shape) not in (1, 3):
            raise ShapeError(f"{self.name}: supports inputs [null,features] or [null,h,w,c], "
                             f"got {shape_text(input_shape)}")
        bn = _BatchNorm(input_shape[-1], eps=self.epsilon, momentum=1.0 - self.momentum)
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


class _BatchNorm(nn.BatchNorm1d):
    """Batch norm whose moving variance tracks the *biased* batch variance, as TF.js's does.

    (``torch.nn.BatchNorm*`` feeds the unbiased variance into its running average.)
    Works on [N, C] and NCHW tensors alike.
    """

    def _check_input_dim(self, x):
        if x.dim() not in (2, 4):
            raise ValueError(f"expected a 2-D or 4-D input, got {x.dim()}-D")

    def forward(self, x):
        if not self.training:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        dims = [0] if x.dim() == 2 else [0, 2, 3]
        with torch.no_grad():
            var, mean = torch.var_mean(x, dim=dims, unbiased=False)
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var, self.momentum)
        return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
