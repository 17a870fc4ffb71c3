"""Keras 2 and Keras 3 topologies in the TF.js dialect: what the TF.js converter writes, as TF.js writes it.

``tensorflowjs_converter`` copies the Keras model's config into ``modelTopology.model_config``
nearly as Keras wrote it. Keras 2 (tf_keras) and TF.js 4.22 mostly agree, Keras 3 much less. This
module is the one place that knows the differences; :func:`tfjs_topology` rewrites a topology into
what TF.js's ``model.save`` would write for the same model, and :func:`tfjs_document` applies it to a
whole parsed ``model.json`` (also renaming Keras 3's weights). A TF.js-written document passes
unchanged. What has no TF.js meaning is refused with a :class:`~sightsound.errors.ModelFormatError`
naming the layer and the field.

Keras 2 (``keras_version`` 2.x, ``--input_format keras``):

- ``groups`` of convolutions: 1 is dropped (TF.js has no grouped convolutions), anything else refused;
- initializers, regularizers and constraints carry ``module`` and ``registered_name``: dropped (a
  custom, registered object is refused); ``L1``/``L2`` regularizers become TF.js's ``L1L2``;
- ``ReLU``'s ``negative_slope`` and ``threshold`` (TF.js's ReLU has neither) dropped when 0;
- ``SeparableConv2D`` also lists ``kernel_initializer``/``_regularizer``/``_constraint``, which TF.js
  refuses ("invalid for SeparableConv2D"): dropped when unused;
- ``BatchNormalization``'s ``renorm``, ``virtual_batch_size`` and ``adjustment`` are refused when set;
- ``batch_input_shape``, ``dtype`` strings and ``trainable`` are TF.js's already.

Keras 3 (``keras_version`` 3.x, ``--input_format keras_keras``), in addition:

- ``InputLayer``'s ``batch_shape`` becomes ``batch_input_shape`` (``ragged`` and ``optional`` dropped when
  false; TF.js writes ``sparse`` too);
- a layer's ``dtype`` is a dtype policy ``{"class_name": "DTypePolicy", "config": {"name": "float32"}}``
  (with ``module``/``registered_name``/``shared_object_id`` in a raw ``.keras`` file): becomes the dtype
  string; mixed-precision and quantized policies are refused;
- ``build_config``, ``compile_config`` and the Sequential's ``dtype``/``trainable`` go, and its
  ``build_input_shape`` becomes the first layer's ``batch_input_shape`` when the model has no ``InputLayer``;
- ``LeakyReLU``'s ``negative_slope`` is TF.js's ``alpha``; ``BatchNormalization``'s ``synchronized``
  (training only) and an unset ``lora_rank`` are dropped; activation ``silu`` is TF.js's ``swish``, and
  Keras 3's ``hard_sigmoid`` (relu6(x + 3) / 6, not TF.js's clip(0.2 x + 0.5)) is refused;
- weights are named by their place in the ``.keras`` archive (``layers/dense_1/vars/0``); they become
  ``<layer name>/<weight>`` (``shared_dense/kernel``) from the topology (:func:`keras3_weight_names`).

The model class ``Functional`` (Keras 2.4+ and 3) stays: TF.js 4.22 reads it as its ``Model``.
Left to the loader of functional models: Keras 3's ``inbound_nodes`` dict form
(``{"args": [{"class_name": "__keras_tensor__", ...}], "kwargs": {...}}``) and its unnested
``input_layers``/``output_layers`` for a single tensor pass through unchanged.

>>> keras3 = {"class_name": "Sequential", "config": {"name": "s", "trainable": True, "layers": [
...     {"class_name": "InputLayer", "config": {"batch_shape": [None, 4], "dtype": "float32", "name": "x"}},
...     {"class_name": "Dense", "config": {"name": "d", "units": 2, "dtype": {
...         "class_name": "DTypePolicy", "config": {"name": "float32"}}}}]}}
>>> [layer["config"] for layer in tfjs_topology(keras3)["config"]["layers"]]
[{'batch_input_shape': [None, 4], 'dtype': 'float32', 'name': 'x'}, {'name': 'd', 'units': 2, 'dtype': 'float32'}]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ModelFormatError

MODEL_CLASSES = ("Sequential", "Model", "Functional")

# Keys of a serialised Keras object that TF.js does not write.
_OBJECT_NOISE = ("module", "registered_name", "shared_object_id")
# Keys of a layer entry (beside class_name/config/name/inbound_nodes) that TF.js does not write.
_ENTRY_NOISE = ("build_config", "compile_config", *_OBJECT_NOISE)
# Keras 3 Sequential config keys that TF.js does not write.
_SEQUENTIAL_NOISE = ("trainable", "dtype", "build_input_shape")
# Functional config keys that TF.js does not write.
_MODEL_NOISE = ("trainable", "dtype")

_PLAIN_DTYPES = ("float32", "float16", "float64", "bfloat16", "int32", "int64", "bool", "string")

# Layer fields that Keras writes and TF.js has no counterpart for, with the one value that means
# "not used": dropped when they have it, refused otherwise.
_UNUSED_FIELDS = {
    "*": {"groups": 1, "lora_rank": None, "lora_alpha": None, "quantization_config": None},
    "ReLU": {"negative_slope": 0.0, "threshold": 0.0},
    "SeparableConv1D": {"kernel_regularizer": None, "kernel_constraint": None},
    "SeparableConv2D": {"kernel_regularizer": None, "kernel_constraint": None},
    "BatchNormalization": {"renorm": False, "renorm_clipping": None, "renorm_momentum": None,
                           "virtual_batch_size": None, "adjustment": None},
    "InputLayer": {"ragged": False, "optional": False},
}
# Layer fields dropped whatever their value: they do not change what the loaded model computes.
_IGNORED_FIELDS = {
    "SeparableConv1D": ("kernel_initializer",),  # the kernels are depthwise_/pointwise_: Keras 2 lists it anyway
    "SeparableConv2D": ("kernel_initializer",),
    "BatchNormalization": ("synchronized", "fused"),
}
# Keras 3 field names that TF.js spells otherwise.
_RENAMED_FIELDS = {"LeakyReLU": {"negative_slope": "alpha"}}
_ACTIVATION_FIELDS = ("activation", "recurrent_activation")

# The weights of a Keras 3 layer in the order its ``vars/<i>`` are stored, as TF.js names them
# ("when" names the config flag that creates an optional weight).
_KERAS3_WEIGHTS: dict[str, tuple[tuple[str, str | None], ...]] = {
    **{cls: (("kernel", None), ("bias", "use_bias")) for cls in (
        "Dense", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")},
    "DepthwiseConv1D": (("depthwise_kernel", None), ("bias", "use_bias")),
    "DepthwiseConv2D": (("depthwise_kernel", None), ("bias", "use_bias")),
    "SeparableConv1D": (("depthwise_kernel", None), ("pointwise_kernel", None), ("bias", "use_bias")),
    "SeparableConv2D": (("depthwise_kernel", None), ("pointwise_kernel", None), ("bias", "use_bias")),
    "BatchNormalization": (("gamma", "scale"), ("beta", "center"), ("moving_mean", None),
                           ("moving_variance", None)),
    "LayerNormalization": (("gamma", "scale"), ("beta", "center")),
    "PReLU": (("alpha", None),),
    "Embedding": (("embeddings", None),),
}
_KERAS3_WEIGHT = re.compile(r"^(?:(.*)/)?vars/(\d+)$")


@dataclass(frozen=True)
class _Context:
    where: str  # the file, for messages
    keras3: bool  # written by Keras 3 (some names mean other things there)


def tfjs_document(doc: dict, where: str = "model.json") -> dict:
    """A parsed model.json with its topology in TF.js's dialect, and Keras 3's weights renamed to TF.js's.

    ``modelTopology`` keeps its layout (inside the converter's ``model_config`` or not); ``doc`` is not
    changed. A document that is not a Layers model's (no topology object) is returned as it is, for the
    loader to refuse.
    """
    raw = doc.get("modelTopology")
    wrapped = isinstance(raw, dict) and isinstance(raw.get("model_config"), dict)
    topology = raw["model_config"] if wrapped else raw
    if not isinstance(topology, dict) or topology.get("class_name") not in MODEL_CLASSES:
        return doc
    out = dict(doc)
    try:
        keras3 = _is_keras3(topology, raw.get("keras_version") if wrapped else None)
        converted = _model(topology, _Context(where, keras3))
        manifest = doc.get("weightsManifest")
        if keras3 and _has_keras3_weight_names(manifest):
            places = _keras3_places(topology)
            out["weightsManifest"] = [_renamed_group(group, places, where) for group in manifest]
    except RecursionError:
        raise ModelFormatError(f"{where}: the topology nests models too deeply") from None
    out["modelTopology"] = {**raw, "model_config": converted} if wrapped else converted
    return out


def tfjs_topology(topology: dict, where: str = "model.json", keras_version: str | None = None) -> dict:
    """``topology`` (``{"class_name", "config"}`` of a Sequential or functional model, the converter's
    ``model_config`` unwrapped) in the dialect TF.js 4.22 writes; a new dict, ``topology`` unchanged.

    ``keras_version`` (the converter writes it beside ``model_config``) tells Keras 3 from the rest;
    without it, a Keras 3 topology is known by what only Keras 3 writes (``batch_shape``, dtype policies,
    ``build_config``).
    """
    if not isinstance(topology, dict) or not isinstance(topology.get("class_name"), str):
        return topology  # nothing to translate: the loader names what is wrong
    try:
        return _model(topology, _Context(where, _is_keras3(topology, keras_version)))
    except RecursionError:
        raise ModelFormatError(f"{where}: the topology nests models too deeply") from None


def _is_keras3(topology: dict, keras_version) -> bool:
    return keras_version.startswith("3.") if isinstance(keras_version, str) else _looks_like_keras3(topology)


def _looks_like_keras3(value) -> bool:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            if "batch_shape" in item or "build_config" in item or item.get("class_name") == "DTypePolicy":
                return True
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


# --------------------------------------------------------------------------- models and layers

def _model(entry: dict, ctx: _Context) -> dict:
    class_name = entry.get("class_name")
    config = entry.get("config")
    out = {k: v for k, v in entry.items() if k not in _ENTRY_NOISE}
    if isinstance(config, list):  # the oldest Sequential form: the layer list itself
        out["config"] = [_entry(layer, ctx) for layer in config]
        return out
    if not isinstance(config, dict):
        return out  # nothing to translate: the loader names what is missing
    layers = config.get("layers")
    noise = _SEQUENTIAL_NOISE if class_name == "Sequential" else _MODEL_NOISE
    new = {k: v for k, v in config.items() if k not in noise}
    if isinstance(layers, list):
        new["layers"] = [_entry(layer, ctx) for layer in layers]
        if class_name == "Sequential":
            _input_shape_from_build(new["layers"], config.get("build_input_shape"))
    out["config"] = new
    return out


def _input_shape_from_build(layers: list, build_input_shape) -> None:
    """A Keras 3 Sequential built without an Input states its input shape only as ``build_input_shape``."""
    if not layers or not isinstance(build_input_shape, list) or not isinstance(layers[0], dict):
        return
    first = layers[0]
    config = first.get("config")
    if first.get("class_name") == "InputLayer" or not isinstance(config, dict):
        return
    if config.get("batch_input_shape") is None:
        first["config"] = {**config, "batch_input_shape": list(build_input_shape)}


def _entry(entry, ctx: _Context):
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
        return entry  # the loader names what is wrong
    if entry.get("class_name") in MODEL_CLASSES:
        return _model(entry, ctx)
    out = {k: v for k, v in entry.items() if k not in _ENTRY_NOISE}
    if isinstance(entry.get("config"), dict):
        out["config"] = _layer_config(entry["class_name"], entry["config"], ctx)
    return out


def _layer_config(class_name: str, config: dict, ctx: _Context) -> dict:
    layer = f"{ctx.where}: layer {config.get('name', '?')!r} ({class_name})"
    unused = {**_UNUSED_FIELDS["*"], **_UNUSED_FIELDS.get(class_name, {})}
    ignored = _IGNORED_FIELDS.get(class_name, ())
    renamed = _RENAMED_FIELDS.get(class_name, {})
    out = {}
    for key, value in config.items():
        if key in ignored:
            continue
        if key in unused:
            if value is not None and value != unused[key]:
                raise ModelFormatError(f"{layer}: {key}={value!r} has no TF.js equivalent "
                                       f"(TF.js Layers models have only {key}={unused[key]!r})")
            continue
        if key == "dtype":
            value = _dtype(value, layer)
        elif key == "batch_shape":
            key = "batch_input_shape"
            if config.get("batch_input_shape") not in (None, value):
                raise ModelFormatError(f"{layer}: batch_shape {value!r} and batch_input_shape "
                                       f"{config['batch_input_shape']!r} disagree")
        elif key in _ACTIVATION_FIELDS:
            value = _activation(value, f"{layer}: {key}", ctx.keras3)
        elif isinstance(value, dict) and "class_name" in value:
            value = _keras_object(value, f"{layer}: {key}")
        out[renamed.get(key, key)] = value
    return out


# --------------------------------------------------------------------------- field values

def _dtype(value, layer: str):
    """A dtype string as it is; a Keras 3 dtype policy as the dtype it computes and stores in."""
    if not isinstance(value, dict):
        return value
    policy = value.get("class_name")
    name = (value.get("config") or {}).get("name") if isinstance(value.get("config"), dict) else None
    if policy in ("DTypePolicy", "FloatDTypePolicy") and name in _PLAIN_DTYPES:
        return name
    raise ModelFormatError(f"{layer}: dtype policy {policy}({name!r}) has no TF.js equivalent; TF.js "
                           f"layers compute and store in one dtype (float32): save the model with the "
                           f"'float32' policy")


def _activation(value, field: str, keras3: bool):
    if isinstance(value, dict):  # Keras 3 may serialise a built-in function as an object
        if value.get("class_name") == "function" and isinstance(value.get("config"), str):
            value = value["config"]
        else:
            raise ModelFormatError(f"{field} {value.get('class_name')!r} is not a built-in activation; "
                                   f"custom activations cannot be loaded")
    if value == "silu":
        return "swish"
    if value == "hard_sigmoid" and keras3:
        raise ModelFormatError(f"{field}: Keras 3's 'hard_sigmoid' is relu6(x + 3) / 6, TF.js's is "
                               f"clip(0.2 x + 0.5, 0, 1): no TF.js equivalent")
    return value


def _keras_object(value: dict, field: str):
    """An initializer, regularizer or constraint without Keras's ``module``/``registered_name``."""
    registered = value.get("registered_name")
    module = value.get("module")
    if (registered not in (None, value.get("class_name"))
            or (isinstance(module, str) and not module.startswith(("keras", "tf_keras")))):
        raise ModelFormatError(f"{field} is the custom object {registered or value.get('class_name')!r} "
                               f"(module {module!r}); only Keras's built-in objects can be loaded")
    out = {k: v for k, v in value.items() if k not in _OBJECT_NOISE}
    config = out.get("config") if isinstance(out.get("config"), dict) else {}
    if out.get("class_name") in ("L1", "L2", "L1L2"):  # TF.js has L1L2 only
        return {"class_name": "L1L2", "config": {"l1": config.get("l1", 0.0), "l2": config.get("l2", 0.0)}}
    return out


# --------------------------------------------------------------------------- Keras 3 weight names

def _has_keras3_weight_names(manifest) -> bool:
    if not isinstance(manifest, list):
        return False
    return any(isinstance(w, dict) and isinstance(w.get("name"), str) and _KERAS3_WEIGHT.match(w["name"])
               for group in manifest if isinstance(group, dict) and isinstance(group.get("weights"), list)
               for w in group["weights"])


def keras3_weight_names(topology: dict) -> dict[str, str]:
    """``{"layers/dense_1/vars/0": "shared_dense/kernel", ...}`` for the model of ``topology``.

    Keras 3 stores a layer's weights under its place in the model: ``layers/`` then the snake_case
    class name, numbered per class in layer order (``dense``, ``dense_1``, ...), whatever the layer's
    name, nested models adding their own ``layers/...``; then ``vars/<i>`` in the order the layer
    creates them.
    """
    return _keras3_places(topology)[0]


def _keras3_places(topology: dict) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """(weight names as above, {layer place: (layer name, class name)} for every layer)."""
    names: dict[str, str] = {}
    layers: dict[str, tuple[str, str]] = {}
    _collect_keras3_places(topology, "", names, layers)
    return names, layers


def _collect_keras3_places(model: dict, prefix: str, names: dict, layers: dict) -> None:
    config = model.get("config")
    entries = config.get("layers") if isinstance(config, dict) else config
    if not isinstance(entries, list):
        return
    counts: dict[str, int] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
            continue
        class_name = entry["class_name"]
        base = _keras_snake_case(class_name)
        number = counts.get(base, -1) + 1
        counts[base] = number
        place = f"{prefix}layers/{base}" + (f"_{number}" if number else "")
        layer_config = entry.get("config") if isinstance(entry.get("config"), dict) else {}
        layers[place] = (layer_config.get("name", entry.get("name")), class_name)
        if class_name in MODEL_CLASSES:
            _collect_keras3_places(entry, place + "/", names, layers)
            continue
        weights = _KERAS3_WEIGHTS.get(class_name, ())
        present = [suffix for suffix, flag in weights if flag is None or layer_config.get(flag, True)]
        for i, suffix in enumerate(present):
            names[f"{place}/vars/{i}"] = f"{layers[place][0]}/{suffix}"


def _renamed_group(group, places: tuple[dict, dict], where: str):
    if not isinstance(group, dict) or not isinstance(group.get("weights"), list):
        return group
    names, layers = places
    weights = []
    for weight in group["weights"]:
        name = weight.get("name") if isinstance(weight, dict) else None
        match = _KERAS3_WEIGHT.match(name) if isinstance(name, str) else None
        if match is None:
            weights.append(weight)
            continue
        if name not in names:
            owner = layers.get(match.group(1) or "")
            if owner is not None:
                raise ModelFormatError(f"{where}: layer {owner[0]!r} ({owner[1]}) has the Keras 3 weight {name!r}, "
                                       f"and sightsound does not know which TF.js weight that is")
            raise ModelFormatError(f"{where}: the Keras 3 weight {name!r} belongs to no layer of the topology")
        weights.append({**weight, "name": names[name]})
    return {**group, "weights": weights}


def _keras_snake_case(name: str) -> str:
    """Keras's ``to_snake_case``, which names a layer's place in a ``.keras`` archive:
    ``DepthwiseConv2D`` -> ``depthwise_conv2d``, ``PReLU`` -> ``p_re_lu``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()
