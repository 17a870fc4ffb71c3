"""Weight initializers with TF.js semantics (names and configs as in model.json).

Fan sizes come from the weight's TF.js shape (for a conv kernel
``[kh, kw, in, out]``: fan_in = kh·kw·in, fan_out = kh·kw·out), so the
distribution is the one TF.js draws from whatever layout the engine stores.
"""

from __future__ import annotations

import math

import torch

from .errors import ModelFormatError

SUPPORTED = ("VarianceScaling", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform",
             "LeCunNormal", "LeCunUniform", "Zeros", "Ones", "Constant", "RandomNormal",
             "RandomUniform", "TruncatedNormal")

# TF.js serialises glorotNormal & co as VarianceScaling with these settings.
_VARIANCE_SCALING_ALIASES = {
    "GlorotNormal": (1.0, "fan_avg", "normal"),
    "GlorotUniform": (1.0, "fan_avg", "uniform"),
    "HeNormal": (2.0, "fan_in", "normal"),
    "HeUniform": (2.0, "fan_in", "uniform"),
    "LeCunNormal": (1.0, "fan_in", "normal"),
    "LeCunUniform": (1.0, "fan_in", "uniform"),
}

GLOROT_NORMAL = {"class_name": "VarianceScaling",
                 "config": {"scale": 1, "mode": "fan_avg", "distribution": "normal", "seed": None}}
ZEROS = {"class_name": "Zeros", "config": {}}
ONES = {"class_name": "Ones", "config": {}}

_NAME_ALIASES = {"glorotNormal": GLOROT_NORMAL, "zeros": ZEROS, "ones": ONES,
                 "glorotUniform": {"class_name": "VarianceScaling", "config": {
                     "scale": 1, "mode": "fan_avg", "distribution": "uniform", "seed": None}},
                 "heNormal": {"class_name": "VarianceScaling", "config": {
                     "scale": 2, "mode": "fan_in", "distribution": "normal", "seed": None}}}


def normalize(spec) -> dict:
    """Accept ``"glorotNormal"``-style names or ``{"class_name", "config"}`` dicts."""
    if spec is None:
        return GLOROT_NORMAL
    if isinstance(spec, str):
        if spec in _NAME_ALIASES:
            return _NAME_ALIASES[spec]
        raise ModelFormatError(f"unknown initializer {spec!r}; supported names: {', '.join(sorted(_NAME_ALIASES))}")
    if not isinstance(spec, dict) or spec.get("class_name") not in SUPPORTED:
        name = spec.get("class_name") if isinstance(spec, dict) else spec
        raise ModelFormatError(f"unknown initializer {name!r}; supported: {', '.join(SUPPORTED)}")
    return spec


def fans(tfjs_shape: list[int]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight given in TF.js layout."""
    if len(tfjs_shape) == 2:
        return tfjs_shape[0], tfjs_shape[1]
    if len(tfjs_shape) in (3, 4, 5):
        receptive = math.prod(tfjs_shape[:-2])
        return tfjs_shape[-2] * receptive, tfjs_shape[-1] * receptive
    size = math.prod(tfjs_shape) if tfjs_shape else 1
    return size, size


@torch.no_grad()
def initialize(tensor: torch.Tensor, spec, tfjs_shape: list[int]) -> None:
    """Fill ``tensor`` in place as TF.js would fill a weight of ``tfjs_shape``."""
    spec = normalize(spec)
    name, cfg = spec["class_name"], spec.get("config") or {}
    if name in _VARIANCE_SCALING_ALIASES:
        scale, mode, distribution = _VARIANCE_SCALING_ALIASES[name]
        name, cfg = "VarianceScaling", {"scale": scale, "mode": mode, "distribution": distribution}
    if name == "Zeros":
        tensor.zero_()
    elif name == "Ones":
        tensor.fill_(1.0)
    elif name == "Constant":
        tensor.fill_(float(cfg.get("value", 0.0)))
    elif name == "RandomNormal":
        tensor.normal_(float(cfg.get("mean", 0.0)), float(cfg.get("stddev", 0.05)))
    elif name == "RandomUniform":
        tensor.uniform_(float(cfg.get("minval", -0.05)), float(cfg.get("maxval", 0.05)))
    elif name == "TruncatedNormal":
        mean, std = float(cfg.get("mean", 0.0)), float(cfg.get("stddev", 0.05))
        torch.nn.init.trunc_normal_(tensor, mean, std, mean - 2 * std, mean + 2 * std)
    elif name == "VarianceScaling":
        fan_in, fan_out = fans(list(tfjs_shape))
        mode = cfg.get("mode", "fan_in")
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}.get(mode)
        if n is None:
            raise ModelFormatError(f"VarianceScaling mode {mode!r} is not one of fan_in, fan_out, fan_avg")
        scale = float(cfg.get("scale", 1.0)) / max(1.0, n)
        distribution = cfg.get("distribution", "normal")
        if distribution in ("normal", "truncated_normal"):
            # TF.js draws a truncated normal (cut at 2 std) with std = sqrt(scale).
            std = math.sqrt(scale)
            torch.nn.init.trunc_normal_(tensor, 0.0, std, -2 * std, 2 * std)
        elif distribution == "untruncated_normal":
            tensor.normal_(0.0, math.sqrt(scale))
        elif distribution == "uniform":
            limit = math.sqrt(3.0 * scale)
            tensor.uniform_(-limit, limit)
        else:
            raise ModelFormatError(f"VarianceScaling distribution {distribution!r} is not supported")
