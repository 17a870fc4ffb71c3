"""Dropout, with the cheap mask that makes it no slower than the layer it guards."""

from __future__ import annotations

import torch
from torch import nn

from ...errors import ModelFormatError
from .base import Layer, base_kwargs


class Dropout(Layer):
    """Drops ``rate`` of the inputs while fitting, scaling the rest by 1/(1-rate)."""

    class_name = "Dropout"

    def __init__(self, rate: float, noise_shape=None, seed=None, **base):
        super().__init__(**base)
        if not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ModelFormatError(f"{self.name}: rate must be in [0, 1), got {rate!r}")
        if noise_shape is not None:
            raise ModelFormatError(f"{self.name}: noise_shape is not supported (only null)")
        self.rate, self.seed = float(rate), seed

    def own_config(self):
        return {"rate": self.rate, "noise_shape": None, "seed": self.seed}

    @classmethod
    def from_config(cls, c):
        return cls(rate=c["rate"], noise_shape=c.get("noise_shape"), seed=c.get("seed"), **base_kwargs(c))

    def build_module(self, input_shape):
        return _Dropout(self.rate)


class _Dropout(nn.Module):
    """Inverted dropout with a cheap mask: four 16-bit draws from each 64-bit random number.

    ``nn.Dropout`` draws one Bernoulli sample per element, which on CPU can
    cost more than the dense layer it guards. The keep probability is quantised to 1/65,536 (exact for the
    usual rates 0.1, 0.25, 0.5 ... up to 7.6e-6); the kept values are scaled
    by 1/(1-rate) as in TF.js. The random numbers come from PyTorch's default
    generator, so ``torch.manual_seed`` repeats a run.
    """

    reads_training_mode = True  # drops values in training only

    def __init__(self, rate: float):
        super().__init__()
        self.rate = rate
        self.threshold = int(round(rate * 65536)) - 32768  # keep where a signed 16-bit draw >= this

    def extra_repr(self) -> str:
        return f"rate={self.rate}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0:
            return x
        n = x.numel()
        bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_(-(2 ** 63), None)
        keep = bits.view(torch.int16)[:n].view(x.shape) >= self.threshold
        return x * keep.to(x.dtype).mul_(1.0 / (1.0 - self.rate))  # autograd keeps the scaled mask
