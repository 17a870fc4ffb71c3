"""Layers with TF.js names, configs and defaults, run by PyTorch modules.

A layer is plain data first: its ``config()`` holds exactly the fields TF.js
writes into ``model.json`` (snake_case keys, in TF.js's order), and its
``weight_specs()`` list the weights TF.js would create, with their TF.js
shapes. ``build_module()`` turns that data into a PyTorch module.

Inside the engine, image tensors (TF.js rank 3 without the batch: H, W, C) are
NCHW, the layout PyTorch's convolutions want; every other tensor keeps the TF.js
axis order. ``flatten`` and ``reshape`` translate between the two so that a
flattened image is in TF.js's H, W, C order, and dense kernels need no row
permutation when a model is saved or loaded.

Example (Listing 4.1's first layers)::

    >>> from sightsound import layers
    >>> conv = layers.conv2d(filters=16, kernel_size=3, activation="relu", input_shape=[28, 28, 1])
    >>> conv.compute_output_shape((28, 28, 1))
    (26, 26, 16)
    >>> layers.max_pooling2d(pool_size=2).config()["strides"]
    [2, 2]
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelFormatError, ShapeError
from ..naming import python_options, snake_case
from . import activations, initializers

Shape = tuple  # a shape without the batch dimension, TF.js axis order

_name_counters: dict[str, itertools.count] = defaultdict(lambda: itertools.count(1))


def unique_name(class_name: str) -> str:
    """The next TF.js-style layer name, such as ``conv2d_Conv2D1``.

    Like TF.js, numbering is per class and per process.
    """
    return f"{snake_case(class_name)}_{class_name}{next(_name_counters[class_name])}"


def _pair(value, what: str) -> list[int]:
    """A positive int or a pair of them, as TF.js accepts for sizes and strides."""
    def ok(v):
        return isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 2**16
    if ok(value):
        return [value, value]
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(ok(v) for v in value):
        return [int(value[0]), int(value[1])]
    raise ModelFormatError(f"{what} must be a positive int or a pair of positive ints, got {value!r:.80}")


def _positive(value, what: str):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise ModelFormatError(f"{what} must be a positive number, got {value!r}")
    return value


def _padding(value) -> str:
    if value not in ("valid", "same"):
        raise ModelFormatError(f"padding must be 'valid' or 'same', got {value!r} ('causal' is not supported)")
    return value


def _no_extras(class_name: str, config: dict, *keys: str) -> None:
    """Reject regularizers/constraints and other settings the engine does not implement."""
    for key in keys:
        if config.get(key) is not None:
            raise ModelFormatError(f"{class_name}: {key}={config[key]!r} is not supported (only null)")


def _same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TF's 'same' padding: (before, after), the odd pixel going after."""
    effective = (kernel - 1) * dilation + 1
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _conv_out(size: int, kernel: int, stride: int, padding: str, dilation: int = 1) -> int:
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


def _init_params(specs: list[WeightSpec], tensors: dict[str, torch.Tensor]) -> None:
    """Initialise each weight with its TF.js initializer, using TF.js fan sizes."""
    for spec in specs:
        initializers.initialize(tensors[spec.suffix], spec.initializer, list(spec.shape))


def _kernel_and_bias(layer: nn.Module) -> dict[str, torch.Tensor]:
    """A convolution's or linear layer's weights: ``kernel``, and ``bias`` if it has one."""
    return {"kernel": layer.weight} if layer.bias is None else {"kernel": layer.weight, "bias": layer.bias}


# ---------------------------------------------------------------------------
# Convolution and dense


class _ActivationMixin:
    def _set_activation(self, activation):
        self.activation = activations.check(activation)


class Conv2D(Layer, _ActivationMixin):
    """2-D convolution over NHWC images (``tf.layers.conv2d``)."""

    class_name = "Conv2D"

    def __init__(self, filters: int, kernel_size, strides=1, padding="valid", data_format="channels_last",
                 dilation_rate=1, activation=None, use_bias=True, kernel_initializer=None,
                 bias_initializer=None, **base):
        super().__init__(**base)
        self.filters = int(_positive(filters, f"{self.name}: filters"))
        self.kernel_size = _pair(kernel_size, f"{self.name}: kernel_size")
        self.strides = _pair(strides, f"{self.name}: strides")
        self.padding = _padding(padding)
        if data_format != "channels_last":
            raise ModelFormatError(f"{self.name}: data_format {data_format!r} is not supported (channels_last only)")
        self.dilation_rate = _pair(dilation_rate, f"{self.name}: dilation_rate")
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
        _no_extras(cls.class_name, c, "kernel_regularizer", "kernel_constraint", "bias_regularizer",
                   "activity_regularizer", "bias_constraint")
        return cls(filters=c["filters"], kernel_size=c["kernel_size"], strides=c.get("strides", 1),
                   padding=c.get("padding", "valid"), data_format=c.get("data_format") or "channels_last",
                   dilation_rate=c.get("dilation_rate", 1), activation=c.get("activation"),
                   use_bias=c.get("use_bias", True), kernel_initializer=c.get("kernel_initializer"),
                   bias_initializer=c.get("bias_initializer"), **_base_kwargs(c))

    def _check_input(self, input_shape):
        if len(input_shape) != 3:
            raise ShapeError(f"{self.name}: expects input [null,height,width,channels], got {shape_text(input_shape)}")

    def compute_output_shape(self, input_shape):
        self._check_input(input_shape)
        h, w, _ = input_shape
        oh = _conv_out(h, self.kernel_size[0], self.strides[0], self.padding, self.dilation_rate[0])
        ow = _conv_out(w, self.kernel_size[1], self.strides[1], self.padding, self.dilation_rate[1])
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
            top, bottom = _same_pads(h, self.kernel_size[0], self.strides[0], self.dilation_rate[0])
            left, right = _same_pads(w, self.kernel_size[1], self.strides[1], self.dilation_rate[1])
            pads = (left, right, top, bottom)
        symmetric = pads[0] == pads[1] and pads[2] == pads[3]
        conv = nn.Conv2d(c, self.filters, tuple(self.kernel_size), stride=tuple(self.strides),
                         padding=(pads[2], pads[0]) if symmetric else 0,
                         dilation=tuple(self.dilation_rate), bias=self.use_bias)
        module = _ConvBlock(conv, None if symmetric else pads, activations.module(self.activation))
        _init_params(self.weight_specs(input_shape), self.tfjs_weights(module))
        return module

    def tfjs_weights(self, module):
        return _kernel_and_bias(module.conv)


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


class Dense(Layer, _ActivationMixin):
    """Fully connected layer over the last axis (``tf.layers.dense``)."""

    class_name = "Dense"

    def __init__(self, units: int, activation=None, use_bias=True, kernel_initializer=None,
                 bias_initializer=None, **base):
        super().__init__(**base)
        self.units = int(_positive(units, f"{self.name}: units"))
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
        _no_extras(cls.class_name, c, "kernel_regularizer", "kernel_constraint", "bias_regularizer",
                   "activity_regularizer", "bias_constraint")
        return cls(units=c["units"], activation=c.get("activation"), use_bias=c.get("use_bias", True),
                   kernel_initializer=c.get("kernel_initializer"), bias_initializer=c.get("bias_initializer"),
                   **_base_kwargs(c))

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
        _init_params(self.weight_specs(input_shape), self.tfjs_weights(module))
        return module

    def tfjs_weights(self, module):
        return _kernel_and_bias(module.linear)


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


# ---------------------------------------------------------------------------
# Pooling


class _Pooling2D(Layer):
    kind: ClassVar[str] = "max"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format="channels_last", **base):
        super().__init__(**base)
        self.pool_size = _pair(pool_size, f"{self.name}: pool_size")
        self.strides = _pair(strides if strides is not None else self.pool_size, f"{self.name}: strides")
        self.padding = _padding(padding)
        if data_format != "channels_last":
            raise ModelFormatError(f"{self.name}: data_format {data_format!r} is not supported (channels_last only)")

    def own_config(self):
        return {"pool_size": self.pool_size, "padding": self.padding, "strides": self.strides,
                "data_format": "channels_last"}

    @classmethod
    def from_config(cls, c):
        return cls(pool_size=c.get("pool_size", 2), strides=c.get("strides"), padding=c.get("padding", "valid"),
                   data_format=c.get("data_format") or "channels_last", **_base_kwargs(c))

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ShapeError(f"{self.name}: expects input [null,height,width,channels], got {shape_text(input_shape)}")
        h, w, c = input_shape
        oh = _conv_out(h, self.pool_size[0], self.strides[0], self.padding)
        ow = _conv_out(w, self.pool_size[1], self.strides[1], self.padding)
        if oh <= 0 or ow <= 0:
            raise ShapeError(f"{self.name}: input {shape_text(input_shape)} is smaller than the pool {self.pool_size}")
        return (oh, ow, c)

    def build_module(self, input_shape):
        self.compute_output_shape(input_shape)
        h, w, _ = input_shape
        pads = None
        if self.padding == "same":
            top, bottom = _same_pads(h, self.pool_size[0], self.strides[0])
            left, right = _same_pads(w, self.pool_size[1], self.strides[1])
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
        return cls(**_base_kwargs(c))

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ShapeError(f"{self.name}: expects input [null,height,width,channels], got {shape_text(input_shape)}")
        return (input_shape[2],)

    def build_module(self, input_shape):
        return _GlobalAverage()


class _GlobalAverage(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))


# ---------------------------------------------------------------------------
# Shape changes, regularisation, normalisation


class Flatten(Layer):
    """Flattens all but the batch axis, in TF.js order (H, W, C for images)."""

    class_name = "Flatten"

    @classmethod
    def from_config(cls, c):
        return cls(**_base_kwargs(c))

    def compute_output_shape(self, input_shape):
        return (math.prod(input_shape),)

    def build_module(self, input_shape):
        return _Flatten(image=len(input_shape) == 3)


class _Flatten(nn.Module):
    def __init__(self, image: bool):
        super().__init__()
        self.image = image

    def forward(self, x):
        if self.image:  # NCHW inside -> TF.js's H, W, C order (free for channels_last memory)
            x = x.permute(0, 2, 3, 1)
        return x.reshape(x.shape[0], -1)


class Reshape(Layer):
    """Reshape to ``target_shape`` (without the batch axis), TF.js element order."""

    class_name = "Reshape"

    def __init__(self, target_shape, **base):
        super().__init__(**base)
        if not isinstance(target_shape, (list, tuple)) or not target_shape or \
                any(not isinstance(d, int) or (d <= 0 and d != -1) for d in target_shape) or \
                list(target_shape).count(-1) > 1:
            raise ModelFormatError(f"{self.name}: target_shape must be positive ints (at most one -1), "
                                   f"got {target_shape!r}")
        self.target_shape = list(target_shape)

    def own_config(self):
        return {"target_shape": self.target_shape}

    @classmethod
    def from_config(cls, c):
        return cls(target_shape=c["target_shape"], **_base_kwargs(c))

    def compute_output_shape(self, input_shape):
        total = math.prod(input_shape)
        known = math.prod(d for d in self.target_shape if d != -1)
        shape = [total // known if d == -1 else d for d in self.target_shape]
        if math.prod(shape) != total:
            raise ShapeError(f"{self.name}: cannot reshape {shape_text(input_shape)} ({total} values) "
                             f"to {self.target_shape}")
        return tuple(shape)

    def build_module(self, input_shape):
        return _Reshape(self.compute_output_shape(input_shape), from_image=len(input_shape) == 3)


class _Reshape(nn.Module):
    def __init__(self, target, from_image):
        super().__init__()
        self.target, self.from_image = tuple(target), from_image

    def forward(self, x):
        if self.from_image:
            x = x.permute(0, 2, 3, 1)
        x = x.reshape(x.shape[0], *self.target)
        if len(self.target) == 3:
            x = x.permute(0, 3, 1, 2)
        return x


class Dropout(Layer):
    """Drops ``rate`` of the inputs while fitting, scaling the rest by 1/(1-rate)."""

    class_name = "Dropout"

    def __init__(self, rate: float, noise_shape=None, seed=None, **base):
        super().__init__(**base)
        if not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ModelFormatError(f"{self.name}: rate must be in [0, 1), got {rate!r}")
        if noise_shape is not None:
            raise ModelFormatError(f"{self.name}: noise_shape is not supported (only null)")
        self.rate, self.seed = float(rate), seed

    def own_config(self):
        return {"rate": self.rate, "noise_shape": None, "seed": self.seed}

    @classmethod
    def from_config(cls, c):
        return cls(rate=c["rate"], noise_shape=c.get("noise_shape"), seed=c.get("seed"), **_base_kwargs(c))

    def build_module(self, input_shape):
        return _Dropout(self.rate)


class _Dropout(nn.Module):
    """Inverted dropout with a cheap mask: four 16-bit draws from each 64-bit random number.

    ``nn.Dropout`` draws one Bernoulli sample per element, which on CPU can
    cost more than the dense layer it guards. The keep probability is quantised to 1/65,536 (exact for the
    usual rates 0.1, 0.25, 0.5 ... up to 7.6e-6); the kept values are scaled
    by 1/(1-rate) as in TF.js. The random numbers come from PyTorch's default
    generator, so ``torch.manual_seed`` repeats a run.
    """

    def __init__(self, rate: float):
        super().__init__()
        self.rate = rate
        self.threshold = int(round(rate * 65536)) - 32768  # keep where a signed 16-bit draw >= this

    def extra_repr(self) -> str:
        return f"rate={self.rate}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0:
            return x
        n = x.numel()
        bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_(-(2 ** 63), None)
        keep = bits.view(torch.int16)[:n].view(x.shape) >= self.threshold
        return x * keep.to(x.dtype).mul_(1.0 / (1.0 - self.rate))  # autograd keeps the scaled mask


class Activation(Layer, _ActivationMixin):
    """Applies an activation function (``tf.layers.activation``)."""

    class_name = "Activation"

    def __init__(self, activation, **base):
        super().__init__(**base)
        self._set_activation(activation)

    def own_config(self):
        return {"activation": self.activation}

    @classmethod
    def from_config(cls, c):
        return cls(activation=c["activation"], **_base_kwargs(c))

    def build_module(self, input_shape):
        return activations.module(self.activation)


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
        _no_extras(cls.class_name, c, "beta_regularizer", "gamma_regularizer", "beta_constraint",
                   "gamma_constraint")
        return cls(axis=c.get("axis", -1), momentum=c.get("momentum", 0.99), epsilon=c.get("epsilon", 0.001),
                   center=c.get("center", True), scale=c.get("scale", True),
                   beta_initializer=c.get("beta_initializer"), gamma_initializer=c.get("gamma_initializer"),
                   moving_mean_initializer=c.get("moving_mean_initializer"),
                   moving_variance_initializer=c.get("moving_variance_initializer"), **_base_kwargs(c))

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
        _init_params(self.weight_specs(input_shape), self.tfjs_weights(bn))
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


# ---------------------------------------------------------------------------
# Registry and the TF.js-style factory functions

LAYER_CLASSES: dict[str, type[Layer]] = {cls.class_name: cls for cls in (
    Conv2D, Dense, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, Flatten, Reshape, Dropout,
    Activation, BatchNormalization)}


def _base_kwargs(config: dict) -> dict:
    return {"name": config.get("name"), "batch_input_shape": config.get("batch_input_shape"),
            "trainable": config.get("trainable", True), "dtype": config.get("dtype")}


def from_json(layer_json: dict) -> Layer:
    """Build a layer from its ``{"class_name", "config"}`` entry in model.json."""
    if not isinstance(layer_json, dict) or not isinstance(layer_json.get("config"), dict):
        raise ModelFormatError(f"a layer entry must be an object with class_name and config, got {layer_json!r:.200}")
    class_name = layer_json.get("class_name")
    cls = LAYER_CLASSES.get(class_name)
    if cls is None:
        raise ModelFormatError(f"unknown layer class {class_name!r}; supported: {', '.join(LAYER_CLASSES)}")
    try:
        return cls.from_config(layer_json["config"])
    except KeyError as missing:
        raise ModelFormatError(f"{class_name} config lacks the field {missing}") from None
    except (TypeError, ValueError, AttributeError, ArithmeticError) as err:
        # a config field of the wrong type or value that no specific check caught
        raise ModelFormatError(f"{class_name} config is invalid: {err}") from None


def _kwargs(kwargs: dict) -> dict:
    """Accept TF.js camelCase option names too (``kernelSize`` -> ``kernel_size``)."""
    return python_options(kwargs)


def conv2d(**kwargs) -> Conv2D:
    """``tf.layers.conv2d``: ``conv2d(filters=16, kernel_size=3, activation="relu", input_shape=[28, 28, 1])``."""
    return Conv2D(**_kwargs(kwargs))


def dense(**kwargs) -> Dense:
    """``tf.layers.dense``: ``dense(units=10, activation="softmax")``."""
    return Dense(**_kwargs(kwargs))


def max_pooling2d(**kwargs) -> MaxPooling2D:
    """``tf.layers.maxPooling2d``: ``max_pooling2d(pool_size=2, strides=2)``."""
    return MaxPooling2D(**_kwargs(kwargs))


def average_pooling2d(**kwargs) -> AveragePooling2D:
    """``tf.layers.averagePooling2d``."""
    return AveragePooling2D(**_kwargs(kwargs))


def global_average_pooling2d(**kwargs) -> GlobalAveragePooling2D:
    """``tf.layers.globalAveragePooling2d``."""
    return GlobalAveragePooling2D(**_kwargs(kwargs))


def flatten(**kwargs) -> Flatten:
    """``tf.layers.flatten``."""
    return Flatten(**_kwargs(kwargs))


def reshape(**kwargs) -> Reshape:
    """``tf.layers.reshape``: ``reshape(target_shape=[28, 28, 1])``."""
    return Reshape(**_kwargs(kwargs))


def dropout(**kwargs) -> Dropout:
    """``tf.layers.dropout``: ``dropout(rate=0.25)``."""
    return Dropout(**_kwargs(kwargs))


def activation(**kwargs) -> Activation:
    """``tf.layers.activation``: ``activation(activation="relu")``."""
    return Activation(**_kwargs(kwargs))


def batch_normalization(**kwargs) -> BatchNormalization:
    """``tf.layers.batchNormalization``."""
    return BatchNormalization(**_kwargs(kwargs))


def shape_text(shape) -> str:
    """A batch shape as TF.js prints it: ``(28, 28, 1)`` -> ``[null,28,28,1]`` (also ``Sequential.summary``)."""
    return "[null," + ",".join(str(d) for d in shape) + "]"
