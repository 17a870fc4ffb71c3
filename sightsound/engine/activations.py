"""Activation functions by their TF.js names, as PyTorch modules.

Tensors inside the engine keep channels on axis 1 when they are 4-D (NCHW),
so ``softmax`` on an image-shaped tensor works on axis 1, which is TF.js's
last (channel) axis.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelFormatError


class _Fn(nn.Module):
    def __init__(self, fn, name):
        super().__init__()
        self.fn, self.name = fn, name

    def forward(self, x):
        return self.fn(x)

    def extra_repr(self):
        return self.name


def _softmax(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x, dim=1 if x.dim() == 4 else -1)


_FUNCTIONS = {
    "linear": None,
    "relu": F.relu,
    "relu6": F.relu6,
    "elu": F.elu,
    "selu": F.selu,
    "sigmoid": torch.sigmoid,
    "hardSigmoid": lambda x: torch.clamp(0.2 * x + 0.5, 0.0, 1.0),
    "tanh": torch.tanh,
    "softmax": _softmax,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "swish": F.silu,
    "mish": F.mish,
}

SUPPORTED = tuple(_FUNCTIONS)


def check(name: str | None) -> str:
    """Return the canonical TF.js name or raise naming what is supported."""
    name = "linear" if name is None else name
    if name not in _FUNCTIONS:
        raise ModelFormatError(f"unknown activation {name!r}; supported: {', '.join(SUPPORTED)}")
    return name


def module(name: str | None) -> nn.Module:
    """An ``nn.Module`` applying activation ``name`` (identity for ``linear``)."""
    name = check(name)
    fn = _FUNCTIONS[name]
    if fn is None:
        return nn.Identity()
    if name == "relu":
        return nn.ReLU()
    return _Fn(fn, name)
