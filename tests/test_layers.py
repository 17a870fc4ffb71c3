import json
import math

import numpy as np
import pytest
import torch

import sightsound
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
    (lambda: layers.dense(units=2, kernel_initializer={"class_name": "VarianceScaling", "config": {"scale": 1e300}}),
     "too large for float32"),  # its uniform or normal draw would overflow
])
def test_bad_layer_options_name_the_problem(build, message):
    with pytest.raises(ModelFormatError, match=message):
        build()


def test_a_true_in_an_input_shape_is_not_a_size():
    with pytest.raises(ShapeError, match="input_shape must be positive ints"):
        layers.dense(units=2, input_shape=[4, True])


def test_kernel_larger_than_input_is_a_shape_error():
    with pytest.raises(ShapeError, match="smaller than the kernel"):
        Sequential([layers.conv2d(filters=2, kernel_size=5, input_shape=[3, 3, 1])])


def test_bias_and_relu_moved_after_max_pooling_give_the_same_numbers_and_gradients():
    """A Sequential runs a conv2d's bias and relu after the max pooling that follows it; every output and
    gradient must equal the layers run one after another, as they are (and a tanh stays before the pool)."""
    from sightsound.engine.functional import built_module

    bias = {"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": 1.0, "seed": 3}}
    model = Sequential([
        layers.conv2d(input_shape=[12, 12, 2], filters=3, kernel_size=3, activation="relu", bias_initializer=bias),
        layers.max_pooling2d(pool_size=2),
        layers.conv2d(filters=4, kernel_size=2, padding="same", bias_initializer=bias),
        layers.max_pooling2d(pool_size=2, strides=2, padding="same"),
        layers.conv2d(filters=2, kernel_size=1, activation="tanh", bias_initializer=bias),
        layers.max_pooling2d(pool_size=[1, 2]),
        layers.flatten(), layers.dense(units=3)], device="cpu").build()
    moved = [type(block).__name__ for block in model.net.blocks]
    assert moved[1] == moved[3] == "_AfterPooling" and moved[5] != "_AfterPooling"
    x = torch.randn(5, 12, 12, 2)
    fused = model.net(x)
    fused.square().sum().backward()
    fused_grads = [p.grad.clone() for p in model.net.parameters()]
    model.net.zero_grad()
    plain = x.permute(0, 3, 1, 2)
    for layer in model.layers:
        plain = built_module(layer)(plain)
    plain.square().sum().backward()
    assert torch.equal(fused, plain)
    for fused_grad, param in zip(fused_grads, model.net.parameters()):
        assert torch.allclose(fused_grad, param.grad, rtol=1e-5, atol=1e-6)


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


# --------------------------------------------------------------------------- the convnet layers beyond the chapter's
# (their numbers against real TF.js: tests/test_layers_tfjs.py)

def _entry(class_name: str, **config) -> dict:
    return {"class_name": class_name, "config": {"name": "the_layer", "trainable": True, **config}}


@pytest.mark.parametrize("entry,field", [
    (_entry("ZeroPadding2D", padding=-1), "padding"),
    (_entry("Cropping2D", cropping=[[1, 2, 3], [0, 0]]), "cropping"),
    (_entry("UpSampling2D", interpolation="bicubic"), "interpolation"),
    (_entry("UpSampling2D", data_format="channels_first"), "data_format"),
    (_entry("DepthwiseConv2D", kernel_size=3, dilation_rate=2), "dilation_rate"),
    (_entry("DepthwiseConv2D", kernel_size=3, depth_multiplier=0), "depth_multiplier"),
    (_entry("SeparableConv2D", filters=2, kernel_size=3, pointwise_regularizer={"class_name": "L2"}),
     "pointwise_regularizer"),
    (_entry("Conv1D", filters=2, kernel_size=3, padding="causal"), "causal"),
    (_entry("Conv1D", filters=2, kernel_size=[3, 3]), "kernel_size"),
    (_entry("Conv1D", filters=2, kernel_size=3, groups=2), "groups"),
    (_entry("Conv2D", filters=2, kernel_size=3, strides=2, dilation_rate=2), "dilation_rate"),
    (_entry("MaxPooling1D", pool_size=[2, 2]), "pool_size"),
    (_entry("GlobalMaxPooling2D", keepdims="yes"), "keepdims"),
    (_entry("ReLU", negative_slope=0.1), "negative_slope"),
    (_entry("ReLU", threshold=1.0), "threshold"),
    (_entry("ReLU", max_value=-1), "max_value"),
    (_entry("LeakyReLU", alpha=0.1, negative_slope=0.2), "negative_slope"),
    (_entry("PReLU", shared_axes=[0]), "shared_axes"),
    (_entry("ELU", alpha=0.5), "alpha"),
    (_entry("Softmax", axis="last"), "axis"),
    (_entry("Permute", dims=[1, 1]), "dims"),
    (_entry("Reshape", target_shape=[-1, -1]), "target_shape"),
    (_entry("BatchNormalization", axis=[1, 2]), "axis"),
    (_entry("Concatenate", axis=-2), "axis"),
    (_entry("Concatenate", axis=0), "axis"),
    (_entry("Dot", axes=[0, 1]), "axes"),
    (_entry("Dot", axes=[1]), "axes"),
    (_entry("Dot", axes=1, normalize="yes"), "normalize"),
    ({"class_name": "InputLayer", "config": {"batch_input_shape": [None, 3], "sparse": True, "name": "the_layer"}},
     "sparse"),
])
def test_invalid_new_layer_configs_name_the_layer_and_the_field(entry, field):
    with pytest.raises(ModelFormatError, match=f"the_layer.*{field}|{entry['class_name']}.*{field}"):
        layers.from_json(entry)


def test_a_missing_required_field_and_an_unknown_class_are_named():
    with pytest.raises(ModelFormatError, match="Cropping2D config lacks the field 'cropping'"):
        layers.from_json(_entry("Cropping2D"))
    with pytest.raises(ModelFormatError, match="unknown layer class 'Subtract'; supported: .*Concatenate"):
        layers.from_json(_entry("Subtract"))  # Keras has one, TF.js 4.22 has not


@pytest.mark.parametrize("build,shape,message", [
    (lambda: layers.softmax(), [4, 3], "axis 1 is not the last axis"),  # TF.js's default axis is 1
    (lambda: layers.softmax(axis=[0, 1]), [4], "batch"),
    (lambda: layers.softmax(axis=3), [4], "out of range"),
    (lambda: layers.batch_normalization(axis=3), [4, 3], "not a feature axis"),
    (lambda: layers.cropping2d(cropping=2), [4, 5, 1], "leaves nothing"),
    (lambda: layers.prelu(shared_axes=[3]), [4, 5], "shared axis 3"),
    (lambda: layers.permute(dims=[2, 1]), [4, 5, 1], "rank 3"),
    (lambda: layers.conv1d(filters=2, kernel_size=3), [4, 5, 1], r"\[null,steps,channels\]"),
    (lambda: layers.add(), [4], "merges a list of inputs"),  # merge layers are for functional models
])
def test_shape_problems_are_shape_errors_at_add(build, shape, message):
    with pytest.raises(ShapeError, match=message):
        Sequential([layers.activation(activation="linear", input_shape=shape), build()])


@pytest.mark.parametrize("build,shapes,message", [
    (layers.add, [(4, 3), (4, 2)], "do not broadcast"),
    (layers.maximum, [(4, 3)], "at least 2 inputs"),
    (layers.concatenate, [(4, 3), (5, 2)], "must match but along axis -1"),
    (lambda: layers.concatenate(axis=1), [(4, 3), (4,)], "must match"),
    (lambda: layers.dot(axes=1), [(4, 3), (5, 3)], "do not match"),
    (lambda: layers.dot(axes=-1), [(4, 3, 2), (2,)], "exactly 2 inputs of shapes"),
])
def test_merge_shape_problems(build, shapes, message):
    with pytest.raises(ShapeError, match=message):
        build().compute_output_shape(shapes)


def test_keras_spellings_load():
    """Keras 3 writes LeakyReLU's negative_slope, a DTypePolicy dtype, InputLayer's batch_shape and ragged;
    Keras 2 ReLU's zero negative_slope and threshold; Keras 2.6+ keepdims."""
    policy = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}
    leaky = layers.from_json(_entry("LeakyReLU", negative_slope=0.2, dtype=policy))
    assert leaky.config() == {"alpha": 0.2, "name": "the_layer", "trainable": True}
    relu = layers.from_json(_entry("ReLU", max_value=6.0, negative_slope=0.0, threshold=0.0))
    assert relu.config()["max_value"] == 6.0
    inp = layers.from_json({"class_name": "InputLayer", "config": {
        "batch_shape": [None, 4, 4, 2], "dtype": "float32", "sparse": False, "ragged": False, "name": "input_layer"}})
    assert inp.config() == {"batch_input_shape": [None, 4, 4, 2], "dtype": "float32", "sparse": False,
                            "name": "input_layer"}
    pool = layers.from_json(_entry("GlobalMaxPooling2D", data_format="channels_last", keepdims=True))
    assert pool.compute_output_shape((4, 4, 2)) == (1, 1, 2)
    assert pool.config() == {"data_format": "channels_last", "keepdims": True, "name": "the_layer", "trainable": True}
    assert layers.from_json(_entry("GlobalAveragePooling2D", keepdims=False)).config() == \
        {"data_format": "channels_last", "name": "the_layer", "trainable": True}  # as TF.js writes it


@pytest.mark.parametrize("build,shape,reduce", [
    (lambda: layers.global_max_pooling2d(keepdims=True), (3, 4, 2), lambda x: x.max(axis=(1, 2), keepdims=True)),
    (lambda: layers.global_average_pooling2d(keepdims=True), (3, 4, 2),
     lambda x: x.mean(axis=(1, 2), keepdims=True)),
    (lambda: layers.global_max_pooling1d(keepdims=True), (5, 2), lambda x: x.max(axis=1, keepdims=True)),
    (lambda: layers.global_average_pooling1d(keepdims=True), (5, 2), lambda x: x.mean(axis=1, keepdims=True)),
])
def test_global_pooling_keepdims(build, shape, reduce):
    model = Sequential([layers.activation(activation="linear", input_shape=list(shape)), build()], device="cpu")
    x = np.random.rand(2, *shape).astype("float32")
    assert np.allclose(model.predict(x), reduce(x), atol=1e-6)


def test_input_layer_in_a_sequential_is_the_identity_and_saved_as_tfjs_does(tmp_path):
    inp = layers.input_layer(input_shape=[3])
    assert inp.name.startswith("input") and inp.name[len("input"):].isdigit()  # TF.js: input1, input2, ...
    model = Sequential([inp, layers.dense(units=2)], device="cpu")
    assert model.summary_lines()[3].startswith(f"{inp.name} (InputLayer)")
    assert model.count_params() == 8
    model.save(tmp_path)
    saved = json.loads((tmp_path / "model.json").read_text())["modelTopology"]["config"]["layers"][0]
    assert saved == {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 3], "dtype": "float32",
                                                             "sparse": False, "name": inp.name}}
    x = np.random.rand(4, 3).astype("float32")
    assert np.allclose(sightsound.load_layers_model(tmp_path, device="cpu").predict(x), model.predict(x))


def test_reshape_unknown_dimension_is_saved_as_null():
    layer = layers.reshape(target_shape=[-1, 4], input_shape=[2, 6])
    assert layer.config()["target_shape"] == [None, 4] and layer.compute_output_shape((2, 6)) == (3, 4)
    assert layers.from_json(layer.to_json()).compute_output_shape((12,)) == (3, 4)


def test_new_layers_train_in_a_sequential():
    """Gradients reach every weight; batch norm over axis 1 of [c, h, w] tracks that axis's statistics."""
    torch.manual_seed(0)
    model = Sequential([layers.batch_normalization(axis=1, input_shape=[3, 5, 4]),
                        layers.depthwise_conv2d(kernel_size=2, depth_multiplier=2),
                        layers.separable_conv2d(filters=3, kernel_size=2, padding="same"),
                        layers.prelu(), layers.global_average_pooling2d(), layers.dense(units=2)], device="cpu")
    model.compile(optimizer="sgd", loss="meanSquaredError")
    x = np.random.rand(8, 3, 5, 4).astype("float32") * np.array([1, 5, 10], "float32")[:, None, None]
    before = [w.detach().clone() for w in model.net.parameters()]
    model.fit(x, np.random.rand(8, 2).astype("float32"), batch_size=8, epochs=1, shuffle=False)
    assert all(not torch.equal(b, w) for b, w in zip(before, model.net.parameters()))
    bn = model.layers[0].tfjs_weights(model.net.blocks[0])
    assert np.allclose(bn["moving_mean"].numpy(), 0.01 * x.mean(axis=(0, 2, 3)), atol=1e-5)
    assert np.allclose(bn["moving_variance"].numpy(), 0.99 + 0.01 * x.var(axis=(0, 2, 3)), atol=1e-4)


def test_up_sampling_nearest_repeats_pixels():
    model = Sequential([layers.up_sampling2d(size=[2, 3], input_shape=[2, 2, 1])], device="cpu")
    x = np.arange(4, dtype="float32").reshape(1, 2, 2, 1)
    assert np.array_equal(model.predict(x)[0, :, :, 0], np.repeat(np.repeat(x[0, :, :, 0], 2, 0), 3, 1))


def test_separable_conv_writes_a_depth_multiplier_only_when_not_one():
    assert "depth_multiplier" not in layers.separable_conv2d(filters=2, kernel_size=3).config()
    assert layers.separable_conv2d(filters=2, kernel_size=3, depth_multiplier=2).config()["depth_multiplier"] == 2
