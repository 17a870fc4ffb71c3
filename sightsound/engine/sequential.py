"""``Sequential``: the layer stack (add, shapes, build, summary, config, save).

The API mirrors TF.js's ``tf.sequential()`` in Python naming; arrays are NHWC
like TF.js. Inside, a PyTorch module runs the layers (images NCHW in
channels_last memory, which is what PyTorch's CPU convolutions run fastest).
``compile``, ``fit``, ``evaluate`` and ``predict`` come from the training loop,
:class:`sightsound.engine.trainer.Trainer`, which ``Sequential`` inherits.

Example (Listing 4.1 in short)::

    >>> import sightsound
    >>> from sightsound import layers
    >>> model = sightsound.sequential()
    >>> model.add(layers.conv2d(filters=16, kernel_size=3, activation="relu", input_shape=[28, 28, 1]))
    >>> model.add(layers.max_pooling2d(pool_size=2, strides=2))
    >>> model.add(layers.flatten())
    >>> model.add(layers.dense(units=10, activation="softmax"))
    >>> model.count_params()
    27210
    >>> model.compile(optimizer="rmsprop", loss="categoricalCrossentropy", metrics=["accuracy"])
"""

from __future__ import annotations

import itertools
import torch
from torch import nn

from ..errors import ShapeError
from . import layers as layers_mod
from .functional import Container, InputLayer, Node, apply, fuse_pool_relu, inbound_nodes, layer_module
from .summary import sequential_lines
from .trainer import Trainer

_sequential_counter = itertools.count(1)


class _Net(nn.Module):
    """The PyTorch side of a Sequential model: NHWC in, TF.js-shaped out."""

    def __init__(self, blocks: list[nn.Module], image_input: bool, fused_softmax: bool):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.image_input = image_input
        self.fused_softmax = fused_softmax  # the last block is a softmax that losses may skip

    def forward(self, x: torch.Tensor, logits: bool = False, engine_layout: bool = False) -> torch.Tensor:
        """``engine_layout=True``: ``x`` and the result in the engine's layout (images NCHW), as when this
        model runs inside a functional model."""
        if self.image_input and not engine_layout:
            x = x.permute(0, 3, 1, 2)  # NHWC -> NCHW view, channels_last in memory
        blocks = self.blocks
        last = len(blocks) - 1
        for i, block in enumerate(blocks):
            if i == last and logits and self.fused_softmax:
                return layers_mod.pre_softmax(block, x)  # logits, for numerically stable cross-entropy
            x = block(x)
        if x.dim() == 4 and not engine_layout:
            x = x.permute(0, 2, 3, 1)  # back to TF.js's NHWC for image-shaped outputs
        return x


class Sequential(Container, Trainer):
    """A linear stack of layers, as ``tf.sequential()``.

    Like TF.js, ``add`` calls each layer on the previous one's output, so ``model.inputs``, ``model.outputs``
    and every layer's ``input``/``output`` are symbolic tensors, and the model can be a layer of a functional
    model (:func:`sightsound.model`) or give it its layers (``model.layers[k].output``).
    """

    class_name = "Sequential"

    def __init__(self, layers: list | None = None, name: str | None = None, device: str = "auto"):
        self.name = name or f"sequential_{next(_sequential_counter)}"
        self.layers: list[layers_mod.Layer] = []
        self.inputs, self.outputs = [], []
        self.trainable = True
        self.net: _Net | None = None
        self._init_training(device)
        for layer in layers or []:
            self.add(layer)

    # -- building ------------------------------------------------------------
    def add(self, layer: layers_mod.Layer) -> None:
        """Append a layer; the first one needs ``input_shape``."""
        if not isinstance(layer, layers_mod.Layer):
            raise TypeError(f"model.add() takes a layer such as layers.dense(units=10), got {type(layer).__name__}")
        if not self.layers and layer.batch_input_shape is None:
            raise ShapeError(f"the first layer ({layer.name}) needs input_shape, e.g. input_shape=[28, 28, 1]")
        if self.layers and layer.batch_input_shape is not None:
            expected = self.shapes[-1][1]
            if tuple(layer.batch_input_shape[1:]) != tuple(expected):
                raise ShapeError(f"{layer.name}: input_shape {list(layer.batch_input_shape[1:])} does not match "
                                 f"the previous layer's output {list(expected)}")
        self.layers.append(layer)
        self._shapes = None
        try:
            self.shapes  # validates shapes now, as TF.js does on add()
            self._connect(layer)
        except Exception:
            self.layers.pop()
            self._shapes = None
            raise
        self.net = None

    def _connect(self, layer: layers_mod.Layer) -> None:
        """Call ``layer`` on the model's output so far, as TF.js's ``add`` does; the first layer on a new
        ``<layer name>_input`` InputLayer. The model's own node 0 links its input to its current output."""
        if not self.inputs:
            if isinstance(layer, InputLayer):  # an explicit input layer is the model's input, as in TF.js
                self.inputs = self.outputs = [inbound_nodes(layer)[0].outputs[0]]
            else:
                source = InputLayer(batch_input_shape=layer.batch_input_shape, name=f"{layer.name}_input")
                self.inputs = [inbound_nodes(source)[0].outputs[0]]
                self.outputs = [apply(layer, self.inputs[0])]
            Node(self, self.inputs, self.outputs, wrapped=False)  # TF.js records a bare shape here
        else:
            self.outputs = [apply(layer, self.outputs[0])]
            node = inbound_nodes(self)[0]
            node.outputs, node.wrapped = list(self.outputs), True

    @property
    def input_shape(self) -> tuple:
        """Input shape without the batch axis, e.g. ``(28, 28, 1)``."""
        if not self.layers:
            raise ShapeError("the model has no layers yet")
        return tuple(self.layers[0].batch_input_shape[1:])

    @property
    def output_shape(self) -> tuple:
        return self.shapes[-1][1]

    @property
    def shapes(self) -> list[tuple[tuple, tuple]]:
        """(input shape, output shape) of every layer, without the batch axis."""
        if getattr(self, "_shapes", None) is None:
            shapes, current = [], self.input_shape
            for layer in self.layers:
                out = tuple(layer.compute_output_shape(current))
                shapes.append((current, out))
                current = out
            self._shapes = shapes
        return self._shapes

    def build(self) -> "Sequential":
        """Create the PyTorch modules (done automatically on first use)."""
        if self.net is None:
            blocks = [layer_module(layer, shape_in) for layer, (shape_in, _) in zip(self.layers, self.shapes)]
            blocks = fuse_pool_relu(self.layers, blocks)
            for layer, block in zip(self.layers, blocks):
                if not (layer.trainable and self.trainable):  # frozen as in TF.js: no updates, non-trainable
                    for param in block.parameters():
                        param.requires_grad_(False)
            last = self.layers[-1]
            fused = getattr(last, "activation", None) == "softmax" and len(self.output_shape) == 1
            self.net = _Net(blocks, image_input=len(self.input_shape) == 3, fused_softmax=fused)
            self._place()
        return self

    # -- description -----------------------------------------------------------
    def summary_lines(self, line_length: int | None = None, positions: list[float] | None = None) -> list[str]:
        return sequential_lines(self, line_length, positions)

    def get_config(self) -> dict:
        """The Sequential ``config`` TF.js writes in ``modelTopology``."""
        return {"name": self.name, "layers": [layer.to_json() for layer in self.layers]}

    @classmethod
    def from_config(cls, config: dict, device: str = "auto") -> "Sequential":
        """Rebuild a model from a Sequential ``config`` (weights freshly initialised)."""
        from ..errors import ModelFormatError

        entries = config.get("layers") if isinstance(config, dict) else config
        if not isinstance(entries, list) or not entries:
            raise ModelFormatError("the Sequential config has no 'layers' list")
        entries = list(entries)
        if entries[0].get("class_name") == "InputLayer":  # written by Keras and the TF.js converter
            shape = (entries[0].get("config") or {}).get("batch_input_shape") or \
                (entries[0].get("config") or {}).get("batch_shape")
            entries = entries[1:]
            if not entries:
                raise ModelFormatError("the model has an InputLayer but no other layer")
            entries[0] = {"class_name": entries[0]["class_name"],
                          "config": {**entries[0]["config"], "batch_input_shape": shape}}
        built = [layers_mod.from_json(e) for e in entries]
        model = cls(name=config.get("name") if isinstance(config, dict) else None, device=device)
        for layer in built:
            model.add(layer)
        return model


def sequential(layers: list | None = None, name: str | None = None, device: str = "auto") -> Sequential:
    """``tf.sequential()``: an empty model, or one from a list of layers."""
    return Sequential(layers, name=name, device=device)
