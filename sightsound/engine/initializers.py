"""Weight initializers with TF.js semantics (names and configs as in model.json).

Fan sizes come from the weight's TF.js shape (for a conv kernel
``[kh, kw, in, out]``: fan_in = kh·kw·in, fan_out = kh·kw·out), so the
distribution is the one TF.js draws from whatever layout the engine stores.
"""

from __future__ import annotations

import math

import torch

from ..errors import ModelFormatError

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
    name = spec.get("class_name") if isinstance(spec, dict) else spec
    if not isinstance(name, str) or name not in SUPPORTED:
        raise ModelFormatError(f"unknown initializer {name!r:.80}; supported: {', '.join(SUPPORTED)}")
    config = spec.get("config")
    if config is not None and not isinstance(config, dict):
        raise ModelFormatError(f"initializer {name} has a config that is not an object: {config!r:.80}")
    _check_config(name, config or {})
    return spec


_POSITIVE = {"scale", "stddev", "gain"}
#: far inside float32's range, so that no draw's bounds (a uniform's high - low, say) overflow it
_LARGEST = 1e30
_CHOICES = {"mode": ("fan_in", "fan_out", "fan_avg"),
            "distribution": ("normal", "truncated_normal", "untruncated_normal", "uniform")}


def _check_config(name: str, config: dict) -> None:
    """Reject initializer settings that would crash or silently misbehave."""
    for key, value in config.items():
        if key == "seed" or value is None:
            continue
        if key in _CHOICES:
            if value not in _CHOICES[key]:
                raise ModelFormatError(f"initializer {name}: {key} must be one of {', '.join(_CHOICES[key])}, "
                                       f"got {value!r:.80}")
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ModelFormatError(f"initializer {name}: {key} must be a finite number, got {value!r:.80}")
        if abs(value) > _LARGEST:
            raise ModelFormatError(f"initializer {name}: {key}={value!r} is too large for float32 weights")
        if key in _POSITIVE and value <= 0:
            raise ModelFormatError(f"initializer {name}: {key} must be positive, got {value!r}")
    if name == "RandomUniform" and config.get("minval", -0.05) >= config.get("maxval", 0.05):
        raise ModelFormatError(f"initializer {name}: minval must be below maxval")


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
    name = spec["class_name"]
    cfg = {k: v for k, v in (spec.get("config") or {}).items() if v is not None}  # null means "the default"
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
