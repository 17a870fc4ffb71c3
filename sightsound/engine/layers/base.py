"""The base of every layer: :class:`Layer`, :class:`WeightSpec`, TF.js naming, and the checks and
shape arithmetic the layer modules share."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ...errors import ModelFormatError, ShapeError
from ...naming import snake_case
from .. import activations, initializers

Shape = tuple  # a shape without the batch dimension, TF.js axis order

_name_counters: dict[str, itertools.count] = defaultdict(lambda: itertools.count(1))


def unique_name(class_name: str) -> str:
    """The next TF.js-style layer name, such as ``conv2d_Conv2D1``.

    Like TF.js, numbering is per class and per process.
    """
    return f"{snake_case(class_name)}_{class_name}{next(_name_counters[class_name])}"


def pair(value, what: str) -> list[int]:
    """A positive int or a pair of them, as TF.js accepts for sizes and strides."""
    def ok(v):
        return isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 2**16
    if ok(value):
        return [value, value]
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(ok(v) for v in value):
        return [int(value[0]), int(value[1])]
    raise ModelFormatError(f"{what} must be a positive int or a pair of positive ints, got {value!r:.80}")


def positive(value, what: str):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise ModelFormatError(f"{what} must be a positive number, got {value!r}")
    return value


def check_padding(value) -> str:
    if value not in ("valid", "same"):
        raise ModelFormatError(f"padding must be 'valid' or 'same', got {value!r} ('causal' is not supported)")
    return value


def no_extras(class_name: str, config: dict, *keys: str) -> None:
    """Reject regularizers/constraints and other settings the engine does not implement."""
    for key in keys:
        if config.get(key) is not None:
            raise ModelFormatError(f"{class_name}: {key}={config[key]!r} is not supported (only null)")


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TF's 'same' padding: (before, after), the odd pixel going after."""
    effective = (kernel - 1) * dilation + 1
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def conv_out(size: int, kernel: int, stride: int, padding: str, dilation: int = 1) -> int:
    effective = (kernel - 1) * dilation + 1
    if padding == "same":
        return math.ceil(size / stride)
    return (size - effective) // stride + 1


@dataclass(frozen=True)
class WeightSpec:
    """One weight as TF.js names and shapes it: ``<layer name>/<suffix>``."""

    suffix: str
    shape: tuple[int, ...]
    trainable: bool
    initializer: Any


class Layer:
    """Base of every layer: naming, the common config fields, shape checks.

    Subclasses set ``class_name`` (the TF.js/Keras class) and implement
    ``own_config``, ``compute_output_shape``, optionally ``weight_specs``, and
    ``build_module``.
    """

    class_name: ClassVar[str] = "Layer"
    multi_input: ClassVar[bool] = False

    def __init__(self, *, name: str | None = None, input_shape=None, batch_input_shape=None,
                 trainable: bool = True, dtype: str | None = None):
        self.name = name or unique_name(self.class_name)
        if input_shape is not None and batch_input_shape is None:
            batch_input_shape = [None, *input_shape]
        if batch_input_shape is not None:
            dims = list(batch_input_shape)
            if len(dims) < 2 or any(not (isinstance(d, int) and d > 0) for d in dims[1:]):
                raise ShapeError(f"{self.name}: input_shape must be positive ints, got {list(dims[1:])}")
            batch_input_shape = [None, *dims[1:]]
        if dtype not in (None, "float32"):
            raise ModelFormatError(f"{self.name}: dtype {dtype!r} is not supported (float32 only)")
        self.batch_input_shape = batch_input_shape
        self.trainable = bool(trainable)

    # -- data -------------------------------------------------------------
    def own_config(self) -> dict:
        return {}

    def config(self) -> dict:
        """The ``config`` TF.js writes for this layer in ``model.json``."""
        cfg = {**self.own_config(), "name": self.name, "trainable": self.trainable}
        if self.batch_input_shape is not None:
            cfg["batch_input_shape"] = list(self.batch_input_shape)
            cfg["dtype"] = "float32"
        return cfg

    def to_json(self) -> dict:
        return {"class_name": self.class_name, "config": self.config()}

    @classmethod
    def from_config(cls, config: dict) -> "Layer":
        raise NotImplementedError

    # -- shapes and weights ----------------------------------------------
    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def weight_specs(self, input_shape: Shape) -> list[WeightSpec]:
        return []

    def count_params(self, input_shape: Shape) -> int:
        return sum(math.prod(w.shape) for w in self.weight_specs(input_shape))

    def build_module(self, input_shape: Shape) -> nn.Module:
        raise NotImplementedError

    def tfjs_weights(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """The weights of ``module`` (built by :meth:`build_module`) by ``WeightSpec.suffix``, in engine layout.

        The parameters and buffers themselves, looked up on each call: a move to another
        device replaces buffers, so a mapping kept from build time could go stale.
        """
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    # -- the functional API: hooks into sightsound.engine.functional ------------
    def apply(self, inputs, **kwargs):
        """TF.js ``layer.apply``: on symbolic tensors (``sightsound.input``) the symbolic output(s), the call
        recorded as a node of this layer; on arrays the layer's output, computed now."""
        return FUNCTIONAL.apply(self, inputs, **kwargs)

    def __call__(self, inputs, **kwargs):
        return self.apply(inputs, **kwargs)

    @property
    def input(self):
        """The symbolic input of the layer's only call (TF.js ``layer.input``)."""
        return FUNCTIONAL.call_tensor(self, "input")

    @property
    def output(self):
        """The symbolic output of the layer's only call (TF.js ``layer.output``)."""
        return FUNCTIONAL.call_tensor(self, "output")


#: The functional API (symbolic calls and tensors) lives in :mod:`sightsound.engine.functional`, which builds
#: on this module and sets this to itself when imported (``import sightsound`` does), so layers stay data here.
FUNCTIONAL: Any = None


def init_params(specs: list[WeightSpec], tensors: dict[str, torch.Tensor]) -> None:
    """Initialise each weight with its TF.js initializer, using TF.js fan sizes."""
    for spec in specs:
        initializers.initialize(tensors[spec.suffix], spec.initializer, list(spec.shape))


def kernel_and_bias(layer: nn.Module) -> dict[str, torch.Tensor]:
    """A convolution's or linear layer's weights: ``kernel``, and ``bias`` if it has one."""
    return {"kernel": layer.weight} if layer.bias is None else {"kernel": layer.weight, "bias": layer.bias}


class ActivationMixin:
    def _set_activation(self, activation):
        self.activation = activations.check(activation)


def base_kwargs(config: dict) -> dict:
    return {"name": config.get("name"), "batch_input_shape": config.get("batch_input_shape"),
            "trainable": config.get("trainable", True), "dtype": config.get("dtype")}


def shape_text(shape) -> str:
    """A batch shape as TF.js prints it: ``(28, 28, 1)`` -> ``[null,28,28,1]`` (also ``Sequential.summary``)."""
    return "[null," + ",".join(str(d) for d in shape) + "]"
