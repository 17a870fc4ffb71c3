import math

import numpy as np
import pytest
import torch

from sightsound.engine import layers
from sightsound.engine.layers import conv as conv_layers
from sightsound.engine.sequential import Sequential
from sightsound.errors import ModelFormatError, ShapeError


def test_layer_names_count_per_class():
    a = layers.conv2d(filters=1, kernel_size=1)
    b = layers.conv2d(filters=1, kernel_size=1)
    d = layers.dense(units=1)
    na, nb = int(a.name.removeprefix("conv2d_Conv2D")), int(b.name.removeprefix("conv2d_Conv2D"))
    assert nb == na + 1
    assert d.name.startswith("dense_Dense")
    assert layers.max_pooling2d().name.startswith("max_pooling2d_MaxPooling2D")
    assert layers.batch_normalization().name.startswith("batch_normalization_BatchNormalization")


def test_conv2d_config_matches_tfjs_fields_and_order():
    conv = layers.conv2d(filters=16, kernel_size=3, activation="relu", input_shape=[28, 28, 1], name="c")
    cfg = conv.config()
    assert list(cfg) == ["filters", "kernel_initializer", "kernel_regularizer", "kernel_constraint", "kernel_size",
                         "strides", "padding", "data_format", "dilation_rate", "activation", "use_bias",
                         "bias_initializer", "bias_regularizer", "activity_regularizer", "bias_constraint", "name",
                         "trainable", "batch_input_shape", "dtype"]
    assert cfg["kernel_size"] == [3, 3] and cfg["strides"] == [1, 1] and cfg["padding"] == "valid"
    assert cfg["batch_input_shape"] == [None, 28, 28, 1]
    assert cfg["kernel_initializer"] == {"class_name": "VarianceScaling", "config": {
        "scale": 1, "mode": "fan_avg", "distribution": "normal", "seed": None}}


def test_camel_case_options_accepted():
    conv = layers.conv2d(filters=4, kernelSize=[2, 8], inputShape=[43, 232, 1])
    assert conv.kernel_size == [2, 8]
    assert conv.batch_input_shape == [None, 43, 232, 1]


def test_pool_strides_default_to_pool_size():
    assert layers.max_pooling2d(pool_size=3).strides == [3, 3]
    assert layers.average_pooling2d(pool_size=[2, 4]).strides == [2, 4]


@pytest.mark.parametrize("padding,strides,expected", [("valid", 1, (5, 5, 2)), ("same", 1, (7, 7, 2)),
                                                       ("same", 2, (4, 4, 2)), ("valid", 2, (3, 3, 2))])
def test_conv_output_shapes(padding, strides, expected):
    model = Sequential([layers.conv2d(filters=2, kernel_size=3, padding=padding, strides=strides,
                                      input_shape=[7, 7, 1])], device="cpu")
    assert model.output_shape == expected
    out = model.predict(np.random.rand(2, 7, 7, 1).astype("float32"))
    assert out.shape == (2, *expected)


def test_same_padding_puts_extra_pixel_after_like_tf():
    # 1x1 input pixel grid 4x4, kernel 2, stride 2 'same': no padding needed; 5x5 needs 1 after.
    conv = layers.conv2d(filters=1, kernel_size=2, strides=2, padding="same", use_bias=False,
                         kernel_initializer="ones", input_shape=[5, 5, 1])
    model = Sequential([conv], device="cpu")
    x = np.arange(25, dtype="float32").reshape(1, 5, 5, 1)
    out = model.predict(x)[0, :, :, 0]
    # TF pads bottom/right: last window of row 0 covers x[0:2, 4:5] -> 4 + 9
    assert out.shape == (3, 3)
    assert out[0, 2] == 4 + 9
    assert out[2, 2] == 24


def test_max_pool_same_pads_with_minus_infinity():
    model = Sequential([layers.max_pooling2d(pool_size=2, padding="same", input_shape=[3, 3, 1])], device="cpu")
    x = -np.arange(1, 10, dtype="float32").reshape(1, 3, 3, 1)
    out = model.predict(x)[0, :, :, 0]
    assert out.tolist() == [[-1, -3], [-7, -9]]


def test_average_pool_same_excludes_padding():
    model = Sequential([layers.average_pooling2d(pool_size=2, padding="same", input_shape=[3, 3, 1])], device="cpu")
    x = np.ones((1, 3, 3, 1), dtype="float32")
    assert np.allclose(model.predict(x), 1.0)


def test_flatten_uses_tfjs_hwc_order():
    model = Sequential([layers.flatten(input_shape=[2, 3, 4])], device="cpu")
    x = np.arange(24, dtype="float32").reshape(1, 2, 3, 4)
    assert model.predict(x)[0].tolist() == list(range(24))


def test_reshape_round_trip_keeps_element_order():
    model = Sequential([layers.reshape(target_shape=[4, 6], input_shape=[2, 3, 4]),
                        layers.reshape(target_shape=[2, 3, 4])], device="cpu")
    x = np.random.rand(3, 2, 3, 4).astype("float32")
    assert np.array_equal(model.predict(x), x)


def test_dense_on_image_tensor_acts_on_channels():
    dense = layers.dense(units=1, use_bias=False, kernel_initializer="ones", input_shape=[2, 2, 3])
    model = Sequential([dense], device="cpu")
    x = np.random.rand(1, 2, 2, 3).astype("float32")
    assert np.allclose(model.predict(x)[..., 0], x.sum(-1), atol=1e-6)


def test_global_average_pooling_and_batchnorm_param_counts():
    model = Sequential([layers.conv2d(filters=4, kernel_size=3, input_shape=[8, 8, 2]),
                        layers.batch_normalization(), layers.global_average_pooling2d()], device="cpu")
    assert model.output_shape == (4,)
    assert model.count_params() == (3 * 3 * 2 * 4 + 4) + 4 * 4
    text = "\n".join(model.summary_lines())
    assert "Trainable params: 84" in text and "Non-trainable params: 8" in text


def test_glorot_normal_init_has_tfjs_spread():
    torch.manual_seed(0)
    dense = layers.dense(units=300, input_shape=[500])
    model = Sequential([dense], device="cpu").build()
    kernel = model.layers[0].tfjs_weights(model.net.blocks[0])["kernel"].detach()
    std = math.sqrt(2 / (500 + 300))
    assert kernel.abs().max() <= 2 * std + 1e-6  # truncated at two standard deviations
    # a normal truncated at 2 std has std 0.88 of the untruncated one
    assert abs(kernel.std().item() / std - 0.8796) < 0.02
    assert torch.count_nonzero(model.layers[0].tfjs_weights(model.net.blocks[0])["bias"]) == 0


@pytest.mark.parametrize("name,fn", [("relu", lambda x: np.maximum(x, 0)), ("sigmoid", lambda x: 1 / (1 + np.exp(-x))),
                                     ("tanh", np.tanh), ("linear", lambda x: x),
                                     ("elu", lambda x: np.where(x > 0, x, np.exp(x) - 1)),
                                     ("hardSigmoid", lambda x: np.clip(0.2 * x + 0.5, 0, 1))])
def test_activations(name, fn):
    model = Sequential([layers.activation(activation=name, input_shape=[5])], device="cpu")
    x = np.linspace(-3, 3, 10, dtype="float32").reshape(2, 5)
    assert np.allclose(model.predict(x), fn(x), atol=1e-6)


def test_softmax_on_images_is_over_channels():
    model = Sequential([layers.activation(activation="softmax", input_shape=[2, 2, 3])], device="cpu")
    out = model.predict(np.random.rand(1, 2, 2, 3).astype("float32"))
    assert np.allclose(out.sum(-1), 1, atol=1e-6)


@pytest.mark.parametrize("build,message", [
    (lambda: layers.conv2d(filters=2, kernel_size=3, padding="causal"), "padding"),
    (lambda: layers.dense(units=2, activation="swishy"), "unknown activation 'swishy'"),
    (lambda: layers.dense(units=0), "units"),
    (lambda: layers.dropout(rate=1.5), "rate"),
    (lambda: layers.dense(units=2, kernel_initializer="fancy"), "unknown initializer"),
    (lambda: layers.from_json({"class_name": "LSTM", "config": {}}), "unknown layer class 'LSTM'"),
])
def test_bad_layer_options_name_the_problem(build, message):
    with pytest.raises(ModelFormatError, match=message):
        build()


def test_kernel_larger_than_input_is_a_shape_error():
    with pytest.raises(ShapeError, match="smaller than the kernel"):
        Sequential([layers.conv2d(filters=2, kernel_size=5, input_shape=[3, 3, 1])])


def test_batchnorm_moving_variance_uses_biased_batch_variance_like_tfjs():
    model = Sequential([layers.batch_normalization(input_shape=[3])], device="cpu")
    model.compile(optimizer="sgd", loss="meanSquaredError")
    x = np.random.rand(6, 3).astype("float32")
    model.fit(x, np.zeros((6, 3), dtype="float32"), batch_size=6, epochs=1, shuffle=False)
    weights = model.layers[0].tfjs_weights(model.net.blocks[0])
    assert np.allclose(weights["moving_mean"].numpy(), 0.01 * x.mean(0), atol=1e-6)
    assert np.allclose(weights["moving_variance"].numpy(), 0.99 + 0.01 * x.var(0), atol=1e-6)  # ddof=0


def test_frozen_layer_is_not_trained_and_counts_as_non_trainable():
    frozen = layers.dense(units=4, input_shape=[3], trainable=False)
    model = Sequential([frozen, layers.dense(units=2)], device="cpu")
    model.compile(optimizer="sgd", loss="meanSquaredError")
    before = model.layers[0].tfjs_weights(model.net.blocks[0])["kernel"].detach().clone()
    model.fit(np.random.rand(8, 3).astype("float32"), np.random.rand(8, 2).astype("float32"), batch_size=4, epochs=2)
    assert torch.equal(model.layers[0].tfjs_weights(model.net.blocks[0])["kernel"], before)
    assert "Non-trainable params: 16" in "\n".join(model.summary_lines())


@pytest.mark.parametrize("rate", [0.1, 0.25, 0.5, 0.9])
def test_dropout_keeps_one_minus_rate_scaled_like_tfjs(rate):
    module = layers.dropout(rate=rate).build_module((1000,))
    module.train()
    torch.manual_seed(0)
    x = torch.ones(400, 1000, requires_grad=True)
    out = module(x)
    kept = out != 0
    assert kept.float().mean().item() == pytest.approx(1 - rate, abs=0.005)
    assert torch.allclose(out[kept], torch.full_like(out[kept], 1 / (1 - rate)))
    out.sum().backward()  # the gradient flows through the kept units only, scaled the same way
    assert torch.equal(x.grad, out.detach())
    torch.manual_seed(0)
    assert torch.equal(module(torch.ones(400, 1000)), out.detach())  # seeded runs repeat
    module.eval()
    assert module(x) is x  # predict/evaluate: identity, as in TF.js


def test_dropout_mask_is_fresh_each_call_and_shaped_like_the_input():
    module = layers.dropout(rate=0.5).build_module((3, 5, 7))
    x = torch.ones(2, 3, 5, 7)
    a, b = module(x), module(x)
    assert a.shape == x.shape and not torch.equal(a, b)
    assert module(torch.ones(2, 3, 5, 7, dtype=torch.bfloat16)).dtype == torch.bfloat16


@pytest.mark.parametrize("options", [dict(kernel_size=3), dict(kernel_size=3, padding="same"),
                                     dict(kernel_size=[2, 4], strides=2), dict(kernel_size=3, dilation_rate=2),
                                     dict(kernel_size=3, padding="same", strides=2)])
@pytest.mark.parametrize("in_channels", [1, 3])
def test_relu_conv_in_inference_gives_the_training_forward_numbers(options, in_channels, monkeypatch):
    # Inference runs conv + relu as one oneDNN call; it must not change a single value.
    if conv_layers._FUSED_CONV is None:
        pytest.skip("this PyTorch build has no oneDNN fused convolution: inference uses conv then relu")
    calls = []
    fused = conv_layers._FUSED_CONV
    monkeypatch.setattr(conv_layers, "_FUSED_CONV", lambda *args: calls.append(1) or fused(*args))
    torch.manual_seed(0)
    layer = layers.conv2d(filters=8, activation="relu", input_shape=[13, 12, in_channels], **options)
    block = layer.build_module((13, 12, in_channels))
    x = torch.randn(5, 13, 12, in_channels).permute(0, 3, 1, 2)  # NHWC memory, as the model passes it
    with torch.no_grad():
        fast = block(x)
    with torch.enable_grad():
        reference = block(x.clone().requires_grad_())
    assert fast.shape == reference.shape
    assert torch.equal(fast, reference.detach())
    assert fast.min() >= 0 and (fast == 0).any()
    assert calls == [1]  # the fused call ran for the no-grad pass only


def test_relu_conv_under_bfloat16_autocast_keeps_the_autocast_path():
    layer = layers.conv2d(filters=4, kernel_size=3, activation="relu", input_shape=[8, 8, 2])
    block = layer.build_module((8, 8, 2))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = block(torch.randn(2, 8, 8, 2).permute(0, 3, 1, 2))
    assert out.dtype == torch.bfloat16
