"""ONNX export: the exported graph, run by onnxruntime, predicts what sightsound predicts (Sequential and
functional models, with one or several inputs and outputs)."""

from __future__ import annotations

import numpy as np
import pytest

import sightsound
from sightsound import layers, presets
from sightsound.cli import main as cli_main
from sightsound.onnx_export import export_onnx

from conftest import PIP_DEV_FIX, require_import
from functional_models import transfer_model, two_branch_data, two_branch_model

ort = require_import("onnxruntime", PIP_DEV_FIX)
require_import("onnx", PIP_DEV_FIX)
require_import("onnxscript", PIP_DEV_FIX)


def run_onnx(path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "input" and inp.shape[1:] == list(x.shape[1:]) and isinstance(inp.shape[0], str)
    return session.run(["output"], {"input": x})[0]


def test_export_matches_predict_for_any_batch_size(tmp_path):
    sightsound.set_seed(3)
    model = presets.build("mnist-conv", device="cpu")
    path = export_onnx(model, tmp_path / "conv.onnx")
    for batch in (1, 5):
        x = np.random.default_rng(batch).random((batch, 28, 28, 1), dtype=np.float32)
        assert np.abs(run_onnx(path, x) - model.predict(x)).max() <= 1e-5


def test_cli_export_of_a_saved_model(tmp_path, capsys):
    sightsound.set_seed(4)
    model = presets.build("mnist-enhanced", device="cpu")  # dropout must be off in the graph
    model.save(tmp_path / "saved")
    out = tmp_path / "exported" / "model.onnx"
    assert cli_main(["export", str(tmp_path / "saved"), "--format", "onnx", "-o", str(out), "--device", "cpu"]) == 0
    assert "Wrote" in capsys.readouterr().out
    x = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    assert np.abs(run_onnx(out, x) - model.predict(x)).max() <= 1e-5


def test_export_of_the_convnet_layers(tmp_path):
    """Padding, depthwise and separable convolutions, bilinear up-sampling, cropping, PReLU, a channels-first
    batch norm, permute, multi-axis softmax, 1-D convolution and pooling, the activation layers."""
    sightsound.set_seed(5)
    model = sightsound.sequential([
        layers.zero_padding2d(padding=1, input_shape=[8, 7, 3]),
        layers.depthwise_conv2d(kernel_size=3, depth_multiplier=2, padding="same", strides=2),
        layers.separable_conv2d(filters=4, kernel_size=2, activation="relu"),
        layers.up_sampling2d(interpolation="bilinear"), layers.cropping2d(cropping=[1, 0]),
        layers.prelu(shared_axes=[1, 2]), layers.batch_normalization(axis=1), layers.permute(dims=[3, 1, 2]),
        layers.softmax(axis=[2, 3]), layers.reshape(target_shape=[4, -1]), layers.conv1d(filters=3, kernel_size=2),
        layers.max_pooling1d(padding="same"), layers.global_max_pooling1d(), layers.leaky_re_lu(), layers.elu(),
        layers.re_lu(max_value=1.0), layers.thresholded_re_lu(theta=0.0), layers.softmax(axis=-1)], device="cpu")
    path = export_onnx(model, tmp_path / "layers.onnx")
    x = np.random.default_rng(0).random((3, 8, 7, 3), dtype=np.float32)
    assert np.abs(run_onnx(path, x) - model.predict(x)).max() <= 1e-5


def test_export_of_a_functional_model_with_one_input_and_output(tmp_path):
    sightsound.set_seed(5)
    _, _, transfer = transfer_model()  # a nested Sequential head on a Sequential's layers
    path = export_onnx(transfer, tmp_path / "transfer.onnx")
    for batch in (1, 4):
        x = np.random.default_rng(batch).random((batch, 12, 10, 1), dtype=np.float32)
        assert np.abs(run_onnx(path, x) - transfer.predict(x)).max() <= 1e-5


def test_export_of_a_functional_model_with_several_inputs_and_outputs(tmp_path):
    sightsound.set_seed(6)
    model = two_branch_model()  # a shared layer, a multi-input layer, a nested Sequential with batch norm
    path = export_onnx(model, tmp_path / "two.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape[1:]) for i in session.get_inputs()] == [("image", [8, 6, 1]), ("features", [5])]
    assert [o.name for o in session.get_outputs()] == ["classes", "head"]
    x, _ = two_branch_data(3, seed=2)
    for ours, theirs in zip(model.predict(x), session.run(None, {"image": x[0], "features": x[1]})):
        assert ours.shape == theirs.shape and np.abs(ours - theirs).max() <= 1e-5


def test_the_onnx_predictor_predicts_what_the_model_predicts_and_takes_one_input_only():
    from sightsound.onnx_export import OnnxPredictor

    sightsound.set_seed(6)
    model = presets.build("mnist-conv", device="cpu")
    predictor = OnnxPredictor(model)
    assert predictor.input_shape == model.input_shape and predictor.output_shape == model.output_shape
    for batch in (1, 4):
        x = np.random.default_rng(batch).random((batch, 28, 28, 1))  # float64 in: converted, as predict does
        assert np.abs(predictor.predict(x) - model.predict(x)).max() <= 1e-5
    with pytest.raises(ValueError, match="one input and one output"):
        OnnxPredictor(two_branch_model())


def test_the_onnx_predictor_of_a_saved_folder_is_exported_in_a_child_process(tmp_path):
    from sightsound.onnx_export import OnnxPredictor

    sightsound.set_seed(7)
    model = presets.build("mnist-conv", device="cpu")
    model.save(tmp_path / "saved")
    predictor = OnnxPredictor.from_folder(model, tmp_path / "saved")
    x = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)
    assert np.abs(predictor.predict(x) - model.predict(x)).max() <= 1e-5
    (tmp_path / "broken").mkdir()
    with pytest.raises(RuntimeError, match=r"exporting .*broken to ONNX failed: .*model\.json"):
        OnnxPredictor.from_folder(model, tmp_path / "broken")
