"""sightsound.tfjs.dialects on small hand-written topologies: Keras 2 and Keras 3 fields in TF.js's
dialect, clear refusals, Keras 3 weight names; and a Keras 3 model.json loaded end to end.

The real converter's files are tests/test_keras_converter.py's.
"""

from __future__ import annotations

import copy
import json
import subprocess

import numpy as np
import pytest

from conftest import REPO, require_node
import sightsound
from sightsound import layers
from sightsound.errors import ModelFormatError
from sightsound.tfjs import GENERATED_BY
from sightsound.tfjs.dialects import keras3_weight_names, tfjs_document, tfjs_topology

POLICY = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}


def init(class_name, config=None, module="keras.initializers"):
    """An initializer as Keras 2 (tf_keras) and raw Keras 3 files write it."""
    return {"module": module, "class_name": class_name, "config": config or {}, "registered_name": None}


def keras2_conv(**extra):
    return {"class_name": "Conv2D", "config": {
        "name": "conv", "trainable": True, "dtype": "float32", "batch_input_shape": [None, 8, 8, 1], "filters": 2,
        "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid", "data_format": "channels_last",
        "dilation_rate": [1, 1], "groups": 1, "activation": "relu", "use_bias": True,
        "kernel_initializer": init("GlorotUniform", {"seed": None}), "bias_initializer": init("Zeros"),
        "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
        "kernel_constraint": None, "bias_constraint": None, **extra}}


def sequential(*entries, **config):
    return {"class_name": "Sequential", "config": {"name": "seq", "layers": list(entries), **config}}


def layer(class_name, name="x", **config):
    return {"class_name": class_name, "config": {"name": name, "trainable": True, "dtype": POLICY, **config}}


def only_layer(topology, index=0):
    return topology["config"]["layers"][index]["config"]


def refusal(topology, *, keras_version="3.10.0") -> str:
    with pytest.raises(ModelFormatError) as info:
        tfjs_topology(topology, "m/model.json", keras_version=keras_version)
    return str(info.value)


# --------------------------------------------------------------------------- Keras 2

def test_keras2_conv_loses_module_registered_name_and_groups_1_and_keeps_the_rest():
    out = only_layer(tfjs_topology(sequential(keras2_conv()), keras_version="2.19.0"))
    assert out["kernel_initializer"] == {"class_name": "GlorotUniform", "config": {"seed": None}}
    assert out["bias_initializer"] == {"class_name": "Zeros", "config": {}}
    assert "groups" not in out
    assert (out["dtype"], out["trainable"], out["batch_input_shape"]) == ("float32", True, [None, 8, 8, 1])
    assert list(out) == [k for k in keras2_conv()["config"] if k != "groups"]  # order kept


def test_grouped_convolution_is_refused_naming_layer_and_field():
    message = refusal(sequential(keras2_conv(groups=2)), keras_version="2.19.0")
    assert "m/model.json" in message and "'conv' (Conv2D)" in message and "groups=2" in message


def test_keras2_relu_leaky_relu_and_hard_sigmoid_are_tfjs_already():
    topology = sequential(
        {"class_name": "ReLU", "config": {"name": "r", "dtype": "float32", "max_value": 6.0,
                                          "negative_slope": 0.0, "threshold": 0.0}},
        {"class_name": "LeakyReLU", "config": {"name": "l", "dtype": "float32", "alpha": 0.2}},
        {"class_name": "Activation", "config": {"name": "a", "dtype": "float32", "activation": "hard_sigmoid"}})
    out = tfjs_topology(topology, keras_version="2.19.0")
    assert only_layer(out, 0) == {"name": "r", "dtype": "float32", "max_value": 6.0}
    assert only_layer(out, 1) == {"name": "l", "dtype": "float32", "alpha": 0.2}
    assert only_layer(out, 2)["activation"] == "hard_sigmoid"


def test_relu_threshold_has_no_tfjs_equivalent():
    message = refusal(sequential(layer("ReLU", "r", max_value=None, negative_slope=0.0, threshold=0.5)))
    assert "'r' (ReLU)" in message and "threshold=0.5" in message


def test_separable_conv_drops_the_unused_kernel_fields_tfjs_refuses():
    config = {"name": "s", "dtype": "float32", "filters": 4, "kernel_size": [3, 3],
              "kernel_initializer": init("GlorotUniform"), "kernel_regularizer": None, "kernel_constraint": None,
              "depthwise_initializer": init("GlorotUniform"), "pointwise_initializer": init("GlorotUniform")}
    out = only_layer(tfjs_topology(sequential({"class_name": "SeparableConv2D", "config": config}),
                                   keras_version="2.19.0"))
    assert not any(key.startswith("kernel_") and key != "kernel_size" for key in out)
    assert out["depthwise_initializer"] == {"class_name": "GlorotUniform", "config": {}}


def test_regularizers_become_tfjs_l1l2_and_custom_objects_are_refused():
    conv = keras2_conv(kernel_regularizer={"module": "keras.regularizers", "class_name": "L2",
                                           "config": {"l2": 0.01}, "registered_name": None})
    assert only_layer(tfjs_topology(sequential(conv), keras_version="2.19.0"))["kernel_regularizer"] == \
        {"class_name": "L1L2", "config": {"l1": 0.0, "l2": 0.01}}
    custom = keras2_conv(kernel_initializer={"module": "my_package.inits", "class_name": "MyInit", "config": {},
                                             "registered_name": "MyPackage>MyInit"})
    message = refusal(sequential(custom), keras_version="2.19.0")
    assert "'conv' (Conv2D): kernel_initializer" in message and "MyPackage>MyInit" in message


def test_batch_norm_renorm_is_refused():
    message = refusal(sequential(layer("BatchNormalization", "bn", axis=[3], renorm=True)), keras_version="2.19.0")
    assert "'bn' (BatchNormalization)" in message and "renorm=True" in message


# --------------------------------------------------------------------------- Keras 3

def keras3_sequential():
    return sequential(
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 6], "dtype": "float32", "sparse": False,
                                                "ragged": False, "name": "in"}},
        {**layer("Dense", "d", units=3, activation="silu", kernel_initializer=init("GlorotUniform"),
                 bias_initializer=init("Zeros")), "build_config": {"input_shape": [None, 6]}},
        layer("LeakyReLU", "l", negative_slope=0.3),
        layer("BatchNormalization", "bn", axis=-1, synchronized=False),
        trainable=True, dtype=POLICY, build_input_shape=[None, 6])


def test_keras3_sequential_in_tfjs_dialect():
    out = tfjs_topology(keras3_sequential(), keras_version="3.10.0")
    assert out["config"].keys() == {"name", "layers"}
    entries = out["config"]["layers"]
    assert entries[0]["config"] == {"batch_input_shape": [None, 6], "dtype": "float32", "sparse": False, "name": "in"}
    assert "build_config" not in entries[1]
    assert entries[1]["config"] == {"name": "d", "trainable": True, "dtype": "float32", "units": 3,
                                    "activation": "swish",
                                    "kernel_initializer": {"class_name": "GlorotUniform", "config": {}},
                                    "bias_initializer": {"class_name": "Zeros", "config": {}}}
    assert entries[2]["config"] == {"name": "l", "trainable": True, "dtype": "float32", "alpha": 0.3}
    assert "synchronized" not in entries[3]["config"]


def test_the_input_is_recognised_as_keras3_without_keras_version():
    assert tfjs_topology(keras3_sequential()) == tfjs_topology(keras3_sequential(), keras_version="3.10.0")
    with pytest.raises(ModelFormatError, match="hard_sigmoid"):  # Keras 3's hard_sigmoid is another function
        tfjs_topology(sequential(layer("Activation", "a", activation="hard_sigmoid")))


def test_build_input_shape_becomes_the_first_layers_input_shape_without_an_input_layer():
    topology = sequential(layer("Dense", "d", units=2), build_input_shape=[None, 5])
    assert only_layer(tfjs_topology(topology))["batch_input_shape"] == [None, 5]


def test_mixed_precision_policy_is_refused_naming_layer_and_dtype():
    policy = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "mixed_float16"},
              "registered_name": None}
    message = refusal(sequential({"class_name": "Dense", "config": {"name": "d", "units": 2, "dtype": policy}}))
    assert "'d' (Dense)" in message and "dtype policy" in message and "mixed_float16" in message


def test_functional_stays_and_keras3_wiring_passes_through():
    node = {"args": [{"class_name": "__keras_tensor__",
                      "config": {"shape": [None, 4], "dtype": "float32", "keras_history": ["in", 0, 0]}}],
            "kwargs": {}}
    topology = {"class_name": "Functional", "config": {
        "name": "f", "trainable": True,
        "layers": [{"class_name": "InputLayer", "name": "in", "inbound_nodes": [],
                    "config": {"batch_shape": [None, 4], "dtype": "float32", "name": "in"}},
                   {**layer("Dense", "d", units=2), "name": "d", "inbound_nodes": [node],
                    "build_config": {"input_shape": [None, 4]}}],
        "input_layers": ["in", 0, 0], "output_layers": ["d", 0, 0]}}
    out = tfjs_topology(topology)
    assert out["class_name"] == "Functional" and "trainable" not in out["config"]
    # the dict form of inbound_nodes and the unnested single input/output are the functional loader's
    assert out["config"]["layers"][1]["inbound_nodes"] == [node]
    assert out["config"]["input_layers"] == ["in", 0, 0]
    assert out["config"]["layers"][0]["config"]["batch_input_shape"] == [None, 4]


def functional_with_shared_and_nested():
    """A Keras 3 functional model: a shared Dense, a nested Sequential and a nested functional model."""
    inner_seq = {"class_name": "Sequential", "config": {"name": "inner", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 4], "name": "input_layer_1"}},
        layer("Dense", "dense_9", units=3), layer("PReLU", "act")]}}
    inner_fn = {"class_name": "Functional", "name": "inner_fn", "config": {"name": "inner_fn", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 3], "name": "input_layer_2"}},
        layer("BatchNormalization", "bn", center=False),
        layer("SeparableConv1D", "sep", use_bias=False)]}}
    return {"class_name": "Functional", "config": {"name": "outer", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 6], "name": "x"}},
        layer("Dense", "first", units=4),
        layer("Dense", "shared", units=4),  # called twice: one place, one set of weights
        layer("Add", "add"),
        inner_seq, inner_fn,
        layer("Dense", "head", units=2, use_bias=False)]}}


def test_keras3_weight_names_follow_the_place_of_each_layer():
    assert keras3_weight_names(functional_with_shared_and_nested()) == {
        "layers/dense/vars/0": "first/kernel", "layers/dense/vars/1": "first/bias",
        "layers/dense_1/vars/0": "shared/kernel", "layers/dense_1/vars/1": "shared/bias",
        "layers/sequential/layers/dense/vars/0": "dense_9/kernel",
        "layers/sequential/layers/dense/vars/1": "dense_9/bias",
        "layers/sequential/layers/p_re_lu/vars/0": "act/alpha",
        "layers/functional/layers/batch_normalization/vars/0": "bn/gamma",  # no beta: center=False
        "layers/functional/layers/batch_normalization/vars/1": "bn/moving_mean",
        "layers/functional/layers/batch_normalization/vars/2": "bn/moving_variance",
        "layers/functional/layers/separable_conv1d/vars/0": "sep/depthwise_kernel",
        "layers/functional/layers/separable_conv1d/vars/1": "sep/pointwise_kernel",
        "layers/dense_2/vars/0": "head/kernel"}


def document(topology, names, keras_version="3.10.0"):
    return {"format": "layers-model", "generatedBy": f"keras v{keras_version}",
            "convertedBy": "TensorFlow.js Converter v4.22.0",
            "modelTopology": {"keras_version": keras_version, "model_config": topology},
            "weightsManifest": [{"paths": ["group1-shard1of1.bin"],
                                 "weights": [{"name": n, "shape": [1], "dtype": "float32"} for n in names]}]}


def test_tfjs_document_renames_keras3_weights_and_keeps_the_rest():
    doc = document(functional_with_shared_and_nested(), ["layers/dense_1/vars/1", "layers/dense/vars/0"])
    before = copy.deepcopy(doc)
    out = tfjs_document(doc, "m/model.json")
    assert doc == before  # not changed in place
    assert [w["name"] for w in out["weightsManifest"][0]["weights"]] == ["shared/bias", "first/kernel"]
    assert out["modelTopology"]["keras_version"] == "3.10.0"
    assert out["modelTopology"]["model_config"]["class_name"] == "Functional"
    assert (out["generatedBy"], out["convertedBy"]) == (doc["generatedBy"], doc["convertedBy"])


def test_keras3_weight_of_a_layer_class_without_known_order_is_refused():
    topology = sequential(layer("GroupNormalization", "gn"))
    with pytest.raises(ModelFormatError, match=r"'gn' \(GroupNormalization\) has the Keras 3 weight"):
        tfjs_document(document(topology, ["layers/group_normalization/vars/0"]), "m/model.json")
    with pytest.raises(ModelFormatError, match="belongs to no layer"):
        tfjs_document(document(topology, ["layers/dense/vars/0"]), "m/model.json")


# --------------------------------------------------------------------------- through the loader

def small_model():
    model = sightsound.sequential([
        layers.conv2d(input_shape=[6, 5, 2], filters=3, kernel_size=3, activation="relu", name="c"),
        layers.batch_normalization(name="bn"),
        layers.flatten(name="f"),
        layers.dense(units=4, activation="softmax", name="d")], device="cpu")
    rng = np.random.default_rng(0)
    with_values = [(w, rng.uniform(0.5, 1.5, w.shape)) for w in sightsound.tfjs.model_weights(model)]
    import torch
    with torch.no_grad():
        for weight, value in with_values:
            weight.tensor.copy_(weight.from_tfjs(value.astype(np.float32)))
    return model


def as_keras3(doc: dict) -> dict:
    """A sightsound-saved model.json as the converter writes a Keras 3 model: InputLayer with batch_shape,
    dtype policies, initializers with module/registered_name, build_config, weights by place."""
    topology = copy.deepcopy(doc["modelTopology"])
    entries = topology["config"]["layers"]
    first = entries[0]["config"]
    entries.insert(0, {"class_name": "InputLayer", "config": {
        "batch_shape": first.pop("batch_input_shape"), "dtype": first.pop("dtype"), "sparse": False,
        "ragged": False, "name": "input_layer"}})
    for entry in entries[1:]:
        config = entry["config"]
        config["dtype"] = POLICY
        for key, value in config.items():
            if key.endswith("_initializer"):
                config[key] = {"module": "keras.initializers", **value, "registered_name": None}
        entry["build_config"] = {"input_shape": None}
    places = {"c": "layers/conv2d", "bn": "layers/batch_normalization", "d": "layers/dense"}
    suffixes = {"kernel": 0, "bias": 1, "gamma": 0, "beta": 1, "moving_mean": 2, "moving_variance": 3}
    weights = []
    for spec in doc["weightsManifest"][0]["weights"]:
        owner, suffix = spec["name"].split("/")
        weights.append({**spec, "name": f"{places[owner]}/vars/{suffixes[suffix]}"})
    return {"modelTopology": {"keras_version": "3.10.0", "model_config": {
                "class_name": "Sequential", "config": {**topology["config"], "trainable": True, "dtype": POLICY,
                                                       "build_input_shape": [None, 6, 5, 2]}}},
            "weightsManifest": [{"paths": doc["weightsManifest"][0]["paths"], "weights": weights}],
            "format": "layers-model", "generatedBy": "keras v3.10.0",
            "convertedBy": "TensorFlow.js Converter v4.22.0"}


def test_a_keras3_model_json_loads_predicts_and_saves_in_tfjs_dialect(tmp_path):
    original = small_model()
    original.save(tmp_path / "ours")
    doc = json.loads((tmp_path / "ours" / "model.json").read_text())
    (tmp_path / "ours" / "model.json").write_text(json.dumps(as_keras3(doc)))
    loaded = sightsound.load_layers_model(tmp_path / "ours", device="cpu")
    x = np.random.default_rng(1).uniform(-1, 1, (3, 6, 5, 2)).astype(np.float32)
    assert np.array_equal(loaded.predict(x), original.predict(x))
    loaded.save(tmp_path / "again")
    again = json.loads((tmp_path / "again" / "model.json").read_text())
    assert again["modelTopology"] == doc["modelTopology"]  # TF.js's dialect, as sightsound wrote it
    assert [w["name"] for w in again["weightsManifest"][0]["weights"]] == \
        [w["name"] for w in doc["weightsManifest"][0]["weights"]]
    assert (again["generatedBy"], again["convertedBy"]) == ("keras v3.10.0", "TensorFlow.js Converter v4.22.0")


def test_a_model_sightsound_built_says_sightsound_and_a_tfjs_document_passes_unchanged(tmp_path):
    small_model().save(tmp_path)
    doc = json.loads((tmp_path / "model.json").read_text())
    assert (doc["generatedBy"], doc["convertedBy"]) == (GENERATED_BY, None)
    assert tfjs_document(doc) == doc


def test_a_functional_topology_written_by_tfjs_passes_unchanged():
    node = require_node()
    out = subprocess.run([node, str(REPO / "tests" / "js" / "tfjs_topology.js")], capture_output=True, text=True,
                         cwd=REPO, timeout=120, check=True).stdout
    topology = json.loads(out)
    assert topology["class_name"] == "Model" and topology["keras_version"] == "tfjs-layers 4.22.0"
    doc = {"modelTopology": topology, "weightsManifest": [], "format": "layers-model"}
    assert tfjs_document(doc) == doc
