"""model.json both ways: the topology written for a model, and a document parsed, checked and built.

:func:`read_model_json` is how the rest of sightsound reads a local model.json
without loading the model (the web app's model list, for one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..engine.sequential import Sequential
from ..errors import ModelFormatError, SightsoundError
from .constants import BACKEND, KERAS_VERSION
from .dialects import tfjs_document
from .sources import LocalSource


def model_topology(model) -> dict:
    """The ``modelTopology`` TF.js writes for a Sequential model."""
    return {"class_name": "Sequential", "config": model.get_config(), "keras_version": KERAS_VERSION,
            "backend": BACKEND}


def parse_model_json(raw: bytes, where: str) -> dict:
    """The JSON object in ``raw``; anything else is a ModelFormatError naming ``where``."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ModelFormatError(f"{where}: not UTF-8 text (byte {err.start}); is this a model.json?") from None

    def no_constants(name):
        raise ValueError(f"{name} is not valid JSON")

    try:
        doc = json.loads(text, parse_constant=no_constants)
    except json.JSONDecodeError as err:
        raise ModelFormatError(f"{where}: malformed JSON at line {err.lineno}, column {err.colno} "
                               f"(character {err.pos}): {err.msg}") from None
    except (ValueError, RecursionError) as err:
        raise ModelFormatError(f"{where}: malformed JSON: {err}") from None
    if not isinstance(doc, dict):
        raise ModelFormatError(f"{where}: expected a JSON object with modelTopology and weightsManifest, "
                               f"got {type(doc).__name__}")
    return tfjs_document(doc, where)


def sequential_config(doc: dict, where: str) -> dict:
    """The Sequential ``config`` of a Layers model's topology (also inside the converter's ``model_config``)."""
    fmt = doc.get("format")
    if fmt is not None and fmt != "layers-model":
        raise ModelFormatError(f"{where}: format {fmt!r} is not a TF.js Layers model ('layers-model'); "
                               f"graph models (converted SavedModels) cannot be loaded")
    topology = _topology(doc.get("modelTopology"))
    if not isinstance(topology, dict):
        raise ModelFormatError(f"{where}: modelTopology is missing or not an object")
    if topology.get("class_name") != "Sequential":
        raise ModelFormatError(f"{where}: model class {topology.get('class_name')!r} is not supported; "
                               f"sightsound loads Sequential models")
    config = topology.get("config")
    if not isinstance(config, (dict, list)):
        raise ModelFormatError(f"{where}: the Sequential config is missing")
    return config


def _topology(topology):
    """The Keras-to-TF.js converter writes the topology inside ``model_config``."""
    if isinstance(topology, dict) and isinstance(topology.get("model_config"), dict):
        return topology["model_config"]
    return topology


def build_topology(config, device, where: str):
    """The Sequential model of ``config``, its modules not built yet."""
    try:
        model = Sequential.from_config(config, device=device)
    except SightsoundError as err:
        raise ModelFormatError(f"{where}: {err}") from None
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise ModelFormatError(f"{where}: invalid model topology: {err}") from None
    return model


@dataclass(frozen=True)
class ModelJson:
    """A parsed model.json and what can be told from it without building the model."""

    doc: dict
    input_shape: list | None  # the first layer's batch_input_shape without the batch axis, if stated
    output_units: int | None  # the last layer's units, if stated
    user_defined_metadata: dict  # {} when there is none


def read_model_json(path, where: str | None = None) -> ModelJson:
    """Read and parse the local model.json ``path`` (size-capped); messages name it as ``where`` (default: path).

    Only the JSON and the metadata's type are checked, not that the topology loads:
    describing a model must not cost building it.
    """
    source = LocalSource(Path(path), where)
    doc = parse_model_json(source.read_model_json(), source.where)
    layers = _layer_configs(doc, source.where)
    first = layers[0] if layers else {}
    shape = first.get("batch_input_shape") or first.get("batchInputShape") or first.get("batch_shape")
    units = layers[-1].get("units") if layers else None
    metadata = doc.get("userDefinedMetadata")
    return ModelJson(doc, input_shape=list(shape[1:]) if isinstance(shape, list) and shape else None,
                     output_units=units if isinstance(units, int) else None,
                     user_defined_metadata=metadata if isinstance(metadata, dict) else {})


def _layer_configs(doc: dict, where: str) -> list[dict]:
    """The ``config`` of every layer the topology lists ({} where odd); [] if it lists none."""
    topology = _topology(doc.get("modelTopology") or {})
    if not isinstance(topology, dict):
        raise ModelFormatError(f"{where}: modelTopology must be an object, got {type(topology).__name__}")
    config = topology.get("config", topology)
    layers = config.get("layers", config) if isinstance(config, dict) else config
    if not isinstance(layers, list):
        return []
    configs = [entry.get("config") if isinstance(entry, dict) else None for entry in layers]
    return [c if isinstance(c, dict) else {} for c in configs]
