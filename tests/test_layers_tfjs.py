"""The convnet layers beyond the chapter's, proven against real TensorFlow.js 4.22 in Node.

TF.js builds small models with every such layer (tests/js/tfjs_layers.js), saves them and predicts;
sightsound loads them, predicts the same, and re-saves TF.js's bytes (so each layer's config, field
order and values, is TF.js's). The merge layers, which a Sequential cannot hold, are compared as
modules against ``layer.apply([...])`` on concrete tensors. Then sightsound builds and saves models
with the same layers and TF.js loads and predicts them (``tfjs_models.js check``).

Node runs twice per session (one ``make``, one ``check``), in module fixtures.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from test_tfjs_format import REPO, TFJS_GENERATED_BY, TOL, fit_step, inputs_of, load, max_diff, run_node

import sightsound
from sightsound import layers
from sightsound.engine.layers.base import to_engine_layout, to_tfjs_layout
from sightsound.tfjs import GENERATED_BY, js_json, model_weights

LAYERS_SCRIPT = REPO / "tests" / "js" / "tfjs_layers.js"
MODELS = ["padding-depthwise", "bilinear-prelu", "sequence", "sequence-pools", "batchnorm-axes",
          "batchnorm-list-axis", "input-layer", "reshape-unknown"]
# TF.js's summary differs for these: sightsound's Sequential loads an InputLayer as the next layer's input
# shape (sightsound/engine/sequential.py), and TF.js states a Reshape's -1 dimension as null.
OWN_SUMMARY = {"input-layer", "reshape-unknown"}
MERGES = ["add-images", "add-three", "multiply-broadcast", "average-ranks", "maximum-image-vector", "minimum",
          "concatenate-channels", "concatenate-rows", "concatenate-width", "concatenate-sequence", "dot-vectors",
          "dot-cosine", "dot-matrices", "dot-matrices-first", "dot-matrix-vector", "dot-vector-matrix"]


@pytest.fixture(scope="module")
def from_tfjs(tmp_path_factory):
    root = tmp_path_factory.mktemp("layers_from_tfjs")
    run_node("make", root, script=LAYERS_SCRIPT)
    return root, json.loads((root / "expect.json").read_text())


# ---------------------------------------------------------------------------
# TF.js saves, sightsound loads


@pytest.mark.parametrize("name", MODELS)
def test_tfjs_layer_models_predict_the_same_in_sightsound(from_tfjs, name):
    root, expect = from_tfjs
    entry = expect["models"][name]
    model = load(root / name)
    assert max_diff(model.predict(inputs_of(entry)), entry["predictions"]) <= TOL
    if name not in OWN_SUMMARY:
        assert model.summary_lines() == entry["summary"]


@pytest.mark.parametrize("name", sorted(set(MODELS) - {"input-layer"}))
def test_resaving_tfjs_layer_models_writes_tfjs_bytes(from_tfjs, tmp_path, name):
    """Every layer's config comes back as TF.js wrote it (fields, order, values); weights byte for byte."""
    root, _ = from_tfjs
    model = load(root / name)
    model.save(tmp_path, include_optimizer=model.optimizer is not None)
    ours = (tmp_path / "model.json").read_text(encoding="utf-8")
    assert ours.replace(json.dumps(GENERATED_BY), json.dumps(TFJS_GENERATED_BY)) == \
        (root / name / "model.json").read_text(encoding="utf-8")
    assert (tmp_path / "weights.bin").read_bytes() == (root / name / "weights.bin").read_bytes()


def test_input_layer_config_is_tfjs(from_tfjs):
    root, _ = from_tfjs
    entry = json.loads((root / "input-layer" / "model.json").read_text())["modelTopology"]["config"]["layers"][0]
    assert entry["class_name"] == "InputLayer"
    layer = layers.from_json(entry)
    assert js_json(layer.to_json()) == js_json(entry)
    assert layer.weight_specs((6,)) == [] and layer.compute_output_shape((6,)) == (6,)


def test_a_training_step_through_the_new_layers_matches_tfjs(from_tfjs):
    """Bilinear up-sampling, PReLU (shared and not), depthwise conv, capped ReLU: gradients agree too."""
    root, expect = from_tfjs
    entry = expect["models"]["bilinear-prelu"]
    model = load(root / "bilinear-prelu")
    assert model.optimizer.class_name == "SGD"
    fit_step(model, entry["step"])
    assert max_diff(model.predict(inputs_of(entry)), entry["after_step"]) <= TOL


@pytest.mark.parametrize("axis", [[3], 3, -1])
def test_batchnorm_axis_spellings_compute_like_the_last_axis(from_tfjs, tmp_path, axis):
    """Keras 2 writes ``[3]``; TF.js saves it as given. 3, -1 and [3] are one axis of a 4-D input."""
    root, expect = from_tfjs
    entry = expect["models"]["batchnorm-list-axis"]
    shutil.copytree(root / "batchnorm-list-axis", tmp_path / "m")
    doc = json.loads((tmp_path / "m" / "model.json").read_text())
    bn = doc["modelTopology"]["config"]["layers"][1]["config"]
    assert bn["axis"] == [3]  # as TF.js saved it
    bn["axis"] = axis
    (tmp_path / "m" / "model.json").write_text(json.dumps(doc))
    model = load(tmp_path / "m")
    assert model.layers[1].config()["axis"] == axis
    assert max_diff(model.predict(inputs_of(entry)), entry["predictions"]) <= TOL


def test_batchnorm_over_a_channels_first_axis_normalises_that_axis(from_tfjs):
    """axis 1 (then 2) of [c, h, w] data, as TF.js's layer defines it. TF.js 4.22's CPU kernel applies the
    statistics as if along the last axis instead, so its model.predict is not the reference here; the
    reference is TF.js normalising with broadcasting ops (tfjs_layers.js, referencePredictions)."""
    root, expect = from_tfjs
    entry = expect["models"]["batchnorm-axes"]
    ours = load(root / "batchnorm-axes").predict(inputs_of(entry))
    assert max_diff(ours, entry["predictions"]) <= TOL
    assert max_diff(ours, entry["cpu_kernel_predictions"]) > 0.1


@pytest.mark.parametrize("name", MERGES)
def test_merge_layers_compute_like_tfjs(from_tfjs, name):
    _, expect = from_tfjs
    case = expect["merges"][name]
    entry = {"class_name": case["class_name"], "config": case["config"]}
    layer = layers.from_json(entry)
    assert layer.multi_input and js_json(layer.to_json()) == js_json(entry)
    shapes = [tuple(s[1:]) for s in case["input_shapes"]]
    assert layer.compute_output_shape(shapes) == tuple(case["output_shape"][1:])
    assert layer.weight_specs(shapes) == [] and layer.count_params(shapes) == 0
    module = layer.build_module(shapes)
    inputs = [to_engine_layout(torch.tensor(v, dtype=torch.float32).reshape(s))
              for v, s in zip(case["inputs"], case["input_shapes"])]
    out = to_tfjs_layout(module(inputs))
    assert list(out.shape) == case["output_shape"]
    assert max_diff(out.numpy(), case["output"]) <= TOL


# ---------------------------------------------------------------------------
# sightsound saves, TF.js loads


def _depthwise_separable():
    return [layers.zero_padding2d(padding=[1, 2], input_shape=[9, 8, 3]),
            layers.depthwise_conv2d(kernel_size=3, depth_multiplier=2, strides=2, activation="relu6"),
            # TF.js reads a depth_multiplier it would not write itself
            layers.separable_conv2d(filters=5, kernel_size=[3, 2], depth_multiplier=2, padding="same",
                                    activation="relu"),
            layers.up_sampling2d(size=[2, 2], interpolation="bilinear"),
            layers.cropping2d(cropping=[[1, 2], [0, 1]]),
            layers.prelu(shared_axes=[1, 2]),
            layers.batch_normalization(axis=[3]),
            layers.global_max_pooling2d(),
            layers.dense(units=3, activation="softmax")]


def _sequence():
    return [layers.input_layer(input_shape=[10, 2]),
            layers.conv1d(filters=4, kernel_size=3, padding="same", dilation_rate=2),
            layers.average_pooling1d(pool_size=2, padding="same"),
            layers.max_pooling1d(pool_size=2),
            layers.leaky_re_lu(alpha=0.1),
            layers.permute(dims=[2, 1]),
            layers.global_average_pooling1d(),
            layers.re_lu(max_value=1.0),
            layers.elu(),
            layers.thresholded_re_lu(theta=0.01),
            layers.softmax(axis=-1)]


def _image_axes():
    return [layers.conv2d(filters=3, kernel_size=1, input_shape=[4, 3, 2]),
            layers.permute(dims=[3, 1, 2]),
            layers.softmax(axis=[2, 3]),
            layers.reshape(target_shape=[3, 12]),
            layers.global_max_pooling1d()]


BUILDERS = {"depthwise-separable": _depthwise_separable, "sequence": _sequence, "image-axes": _image_axes}


def _randomize(model, seed: int) -> None:
    """Every weight random (variances positive), so a wrong layout or axis cannot go unseen."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for weight in model_weights(model):
            low = 0.5 if weight.name.endswith(("moving_variance", "gamma")) else -0.5
            values = torch.rand(weight.tensor.shape, generator=generator) + low
            weight.tensor.copy_(values)


@pytest.fixture(scope="module")
def to_tfjs(tmp_path_factory):
    root = tmp_path_factory.mktemp("layers_to_tfjs")
    ours, spec = {}, {"models": []}
    for i, (name, build) in enumerate(BUILDERS.items()):
        sightsound.set_seed(i)
        model = sightsound.sequential(build(), device="cpu")
        _randomize(model, seed=i)
        model.save(root / name)
        x = np.random.default_rng(i).uniform(-1, 1, (3, *model.input_shape)).astype(np.float32)
        ours[name] = {"model": model, "predictions": model.predict(x), "reloaded": load(root / name).predict(x)}
        spec["models"].append({"name": name, "dir": str(root / name), "input_shape": list(x.shape),
                               "inputs": x.ravel().tolist()})
    (root / "spec.json").write_text(json.dumps(spec))
    run_node("check", root / "spec.json", root / "out.json")
    return ours, json.loads((root / "out.json").read_text())


@pytest.mark.parametrize("name", list(BUILDERS))
def test_sightsound_saved_layer_models_predict_the_same_in_tfjs(to_tfjs, name):
    ours, tfjs = to_tfjs
    assert np.array_equal(ours[name]["reloaded"], ours[name]["predictions"])  # and sightsound reloads it
    assert max_diff(ours[name]["predictions"], tfjs[name]["predictions"]) <= TOL
    assert tfjs[name]["summary"] == ours[name]["model"].summary_lines()


def test_tfjs_made_every_layer_class_beyond_the_chapters(from_tfjs):
    root, expect = from_tfjs
    made = {case["class_name"] for case in expect["merges"].values()}
    for name in MODELS:
        topology = json.loads((root / name / "model.json").read_text())["modelTopology"]
        made |= {entry["class_name"] for entry in topology["config"]["layers"]}
    chapter = {"Conv2D", "Dense", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "Flatten",
               "Reshape", "Dropout", "Activation", "BatchNormalization"}
    assert set(layers.LAYER_CLASSES) - chapter <= made
