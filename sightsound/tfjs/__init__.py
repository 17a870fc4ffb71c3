"""The TF.js Layers model format: ``model.json`` + weight files, both ways.

This package is the only place that knows the format and the layout mapping
between the engine (PyTorch: NCHW, conv kernels ``[out, in, kh, kw]``, dense
kernels ``[out, in]``) and TF.js (NHWC, ``[kh, kw, in, out]``, ``[in, out]``).
It depends on the engine (:mod:`sightsound.engine.sequential`, :mod:`sightsound.engine.model`,
:mod:`sightsound.engine.layers`); the engine does not depend on it. Sequential and functional models
(``tf.model``, saved as ``"Model"``; Keras' ``"Functional"`` loads too) are read and written.

Saving writes what TF.js 4.22's ``model.save('file://dir')`` (tfjs-node's
file writer) writes: ``JSON.stringify`` of ``{modelTopology, weightsManifest,
format, generatedBy, convertedBy[, trainingConfig][, userDefinedMetadata]}``
with JavaScript's number formatting, and ``weights.bin``: every weight's
little-endian float32 values in TF.js's order (all trainable weights first, then
the non-trainable ones; with ``include_optimizer=True`` the optimizer's
``iter`` and slots follow, marked ``"group": "optimizer"``). Only
``generatedBy`` differs, saying honestly that sightsound wrote the file (a
loaded model keeps the ``generatedBy`` and ``convertedBy`` of its file).

Saving is crash-safe: the weights are written under a fresh name and synced,
then ``model.json`` is atomically replaced, so a kill at any moment leaves the
previous or the new model complete. Other files in the folder are never
touched.

Modules, one role each: :mod:`.jsjson` (JSON as JavaScript writes it),
:mod:`.topology` (model.json's topology both ways, :func:`read_model_json`),
:mod:`.weights` (weight order and layout), :mod:`.manifest` (weightsManifest
checks, quantization), :mod:`.optimizer` (trainingConfig and optimizer state),
:mod:`.sources` (local and HTTP reads, path checks), :mod:`.commit` (the
crash-safe write), :mod:`.save` and :mod:`.load`.

Example::

    >>> import sightsound, tempfile
    >>> from sightsound import presets
    >>> model = presets.build("mnist-dense", device="cpu")
    >>> folder = tempfile.mkdtemp()
    >>> model.save(folder)["weightDataBytes"]
    133600
    >>> sightsound.load_layers_model(folder, device="cpu").count_params()
    33400
"""

from .constants import (
                        BACKEND,
                        GENERATED_BY,
                        KERAS_VERSION,
                        MAX_MODEL_JSON_BYTES,
                        MAX_RANK,
                        MAX_WEIGHT_BYTES,
                        MODEL_JSON,
                        TFJS_LAYERS_VERSION,
                        WEIGHTS_BIN,
)
from .jsjson import js_json, js_number
from .load import load_layers_model
from .save import save_model
from .topology import ModelJson, read_model_json
from .weights import Weight, model_weights

__all__ = ["load_layers_model", "save_model", "read_model_json", "ModelJson", "model_weights", "Weight",
           "js_json", "js_number", "MODEL_JSON", "WEIGHTS_BIN", "TFJS_LAYERS_VERSION", "GENERATED_BY",
           "KERAS_VERSION", "BACKEND", "MAX_MODEL_JSON_BYTES", "MAX_WEIGHT_BYTES", "MAX_RANK"]
