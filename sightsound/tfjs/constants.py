"""The format's fixed names and versions, and the limits that keep a hostile model.json small."""

from __future__ import annotations

from ..version import __version__

MODEL_JSON = "model.json"
WEIGHTS_BIN = "weights.bin"
TFJS_LAYERS_VERSION = "4.22.0"
GENERATED_BY = f"sightsound {__version__} (TF.js Layers format of tfjs-layers v{TFJS_LAYERS_VERSION})"
KERAS_VERSION = f"tfjs-layers {TFJS_LAYERS_VERSION}"
BACKEND = "tensor_flow.js"

MAX_MODEL_JSON_BYTES = 32 * 2**20  # model.json is topology + manifest: small
MAX_WEIGHT_BYTES = 2 * 2**30  # all weight files of one model together
MAX_RANK = 8
