"""Functional models (``sightsound.input`` + ``sightsound.model``, TF.js's ``tf.model``).

In Python: a two-input, two-output model with a shared layer, a multi-input layer and a nested Sequential
head trains, predicts and survives save -> load; freezing; the speech-commands transfer model shares its base
model's weights; malformed graphs are refused naming the node; Keras 3's config form reads like TF.js's.
Against real TensorFlow.js 4.22 in Node (tests/js/tfjs_functional.js): models TF.js builds with ``tf.model``
load here and predict the same, with the same summary and byte-identical re-saves; models saved here load in
TF.js and predict the same, with the same summary.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_node_script
from functional_models import WeightedSum, transfer_model, two_branch_data, two_branch_model

import sightsound
from sightsound import layers
from sightsound.engine import layers as engine_layers
from sightsound.engine.model import Model
from sightsound.errors import ModelFormatError, ShapeError
from sightsound.tfjs import GENERATED_BY, model_weights, read_model_json

REPO = Path(__file__).resolve().parents[1]
NODE_SCRIPT = REPO / "tests" / "js" / "tfjs_functional.js"
TOL = 1e-5
TFJS_GENERATED_BY = "TensorFlow.js tfjs-layers v4.22.0"
FROM_TFJS = ["two-branch", "transfer", "nested"]


@pytest.fixture
def weighted_sum_loads(monkeypatch):
    """Let model.json name the private test merge layer (the layer registry knows only the real layers)."""
    monkeypatch.setitem(engine_layers.LAYER_CLASSES, WeightedSum.class_name, WeightedSum)


def load(path):
    return sightsound.load_layers_model(path, device="cpu")


def as_list(outputs) -> list:
    return outputs if isinstance(outputs, list) else [outputs]


def max_diff(a, b) -> float:
    return float(np.abs(np.asarray(a, np.float64).ravel() - np.asarray(b, np.float64).ravel()).max())


def saved_bytes(directory: Path) -> tuple[str, bytes]:
    text = (directory / "model.json").read_text(encoding="utf-8")
    return text.replace(json.dumps(GENERATED_BY), json.dumps(TFJS_GENERATED_BY)), \
        (directory / "weights.bin").read_bytes()


def weights_by_name(model) -> dict[str, np.ndarray]:
    return {w.name: w.to_tfjs().copy() for w in model_weights(model)}


# --------------------------------------------------------------------------- in Python

def test_two_input_two_output_model_trains_predicts_and_round_trips(tmp_path, weighted_sum_loads):
    sightsound.set_seed(1)
    model = two_branch_model()
    assert [layer.name for layer in model.layers] == ["image", "conv", "pool", "flat", "project", "features",
                                                      "shared", "merge", "classes", "head"]
    assert (model.input_shape, model.output_shape) == ([(8, 6, 1), (5,)], [(3,), (2,)])
    assert model.get_layer("head").layers[1].name == "head_bn"
    x, y = two_branch_data(96)
    model.compile(optimizer="adam", loss="categoricalCrossentropy", metrics=["accuracy"], learning_rate=0.02)
    losses = model.fit(x, y, batch_size=16, epochs=6).history["loss"]
    assert losses[-1] < 0.8 * losses[0], losses
    classes, head = model.predict(x)
    assert classes.shape == (96, 3) and head.shape == (96, 2) and np.allclose(classes.sum(axis=1), 1, atol=1e-5)

    model.save(tmp_path / "a", include_optimizer=True)
    loaded = load(tmp_path / "a")
    assert loaded.class_name == "Model" and loaded.optimizer.iterations == model.optimizer.iterations
    for ours, theirs in zip(model.predict(x), loaded.predict(x)):
        assert np.array_equal(ours, theirs)
    assert loaded.summary_lines() == model.summary_lines()
    loaded.save(tmp_path / "b", include_optimizer=True)
    assert saved_bytes(tmp_path / "b") == saved_bytes(tmp_path / "a")


def test_symbolic_tensors_and_layer_outputs_as_in_tfjs():
    x = sightsound.input({"shape": [4], "name": "x", "batchSize": 2})  # TF.js's call style
    dense = layers.dense(units=3, name="d")
    y = dense(x)
    assert (x.shape, x.name, x.source_layer.class_name) == ((2, 4), "x", "InputLayer")
    assert (y.shape, y.source_layer, y.node_index, y.tensor_index) == ((2, 3), dense, 0, 0)
    assert dense.input is x and dense.output is y
    model = sightsound.model({"inputs": x, "outputs": y, "name": "m"})
    assert (model.name, model.input_shape, model.output_shape) == ("m", (4,), (3,))
    assert model.get_config()["layers"][0]["config"]["batch_input_shape"] == [2, 4]
    assert model.summary_lines()[3].startswith("x (InputLayer)              [[2,4]]                   [2,4]")
    stack = sightsound.sequential([layers.dense(units=2, input_shape=[3], name="first"), layers.flatten()])
    first = stack.layers[0]
    assert first.input is stack.inputs[0] and stack.inputs[0].source_layer.name == "first_input"
    assert stack.layers[1].output is stack.outputs[0] and stack.outputs[0].shape == (None, 2)
    dense.apply(sightsound.input(shape=[4]))  # now shared: TF.js's layer.output is ill-defined
    with pytest.raises(AttributeError, match="d has been called 2 times"):
        getattr(dense, "output")


def test_read_model_json_describes_functional_models(tmp_path, weighted_sum_loads):
    two_branch_model().save(tmp_path / "two")
    transfer_model()[2].save(tmp_path / "transfer")
    two = read_model_json(tmp_path / "two" / "model.json")
    transfer = read_model_json(tmp_path / "transfer" / "model.json")
    assert (two.input_shape, two.output_units) == ([8, 6, 1], 3)  # the first input, the first output's layer
    assert (transfer.input_shape, transfer.output_units) == ([12, 10, 1], 3)  # the output of the nested head


def test_multi_input_layers_take_a_list_of_engine_layout_tensors():
    image = sightsound.input(shape=[6, 5, 2])
    a = layers.conv2d(filters=3, kernel_size=3, padding="same").apply(image)
    b = layers.conv2d(filters=3, kernel_size=[1, 2], padding="same").apply(image)
    merge = WeightedSum()
    model = sightsound.model(inputs=image, outputs=[a, b, merge.apply([a, b])], device="cpu")
    model.build()
    with torch.no_grad():
        merge.tfjs_weights(sightsound.engine.functional.built_module(merge))["scales"].copy_(torch.tensor([2., -1.]))
    x = np.random.default_rng(0).random((4, 6, 5, 2), dtype=np.float32)
    pa, pb, merged = model.predict(x)
    assert merged.shape == (4, 6, 5, 3) and np.allclose(merged, 2 * pa - pb, atol=1e-6)
    # layers also run on arrays now (TF.js's apply on concrete tensors), with the same modules
    assert np.allclose(merge.apply([pa, pb]), merged, atol=1e-6)
    assert np.allclose(model.layers[1].apply(x), pa, atol=1e-6)


def test_frozen_layers_and_frozen_nested_models_do_not_train():
    sightsound.set_seed(2)
    model = two_branch_model(merge=False)
    model.get_layer("project").trainable = False
    model.get_layer("head").trainable = False  # the whole nested model, as TF.js's model.trainable = false
    before = weights_by_name(model)
    x, y = two_branch_data(32)
    model.compile(optimizer="sgd", loss="categoricalCrossentropy", learning_rate=0.5)
    model.fit(x, y, batch_size=8, epochs=2)
    after = weights_by_name(model)
    changed = sorted(name for name in before if not np.array_equal(before[name], after[name]))
    # as in TF.js, batch normalisation still tracks its moving statistics while fitting, frozen or not
    assert changed == ["classes/bias", "classes/kernel", "conv/bias", "conv/kernel", "head_bn/moving_mean",
                       "head_bn/moving_variance", "shared/bias", "shared/kernel"]
    # TF.js's order: trainable weights by layer, then the frozen ones, a frozen model's weights in its order
    assert list(after) == ["conv/kernel", "conv/bias", "shared/kernel", "shared/bias", "classes/kernel",
                           "classes/bias", "project/kernel", "project/bias", "head_hidden/kernel",
                           "head_hidden/bias", "head_bn/gamma", "head_bn/beta", "head_bn/moving_mean",
                           "head_bn/moving_variance", "head_out/kernel", "head_out/bias"]
    assert model.summary_lines()[-4:-1] == ["Total params: 199", "Trainable params: 69",
                                            "Non-trainable params: 130"]


def test_transfer_model_runs_on_the_base_model_weights():
    sightsound.set_seed(3)
    base, head, transfer = transfer_model()
    x = np.random.default_rng(1).random((6, 12, 10, 1), dtype=np.float32)
    before = base.predict(x)
    trunk = sightsound.model(inputs=base.inputs, outputs=[base.layers[0].output, base.layers[-2].output],
                             device="cpu")
    conv, features = trunk.predict(x)
    assert conv.min() >= 0 and (conv == 0).any()  # the conv's relu, which the base's chain ran after pooling
    assert max_diff(transfer.predict(x), head.predict(features)) <= 1e-6
    assert max_diff(base.predict(x), before) <= 1e-6
    base_weights, head_weights = weights_by_name(base), weights_by_name(head)
    transfer.compile(optimizer="adam", loss="categoricalCrossentropy", learning_rate=0.05)
    transfer.fit(x, np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1, 2]], batch_size=6, epochs=3)
    trained = weights_by_name(base)
    # frozen; only batch normalisation's moving statistics move while fitting, as in TF.js
    changed = sorted(k for k, v in base_weights.items() if not np.array_equal(v, trained[k]))
    assert [name.split("/")[1] for name in changed] == ["moving_mean", "moving_variance"]
    assert all(not np.array_equal(v, weights_by_name(head)[k]) for k, v in head_weights.items())
    assert max_diff(transfer.predict(x), head.predict(trunk.predict(x)[1])) <= 1e-6  # one head, trained
    assert transfer.summary_lines()[-3:-1] == ["Trainable params: 27", "Non-trainable params: 1182"]


def test_python_graph_errors_name_the_layer():
    a, b = sightsound.input(shape=[3], name="a"), sightsound.input(shape=[3], name="b")
    dense = layers.dense(units=2, name="dense")
    out = dense.apply(a)
    with pytest.raises(ShapeError, match=re.escape("dense: the layer was first called on [null,3] and cannot be "
                                                   "called on [null,4]")):
        dense.apply(sightsound.input(shape=[4]))
    with pytest.raises(ModelFormatError, match="graph disconnected: layer dense needs input layer a, which is "
                                               "not among the model's inputs"):
        sightsound.model(inputs=b, outputs=out)
    with pytest.raises(ModelFormatError, match="input layer b does not lead to any output"):
        sightsound.model(inputs=[a, b], outputs=out)
    with pytest.raises(ModelFormatError, match=r"inputs\[0\] comes from layer dense \(Dense\)"):
        sightsound.model(inputs=out, outputs=layers.dense(units=1).apply(out))
    with pytest.raises(ModelFormatError, match="layer name.s. dense are used more than once"):
        sightsound.model(inputs=a, outputs=layers.dense(units=1, name="dense").apply(out))
    with pytest.raises(ShapeError, match=r"TestWeightedSum\) takes|needs two or more inputs"):
        WeightedSum(name="lonely").apply([a])


@pytest.fixture
def small_saved(tmp_path):
    """Inputs a and b; a -> d1 -> d2 and b -> d3; outputs d2 and d3."""
    a, b = sightsound.input(shape=[3], name="a"), sightsound.input(shape=[3], name="b")
    d2 = layers.dense(units=2, name="d2").apply(layers.dense(units=4, name="d1").apply(a))
    d3 = layers.dense(units=2, name="d3").apply(b)
    sightsound.model(inputs=[a, b], outputs=[d2, d3], device="cpu").save(tmp_path / "m")
    return tmp_path / "m"


def _layer(config: dict, name: str) -> dict:
    return next(entry for entry in config["layers"] if entry["name"] == name)


def _rename(config, old, new):
    entry = _layer(config, old)
    entry["name"] = entry["config"]["name"] = new


BAD_GRAPHS = {
    "cycle": (lambda c: _layer(c, "d1").update(inbound_nodes=[[["d2", 0, 0, {}]]]),
              "the graph has a cycle: layer 'd1' call 0 waits for 'd2' node 0; layer 'd2' call 0 waits for 'd1' "
              "node 0"),
    "unknown inbound layer": (lambda c: _layer(c, "d2").update(inbound_nodes=[[["nope", 0, 0, {}]]]),
                              "layer 'd2' call 0: inbound layer 'nope' does not exist"),
    "missing node": (lambda c: _layer(c, "d2").update(inbound_nodes=[[["d1", 1, 0, {}]]]),
                     "layer 'd2' call 0: inbound layer 'd1' has no node 1 (its nodes are 0..0)"),
    "missing tensor": (lambda c: _layer(c, "d2").update(inbound_nodes=[[["d1", 0, 2, {}]]]),
                       "layer 'd2' call 0: 'd1' node 0 has no tensor 2 (it has 1)"),
    "dangling input": (lambda c: c.update(output_layers=[["d2", 0, 0]]),
                       "input layer b does not lead to any output"),
    "input not listed": (lambda c: c.update(input_layers=[["a", 0, 0]]),
                         "graph disconnected: layer d3 needs input layer b, which is not among the model's inputs"),
    "input not an InputLayer": (lambda c: c.update(input_layers=[["a", 0, 0], ["d3", 0, 0]]),
                                "input_layers names 'd3', a Dense layer; a model's inputs must be InputLayers"),
    "duplicated name": (lambda c: _rename(c, "d3", "d2"), "two layers are named 'd2'"),
    "unknown output": (lambda c: c.update(output_layers=[["d2", 0, 0], ["zz", 0, 0]]),
                       "output_layers names layer 'zz', which does not exist"),
    "called InputLayer": (lambda c: _layer(c, "b").update(inbound_nodes=[[["a", 0, 0, {}]]]),
                          "layer 'b' is an InputLayer: it has no inbound nodes to call it on"),
}


@pytest.mark.parametrize("case", BAD_GRAPHS)
def test_malformed_graphs_are_refused_naming_the_node(small_saved, case):
    edit, message = BAD_GRAPHS[case]
    doc = json.loads((small_saved / "model.json").read_text())
    edit(doc["modelTopology"]["config"])
    (small_saved / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ModelFormatError, match=re.escape(f"{small_saved / 'model.json'}: {message}")):
        load(small_saved)


def keras3_config(config: dict) -> dict:
    """``config`` (TF.js's form) in Keras 3's: calls as ``{"args", "kwargs"}`` with ``__keras_tensor__``
    objects (a model's calls counted from 0), ``batch_shape``, a nested Sequential's output counted from 0."""
    config = copy.deepcopy(config)
    nested = {e["name"] for e in config["layers"] if e["class_name"] in ("Sequential", "Model", "Functional")}

    def tensor(ref):
        return {"class_name": "__keras_tensor__", "config": {
            "shape": None, "dtype": "float32", "keras_history": [ref[0], ref[1] - (ref[0] in nested), ref[2]]}}

    for entry in config["layers"]:
        entry["inbound_nodes"] = [{"args": [tensor(call[0]) if len(call) == 1 else [tensor(r) for r in call]],
                                   "kwargs": {"training": False}} for call in entry["inbound_nodes"]]
        if entry["class_name"] == "InputLayer":
            entry["config"]["batch_shape"] = entry["config"].pop("batch_input_shape")
    for key in ("input_layers", "output_layers"):
        refs = [[n, i - (n in nested and _layer(config, n)["class_name"] == "Sequential"), t]
                for n, i, t in config[key]]
        config[key] = refs[0] if len(refs) == 1 else refs  # Keras 3 writes one tensor without the list
    return config


@pytest.mark.parametrize("build", ["two-branch", "transfer"])
def test_keras3_dict_form_reads_as_the_same_graph(weighted_sum_loads, build):
    model = two_branch_model() if build == "two-branch" else transfer_model()[2]
    config = model.get_config()
    rebuilt = Model.from_config(keras3_config(config), device="cpu", class_name="Functional")
    assert rebuilt.class_name == "Functional" and rebuilt.get_config() == config
    with torch.no_grad():
        theirs = {w.name: w for w in model_weights(rebuilt)}
        for weight in model_weights(model):
            theirs[weight.name].tensor.copy_(weight.tensor)
    x = [np.random.default_rng(5).random((3, *shape), dtype=np.float32)
         for shape in (model.input_shape if isinstance(model.input_shape, list) else [model.input_shape])]
    for ours, its in zip(as_list(model.predict(x)), as_list(rebuilt.predict(x))):
        assert np.array_equal(ours, its)


# --------------------------------------------------------------------------- TF.js saves, sightsound loads

@pytest.fixture(scope="module")
def from_tfjs(tmp_path_factory):
    root = tmp_path_factory.mktemp("functional_from_tfjs")
    run_node_script(NODE_SCRIPT, "make", root)
    return root, json.loads((root / "expect.json").read_text())["models"]


def inputs_of(entry: dict) -> list[np.ndarray]:
    return [np.array(x["values"], np.float32).reshape(x["shape"]) for x in entry["inputs"]]


@pytest.mark.parametrize("name", FROM_TFJS)
def test_tfjs_functional_model_loads_and_predicts_the_same(from_tfjs, name):
    root, expect = from_tfjs
    model = load(root / name)
    x = inputs_of(expect[name])
    predictions = as_list(model.predict(x if len(x) > 1 else x[0]))
    assert len(predictions) == len(expect[name]["predictions"])
    for ours, theirs in zip(predictions, expect[name]["predictions"]):
        assert max_diff(ours, theirs) <= TOL
    assert model.summary_lines() == expect[name]["summary"]
    assert [w.name for w in model_weights(model)] == expect[name]["weights"]


@pytest.mark.parametrize("name", FROM_TFJS)
def test_resaving_a_tfjs_functional_model_writes_tfjs_bytes(from_tfjs, tmp_path, name):
    root, _ = from_tfjs
    model = load(root / name)
    model.save(tmp_path / name, include_optimizer=model.optimizer is not None)
    assert saved_bytes(tmp_path / name) == ((root / name / "model.json").read_text(encoding="utf-8"),
                                            (root / name / "weights.bin").read_bytes())


def test_tfjs_transfer_model_comes_back_frozen_and_compiled(from_tfjs):
    root, _ = from_tfjs
    model = load(root / "transfer")
    assert model.class_name == "Model" and model.optimizer.class_name == "Adam" and model.optimizer.iterations == 2
    assert [layer.trainable for layer in model.layers[1:-1]] == [False] * 7
    assert isinstance(model.layers[-1], sightsound.Sequential) and model.layers[-1].layers[0].name == "NewHeadDense"


# --------------------------------------------------------------------------- sightsound saves, TF.js loads

@pytest.fixture(scope="module")
def to_tfjs(tmp_path_factory):
    """sightsound builds, trains and saves functional models; TF.js loads them, predicts, prints summaries."""
    root = tmp_path_factory.mktemp("functional_to_tfjs")
    sightsound.set_seed(4)
    models = {"two-branch": two_branch_model(merge=False), "transfer": transfer_model()[2], "nested": _nested()}
    spec, ours = {"models": []}, {}
    for i, (name, model) in enumerate(models.items()):
        x, y = _task(model, 24, seed=i)
        model.compile(optimizer="adam", loss="categoricalCrossentropy", metrics=["accuracy"], learning_rate=0.01)
        model.fit(x, y, batch_size=8, epochs=1)
        model.save(root / name, include_optimizer=True)
        ours[name] = {"predictions": as_list(model.predict(x)), "summary": model.summary_lines()}
        spec["models"].append({"name": name, "dir": str(root / name),
                               "inputs": [{"shape": list(a.shape), "values": a.ravel().tolist()} for a in x]})
    (root / "spec.json").write_text(json.dumps(spec))
    run_node_script(NODE_SCRIPT, "check", root / "spec.json", root / "out.json")
    return ours, json.loads((root / "out.json").read_text())


def _nested():
    """A functional model called inside another after a layer shared at two depths (as tfjs_functional.js)."""
    inner_input = sightsound.input(shape=[6])
    inner = sightsound.model(inputs=inner_input, device="cpu",
                             outputs=layers.dense(units=4, activation="relu").apply(inner_input))
    x = sightsound.input(shape=[6])
    twice = layers.dense(units=6, activation="tanh")
    y = inner.apply(twice.apply(twice.apply(x)))
    return sightsound.model(inputs=x, outputs=[layers.dense(units=2, activation="softmax").apply(y), y],
                            device="cpu")


def _task(model, n: int, seed: int):
    rng = np.random.default_rng(seed)
    shapes = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]
    outputs = model.output_shape if isinstance(model.output_shape, list) else [model.output_shape]
    x = [rng.random((n, *shape), dtype=np.float32) for shape in shapes]
    y = [np.eye(shape[-1], dtype=np.float32)[rng.integers(0, shape[-1], n)] for shape in outputs]
    return x, y


@pytest.mark.parametrize("name", FROM_TFJS)
def test_sightsound_functional_model_loads_in_tfjs_and_predicts_the_same(to_tfjs, name):
    ours, theirs = to_tfjs
    assert theirs[name]["class_name"] == "Model"
    assert len(theirs[name]["predictions"]) == len(ours[name]["predictions"])
    for mine, tfjs in zip(ours[name]["predictions"], theirs[name]["predictions"]):
        assert max_diff(mine, tfjs) <= TOL
    assert theirs[name]["summary"] == ours[name]["summary"]


def relu_then_pool_model(relu_layer) -> sightsound.Sequential:
    """conv (no activation) -> batch norm -> a relu layer -> max pooling -> dense, as the speech-bn blocks."""
    return sightsound.sequential(layers=[
        layers.conv2d(input_shape=[10, 10, 1], filters=3, kernel_size=3, use_bias=False),
        layers.batch_normalization(), relu_layer, layers.max_pooling2d(pool_size=2),
        layers.flatten(), layers.dense(units=4, activation="softmax")], device="cpu")


@pytest.mark.parametrize("relu_layer", [lambda: layers.activation(activation="relu"), lambda: layers.re_lu()],
                         ids=["activation", "reLU"])
def test_a_relu_layer_before_max_pooling_gives_the_numbers_of_its_layers_run_one_by_one(relu_layer):
    sightsound.set_seed(0)
    model = relu_then_pool_model(relu_layer())
    x = np.random.default_rng(0).standard_normal((5, 10, 10, 1)).astype(np.float32)
    chained = model.predict(x)
    stepwise = x
    for layer in model.layers:  # each layer's own module, unfused
        stepwise = np.asarray(layer.apply(stepwise))
    assert max_diff(chained, stepwise) <= 1e-6
    pooled = sightsound.model(inputs=model.inputs, outputs=model.layers[3].output, device="cpu").predict(x)
    assert pooled.min() == 0  # the relu, which the chain ran after the pooling


def test_a_pooling_layer_run_alone_leaves_the_models_relu_in_place():
    sightsound.set_seed(0)
    model = sightsound.sequential(layers=[
        layers.conv2d(input_shape=[8, 8, 1], filters=2, kernel_size=3, activation="relu"),
        layers.max_pooling2d(pool_size=2), layers.flatten()], device="cpu")
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 1)).astype(np.float32)
    before = model.predict(x)
    alone = np.asarray(model.layers[1].apply(np.random.default_rng(1).standard_normal((2, 6, 6, 2)).astype(np.float32)))
    assert alone.min() < 0  # the pooling alone has no relu
    assert before.min() == 0 and max_diff(model.predict(x), before) == 0  # and the model keeps its own
