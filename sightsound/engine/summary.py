"""The model summary table, as TF.js 4.22's ``model.summary()`` (``printSummary``) prints it.

A model whose graph is a chain (every ``Sequential``, and functional models without branches, merges or
shared layers) gets the 4-column table, 90 characters wide; any other functional model the 5-column one,
115 wide, whose last column lists the tensors each layer receives (``layer[node][tensor]``).
"""

from __future__ import annotations

import math

from .functional import Container, batch_shape_text, call_input_shape, inbound_nodes, weight_split

_SEQUENTIAL_HEADER = ["Layer (type)", "Input Shape", "Output shape", "Param #"]
_SEQUENTIAL_LAYOUT = (90, [0.32, 0.61, 0.89, 1])
_GRAPH_HEADER = [*_SEQUENTIAL_HEADER, "Receives inputs"]
_GRAPH_LAYOUT = (115, [0.24, 0.48, 0.70, 0.80, 1])


def sequential_lines(model, line_length: int | None = None, positions: list[float] | None = None) -> list[str]:
    """The table's lines for a ``Sequential`` model (see ``Sequential.summary``)."""
    return _table(model, True, None, line_length, positions)


def graph_lines(model, line_length: int | None = None, positions: list[float] | None = None) -> list[str]:
    """The table's lines for a functional model: ``model.graph_nodes`` (ids of its nodes) and
    ``model.nodes_by_depth`` decide the format as TF.js's ``isModelSequentialLike`` does."""
    return _table(model, _sequential_like(model), model.graph_nodes, line_length, positions)


def _table(model, sequential_like: bool, relevant: set | None, line_length, positions) -> list[str]:
    header, (default_length, default_positions) = ((_SEQUENTIAL_HEADER, _SEQUENTIAL_LAYOUT) if sequential_like
                                                   else (_GRAPH_HEADER, _GRAPH_LAYOUT))
    line_length = line_length or default_length
    positions = positions or default_positions
    if positions[-1] <= 1:
        positions = [math.floor(line_length * p) for p in positions]
    out = ["_" * line_length, _row(header, positions), "=" * line_length]
    for i, layer in enumerate(model.layers):
        fields = [f"{layer.name} ({layer.class_name})", _input_shapes(layer), _output_shape(layer),
                  str(_param_count(layer))]
        if sequential_like:
            out.append(_row(fields, positions))
        else:
            connections = [f"{t.source_layer.name}[{t.node_index}][{t.tensor_index}]"
                           for node in inbound_nodes(layer) if not relevant or node.id in relevant
                           for t in node.inputs]
            out.append(_row([*fields, connections[0] if connections else ""], positions))
            out += [_row(["", "", "", "", more], positions) for more in connections[1:]]
        out.append(("=" if i == len(model.layers) - 1 else "_") * line_length)
    trainable, frozen = (sum(math.prod(spec.shape) for _, spec in part) for part in weight_split(model))
    out += [f"Total params: {trainable + frozen}", f"Trainable params: {trainable}",
            f"Non-trainable params: {frozen}", "_" * line_length]
    return out


def _input_shapes(layer) -> str:
    """Every call's input shapes, ``[[null,4]],[[null,4]]`` for a layer called twice."""
    return ",".join("[" + ",".join(batch_shape_text(s) for s in node.input_shapes) + "]"
                    for node in inbound_nodes(layer))


def _output_shape(layer) -> str:
    """The output shape shared by every call, else "multiple" (TF.js's ``layer.outputShape``)."""
    shapes = {node.output_shapes_json() for node in inbound_nodes(layer)}
    if len(shapes) != 1:
        return "multiple"
    node = inbound_nodes(layer)[0]
    if node.wrapped and len(node.outputs) == 1:
        return batch_shape_text(node.outputs[0].shape)
    return node.output_shapes_json()


def _param_count(layer) -> int:
    if isinstance(layer, Container):
        return layer.count_params()
    shape = call_input_shape(layer)
    return layer.count_params(shape) if shape is not None else 0


def _sequential_like(model) -> bool:
    """TF.js's ``isModelSequentialLike``: one node per depth, none with several inputs, no shared layer."""
    for depth_nodes in model.nodes_by_depth.values():
        if len(depth_nodes) > 1 or (depth_nodes and len(depth_nodes[0].inputs) > 1):
            return False
    for layer in model.layers:
        if sum(1 for node in inbound_nodes(layer) if node.id in model.graph_nodes) > 1:
            return False
    return True


def _row(fields: list[str], positions: list[int]) -> str:
    line = ""
    for i, field in enumerate(fields):
        if i > 0:
            line = line[:-1] + " "
        line += field
        line = line[:positions[i]]
        line += " " * (positions[i] - len(line))
    return line
