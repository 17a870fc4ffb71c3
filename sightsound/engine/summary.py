"""The model summary table, as TF.js 4.22's ``model.summary()`` prints it."""

from __future__ import annotations

import math

from .layers import shape_text


def summary_lines(layers: list, shapes: list[tuple[tuple, tuple]], line_length: int | None = None,
                  positions: list[float] | None = None) -> list[str]:
    """The table's lines for ``layers`` with their (input, output) ``shapes`` (see ``Sequential.summary``)."""
    line_length = line_length or 90
    positions = positions or [0.32, 0.61, 0.89, 1]
    if positions[-1] <= 1:
        positions = [math.floor(line_length * p) for p in positions]
    out = ["_" * line_length, _row(["Layer (type)", "Input Shape", "Output shape", "Param #"], positions),
           "=" * line_length]
    trainable = non_trainable = 0
    for i, (layer, (shape_in, shape_out)) in enumerate(zip(layers, shapes)):
        specs = layer.weight_specs(shape_in)
        count = sum(math.prod(s.shape) for s in specs)
        for s in specs:
            if s.trainable and layer.trainable:
                trainable += math.prod(s.shape)
            else:
                non_trainable += math.prod(s.shape)
        out.append(_row([f"{layer.name} ({layer.class_name})", f"[{shape_text(shape_in)}]",
                         shape_text(shape_out), str(count)], positions))
        out.append(("=" if i == len(layers) - 1 else "_") * line_length)
    out += [f"Total params: {trainable + non_trainable}", f"Trainable params: {trainable}",
            f"Non-trainable params: {non_trainable}", "_" * line_length]
    return out


def _row(fields: list[str], positions: list[int]) -> str:
    line = ""
    for i, field in enumerate(fields):
        if i > 0:
            line = line[:-1] + " "
        line += field
        line = line[:positions[i]]
        line += " " * (positions[i] - len(line))
    return line
