"""``Model``: the functional model (``tf.model({inputs, outputs})``), a graph of layer calls.

A model is defined by symbolic tensors: ``inputs`` (from :func:`sightsound.input`) and ``outputs`` (what layers
called on them returned). Like TF.js, the model walks back from its outputs, orders its layers (deepest first,
ties in the order the walk met them), and checks that every output can be computed from the inputs. Layers may
be shared (called more than once: one set of weights) and models may be layers of other models.

Inside, :class:`_GraphNet` runs the calls in that order with one PyTorch module per layer (shared with every
other model that runs the layer). Tensors keep the engine's layout: a rank-3 image is NCHW in channels_last
memory, every other rank keeps TF.js's axis order; each rank-3 input is permuted from NHWC on the way in and
each image-shaped output back to NHWC on the way out, as ``Sequential`` does.

Example (two inputs, a shared layer, two outputs)::

    >>> import numpy as np, sightsound
    >>> from sightsound import layers
    >>> a, b = sightsound.input(shape=[4]), sightsound.input(shape=[4])
    >>> shared = layers.dense(units=3, activation="relu")
    >>> left, right = shared.apply(a), shared.apply(b)
    >>> model = sightsound.model(inputs=[a, b], outputs=[layers.dense(units=2).apply(left), right], device="cpu")
    >>> [y.shape for y in model.predict([np.ones((5, 4)), np.zeros((5, 4))])]
    [(5, 2), (5, 3)]
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from ..errors import ModelFormatError, ShapeError
from ..naming import accepts_tfjs_options, python_options
from ..runtime import cpu_heap
from . import layers as layers_mod
from .functional import (Container, InputLayer, Node, SymbolicTensor, built_module, call_input_shape,
                         inbound_nodes, layer_module, weight_split)
from .model_config import FUNCTIONAL_CLASS_NAMES, rebuild
from .summary import graph_lines
from .trainer import DEFAULT_INFERENCE_BATCH, Trainer, _check_batch_size, own_output

_model_counter = itertools.count(1)  # TF.js names models model1, model2, ...


class Model(Container, Trainer):
    """A functional model (TF.js ``tf.model``, Keras ``Functional``): layers called on symbolic tensors.

    ``inputs``/``outputs`` are lists of symbolic tensors; ``input_shape``/``output_shape`` are one shape
    (without the batch axis) for one input/output, a list of them for several. ``predict``, ``fit`` and
    ``evaluate`` take a list of arrays for several inputs (``fit``/``evaluate`` a list of targets for several
    outputs); ``predict`` returns a list for several outputs. With several outputs the compiled loss applies
    to each: the logged ``loss`` is their sum, ``acc`` the mean of their accuracies.
    """

    class_name = "Model"

    def __init__(self, inputs, outputs, name: str | None = None, device: str = "auto"):
        self.inputs = _tensor_list(inputs, "inputs")
        self.outputs = _tensor_list(outputs, "outputs")
        self.name = name or f"model{next(_model_counter)}"
        self.trainable = True
        _check_inputs(self.inputs)
        self.layers, self.run_order, self.nodes_by_depth = _map_graph(self.inputs, self.outputs)
        self.graph_nodes = {node.id for nodes in self.nodes_by_depth.values() for node in nodes}
        self.net: _GraphNet | None = None
        self._init_training(device)
        Node(self, self.inputs, self.outputs)  # the model's own node 0, as TF.js makes it

    # -- description ----------------------------------------------------------------
    @property
    def input_layers(self) -> list:
        return [t.source_layer for t in self.inputs]

    @property
    def output_layers(self) -> list:
        return [t.source_layer for t in self.outputs]

    @property
    def input_shape(self):
        """The input shape without the batch axis, e.g. ``(28, 28, 1)``; a list of them for several inputs."""
        shapes = [tuple(t.shape[1:]) for t in self.inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape(self):
        shapes = [tuple(t.shape[1:]) for t in self.outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    def summary_lines(self, line_length: int | None = None, positions: list[float] | None = None) -> list[str]:
        return graph_lines(self, line_length, positions)

    # -- building ----------------------------------------------------------------------
    def build(self) -> "Model":
        """Create the PyTorch modules (done automatically on first use); refresh which weights train."""
        if self.net is None:
            self.net = _GraphNet(self)
            self._place()
        _sync_trainable(self)
        return self

    def _place(self) -> None:
        super()._place()
        for layer in self.layers:
            if isinstance(layer, Container):
                layer.device = self.device  # its modules moved with this model's

    # -- config --------------------------------------------------------------------------
    def get_config(self) -> dict:
        """The ``config`` TF.js writes for the model: layers with their inbound nodes, input and output layers.

        Node indices count only the calls that belong to this model, a model's own node 0 first (as TF.js's
        ``getConfig``); each inbound tensor is ``[layer name, node index, tensor index, {}]``.
        """
        kept: dict[int, int] = {}
        for layer in self.layers:
            count = itertools.count(1 if isinstance(layer, Container) else 0)
            for node in inbound_nodes(layer):
                if node.id in self.graph_nodes:
                    kept[node.id] = next(count)
        entries = []
        for layer in self.layers:
            calls = [[[t.source_layer.name, kept.get(t.node.id, 0), t.tensor_index, {}] for t in node.inputs]
                     for node in inbound_nodes(layer) if node.id in self.graph_nodes and node.inputs]
            entries.append({"name": layer.name, "class_name": layer.class_name, "config": _layer_config(layer),
                            "inbound_nodes": calls})
        return {"name": self.name, "layers": entries,
                "input_layers": [[t.source_layer.name, kept.get(t.node.id, 0), t.tensor_index] for t in self.inputs],
                "output_layers": [[t.source_layer.name, kept.get(t.node.id, 0), t.tensor_index]
                                  for t in self.outputs]}

    @classmethod
    def from_config(cls, config: dict, device: str = "auto", class_name: str = "Model") -> "Model":
        """Rebuild a model from its ``config`` (weights freshly initialised): TF.js's and Keras 2's list form of
        inbound nodes, and Keras 3's dict form (:mod:`sightsound.engine.model_config`)."""
        if class_name not in FUNCTIONAL_CLASS_NAMES:
            raise ModelFormatError(f"{class_name!r} is not a functional model class ({FUNCTIONAL_CLASS_NAMES})")
        inputs, outputs, trainable = rebuild(config, device, class_name, cls.from_config)
        model = cls(inputs, outputs, name=config.get("name"), device=device)
        model.class_name, model.trainable = class_name, trainable
        return model

    # -- inference -------------------------------------------------------------------------
    @accepts_tfjs_options(data_args=1)
    def predict(self, x, batch_size: int | None = None, verbose: int = 0):
        """Outputs for ``x``: an array ``[N, *input_shape]``, or a list of arrays, one per input.

        Returns an array, or a list of arrays for several outputs. ``batch_size`` changes only the speed.
        """
        _check_batch_size(batch_size, optional=True)
        arrays = _one_per(x, self.input_layers, "x")
        with cpu_heap(self.device, tune=False):
            xs = [self._as_inputs(a, f"x[{i}]" if len(arrays) > 1 else "x", tuple(t.shape[1:]))
                  for i, (a, t) in enumerate(zip(arrays, self.inputs))]
            if len({len(t) for t in xs}) > 1:
                raise ShapeError(f"the inputs have different numbers of examples: {[len(t) for t in xs]}")
            outs = self._predict_all(xs, batch_size or DEFAULT_INFERENCE_BATCH)
        return outs[0] if len(outs) == 1 else outs

    def _predict_all(self, xs: list[torch.Tensor], step: int) -> list[np.ndarray]:
        n = len(xs[0])
        if n == 0:
            return [np.zeros((0, *t.shape[1:]), dtype=np.float32) for t in self.outputs]
        with torch.inference_mode(), self._inference(), self._autocast():
            if n <= step:  # one pass: no slices to join
                outs = self.net(*xs)
                owned = list(xs)
                for out in outs if isinstance(outs, tuple) else (outs,):
                    owned.append(own_output(out, owned))
                return [out.float().cpu().numpy() for out in owned[len(xs):]]
            batches = [self.net(*[x[i:i + step] for x in xs]) for i in range(0, n, step)]
            batches = [b if isinstance(b, tuple) else (b,) for b in batches]
            return [torch.cat([b[k] for b in batches]).float().cpu().numpy() for k in range(len(self.outputs))]

    # -- training with several inputs or outputs ---------------------------------------------
    def _several(self) -> bool:
        return len(self.inputs) > 1 or len(self.outputs) > 1

    def _as_tensors(self, x, y, x_what: str, y_what: str):
        """With several inputs or outputs ``x`` and ``y`` are lists of arrays: each is checked, then they are
        packed side by side into one ``[N, ...]`` tensor each, which ``fit`` batches, shuffles and splits as any
        other (:meth:`_loss_and_correct` unpacks them)."""
        if not self._several():  # TF.js takes [x] and [y] for one input and output too
            return super()._as_tensors(*(_one_per(v, [t], what)[0] for v, t, what in
                                         ((x, self.inputs[0], x_what), (y, self.outputs[0], y_what))),
                                       x_what, y_what)
        arrays = _one_per(x, self.input_layers, x_what)
        xs = [self._as_inputs(a, f"{x_what}[{i}]", tuple(t.shape[1:]))
              for i, (a, t) in enumerate(zip(arrays, self.inputs))]
        if len({len(t) for t in xs}) > 1:
            raise ShapeError(f"{x_what}: the inputs have different numbers of examples: {[len(t) for t in xs]}")
        ys = [self._as_targets(b, len(xs[0]), x_what, f"{y_what}[{k}]", tuple(t.shape[1:]))
              for k, (b, t) in enumerate(zip(_one_per(y, self.output_layers, y_what), self.outputs))]
        return _pack(xs), _pack(ys)

    def _loss_and_correct(self, x: torch.Tensor, y: torch.Tensor):
        """Several outputs: the loss is the sum of each output's loss (the compiled loss for every output, as
        TF.js's one loss name does), the correct count the mean of the outputs' counts."""
        if not self._several():
            return super()._loss_and_correct(x, y)
        sparse = self.loss == "sparseCategoricalCrossentropy"
        xs = _unpack(x, [t.shape[1:] for t in self.inputs])
        ys = _unpack(y, [() if sparse else t.shape[1:] for t in self.outputs])
        ys = [t.long() for t in ys] if sparse else ys
        fused = len(self.outputs) == 1 and self.loss != "meanSquaredError" and self.net.fused_softmax
        with self._autocast():
            outs = self.net(*xs, logits=fused)
        outs = outs if isinstance(outs, tuple) else (outs,)
        parts = [self._output_loss(out.float(), target, logits=fused) for out, target in zip(outs, ys)]
        return sum(loss for loss, _ in parts), sum(correct for _, correct in parts) / len(parts)


def model(options: Mapping | None = None, *, inputs=None, outputs=None, name: str | None = None,
          device: str = "auto") -> Model:
    """``tf.model``: the functional model from ``inputs`` to ``outputs`` (a symbolic tensor or a list each).

    TF.js's call style works too: ``model({"inputs": x, "outputs": y})``.
    """
    if options is not None:
        return model(**python_options(options))
    return Model(inputs, outputs, name=name, device=device)


def _one_per(value, layers: list, what: str) -> list:
    """One array per input (or output): a list of them, or for one input an array or a list of one."""
    arrays = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(layers) == 1 and len(arrays) != 1:
        arrays = [value]  # a plain list of numbers or rows is one array
    if len(arrays) != len(layers):
        raise ShapeError(f"{what}: expected {len(layers)} arrays, one for each of "
                         f"{', '.join(l.name for l in layers)}; got {len(arrays)}")
    return arrays


def _pack(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(len(t), -1).to(torch.float32) for t in tensors], dim=1)


def _unpack(packed: torch.Tensor, shapes: list[tuple]) -> list[torch.Tensor]:
    out, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape, dtype=np.int64))
        out.append(packed[:, start:start + size].reshape(len(packed), *shape))
        start += size
    return out


def _layer_config(layer) -> dict:
    return layer.get_config() if isinstance(layer, Container) else layer.config()


def _tensor_list(tensors, what: str) -> list[SymbolicTensor]:
    items = list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]
    if not items:
        raise ModelFormatError(f"a model needs at least one tensor in {what}")
    for i, t in enumerate(items):
        if not isinstance(t, SymbolicTensor):
            raise TypeError(f"{what}[{i}] must be a symbolic tensor (from sightsound.input() or layer.apply), "
                            f"got {type(t).__name__}")
    return items


def _check_inputs(inputs: list[SymbolicTensor]) -> None:
    for i, t in enumerate(inputs):
        if not isinstance(t.source_layer, InputLayer):
            raise ModelFormatError(f"inputs[{i}] comes from layer {t.source_layer.name} "
                                   f"({t.source_layer.class_name}); a model's inputs come from sightsound.input() "
                                   f"(InputLayer)")
    names = [t.source_layer.name for t in inputs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ModelFormatError(f"input layer(s) {', '.join(twice)} appear more than once in the inputs")


# ----------------------------------------------------------------------------- the graph, as TF.js maps it

def _map_graph(inputs, outputs):
    """``(layers, nodes in run order, {depth: nodes})`` as TF.js's ``Container`` computes them.

    A depth-first walk from the outputs lists every node after its inbound nodes and numbers layers in the order
    it meets them; a node's depth is its distance from the outputs (a layer takes its deepest node's); layers
    are ordered by depth, deepest first, then by that number.
    """
    finished, seen_layers = _walk(outputs)
    node_depth: dict[int, int] = {}
    layer_depth: dict[int, int] = {}
    by_id = {node.id: node for node in finished}
    for node in reversed(finished):
        depth = max(node_depth.get(node.id, 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = node_depth[node.id] = depth
        for t in node.inputs:
            node_depth[t.node.id] = max(depth + 1, node_depth.get(t.node.id, 0))
    layers = sorted(seen_layers.values(), key=lambda entry: (-layer_depth[id(entry[1])], entry[0]))
    layers = [layer for _, layer in layers]
    nodes_by_depth: dict[int, list[Node]] = {}
    for node_id in sorted(node_depth):
        nodes_by_depth.setdefault(node_depth[node_id], []).append(by_id[node_id])
    run_order = [node for depth in sorted(nodes_by_depth, reverse=True) for node in nodes_by_depth[depth]]
    _check_graph(inputs, run_order, layers)
    return layers, run_order, dict(sorted(nodes_by_depth.items()))


def _walk(outputs):
    """Nodes in post-order (every node after the nodes it takes tensors from) and ``{id(layer): (n, layer)}``."""
    finished: list[Node] = []
    done: set[int] = set()
    seen_layers: dict[int, tuple[int, object]] = {}
    for tensor in outputs:
        root = tensor.node
        if root.id in done:
            continue
        seen_layers.setdefault(id(root.layer), (len(seen_layers), root.layer))
        stack = [(root, iter(root.inputs))]
        while stack:
            node, pending = stack[-1]
            child = next((t.node for t in pending if t.node.id not in done), None)
            if child is None:
                stack.pop()
                done.add(node.id)
                finished.append(node)
                continue
            seen_layers.setdefault(id(child.layer), (len(seen_layers), child.layer))
            stack.append((child, iter(child.inputs)))
    return finished, seen_layers


def _check_graph(inputs, run_order, layers) -> None:
    """Every input used, every node computable from the inputs, layer names unique (names make the config)."""
    given = {id(t.node) for t in inputs}
    used = {id(node) for node in run_order}
    for node in run_order:
        if isinstance(node.layer, InputLayer) and id(node) not in given:
            users = sorted({n.layer.name for n in run_order for t in n.inputs if t.node is node})
            raise ModelFormatError(f"graph disconnected: layer {', '.join(users)} needs input layer "
                                   f"{node.layer.name}, which is not among the model's inputs")
    for t in inputs:
        if id(t.node) not in used:
            raise ModelFormatError(f"input layer {t.source_layer.name} does not lead to any output: the graph "
                                   f"leaves it dangling")
    names = [layer.name for layer in layers]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ModelFormatError(f"layer name(s) {', '.join(twice)} are used more than once in the model; "
                               f"every layer needs its own name")


def _sync_trainable(model) -> None:
    """``requires_grad`` of every weight as TF.js's trainable/non-trainable split says (frozen layers and models)."""
    trainable, frozen = weight_split(model)
    for flag, part in ((True, trainable), (False, frozen)):
        for layer, spec in part:
            tensor = layer.tfjs_weights(built_module(layer)).get(spec.suffix)
            if isinstance(tensor, nn.Parameter):
                tensor.requires_grad_(flag)


# ----------------------------------------------------------------------------- running the graph

_SINGLE, _MULTI, _MODEL = "single", "multi", "model"


class _GraphNet(nn.Module):
    """The PyTorch side of a functional model: runs the layer calls in order on a list of tensor slots.

    ``forward(*inputs)`` takes TF.js-layout inputs (NHWC images) and returns TF.js-layout outputs, one tensor
    or a tuple; ``engine_layout=True`` (inside another model) skips both permutations. ``logits=True`` returns
    the logits of a final softmax (``fused_softmax``) for numerically stable cross-entropy.
    """

    def __init__(self, model: Model):
        super().__init__()
        slots = {(t.node.id, 0): i for i, t in enumerate(model.inputs)}
        modules: list[nn.Module] = []
        steps = []
        for node in model.run_order:
            if isinstance(node.layer, InputLayer):
                continue
            module, kind = _node_module(node.layer)
            if all(m is not module for m in modules):
                modules.append(module)
            ins = [slots[(t.node.id, t.tensor_index)] for t in node.inputs]
            outs = [slots.setdefault((node.id, i), len(slots)) for i in range(len(node.outputs))]
            steps.append([next(i for i, m in enumerate(modules) if m is module), kind, ins, outs, False, []])
        self.blocks = nn.ModuleList(modules)
        self.input_count = len(model.inputs)
        self.output_slots = [slots[(t.node.id, t.tensor_index)] for t in model.outputs]
        self.slot_count = len(slots)
        self.image_input = any(len(t.shape) == 4 for t in model.inputs)
        self.fused_softmax = _fuse_final_softmax(model, steps, self.output_slots, modules)
        _plan_release(steps, self.output_slots)
        self.steps = [tuple(step) for step in steps]

    def forward(self, *inputs: torch.Tensor, logits: bool = False, engine_layout: bool = False):
        if len(inputs) != self.input_count:
            raise ShapeError(f"the model takes {self.input_count} inputs, got {len(inputs)}")
        slots: list = [None] * self.slot_count
        for i, x in enumerate(inputs):
            slots[i] = x if engine_layout or x.dim() != 4 else x.permute(0, 3, 1, 2)  # NHWC -> NCHW view
        for block_index, kind, ins, outs, fused, release in self.steps:
            block = self.blocks[block_index]
            args = [slots[j] for j in ins]
            if kind == _MODEL:
                out = block(*args, logits=logits and fused, engine_layout=True)
            elif logits and fused:
                out = layers_mod.pre_softmax(block, args[0])
            else:
                out = block(args) if kind == _MULTI else block(args[0])
            for j, value in zip(outs, out if isinstance(out, tuple) else (out,)):
                slots[j] = value
            for j in release:
                slots[j] = None  # no later call needs it: free the memory now
        results = [slots[j] for j in self.output_slots]
        if not engine_layout:
            results = [r.permute(0, 2, 3, 1) if r.dim() == 4 else r for r in results]  # back to NHWC
        return results[0] if len(results) == 1 else tuple(results)


def _node_module(layer) -> tuple[nn.Module, str]:
    if isinstance(layer, Container):
        return layer.build().net, _MODEL
    return layer_module(layer, call_input_shape(layer)), (_MULTI if layer.multi_input else _SINGLE)


def _fuse_final_softmax(model: Model, steps: list, output_slots: list[int], modules: list[nn.Module]) -> bool:
    """Whether the one output is a softmax whose logits the loss can take (marks that step)."""
    if len(output_slots) != 1 or not steps:
        return False
    producer = next((s for s in steps if output_slots[0] in s[3]), None)
    if producer is None or any(output_slots[0] in s[2] for s in steps):
        return False  # the output is an input, or another layer takes it too
    layer = model.outputs[0].source_layer
    block = modules[producer[0]]
    if producer[1] == _MODEL:
        ok = bool(getattr(block, "fused_softmax", False))
    else:
        ok = producer[1] == _SINGLE and getattr(layer, "activation", None) == "softmax" and \
            len(model.outputs[0].shape) == 2
    producer[4] = ok
    return ok


def _plan_release(steps: list, output_slots: list[int]) -> None:
    last_use = {}
    for i, step in enumerate(steps):
        for j in step[2]:
            last_use[j] = i
    for j, i in last_use.items():
        if j not in output_slots:
            steps[i][5].append(j)
