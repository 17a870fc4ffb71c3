"""Model weights in TF.js's order and layout (engine NCHW / ``[out, in]`` <-> TF.js NHWC / ``[in, out]``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..engine.functional import built_module, weight_split
from ..errors import ModelFormatError

# Engine layout -> TF.js layout, as a permutation of the engine tensor's axes.
_TO_TFJS_AXES: dict[tuple[str, str], tuple[int, ...]] = {
    ("Conv2D", "kernel"): (2, 3, 1, 0),  # [out, in, kh, kw] -> [kh, kw, in, out]
    ("Conv1D", "kernel"): (2, 1, 0),  # [out, in, k] -> [k, in, out]
    ("DepthwiseConv2D", "depthwise_kernel"): (2, 3, 0, 1),  # [in, mult, kh, kw] -> [kh, kw, in, mult]
    ("SeparableConv2D", "depthwise_kernel"): (2, 3, 0, 1),
    ("SeparableConv2D", "pointwise_kernel"): (2, 3, 1, 0),  # [out, in, 1, 1] -> [1, 1, in, out]
    ("Dense", "kernel"): (1, 0),  # [out, in] -> [in, out]
}


@dataclass
class Weight:
    """One model weight: TF.js name and shape, the engine tensor, its layout permutation."""

    name: str
    shape: tuple[int, ...]
    tensor: torch.Tensor
    axes: tuple[int, ...] | None

    def to_tfjs(self, tensor: torch.Tensor | None = None) -> np.ndarray:
        t = (self.tensor if tensor is None else tensor).detach()
        if self.axes is not None:
            t = t.permute(self.axes)
        array = np.ascontiguousarray(t.to("cpu", torch.float32).numpy(), dtype="<f4")
        if array.shape != self.shape:
            raise ModelFormatError(f"weight {self.name}: engine tensor maps to shape {list(array.shape)}, "
                                   f"TF.js expects {list(self.shape)}")
        return array

    def from_tfjs(self, array: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(array)
        if self.axes is not None:
            t = t.permute(tuple(int(i) for i in np.argsort(self.axes)))
        return t


def tfjs_order(model) -> list[tuple[Any, Any]]:
    """``(layer, weight spec)`` in the order of TF.js's ``model.weights``, named ``<layer name>/<suffix>``.

    That is every trainable weight of the trainable layers, in layer order (a nested model's layers in its
    place), then the non-trainable ones: the non-trainable weights of trainable layers
    (BatchNormalization's moving statistics) and all weights of layers with
    ``trainable: false``, again in layer order (:func:`sightsound.engine.functional.weight_split`).
    Needs no built modules. Two weights of one name (layers of nested models named alike) are refused.
    """
    trainable, frozen = weight_split(model)
    order = trainable + frozen
    names = [f"{layer.name}/{spec.suffix}" for layer, spec in order]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ModelFormatError(f"weight name(s) {', '.join(twice[:5])} occur more than once: layers of nested "
                               f"models need names of their own")
    return order


def model_weights(model) -> list[Weight]:
    """The model's weights, with their engine tensors, in the order TF.js saves them."""
    model.build()
    weights = []
    for layer, spec in tfjs_order(model):
        tensors = layer.tfjs_weights(built_module(layer))
        if spec.suffix not in tensors:
            raise ModelFormatError(f"{layer.name}: the built module lacks weight {spec.suffix!r}")
        weights.append(Weight(f"{layer.name}/{spec.suffix}", tuple(spec.shape), tensors[spec.suffix],
                               _TO_TFJS_AXES.get((layer.class_name, spec.suffix))))
    return weights


def trainable_count(model) -> int:
    """How many weights lead :func:`tfjs_order`: the trainable ones, which the optimizer has slots for."""
    return len(weight_split(model)[0])
