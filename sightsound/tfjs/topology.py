"""model.json both ways: the topology written for a model, and a document parsed, checked and built.

Two model classes: ``Sequential`` (a layer list) and the functional model, written ``Model`` as TF.js's
``tf.model`` writes it, and read as ``Model`` or ``Functional`` (Keras), whose config lists each layer with its
calls (:mod:`sightsound.engine.model_config` reads them).

:func:`read_model_json` is how the rest of sightsound reads a local model.json
without loading the model (the web app's model list, for one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..engine.model import Model
from ..engine.model_config import FUNCTIONAL_CLASS_NAMES
from ..engine.sequential import Sequential
from ..errors import ModelFormatError, SightsoundError
from .constants import BACKEND, KERAS_VERSION
from .dialects import tfjs_document
from .sources import LocalSource


def model_topology(model) -> dict:
    """The ``modelTopology`` TF.js writes for a model (``Sequential``, or ``Model`` for ``tf.model``)."""
    return {"class_name": model.class_name, "config": model.get_config(), "keras_version": KERAS_VERSION,
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


def model_config(doc: dict, where: str) -> tuple[str, dict | list]:
    """The model class and ``config`` of a Layers model's topology (also inside the converter's
    ``model_config``)."""
    fmt = doc.get("format")
    if fmt is not None and fmt != "layers-model":
        raise ModelFormatError(f"{where}: format {fmt!r} is not a TF.js Layers model ('layers-model'); "
                               f"graph models (converted SavedModels) cannot be loaded")
    topology = _topology(doc.get("modelTopology"))
    if not isinstance(topology, dict):
        raise ModelFormatError(f"{where}: modelTopology is missing or not an object")
    class_name = topology.get("class_name")
    if class_name != Sequential.class_name and class_name not in FUNCTIONAL_CLASS_NAMES:
        raise ModelFormatError(f"{where}: model class {class_name!r} is not supported; sightsound loads "
                               f"Sequential and functional ({', '.join(FUNCTIONAL_CLASS_NAMES)}) models")
    config = topology.get("config")
    if not isinstance(config, (dict, list)) or (class_name != Sequential.class_name and
                                                not isinstance(config, dict)):
        raise ModelFormatError(f"{where}: the {class_name} config is missing")
    return class_name, config


def _topology(topology):
    """The Keras-to-TF.js converter writes the topology inside ``model_config``."""
    if isinstance(topology, dict) and isinstance(topology.get("model_config"), dict):
        return topology["model_config"]
    return topology


def build_topology(class_name: str, config, device, where: str):
    """The model of ``config``, its modules not built yet."""
    try:
        if class_name == Sequential.class_name:
            model = Sequential.from_config(config, device=device)
        else:
            model = Model.from_config(config, device=device, class_name=class_name)
    except SightsoundError as err:
        raise ModelFormatError(f"{where}: {err}") from None
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise ModelFormatError(f"{where}: invalid model topology: {err}") from None
    return model


@dataclass(frozen=True)
class ModelJson:
    """A parsed model.json and what can be told from it without building the model."""

    doc: dict
    input_shape: list | None  # the (first) input's batch_input_shape without the batch axis, if stated
    output_units: int | None  # the (first) output layer's units, if stated
    user_defined_metadata: dict  # {} when there is none


def read_model_json(path, where: str | None = None) -> ModelJson:
    """Read and parse the local model.json ``path`` (size-capped); messages name it as ``where`` (default: path).

    Only the JSON and the metadata's type are checked, not that the topology loads:
    describing a model must not cost building it.
    """
    source = LocalSource(Path(path), where)
    doc = parse_model_json(source.read_model_json(), source.where)
    topology = _topology(doc.get("modelTopology") or {})
    if not isinstance(topology, dict):
        raise ModelFormatError(f"{source.where}: modelTopology must be an object, got {type(topology).__name__}")
    first, last = _ends(topology)
    shape = first.get("batch_input_shape") or first.get("batchInputShape") or first.get("batch_shape")
    units = last.get("units")
    metadata = doc.get("userDefinedMetadata")
    return ModelJson(doc, input_shape=list(shape[1:]) if isinstance(shape, list) and shape else None,
                     output_units=units if isinstance(units, int) else None,
                     user_defined_metadata=metadata if isinstance(metadata, dict) else {})


def _ends(topology: dict, depth: int = 0) -> tuple[dict, dict]:
    """The configs of the layer an input enters and of the layer an output leaves ({} where odd): the first
    and last layer of a Sequential, the first input and output layer of a functional model (and, when that
    is a model, its own end, found the same way)."""
    config = topology.get("config", topology)
    layers = config.get("layers", config) if isinstance(config, dict) else config
    if not isinstance(layers, list) or not layers or depth > 8:
        return {}, {}
    entries = [entry if isinstance(entry, dict) else {} for entry in layers]
    if topology.get("class_name") in FUNCTIONAL_CLASS_NAMES and isinstance(config, dict):
        by_name = {entry.get("name"): entry for entry in entries}
        entries = [_named(by_name, config.get("input_layers")), _named(by_name, config.get("output_layers"))]
    first, last = entries[0], entries[-1]
    if last.get("class_name") in (Sequential.class_name, *FUNCTIONAL_CLASS_NAMES):
        last = {"config": _ends(last, depth + 1)[1]}
    if first.get("class_name") in (Sequential.class_name, *FUNCTIONAL_CLASS_NAMES):
        first = {"config": _ends(first, depth + 1)[0]}
    return tuple(e.get("config") if isinstance(e.get("config"), dict) else {} for e in (first, last))


def _named(by_name: dict, refs) -> dict:
    """The layer entry the first of ``refs`` (input_layers or output_layers) names, {} if none."""
    if isinstance(refs, dict):
        refs = list(refs.values())
    if isinstance(refs, list) and refs and isinstance(refs[0], str):
        refs = [refs]
    ref = refs[0] if isinstance(refs, list) and refs else None
    return by_name.get(ref[0], {}) if isinstance(ref, list) and ref else {}
