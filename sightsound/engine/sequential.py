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
from typing import Callable

import torch
from torch import nn

from ..errors import ShapeError
from ..runtime import resolve_device
from . import layers as layers_mod
from . import optimizers
from .summary import summary_lines
from .trainer import Trainer

_sequential_counter = itertools.count(1)


class _Net(nn.Module):
    """The PyTorch side of a Sequential model: NHWC in, TF.js-shaped out."""

    def __init__(self, blocks: list[nn.Module], image_input: bool, fused_softmax: bool):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.image_input = image_input
        self.fused_softmax = fused_softmax  # the last block is a softmax that losses may skip

    def forward(self, x: torch.Tensor, logits: bool = False) -> torch.Tensor:
        if self.image_input:
            x = x.permute(0, 3, 1, 2)  # NHWC -> NCHW view, channels_last in memory
        blocks = self.blocks
        last = len(blocks) - 1
        for i, block in enumerate(blocks):
            if i == last and logits and self.fused_softmax:
                return layers_mod.pre_softmax(block, x)  # logits, for numerically stable cross-entropy
            x = block(x)
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1)  # back to TF.js's NHWC for image-shaped outputs
        return x


def _pool_before_relu(layers: list, blocks: list[nn.Module]) -> None:
    """conv2d(relu) -> maxPooling2d runs as conv -> pool -> relu: the same numbers (relu and max
    commute, gradients included), with the relu and its backward on 4x fewer elements."""
    for i in range(len(layers) - 1):
        conv, pool = layers[i], layers[i + 1]
        if isinstance(conv, layers_mod.Conv2D) and conv.activation == "relu" and \
                isinstance(pool, layers_mod.MaxPooling2D):
            blocks[i].activation = nn.Identity()
            blocks[i + 1].post_activation = nn.ReLU()


class Sequential(Trainer):
    """A linear stack of layers, as ``tf.sequential()``."""

    def __init__(self, layers: list | None = None, name: str | None = None, device: str = "auto"):
        self.name = name or f"sequential_{next(_sequential_counter)}"
        self.layers: list[layers_mod.Layer] = []
        self.device = resolve_device(device)
        self.net: _Net | None = None
        self.optimizer: optimizers.Optimizer | None = None
        self.loss: str | None = None
        self.metrics: list[str] = []
        self.stop_training = False
        self.user_defined_metadata: dict | None = None  # saved as userDefinedMetadata, as TF.js does
        self.dtype_policy = "float32"
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
        self.shapes  # validates shapes now, as TF.js does on add()
        self.net = None

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
            blocks = [layer.build_module(shape_in) for layer, (shape_in, _) in zip(self.layers, self.shapes)]
            _pool_before_relu(self.layers, blocks)
            for layer, block in zip(self.layers, blocks):
                if not layer.trainable:  # frozen as in TF.js: no updates, counted as non-trainable
                    for param in block.parameters():
                        param.requires_grad_(False)
            last = self.layers[-1]
            fused = getattr(last, "activation", None) == "softmax" and len(self.output_shape) == 1
            self.net = _Net(blocks, image_input=len(self.input_shape) == 3, fused_softmax=fused)
            self._place()
        return self

    def _place(self) -> None:
        self.net.to(self.device)
        if self.net.image_input:
            self.net.to(memory_format=torch.channels_last)
        if self.optimizer is not None:
            self.optimizer.bind(list(self.net.parameters()))

    def to(self, device: str | torch.device) -> "Sequential":
        """Move the model to ``"cpu"``, ``"cuda"`` or ``"auto"``."""
        self.device = resolve_device(device)
        if self.net is not None:
            slots = self.optimizer.slots if self.optimizer is not None else None
            self._place()
            if slots and self.optimizer is not None:  # keep optimizer state across devices
                self.optimizer.slots = {k: [t.to(self.device) for t in v] for k, v in slots.items()}
        return self

    # -- description -----------------------------------------------------------
    def count_params(self) -> int:
        return sum(layer.count_params(shape_in) for layer, (shape_in, _) in zip(self.layers, self.shapes))

    def summary(self, line_length: int | None = None, positions: list[float] | None = None,
                print_fn: Callable[[str], None] = print) -> None:
        """Print the table TF.js 4.22 prints for the same model."""
        for line in self.summary_lines(line_length, positions):
            print_fn(line)

    def summary_lines(self, line_length: int | None = None, positions: list[float] | None = None) -> list[str]:
        return summary_lines(self.layers, self.shapes, line_length, positions)

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

    # -- persistence -------------------------------------------------------------
    def save(self, path: str, include_optimizer: bool = False, user_defined_metadata: dict | None = None):
        """Write ``model.json`` + ``weights.bin`` as TF.js's ``model.save('file://dir')``
        (:func:`sightsound.tfjs.save_model`)."""
        return _model_writer(self, path, include_optimizer=include_optimizer,
                             user_defined_metadata=user_defined_metadata)


def _no_writer(model, path, **options):
    raise RuntimeError("no model writer: import sightsound (its tfjs package registers the TF.js writer)")


# The TF.js format builds on the engine, never the reverse: sightsound.tfjs, which the package imports
# first, registers its writer here for Sequential.save.
_model_writer: Callable = _no_writer


def register_model_writer(writer: Callable) -> None:
    """Make ``writer(model, path, include_optimizer=, user_defined_metadata=)`` what ``Sequential.save`` calls."""
    global _model_writer
    _model_writer = writer


def sequential(layers: list | None = None, name: str | None = None, device: str = "auto") -> Sequential:
    """``tf.sequential()``: an empty model, or one from a list of layers."""
    return Sequential(layers, name=name, device=device)
