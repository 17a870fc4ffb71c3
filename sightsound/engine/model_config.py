"""Reading a functional model's ``config``: its layers, their calls (``inbound_nodes``), its inputs and outputs.

Two spellings of a call are read:

- TF.js and Keras 2 (the list form): ``[["dense_1", 0, 0, {}], ...]``, one ``[layer, node index, tensor
  index, kwargs]`` per inbound tensor;
- Keras 3 (the dict form): ``{"args": [...], "kwargs": {...}}``, each tensor an object
  ``{"class_name": "__keras_tensor__", "config": {"shape": ..., "keras_history": [layer, node, tensor]}}``;
  a merge layer's args hold its list of tensors, ``[[t1, t2]]``.

Node indices count a layer's calls in the model. A model used as a layer has its own node 0 (its inputs to its
outputs) in TF.js and Keras 2, so its calls there count from 1. Keras 3 counts calls from 0 in a call's tensors,
and in ``input_layers``/``output_layers`` from 1 for a nested functional model only; both are read here.

The calls are replayed in order, a call waiting until the calls it takes tensors from are made, as TF.js's and
Keras' ``fromConfig`` do. A layer that does not exist, a node or tensor index out of range, a cycle, a layer
name used twice or an input that is not an ``InputLayer``: each is a :class:`ModelFormatError` naming the layer
and its call.
"""

from __future__ import annotations

from typing import Callable

from ..errors import ModelFormatError, SightsoundError
from . import layers as layers_mod
from .functional import Container, InputLayer, apply, inbound_nodes
from .sequential import Sequential

#: The class names a functional model is saved under: TF.js's ``tf.model`` writes "Model", Keras "Functional".
FUNCTIONAL_CLASS_NAMES = ("Model", "Functional")
_KERAS_TENSOR = "__keras_tensor__"

Ref = tuple  # (layer name, node index, tensor index)


def rebuild(config, device, class_name: str, make_functional: Callable):
    """``(inputs, outputs, trainable)`` of a functional model's ``config``: its layers created and called.

    ``make_functional(config, device=, class_name=)`` builds a nested functional model.
    """
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list) or not config["layers"]:
        raise ModelFormatError(f"the {class_name} config has no 'layers' list")
    entries = config["layers"]
    created = _create_layers(entries, device, make_functional)
    keras3 = any(isinstance(call, dict) for entry in entries for call in _calls_of(entry, ""))
    calls = {name: [_parse_call(call, f"layer {name!r} call {k}", keras3, created)
                    for k, call in enumerate(_calls_of(entry, name))]
             for name, entry in zip(created, entries)}
    _check_refs(created, calls)
    _replay(created, calls)
    inputs = [_tensor(ref, created, "input_layers", keras3) for ref in _refs(config.get("input_layers"),
                                                                            "input_layers")]
    for tensor in inputs:
        if not isinstance(tensor.source_layer, InputLayer):
            raise ModelFormatError(f"input_layers names {tensor.source_layer.name!r}, a "
                                   f"{tensor.source_layer.class_name} layer; a model's inputs must be InputLayers")
    outputs = [_tensor(ref, created, "output_layers", keras3) for ref in _refs(config.get("output_layers"),
                                                                              "output_layers")]
    return inputs, outputs, config.get("trainable", True) is not False


def _create_layers(entries: list, device, make_functional: Callable) -> dict:
    created: dict = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str) or \
                not isinstance(entry.get("config"), dict):
            raise ModelFormatError(f"layers[{i}] must be an object with class_name and config, got {entry!r:.120}")
        config = entry["config"]
        name = entry.get("name", config.get("name"))
        if not isinstance(name, str) or not name:
            raise ModelFormatError(f"layers[{i}] ({entry['class_name']}) has no name")
        if config.get("name", name) != name:
            raise ModelFormatError(f"layers[{i}] is named {name!r} but its config names it {config['name']!r}")
        if name in created:
            raise ModelFormatError(f"two layers are named {name!r}; every layer needs its own name")
        created[name] = _create(entry["class_name"], {**config, "name": name}, device, make_functional)
    return created


def _create(class_name: str, config: dict, device, make_functional: Callable):
    if class_name == "InputLayer":
        return InputLayer.from_config(config)
    if class_name == Sequential.class_name:
        return Sequential.from_config(config, device=device)
    if class_name in FUNCTIONAL_CLASS_NAMES:
        return make_functional(config, device=device, class_name=class_name)
    return layers_mod.from_json({"class_name": class_name, "config": config})


def _calls_of(entry, name: str) -> list:
    calls = entry.get("inbound_nodes") if isinstance(entry, dict) else None
    if calls is None:
        return []
    if not isinstance(calls, list):
        raise ModelFormatError(f"layer {name!r}: inbound_nodes must be a list, got {calls!r:.80}")
    return calls


def _parse_call(call, where: str, keras3: bool, created: dict) -> list[Ref]:
    """The inbound tensors of one call, as ``(layer, node index, tensor index)`` in this engine's numbering."""
    if isinstance(call, dict):
        histories: list = []
        _keras_tensors(call.get("args", []), histories, where)
        if _keras_tensors(call.get("kwargs") or {}, [], where):
            raise ModelFormatError(f"{where}: tensors passed as keyword arguments are not supported")
        refs = [_ref(h, where) for h in histories]
        # Keras 3 counts a nested model's calls from 0 here; its node 0 is the model's own
        refs = [(n, i + 1 if isinstance(created.get(n), Container) else i, t) for n, i, t in refs]
    elif isinstance(call, list):
        refs = [_ref(item, where) for item in call]
    else:
        raise ModelFormatError(f"{where}: a call must be a list of inbound tensors or a Keras 3 object, "
                               f"got {call!r:.80}")
    if not refs:
        raise ModelFormatError(f"{where}: the call has no inbound tensors")
    return refs


def _keras_tensors(value, out: list, where: str) -> list:
    """Collect the ``keras_history`` of every Keras 3 tensor in ``value`` (lists nest), in order."""
    if isinstance(value, dict) and value.get("class_name") == _KERAS_TENSOR:
        out.append((value.get("config") or {}).get("keras_history"))
    elif isinstance(value, (list, tuple)):
        for item in value:
            _keras_tensors(item, out, where)
    elif isinstance(value, dict):
        for item in value.values():
            _keras_tensors(item, out, where)
    return out


def _ref(item, where: str) -> Ref:
    ok = isinstance(item, (list, tuple)) and len(item) in (3, 4) and isinstance(item[0], str) and \
        all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in item[1:3])
    if not ok:
        raise ModelFormatError(f"{where}: an inbound tensor must be [layer name, node index, tensor index], "
                               f"got {item!r:.80}")
    return item[0], item[1], item[2]


def _node_range(layer, calls: int) -> range:
    """The node indices a call may name: an InputLayer's node 0, a model's calls 1.., a layer's calls 0.."""
    own = len(inbound_nodes(layer))  # before any call: 1 for InputLayers and models, 0 for layers
    return range(0, 1) if isinstance(layer, InputLayer) else range(own, own + calls)


def _check_refs(created: dict, calls: dict) -> None:
    for name, layer_calls in calls.items():
        if isinstance(created[name], InputLayer) and layer_calls:
            raise ModelFormatError(f"layer {name!r} is an InputLayer: it has no inbound nodes to call it on")
        for k, refs in enumerate(layer_calls):
            for inbound, node, _ in refs:
                if inbound not in created:
                    raise ModelFormatError(f"layer {name!r} call {k}: inbound layer {inbound!r} does not exist")
                nodes = _node_range(created[inbound], len(calls[inbound]))
                if node not in nodes:
                    has = f"its nodes are {nodes.start}..{nodes.stop - 1}" if len(nodes) else "it is never called"
                    raise ModelFormatError(f"layer {name!r} call {k}: inbound layer {inbound!r} has no node "
                                           f"{node} ({has})")


def _replay(created: dict, calls: dict) -> None:
    """Make every call in order; a call waits until the calls it takes tensors from are made."""
    pending = {name: list(layer_calls) for name, layer_calls in calls.items() if layer_calls}
    while pending:
        progressed = False
        for name in list(pending):
            queue = pending[name]
            while queue and all(len(inbound_nodes(created[n])) > i for n, i, _ in queue[0]):
                _call(created, name, len(calls[name]) - len(queue), queue.pop(0))
                progressed = True
            if not queue:
                del pending[name]
        if not progressed:
            waits = [f"layer {name!r} call {len(calls[name]) - len(queue)} waits for {n!r} node {i}"
                     for name, queue in pending.items() for n, i, _ in queue[0][:1]]
            raise ModelFormatError(f"the graph has a cycle: {'; '.join(waits)}")


def _call(created: dict, name: str, k: int, refs: list[Ref]) -> None:
    layer = created[name]
    tensors = []
    for inbound, node, tensor in refs:
        outputs = inbound_nodes(created[inbound])[node].outputs
        if tensor >= len(outputs):
            raise ModelFormatError(f"layer {name!r} call {k}: {inbound!r} node {node} has no tensor {tensor} "
                                   f"(it has {len(outputs)})")
        tensors.append(outputs[tensor])
    try:
        apply(layer, tensors if len(tensors) > 1 or layer.multi_input else tensors[0])
    except SightsoundError as err:
        raise ModelFormatError(f"layer {name!r} call {k}: {err}") from None


def _refs(value, what: str) -> list:
    if isinstance(value, dict):  # Keras 3 keeps a dict of named inputs or outputs
        value = list(value.values())
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        value = [value]  # Keras 3 writes one input or output without the surrounding list
    if not isinstance(value, list) or not value:
        raise ModelFormatError(f"{what} must be a non-empty list of [layer name, node index, tensor index], "
                               f"got {value!r:.80}")
    return value


def _tensor(ref, created: dict, what: str, keras3: bool):
    name, node, tensor = _ref(ref, what)
    layer = created.get(name)
    if layer is None:
        raise ModelFormatError(f"{what} names layer {name!r}, which does not exist")
    if keras3 and isinstance(layer, Sequential):
        node += 1  # Keras 3 counts a nested Sequential's calls from 0 (a nested functional model's from 1)
    nodes = inbound_nodes(layer)
    if node >= len(nodes) or (isinstance(layer, Container) and node == 0):
        raise ModelFormatError(f"{what} names node {node} of layer {name!r}, which does not exist")
    if tensor >= len(nodes[node].outputs):
        raise ModelFormatError(f"{what} names tensor {tensor} of layer {name!r} node {node}, which does not exist")
    return nodes[node].outputs[tensor]
