"""Activation layers with settings: :class:`ReLU`, :class:`LeakyReLU`, :class:`PReLU` (learnt slopes),
:class:`ELU`, :class:`ThresholdedReLU` and :class:`Softmax` (over a chosen axis), as TF.js 4.22 has them."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ModelFormatError, ShapeError
from .. import initializers
from .base import Layer, WeightSpec, base_kwargs, engine_axis, init_params, no_extras, shape_text


def _number(value, what: str, minimum: float | None = None):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or \
            (minimum is not None and value < minimum):
        bound = f" >= {minimum:g}" if minimum is not None else ""
        raise ModelFormatError(f"{what} must be a finite number{bound}, got {value!r:.80}")
    return value


class _Elementwise(nn.Module):
    """``fn(x, **options)`` with a module-level ``fn``, so the module deep-copies and pickles."""

    def __init__(self, fn, **options):
        super().__init__()
        self.fn, self.options = fn, options

    def forward(self, x):
        return self.fn(x, **self.options)

    def extra_repr(self):
        return f"{self.fn.__name__}, " + ", ".join(f"{k}={v}" for k, v in self.options.items())


def _thresholded(x, theta: float):
    return x * (x > theta).to(x.dtype)


def _softmax_over(x, dims: list[int]):
    """Softmax over several axes together, as TF.js writes it: ``exp(x - logSumExp(x, axes))``."""
    return torch.exp(x - torch.logsumexp(x, dims, keepdim=True))


class ReLU(Layer):
    """``max(x, 0)``, capped at ``max_value`` if given (``tf.layers.reLU``).

    Keras's ReLU also has ``negative_slope`` and ``threshold``; TF.js's has neither, so only 0 is accepted.
    """

    class_name = "ReLU"

    def __init__(self, max_value=None, negative_slope=0, threshold=0, **base):
        super().__init__(**base)
        for field, value in (("negative_slope", negative_slope), ("threshold", threshold)):
            if value not in (0, None):
                raise ModelFormatError(f"{self.name}: {field}={value!r:.80} is not supported: TF.js 4.22's ReLU "
                                       f"has no {field} (only 0); use LeakyReLU for a slope")
        self.max_value = None if max_value is None else _number(max_value, f"{self.name}: max_value", 0)

    def own_config(self):
        return {"max_value": self.max_value}

    @classmethod
    def from_config(cls, c):
        return cls(max_value=c.get("max_value"), negative_slope=c.get("negative_slope", 0),
                   threshold=c.get("threshold", 0), **base_kwargs(c))

    def build_module(self, input_shape):
        if self.max_value is None:
            return nn.ReLU()
        return _Elementwise(torch.clamp, min=0.0, max=float(self.max_value))


class LeakyReLU(Layer):
    """``x`` where positive, ``alpha * x`` elsewhere (``tf.layers.leakyReLU``; Keras 3 calls alpha
    ``negative_slope``)."""

    class_name = "LeakyReLU"

    def __init__(self, alpha=None, negative_slope=None, **base):
        super().__init__(**base)
        if alpha is not None and negative_slope is not None and alpha != negative_slope:
            raise ModelFormatError(f"{self.name}: alpha={alpha!r} and negative_slope={negative_slope!r} differ "
                                   f"(they name the same slope)")
        slope = alpha if alpha is not None else negative_slope
        self.alpha = 0.3 if slope is None else _number(slope, f"{self.name}: alpha")

    def own_config(self):
        return {"alpha": self.alpha}

    @classmethod
    def from_config(cls, c):
        return cls(alpha=c.get("alpha"), negative_slope=c.get("negative_slope"), **base_kwargs(c))

    def build_module(self, input_shape):
        return _Elementwise(F.leaky_relu, negative_slope=float(self.alpha))


class PReLU(Layer):
    """Leaky ReLU with a learnt slope per element (``tf.layers.prelu``): weight ``alpha`` of the input's
    shape, with size 1 along the ``shared_axes`` (batch-inclusive, e.g. ``[1, 2]`` for one slope per
    channel of an image)."""

    class_name = "PReLU"

    def __init__(self, alpha_initializer=None, shared_axes=None, **base):
        super().__init__(**base)
        self.alpha_initializer = initializers.normalize(alpha_initializer or "zeros")
        if isinstance(shared_axes, int) and not isinstance(shared_axes, bool):
            shared_axes = [shared_axes]
        if shared_axes is not None and (not isinstance(shared_axes, (list, tuple)) or any(
                isinstance(a, bool) or not isinstance(a, int) or a < 1 for a in shared_axes)):
            raise ModelFormatError(f"{self.name}: shared_axes must be null, an axis >= 1 or a list of them, "
                                   f"got {shared_axes!r:.80}")
        self.shared_axes = None if shared_axes is None else list(shared_axes)

    def own_config(self):
        return {"alpha_initializer": self.alpha_initializer, "alpha_regularizer": None, "alpha_constraint": None,
                "shared_axes": self.shared_axes}

    @classmethod
    def from_config(cls, c):
        no_extras(cls.class_name, c, "alpha_regularizer", "alpha_constraint")
        return cls(alpha_initializer=c.get("alpha_initializer"), shared_axes=c.get("shared_axes"), **base_kwargs(c))

    def weight_specs(self, input_shape):
        shape = list(input_shape)
        for axis in self.shared_axes or []:
            if axis > len(shape):
                raise ShapeError(f"{self.name}: shared axis {axis} is beyond input {shape_text(input_shape)}")
            shape[axis - 1] = 1
        return [WeightSpec("alpha", tuple(shape), True, self.alpha_initializer)]

    def compute_output_shape(self, input_shape):
        self.weight_specs(input_shape)
        return tuple(input_shape)

    def build_module(self, input_shape):
        spec, = self.weight_specs(input_shape)
        module = _PReLU(spec.shape)
        init_params([spec], self.tfjs_weights(module))
        return module

    def tfjs_weights(self, module):
        return {"alpha": module.alpha}


class _PReLU(nn.Module):
    """``alpha`` is kept in TF.js's layout (a slope per element of the input without the batch)."""

    def __init__(self, shape):
        super().__init__()
        self.alpha = nn.Parameter(torch.empty(shape))

    def forward(self, x):
        alpha = self.alpha.permute(2, 0, 1) if x.dim() == 4 else self.alpha  # images are NCHW inside
        return torch.where(x < 0, x * alpha, x)


class ELU(Layer):
    """``x`` where positive, ``exp(x) - 1`` elsewhere (``tf.layers.elu``). TF.js 4.22 refuses an alpha
    other than 1, and so does this layer."""

    class_name = "ELU"

    def __init__(self, alpha=1.0, **base):
        super().__init__(**base)
        if _number(alpha, f"{self.name}: alpha") != 1:
            raise ModelFormatError(f"{self.name}: alpha={alpha!r} is not supported: TF.js 4.22's ELU layer "
                                   f"takes only alpha 1")
        self.alpha = alpha

    def own_config(self):
        return {"alpha": self.alpha}

    @classmethod
    def from_config(cls, c):
        return cls(alpha=c.get("alpha", 1.0), **base_kwargs(c))

    def build_module(self, input_shape):
        return _Elementwise(F.elu)


class ThresholdedReLU(Layer):
    """``x`` where ``x > theta``, 0 elsewhere (``tf.layers.thresholdedReLU``)."""

    class_name = "ThresholdedReLU"

    def __init__(self, theta=1.0, **base):
        super().__init__(**base)
        self.theta = _number(theta, f"{self.name}: theta")

    def own_config(self):
        return {"theta": self.theta}

    @classmethod
    def from_config(cls, c):
        return cls(theta=c.get("theta", 1.0), **base_kwargs(c))

    def build_module(self, input_shape):
        return _Elementwise(_thresholded, theta=float(self.theta))


class Softmax(Layer):
    """Softmax over ``axis`` (``tf.layers.softmax``), counted with the batch; TF.js's default is **1**, not
    Keras's -1. TF.js 4.22 computes a softmax over one axis only when it is the last one; over a list
    of several axes it takes them together. Other axes are refused here when the input shape is known."""

    class_name = "Softmax"

    def __init__(self, axis=1, **base):
        super().__init__(**base)
        axes = axis if isinstance(axis, (list, tuple)) else [axis]
        if not axes or any(isinstance(a, bool) or not isinstance(a, int) for a in axes):
            raise ModelFormatError(f"{self.name}: axis must be an int or a list of ints, got {axis!r:.80}")
        self.axis = list(axis) if isinstance(axis, (list, tuple)) else axis

    def own_config(self):
        return {"axis": self.axis}

    @classmethod
    def from_config(cls, c):
        return cls(axis=c.get("axis", 1), **base_kwargs(c))

    def engine_dims(self, input_shape) -> list[int]:
        """The engine dimensions the softmax runs over (ShapeError for one TF.js would not run)."""
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        dims = [engine_axis(a, len(input_shape), self.name) for a in axes]
        if 0 in dims:
            raise ShapeError(f"{self.name}: axis {self.axis} includes the batch axis")
        if len(dims) == 1 and dims != [engine_axis(-1, len(input_shape), self.name)]:
            raise ShapeError(f"{self.name}: axis {self.axis} is not the last axis of input {shape_text(input_shape)}; "
                             f"TF.js 4.22 computes a softmax over the last axis only (axis -1), or over several "
                             f"axes given as a list")
        return sorted(set(dims))

    def compute_output_shape(self, input_shape):
        self.engine_dims(input_shape)
        return tuple(input_shape)

    def build_module(self, input_shape):
        dims = self.engine_dims(input_shape)
        if len(dims) == 1:
            return _Elementwise(torch.softmax, dim=dims[0])
        return _Elementwise(_softmax_over, dims=dims)
