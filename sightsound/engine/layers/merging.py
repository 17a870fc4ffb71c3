"""Merge layers: :class:`Add`, :class:`Multiply`, :class:`Average`, :class:`Maximum`, :class:`Minimum`,
:class:`Concatenate` and :class:`Dot`, as TF.js 4.22 has them (it has no Subtract layer).

A merge layer takes a list of tensors, so it lives in functional models, never in a ``Sequential``.
Its class attribute ``multi_input`` is True, and its methods take a list of input shapes (without
the batch, TF.js axis order): ``compute_output_shape(input_shapes)``, ``weight_specs(input_shapes)``
(always empty) and ``build_module(input_shapes)``, whose module's ``forward(inputs)`` takes the list
of tensors in the engine's layout (images NCHW) and returns one.

Shapes broadcast as in TF.js: the shapes after the batch are aligned at their last axes and a size 1
stretches; an input of lower rank gets size-1 axes inserted right after the batch.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from ...errors import ModelFormatError, ShapeError
from .base import Layer, Shape, base_kwargs, engine_axis, shape_text, to_engine_layout, to_tfjs_layout


class Merge(Layer):
    """TF.js's ``Merge``: an elementwise operation over two or more inputs."""

    multi_input: ClassVar[bool] = True
    kind: ClassVar[str] = "add"

    @classmethod
    def from_config(cls, c):
        return cls(**base_kwargs(c))

    def input_shapes(self, input_shapes) -> list[Shape]:
        """``input_shapes`` checked to be a list of at least two shapes."""
        if not isinstance(input_shapes, (list, tuple)) or \
                not all(isinstance(s, (list, tuple)) for s in input_shapes):
            raise ShapeError(f"{self.name}: {self.class_name} merges a list of inputs, got one of shape "
                             f"{shape_text(input_shapes)}; merge layers belong in functional models, not in "
                             f"a Sequential stack")
        if len(input_shapes) < 2:
            raise ShapeError(f"{self.name}: {self.class_name} needs at least 2 inputs, got {len(input_shapes)}")
        return [tuple(s) for s in input_shapes]

    def compute_output_shape(self, input_shapes: list[Shape]) -> Shape:
        shapes = self.input_shapes(input_shapes)
        out = shapes[0]
        for shape in shapes[1:]:
            out = self._broadcast(out, shape, shapes)
        return out

    def _broadcast(self, a: Shape, b: Shape, shapes) -> Shape:
        """TF.js's ``computeElementwiseOpOutputShape``: align the last axes, size 1 stretches."""
        if len(a) < len(b):
            a, b = b, a
        out = list(a[:len(a) - len(b)])
        for i, j in zip(a[len(a) - len(b):], b):
            if i != j and 1 not in (i, j):
                raise ShapeError(f"{self.name}: inputs {', '.join(map(shape_text, shapes))} do not broadcast "
                                 f"together")
            out.append(j if i == 1 else i)
        return tuple(out)

    def weight_specs(self, input_shapes):
        return []

    def build_module(self, input_shapes: list[Shape]) -> nn.Module:
        shapes = self.input_shapes(input_shapes)
        self.compute_output_shape(shapes)
        return _ElementwiseMerge(self.kind, same_rank=len({len(s) for s in shapes}) == 1)


class _ElementwiseMerge(nn.Module):
    def __init__(self, kind: str, same_rank: bool):
        super().__init__()
        self.kind, self.same_rank = kind, same_rank

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        if self.same_rank:  # every input in the same layout: broadcasting lines up as in TF.js
            return self._merge(inputs)
        # Ranks differ: in TF.js order, lower ranks get size-1 axes after the batch, as TF.js inserts them.
        tfjs = [to_tfjs_layout(x) for x in inputs]
        rank = max(x.dim() for x in tfjs)
        tfjs = [x.reshape(x.shape[0], *[1] * (rank - x.dim()), *x.shape[1:]) for x in tfjs]
        return to_engine_layout(self._merge(tfjs))

    def _merge(self, inputs):
        out = inputs[0]
        for x in inputs[1:]:  # left to right, as TF.js
            if self.kind in ("add", "average"):
                out = out + x
            elif self.kind == "multiply":
                out = out * x
            elif self.kind == "maximum":
                out = torch.maximum(out, x)
            else:
                out = torch.minimum(out, x)
        return out * (1.0 / len(inputs)) if self.kind == "average" else out  # TF.js: mul(1 / n, sum)

    def extra_repr(self):
        return self.kind


class Add(Merge):
    """Elementwise sum of the inputs (``tf.layers.add``)."""

    class_name = "Add"
    kind = "add"


class Multiply(Merge):
    """Elementwise product of the inputs (``tf.layers.multiply``)."""

    class_name = "Multiply"
    kind = "multiply"


class Average(Merge):
    """Elementwise mean of the inputs (``tf.layers.average``)."""

    class_name = "Average"
    kind = "average"


class Maximum(Merge):
    """Elementwise maximum of the inputs (``tf.layers.maximum``)."""

    class_name = "Maximum"
    kind = "maximum"


class Minimum(Merge):
    """Elementwise minimum of the inputs (``tf.layers.minimum``)."""

    class_name = "Minimum"
    kind = "minimum"


class Concatenate(Merge):
    """Joins the inputs along ``axis`` (``tf.layers.concatenate``; batch-inclusive, default -1).

    The inputs have one rank and equal sizes but along ``axis``. TF.js 4.22 joins along the last axis
    for *any* negative axis (while its shapes say otherwise), so negative axes other than -1 are refused:
    give the positive one (``axis=1`` for the first axis after the batch).
    """

    class_name = "Concatenate"

    def __init__(self, axis=-1, **base):
        super().__init__(**base)
        if isinstance(axis, bool) or not isinstance(axis, int) or axis == 0 or axis < -1:
            raise ModelFormatError(f"{self.name}: axis must be -1 or a positive axis (the batch is 0), "
                                   f"got {axis!r:.80}")
        self.axis = axis

    def own_config(self):
        return {"axis": self.axis}

    @classmethod
    def from_config(cls, c):
        return cls(axis=c.get("axis", -1), **base_kwargs(c))

    def compute_output_shape(self, input_shapes):
        shapes = self.input_shapes(input_shapes)
        rank = len(shapes[0])
        axis = rank if self.axis == -1 else self.axis
        if any(len(s) != rank for s in shapes) or axis > rank or \
                len({s[:axis - 1] + s[axis:] for s in shapes}) > 1:
            raise ShapeError(f"{self.name}: inputs {', '.join(map(shape_text, shapes))} must match but along "
                             f"axis {self.axis}")
        return (*shapes[0][:axis - 1], sum(s[axis - 1] for s in shapes), *shapes[0][axis:])

    def build_module(self, input_shapes):
        shapes = self.input_shapes(input_shapes)
        self.compute_output_shape(shapes)
        return _Concat(engine_axis(self.axis, len(shapes[0]), self.name))


class _Concat(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(inputs, dim=self.dim)


class Dot(Merge):
    """Dot products of two inputs along ``axes`` (``tf.layers.dot``; batch-inclusive, one for both inputs or
    one each), with ``normalize`` making them cosine similarities. As in TF.js, each input is at most
    ``[a, b]`` after the batch, a result of one value comes as ``[1]``, and the batch axis is never summed."""

    class_name = "Dot"

    def __init__(self, axes, normalize=False, **base):
        super().__init__(**base)
        listed = axes if isinstance(axes, (list, tuple)) else [axes]
        if len(listed) != (2 if isinstance(axes, (list, tuple)) else 1) or \
                any(isinstance(a, bool) or not isinstance(a, int) or a == 0 for a in listed):
            raise ModelFormatError(f"{self.name}: axes must be an axis other than the batch (0), or a pair of them, "
                                   f"got {axes!r:.80}")
        if not isinstance(normalize, bool):
            raise ModelFormatError(f"{self.name}: normalize must be true or false, got {normalize!r:.80}")
        self.axes = list(axes) if isinstance(axes, (list, tuple)) else axes
        self.normalize = normalize

    def own_config(self):
        return {"axes": self.axes, "normalize": self.normalize}

    @classmethod
    def from_config(cls, c):
        return cls(axes=c["axes"], normalize=c.get("normalize", False), **base_kwargs(c))

    def _axes(self, shapes) -> list[int]:
        """Both axes, batch-inclusive and non-negative (TF.js's ``interpretAxis``), checked against the shapes."""
        if len(shapes) != 2 or any(len(s) not in (1, 2) for s in shapes):
            raise ShapeError(f"{self.name}: Dot takes exactly 2 inputs of shapes [null,n] or [null,a,b], "
                             f"got {', '.join(map(shape_text, shapes))}")
        listed = self.axes if isinstance(self.axes, list) else [self.axes, self.axes]
        axes = [a % (len(s) + 1) for a, s in zip(listed, shapes)]
        if 0 in axes or shapes[0][axes[0] - 1] != shapes[1][axes[1] - 1]:
            raise ShapeError(f"{self.name}: axes {self.axes} of inputs {', '.join(map(shape_text, shapes))} "
                             f"do not match")
        return axes

    def compute_output_shape(self, input_shapes):
        shapes = self.input_shapes(input_shapes)
        axes = self._axes(shapes)
        out = [d for i, d in enumerate(shapes[0]) if i != axes[0] - 1] + \
              [d for i, d in enumerate(shapes[1]) if i != axes[1] - 1]
        return tuple(out) if out else (1,)

    def build_module(self, input_shapes):
        shapes = self.input_shapes(input_shapes)
        self.compute_output_shape(shapes)
        return _Dot(self._axes(shapes), self.normalize)


class _Dot(nn.Module):
    """TF.js's ``batchDot``: inputs of rank 2 or 3 (batch included), in TF.js order (which the engine keeps)."""

    def __init__(self, axes: list[int], normalize: bool):
        super().__init__()
        self.axes, self.normalize = axes, normalize

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        x, y = inputs
        if self.normalize:  # TF.js's l2Normalize: x / sqrt(max(sum(x^2), epsilon 1e-7))
            x, y = (t / torch.sqrt(torch.clamp((t * t).sum(a, keepdim=True), min=1e-7))
                    for t, a in zip((x, y), self.axes))
        x_rank, y_rank = x.dim(), y.dim()
        x = x.reshape(*x.shape, *[1] * (y_rank - x_rank))  # the lower rank gets trailing size-1 axes
        y = y.reshape(*y.shape, *[1] * (x_rank - y_rank))
        if x.dim() == 2:
            out = (x * y).sum(self.axes[0])
        else:
            left = x.transpose(1, 2) if self.axes[0] != 2 else x
            right = y.transpose(1, 2) if self.axes[1] == 2 else y
            out = torch.matmul(left, right)
            if x_rank != y_rank:  # drop the axis the trailing 1 became
                out = out.squeeze(x_rank + y_rank - 3 if x_rank > y_rank else x_rank - 1)
        return out.unsqueeze(1) if out.dim() == 1 else out
