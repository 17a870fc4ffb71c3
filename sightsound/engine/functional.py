"""The functional API's building blocks: symbolic tensors, the nodes that record layer calls, ``InputLayer``,
``input()``, the :class:`Container` base of models, and the one PyTorch module of each layer.

As in TF.js, calling a layer on symbolic tensors computes no numbers: it records a :class:`Node` (which tensors
went in, which came out, their shapes) in the layer's list of calls and returns new symbolic tensors. A tensor
knows the layer, call (node index) and output (tensor index) it comes from, so a model can walk back from its
outputs to its inputs. A layer called twice is *shared*: two nodes, one set of weights. A model (``Sequential``
or ``Model``) is a layer too; like TF.js its node 0 links its own inputs to its outputs, so its calls inside
another model are nodes 1, 2, ...

Example::

    >>> import sightsound
    >>> from sightsound import layers
    >>> x = sightsound.input(shape=[4], name="features")
    >>> hidden = layers.dense(units=3, activation="relu", name="hidden")
    >>> y = hidden.apply(x)
    >>> y.shape, y.source_layer is hidden, y.node_index
    ((None, 3), True, 0)

Each layer has one PyTorch module (:func:`layer_module`), built for the input shape of its first call, so
every model that runs the layer (a ``Sequential`` and a functional model made from its layers, say) trains and
uses the same weights, as in TF.js.
"""

from __future__ import annotations

import itertools
import math
import sys
import weakref
from collections.abc import Mapping
from typing import Any, Callable, ClassVar

import numpy as np
import torch
from torch import nn

from ..errors import ModelFormatError, ShapeError
from ..naming import python_options
from .layers import Activation, Conv2D, MaxPooling2D, ReLU
from .layers import base as layers_base
from .layers.base import Layer, Shape, WeightSpec
from .layers.input_layer import InputLayer

_node_counter = itertools.count()  # creation order, which orders TF.js's nodes within a depth


def batch_shape_text(shape) -> str:
    """A shape with its batch axis as JavaScript's ``JSON.stringify`` writes it: ``(None, 4)`` -> ``[null,4]``."""
    return "[" + ",".join("null" if d is None else str(d) for d in shape) + "]"


class SymbolicTensor:
    """A tensor of a model being defined (TF.js ``SymbolicTensor``): a shape and where it comes from.

    ``shape`` has the batch axis first (``None`` unless ``sightsound.input(batch_size=...)`` fixed it);
    ``source_layer``, ``node_index`` and ``tensor_index`` say which call of which layer produced it.
    """

    dtype = "float32"

    def __init__(self, shape, source_layer, node_index: int, tensor_index: int, name: str):
        self.shape = tuple(shape)
        self.source_layer, self.node_index, self.tensor_index = source_layer, node_index, tensor_index
        self.name = name

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def node(self) -> "Node":
        return inbound_nodes(self.source_layer)[self.node_index]

    def __repr__(self) -> str:
        return f"SymbolicTensor(name={self.name!r}, shape={batch_shape_text(self.shape)})"


class Node:
    """One call of a layer (``layer``): the tensors that went in and those that came out.

    ``input_shapes``/``output_shapes`` are full shapes (batch axis first), as TF.js records them. ``wrapped`` is
    False only for a one-layer ``Sequential``'s own node, whose output shapes TF.js records as a bare shape: its
    ``summary()`` then prints such a model's output shape as "multiple" once the model is called.
    """

    def __init__(self, layer, inputs: list[SymbolicTensor], outputs: list[SymbolicTensor], wrapped: bool = True):
        self.layer, self.inputs, self.outputs, self.wrapped = layer, list(inputs), list(outputs), wrapped
        self.input_shapes = [t.shape for t in self.inputs]
        self.id = next(_node_counter)
        nodes = inbound_nodes(layer)
        self.index = len(nodes)
        nodes.append(self)

    @classmethod
    def call(cls, layer, inputs: list[SymbolicTensor], output_shapes: list[tuple]) -> "Node":
        """Record a call of ``layer`` on ``inputs``, with new output tensors of ``output_shapes``."""
        index = len(inbound_nodes(layer))
        names = [f"{layer.name}/{layer.name}" + (f"_{index}" if index else "") + (f"_{i}" if i else "")
                 for i in range(len(output_shapes))]
        outputs = [SymbolicTensor(shape, layer, index, i, name) for i, (shape, name)
                   in enumerate(zip(output_shapes, names))]
        return cls(layer, inputs, outputs)

    @property
    def output_shapes(self) -> list[tuple]:
        return [t.shape for t in self.outputs]

    def output_shapes_json(self) -> str:
        """``JSON.stringify(node.outputShapes)`` in TF.js, for the summary's output shape column."""
        shapes = [batch_shape_text(s) for s in self.output_shapes]
        return shapes[0] if not self.wrapped else "[" + ",".join(shapes) + "]"

    def __repr__(self) -> str:
        return f"Node({getattr(self.layer, 'name', '?')}[{self.index}])"


def inbound_nodes(layer) -> list[Node]:
    """Every call of ``layer`` so far, in order (TF.js ``layer.inboundNodes``); kept on the layer object."""
    return vars(layer).setdefault("_inbound_nodes", [])


def call_input_shape(layer):
    """The input shape(s) without the batch axis of the layer's first call (every call has the same), as the
    layer's ``compute_output_shape``, ``weight_specs`` and ``build_module`` take them; None before any call."""
    nodes = inbound_nodes(layer)
    if not nodes:
        return None
    shapes = [tuple(s[1:]) for s in nodes[0].input_shapes]
    return shapes if getattr(layer, "multi_input", False) else shapes[0]


# ----------------------------------------------------------------------------- InputLayer and input()

def placeholder(layer) -> None:
    """Give a new :class:`InputLayer` its node and symbolic tensor (called from its constructor)."""
    dims = layer.batch_input_shape
    tensor = SymbolicTensor(dims, layer, 0, 0, layer.name)
    node = Node(layer, [], [tensor])
    node.input_shapes = [tuple(dims)]  # TF.js records the placeholder's own shape as the input shape


def input(options: Mapping | None = None, *, shape=None, batch_shape=None, name: str | None = None,  # noqa: A001
          batch_size: int | None = None, dtype: str = "float32") -> SymbolicTensor:
    """``tf.input``: the symbolic input of a functional model, ``shape`` without the batch axis.

    TF.js's call style works too: ``input({"shape": [28, 28, 1], "name": "image"})``.
    """
    if options is not None:
        return input(**python_options(options))
    layer = InputLayer(input_shape=shape, batch_input_shape=batch_shape, batch_size=batch_size, name=name,
                       dtype=dtype)
    return inbound_nodes(layer)[0].outputs[0]


# ----------------------------------------------------------------------------- calling layers

def apply(layer, inputs, **kwargs):
    """``layer.apply(inputs)``: symbolic tensors in, symbolic tensors out (the call recorded as a node); or
    arrays in, the layer's output now (an array, or a list of arrays for several outputs)."""
    if kwargs:
        raise TypeError(f"{layer.name}.apply(): keyword arguments {sorted(kwargs)} are not supported")
    several = isinstance(inputs, (list, tuple))
    tensors = list(inputs) if several else [inputs]
    symbolic = [isinstance(t, SymbolicTensor) for t in tensors]
    if not tensors:
        raise ShapeError(f"{layer.name}.apply() got no inputs")
    if all(symbolic):
        outputs = _symbolic_call(layer, tensors).outputs
    elif any(symbolic):
        raise TypeError(f"{layer.name}.apply(): do not mix symbolic tensors and arrays")
    else:
        return _eager_call(layer, tensors)
    return outputs[0] if len(outputs) == 1 else outputs


def _symbolic_call(layer, tensors: list[SymbolicTensor]) -> Node:
    inner = [tuple(t.shape[1:]) for t in tensors]
    batch = tensors[0].shape[0]
    if isinstance(layer, Container):
        expected = [tuple(t.shape[1:]) for t in layer.inputs]
        if inner != expected:
            raise ShapeError(f"{layer.name}: expects inputs {_shapes_text(expected)}, got {_shapes_text(inner)}")
        return Node.call(layer, tensors, [(batch, *t.shape[1:]) for t in layer.outputs])
    if not getattr(layer, "multi_input", False) and len(tensors) != 1:
        raise ShapeError(f"{layer.name} ({layer.class_name}) takes one input, got {len(tensors)}")
    shape_in = inner if layer.multi_input else inner[0]
    first = call_input_shape(layer) if inbound_nodes(layer) else _MODULES.get(layer, (None,))[0]
    if first is not None and _as_tuple(first) != _as_tuple(shape_in):
        raise ShapeError(f"{layer.name}: the layer was first called on {_shapes_text(first)} and cannot be "
                         f"called on {_shapes_text(shape_in)} (its weights and module are built for the first "
                         f"input shape)")
    out = tuple(layer.compute_output_shape(shape_in))
    return Node.call(layer, tensors, [(batch, *out)])


def _as_tuple(shape):
    return tuple(tuple(s) for s in shape) if shape and isinstance(shape[0], (list, tuple)) else tuple(shape)


def _shapes_text(shapes) -> str:
    if shapes and isinstance(shapes[0], (list, tuple)):
        return ",".join(_shapes_text(s) for s in shapes)
    return batch_shape_text((None, *shapes))


def _eager_call(layer, arrays):
    """Run a layer (or a model) on arrays now, in inference mode, as TF.js's ``apply`` on concrete tensors."""
    if isinstance(layer, Container):
        return layer.predict(arrays if len(arrays) > 1 else arrays[0])
    xs = [torch.as_tensor(np.asarray(a, dtype=np.float32)) for a in arrays]
    if not getattr(layer, "multi_input", False) and len(xs) != 1:
        raise ShapeError(f"{layer.name} ({layer.class_name}) takes one input, got {len(xs)}")
    shapes = [tuple(x.shape[1:]) for x in xs]
    module = layer_module(layer, shapes if layer.multi_input else shapes[0])
    device = next(itertools.chain(module.parameters(), module.buffers()), torch.zeros(0)).device
    xs = [(x.permute(0, 3, 1, 2) if x.dim() == 4 else x).to(device) for x in xs]
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = module(xs) if layer.multi_input else module(xs[0])
    finally:
        module.train(was_training)
    return (out.permute(0, 2, 3, 1) if out.dim() == 4 else out).cpu().numpy()


def call_tensor(layer, which: str):
    """``layer.input`` / ``layer.output``: the tensor(s) of the layer's only call, as TF.js defines them."""
    nodes = inbound_nodes(layer)
    if not nodes:
        raise AttributeError(f"{layer.name} has not been called yet, so it has no {which}")
    if len(nodes) > 1:
        raise AttributeError(f"{layer.name} has been called {len(nodes)} times (a shared layer), so its {which} "
                             f"is ill-defined; use inbound_nodes(layer)[i].{which}s")
    tensors = nodes[0].inputs if which == "input" else nodes[0].outputs
    if isinstance(layer, InputLayer):
        tensors = nodes[0].outputs
    return tensors[0] if len(tensors) == 1 else list(tensors)


layers_base.FUNCTIONAL = sys.modules[__name__]  # what Layer.apply, .input and .output call


# ----------------------------------------------------------------------------- models as layers

class Container:
    """What ``Sequential`` and ``Model`` share as layers of other models (TF.js ``Container``).

    A subclass has ``name``, ``class_name``, ``layers``, ``inputs``/``outputs`` (symbolic tensors), ``trainable``
    (False freezes every weight of the model, as TF.js's ``model.trainable = false``), ``get_config()``,
    ``build()`` and a ``net`` that runs on engine-layout tensors when called with ``engine_layout=True``.
    """

    class_name: ClassVar[str] = "Container"
    multi_input: ClassVar[bool] = False
    trainable: bool = True
    layers: list
    inputs: list[SymbolicTensor]
    outputs: list[SymbolicTensor]

    def apply(self, inputs, **kwargs):
        """Call the model like a layer: on symbolic tensors inside another model, or on arrays (``predict``)."""
        return apply(self, inputs, **kwargs)

    __call__ = apply

    @property
    def input(self):
        return call_tensor(self, "input")

    @property
    def output(self):
        return call_tensor(self, "output")

    def to_json(self) -> dict:
        """The model as a layer entry of another model's config."""
        return {"class_name": self.class_name, "config": self.get_config()}

    def get_config(self) -> dict:
        raise NotImplementedError

    def get_layer(self, name: str):
        """The layer called ``name`` (TF.js ``model.getLayer``)."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer {name!r} in {self.name}; it has {', '.join(l.name for l in self.layers)}")

    def count_params(self) -> int:
        trainable, frozen = weight_split(self)
        return sum(math.prod(spec.shape) for _, spec in trainable + frozen)

    def summary(self, line_length: int | None = None, positions: list[float] | None = None,
                print_fn: Callable[[str], None] = print) -> None:
        """Print the table TF.js 4.22 prints for the same model."""
        for line in self.summary_lines(line_length, positions):
            print_fn(line)

    def summary_lines(self, line_length: int | None = None, positions: list[float] | None = None) -> list[str]:
        raise NotImplementedError

    def save(self, path: str, include_optimizer: bool = False, user_defined_metadata: dict | None = None):
        """Write ``model.json`` + ``weights.bin`` as TF.js's ``model.save('file://dir')``
        (:func:`sightsound.tfjs.save_model`)."""
        return _model_writer(self, path, include_optimizer=include_optimizer,
                             user_defined_metadata=user_defined_metadata)


def _no_writer(model, path, **options):
    raise RuntimeError("no model writer: import sightsound (its tfjs package registers the TF.js writer)")


# The TF.js format builds on the engine, never the reverse: sightsound.tfjs, which the package imports
# first, registers its writer here for model.save.
_model_writer: Callable = _no_writer


def register_model_writer(writer: Callable) -> None:
    """Make ``writer(model, path, include_optimizer=, user_defined_metadata=)`` what ``model.save`` calls."""
    global _model_writer
    _model_writer = writer


def weight_split(container) -> tuple[list[tuple[Any, WeightSpec]], list[tuple[Any, WeightSpec]]]:
    """``(layer, spec)`` of the model's trainable and non-trainable weights in TF.js's order.

    TF.js's ``model.trainableWeights`` lists the trainable weights of its trainable layers, in layer order,
    with a nested model's own list in its place; ``nonTrainableWeights`` the rest, likewise. A frozen model
    (``trainable = False``) has no trainable weights; its layers' weights come in their order, all the still
    trainable weights of any model nested in it first, as TF.js's getters produce them.
    """
    trainable, frozen = [], []
    parts = [_layer_split(layer, container.trainable) for layer in container.layers]
    for layer_trainable, layer_frozen in parts:
        trainable += layer_trainable
        frozen += layer_frozen
    if container.trainable:
        return trainable, frozen
    return [], trainable + frozen


def _layer_split(layer, parent_trainable: bool):
    if isinstance(layer, Container):
        return weight_split(layer)
    shape = call_input_shape(layer)
    specs = layer.weight_specs(shape) if shape is not None else []
    trainable = [(layer, s) for s in specs if s.trainable]
    fixed = [(layer, s) for s in specs if not s.trainable]
    if layer.trainable and parent_trainable:
        return trainable, fixed
    return [], trainable + fixed


# ----------------------------------------------------------------------------- each layer's module

#: layer -> (the input shape it was built for, its module). Weak: a layer no model holds goes with its module.
_MODULES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def layer_module(layer: Layer, input_shape) -> nn.Module:
    """The layer's module, built (with freshly initialised weights) for ``input_shape`` on first use."""
    entry = _MODULES.get(layer)
    if entry is None:
        entry = (input_shape, layer.build_module(input_shape))
        _MODULES[layer] = entry
    elif _as_tuple(entry[0]) != _as_tuple(input_shape):
        raise ShapeError(f"{layer.name}: its module is built for input {_shapes_text(entry[0])}, not "
                         f"{_shapes_text(input_shape)}")
    return entry[1]


def built_module(layer: Layer) -> nn.Module | None:
    """The layer's module if it has been built, else None."""
    entry = _MODULES.get(layer)
    return entry[1] if entry is not None else None


def fuse_pool_relu(layers: list, blocks: list[nn.Module]) -> list[nn.Module]:
    """The blocks of a chain of ``layers`` (a Sequential's), with what comes just before a maxPooling2d moved
    after the pooling: a relu (a conv2d's relu activation, an Activation('relu') or a ReLU() layer), and the bias
    of a conv2d with a relu or no activation. The same numbers, gradients included: relu and max commute, and so
    do max and adding a per-channel constant (rounding is monotonic; the pooling pads with -inf), so the add, the
    relu and their backward run on 4x fewer elements, and the convolution's backward computes no bias
    gradient (oneDNN's is slow for few channels). The layers' own modules are not changed: wherever else they
    run, they run unfused."""
    chain = list(blocks)
    for i in range(len(layers) - 1):
        if not isinstance(layers[i + 1], MaxPooling2D):
            continue
        relu = _plain_relu(layers[i])
        conv = layers[i] if isinstance(layers[i], Conv2D) and layers[i].activation in ("relu", "linear") else None
        bias = blocks[i].conv.bias if conv is not None and conv.use_bias else None
        if conv is not None and (relu or bias is not None):
            chain[i] = blocks[i].without_activation(add_bias=bias is None)
        elif relu:
            chain[i] = nn.Identity()
        else:
            continue
        chain[i + 1] = _AfterPooling(blocks[i + 1], bias, relu)
    return chain


def _plain_relu(layer: Layer) -> bool:
    """Whether ``layer`` ends in a relu with nothing after it (and no cap)."""
    if isinstance(layer, (Conv2D, Activation)):
        return layer.activation == "relu"
    return isinstance(layer, ReLU) and layer.max_value is None


class _AfterPooling(nn.Module):
    """A pooling block followed by the bias and the relu that :func:`fuse_pool_relu` moved after it."""

    def __init__(self, block: nn.Module, bias: nn.Parameter | None, relu: bool):
        super().__init__()
        self.block, self.relu = block, relu
        # the convolution's own parameter, kept by its block; not registered here a second time
        object.__setattr__(self, "bias", bias)

    def forward(self, x):
        y = self.block(x)
        if self.bias is not None:  # in y's precision: a float32 bias would turn a bfloat16 y into float32
            y = y + self.bias.to(y.dtype).view(1, -1, *([1] * (y.dim() - 2)))
        return torch.relu(y) if self.relu else y
