"""Saving: model.json and weights.bin as TF.js 4.22's ``model.save('file://dir')`` writes them.

The bytes are tfjs-node's (``JSON.stringify`` of the artifacts, weights as
little-endian float32 in TF.js's order, optimizer state after them); only
``generatedBy`` differs (a loaded model keeps its file's ``generatedBy`` and
``convertedBy``). The write itself is :func:`sightsound.tfjs.commit.commit`.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from ..engine.functional import register_model_writer
from ..errors import ModelFormatError, OutputError
from .commit import commit
from .constants import GENERATED_BY, WEIGHTS_BIN
from .jsjson import js_json
from .optimizer import optimizer_weights, training_config
from .sources import file_url_path
from .topology import model_topology
from .weights import model_weights


def save_model(model, path, include_optimizer: bool = False, user_defined_metadata: dict | None = None) -> dict:
    """Write ``model.json`` + ``weights.bin`` into the folder ``path`` (``"dir"`` or ``"file:///abs/dir"``).

    Returns TF.js's ``modelArtifactsInfo`` for the save. ``user_defined_metadata``
    defaults to the metadata the model was loaded with, as in TF.js.

    >>> from sightsound import presets
    >>> import tempfile
    >>> info = save_model(presets.build("mnist-conv", device="cpu"), "file://" + tempfile.mkdtemp())
    >>> info["weightDataBytes"] // 4
    56714
    """
    directory = _local_save_dir(path)
    weights = model_weights(model)
    specs = [{"name": w.name, "shape": list(w.shape), "dtype": "float32"} for w in weights]
    chunks = [w.to_tfjs().tobytes() for w in weights]
    training = None
    if include_optimizer and model.optimizer is not None:
        training = training_config(model)
        for spec, data in optimizer_weights(model, weights):
            specs.append(spec)
            chunks.append(data)
    if user_defined_metadata is None:
        user_defined_metadata = getattr(model, "user_defined_metadata", None)
    if user_defined_metadata is not None and not isinstance(user_defined_metadata, dict):
        raise TypeError(f"user_defined_metadata must be a dict, got {type(user_defined_metadata).__name__}")
    topology = model_topology(model)

    def model_json(weights_path: str) -> bytes:
        doc = {"modelTopology": topology, "weightsManifest": [{"paths": [weights_path], "weights": specs}],
               "format": "layers-model", "generatedBy": getattr(model, "generated_by", None) or GENERATED_BY,
               "convertedBy": getattr(model, "converted_by", None)}
        if training is not None:
            doc["trainingConfig"] = training
        if user_defined_metadata is not None:
            doc["userDefinedMetadata"] = user_defined_metadata
        return js_json(doc).encode("utf-8")

    model_json(WEIGHTS_BIN)  # fail on unserialisable metadata before touching the folder
    try:
        commit(directory, model_json, chunks)
    except OSError as err:  # read-only, disk full...: the previous model there is unchanged
        raise OutputError.from_os_error(err, directory, "save the model to") from err
    return {"dateSaved": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "modelTopologyType": "JSON", "modelTopologyBytes": len(js_json(topology).encode("utf-8")),
            "weightSpecsBytes": len(js_json(specs).encode("utf-8")),
            "weightDataBytes": sum(len(c) for c in chunks)}


def _local_save_dir(path) -> Path:
    """The folder to save into, created if missing; ``file://`` URLs are read as tfjs-node does."""
    text = os.fspath(path)
    if "://" in text and not text.startswith("file://"):
        raise ModelFormatError(f"cannot save to {text!r}: sightsound saves to a folder, 'dir' or 'file:///abs/dir'")
    directory = Path(file_url_path(text) if text.startswith("file://") else text).expanduser()
    if directory.exists() and not directory.is_dir():
        raise ModelFormatError(f"cannot save to {directory}: it exists as a file; give a folder")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError.from_os_error(err, directory, "create the model folder") from err
    return directory


register_model_writer(save_model)
