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


_uid_counters: dict[str, itertools.count] = defaultdict(lambda: itertools.count(1))


def uid(prefix: str) -> str:
    """TF.js's ``getUid``: ``input1``, ``input2``, ... (how TF.js names an InputLayer), per process."""
    return f"{prefix}{next(_uid_counters[prefix])}"


def _size_ok(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 2**16


def pair(value, what: str) -> list[int]:
    """A positive int or a pair of them, as TF.js accepts for sizes and strides."""
    if _size_ok(value):
        return [value, value]
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_size_ok(v) for v in value):
        return [int(value[0]), int(value[1])]
    raise ModelFormatError(f"{what} must be a positive int or a pair of positive ints, got {value!r:.80}")


def single(value, what: str) -> list[int]:
    """A positive int or a list of one, as TF.js accepts for 1-D sizes and strides (saved as ``[n]``)."""
    if _size_ok(value):
        return [value]
    if isinstance(value, (list, tuple)) and len(value) == 1 and _size_ok(value[0]):
        return [int(value[0])]
    raise ModelFormatError(f"{what} must be a positive int or a list of one, got {value!r:.80}")


def non_negative_pairs(value, what: str) -> list[list[int]]:
    """ZeroPadding2D's and Cropping2D's amounts as TF.js reads them: ``n``, ``[rows, cols]`` or
    ``[[top, bottom], [left, right]]``; always returned in the last form, which TF.js saves."""
    def ok(v):
        return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 2**16
    if ok(value):
        return [[value, value], [value, value]]
    if isinstance(value, (list, tuple)) and len(value) == 2:
        if all(ok(v) for v in value):
            return [[value[0], value[0]], [value[1], value[1]]]
        if all(isinstance(v, (list, tuple)) and len(v) == 2 and all(ok(n) for n in v) for v in value):
            return [[int(n) for n in v] for v in value]
    raise ModelFormatError(f"{what} must be an int >= 0, [rows, cols] or [[top, bottom], [left, right]], "
                           f"got {value!r:.80}")


def positive_int(value, what: str) -> int:
    if not _size_ok(value):
        raise ModelFormatError(f"{what} must be a positive int, got {value!r:.80}")
    return value


def positive(value, what: str):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise ModelFormatError(f"{what} must be a positive number, got {value!r}")
    return value


def check_padding(value, who: str) -> str:
    if value not in ("valid", "same"):
        raise ModelFormatError(f"{who}: padding must be 'valid' or 'same', got {value!r} ('causal' is not supported)")
    return value


def check_data_format(value, who: str) -> str:
    """``channels_last``, TF.js's default (null and a missing field mean it too); anything else is refused."""
    if value not in (None, "channels_last"):
        raise ModelFormatError(f"{who}: data_format {value!r} is not supported (channels_last only)")
    return "channels_last"


def check_dilation(strides: list[int], dilation: list[int], who: str) -> None:
    """TF.js's convolutions refuse a stride and a dilation both above 1 (when they run; here at once)."""
    if max(strides) > 1 and max(dilation) > 1:
        raise ModelFormatError(f"{who}: strides {strides} and dilation_rate {dilation} cannot both be above 1 "
                               f"(TF.js convolutions take one or the other)")


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


def spatial_pads(hw, kernel, strides, padding: str, dilation=(1, 1)) -> tuple[int, int, int, int] | None:
    """``F.pad``'s (left, right, top, bottom) for a 2-D window over ``hw``, or None when nothing is padded."""
    if padding != "same":
        return None
    top, bottom = same_pads(hw[0], kernel[0], strides[0], dilation[0])
    left, right = same_pads(hw[1], kernel[1], strides[1], dilation[1])
    return (left, right, top, bottom) if top or bottom or left or right else None


# -- layout: TF.js axis order <-> the engine's (images NCHW, every other rank as in TF.js) ----------

def engine_axis(axis: int, rank: int, who: str) -> int:
    """The engine dimension of TF.js axis ``axis`` (batch-inclusive, may be negative) of a
    ``rank``-D input shape without the batch. Images (rank 3: H, W, C) are NCHW inside."""
    full = rank + 1
    if isinstance(axis, bool) or not isinstance(axis, int) or not -full <= axis < full:
        raise ShapeError(f"{who}: axis {axis!r} is out of range for an input of rank {full} (batch included)")
    axis %= full
    return (0, 2, 3, 1)[axis] if rank == 3 else axis


def to_tfjs_layout(x: torch.Tensor) -> torch.Tensor:
    """An engine tensor in TF.js axis order (a view: NCHW images become NHWC)."""
    return x.permute(0, 2, 3, 1) if x.dim() == 4 else x


def to_engine_layout(x: torch.Tensor) -> torch.Tensor:
    """A tensor in TF.js axis order in the engine's (a view: NHWC images become NCHW)."""
    return x.permute(0, 3, 1, 2) if x.dim() == 4 else x


def _dtype_name(dtype):
    """A dtype as TF.js and Keras 2 write it (``"float32"``), or Keras 3's ``DTypePolicy`` object."""
    if isinstance(dtype, dict) and dtype.get("class_name") in ("DTypePolicy", "Policy"):
        return (dtype.get("config") or {}).get("name")
    return dtype


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
            if len(dims) < 2 or any(not (isinstance(d, int) and not isinstance(d, bool) and d > 0) for d in dims[1:]):
                raise ShapeError(f"{self.name}: input_shape must be positive ints, got {list(dims[1:])}")
            batch_input_shape = [None, *dims[1:]]
        if _dtype_name(dtype) not in (None, "float32"):
            raise ModelFormatError(f"{self.name}: dtype {dtype!r} is not supported (float32 only)")
        self.batch_input_shape = batch_input_shape
        self.trainable = bool(trainable)

    # -- data -------------------------------------------------------------
    def own_config(self) -> dict:
        return {}

    def trailing_config(self) -> dict:
        """Fields TF.js writes after the common ones (where its getConfig adds to its parent's result)."""
        return {}

    def config(self) -> dict:
        """The ``config`` TF.js writes for this layer in ``model.json``."""
        cfg = {**self.own_config(), "name": self.name, "trainable": self.trainable}
        if self.batch_input_shape is not None:
            cfg["batch_input_shape"] = list(self.batch_input_shape)
            cfg["dtype"] = "float32"
        return {**cfg, **self.trailing_config()}

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
