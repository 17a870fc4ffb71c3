"""Loading: model.json -> topology -> manifest -> weights, checked in the order that fails early."""

from __future__ import annotations

import time

import torch

from ..errors import ModelFormatError
from .manifest import decode, match_weights, plan
from .optimizer import compile_training, restore_optimizer
from .sources import Source, open_source
from .topology import build_topology, model_config, parse_model_json
from .weights import model_weights, tfjs_order


def load_layers_model(url_or_path, request_options: dict | None = None, device="auto"):
    """Load a TF.js Layers model: a folder, a ``model.json`` path, ``file://…`` or ``http(s)://…/model.json``.

    ``request_options`` (HTTP only): ``{"headers": {...}, "timeout": seconds}``
    (TF.js's ``{"requestInit": {"headers": ...}}`` works too); a redirect to
    another origin gets none of the headers (:mod:`sightsound.http_fetch`). Weight files are
    resolved relative to ``model.json``; single ``weights.bin`` and sharded
    ``group1-shardKofN.bin``, float32 and the converter's float16 / uint8 /
    uint16 quantization are read. With a ``trainingConfig`` the model comes
    back compiled, with the saved optimizer state. A local model that a save
    replaces while it is being read is read again.

    >>> import sightsound
    >>> model = sightsound.load_layers_model("https://example.com/models/mnist/model.json",
    ...                                      {"headers": {"Authorization": "Bearer abc"}})  # doctest: +SKIP
    >>> model.predict(x_test[:4]).argmax(axis=1)  # doctest: +SKIP
    """
    source = open_source(url_or_path, request_options)
    model, doc, matched, entries, data = _read_consistent(source, device)
    where = source.where
    weights = model_weights(model)  # builds the modules
    with torch.no_grad():
        for weight in weights:
            entry = matched[weight.name]
            weight.tensor.copy_(weight.from_tfjs(decode(entry, data[entry.manifest_group])))
    training = doc.get("trainingConfig")
    if training is not None:
        compile_training(model, training, where)
        optimizer_entries = [e for e in entries if e.group == "optimizer"]
        if optimizer_entries:
            restore_optimizer(model, weights, optimizer_entries, data, where)
    metadata = doc.get("userDefinedMetadata")
    model.user_defined_metadata = metadata if isinstance(metadata, dict) else None
    model.generated_by, model.converted_by = doc.get("generatedBy"), doc.get("convertedBy")  # kept by save
    return model


_READ_ATTEMPTS = 5


def _read_consistent(source: Source, device):
    """``_read``, again if a save replaced model.json meanwhile (local folders)."""
    for attempt in range(_READ_ATTEMPTS):
        last = attempt + 1 == _READ_ATTEMPTS
        stamp = source.stamp()
        try:
            result = _read(source, device)
        except ModelFormatError:
            if last or source.stamp() == stamp:
                raise
        else:
            if last or source.stamp() == stamp:
                return result
        time.sleep(0.005 * (attempt + 1))
    raise AssertionError("unreachable")


def _read(source: Source, device):
    """Read and check everything, in the order that fails early and reads no unsafe path.

    model.json -> topology (layers, shapes; no weights allocated yet) -> the
    manifest: sizes capped, every layer weight present with its shape, every
    path safe -> only then the weight bytes, right after model.json as TF.js does.
    """
    where = source.where
    doc = parse_model_json(source.read_model_json(), where)
    model = build_topology(*model_config(doc, where), device, where)
    groups, entries = plan(doc, where)
    expected = [(f"{layer.name}/{spec.suffix}", tuple(spec.shape)) for layer, spec in tfjs_order(model)]
    matched = match_weights(expected, [e for e in entries if e.group != "optimizer"], where)
    for paths, _ in groups:
        for path in paths:
            source.check_weight_path(path)  # every path, before reading any
    data = [source.read_weights(paths, size) if size else bytearray() for paths, size in groups]
    return model, doc, matched, entries, data
