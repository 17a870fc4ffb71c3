"""``predict`` for small batches: the one-pass path gives what the sliced path gives, owns its output, switches
only what computes differently in training, and refuses bad input with the same messages."""

import inspect

import numpy as np
import pytest
import torch

import sightsound
from sightsound import presets
from sightsound.engine import layers
from sightsound.engine import layers as layers_pkg
from sightsound.engine.sequential import Sequential
from sightsound.engine.trainer import reads_training_mode
from sightsound.errors import ShapeError


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 28, 28, 1), dtype=np.float32)


def _two_way_model():
    """A functional model with two inputs (an image and a vector) and two outputs."""
    image, extra = sightsound.input(shape=[28, 28, 1]), sightsound.input(shape=[3])
    features = layers.flatten().apply(layers.max_pooling2d(pool_size=2).apply(
        layers.conv2d(filters=4, kernel_size=3, activation="relu").apply(image)))
    joined = layers.concatenate().apply([layers.dense(units=5, activation="relu").apply(features), extra])
    return sightsound.model(inputs=[image, extra], outputs=[layers.dense(units=10, activation="softmax").apply(joined),
                                                          layers.dense(units=2).apply(joined)], device="cpu")


@pytest.mark.parametrize("n", [1, 3])
def test_one_pass_gives_exactly_what_the_sliced_path_gives_for_a_sequential_model(n):
    model = presets.build("mnist-conv", device="cpu")
    x = _images(n)
    one_pass = model.predict(x)
    # The same batch twice, in slices of n: the sliced path, each forward pass on exactly this batch.
    sliced = model.predict(np.concatenate([x, x]), batch_size=n)
    assert one_pass.dtype == np.float32 and one_pass.shape == (n, 10)
    assert np.array_equal(sliced, np.concatenate([one_pass, one_pass]))


@pytest.mark.parametrize("n", [1, 4])
def test_one_pass_gives_exactly_what_the_sliced_path_gives_for_a_functional_model(n):
    model = _two_way_model()
    x, v = _images(n, seed=1), np.random.default_rng(2).random((n, 3), dtype=np.float32)
    probabilities, values = model.predict([x, v])
    sliced = model.predict([np.concatenate([x, x]), np.concatenate([v, v])], batch_size=n)
    assert np.array_equal(sliced[0], np.concatenate([probabilities, probabilities]))
    assert np.array_equal(sliced[1], np.concatenate([values, values]))


def test_predict_returns_arrays_of_its_own_even_when_the_output_is_a_view_of_the_input():
    flatten_only = Sequential([layers.flatten(input_shape=[2, 2])], device="cpu")
    x = np.arange(8, dtype=np.float32).reshape(2, 2, 2)
    out = flatten_only.predict(x)
    assert out.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert not np.shares_memory(out, x) and out.flags.c_contiguous
    features = sightsound.input(shape=[3])
    passthrough = sightsound.model(inputs=features, outputs=[features, layers.dense(units=2).apply(features)],
                                   device="cpu")
    v = np.ones((2, 3), dtype=np.float32)
    same, _ = passthrough.predict(v)
    assert np.array_equal(same, v) and not np.shares_memory(same, v)


def test_predict_turns_dropout_off_and_leaves_every_mode_as_it_found_it():
    model = Sequential([layers.dense(units=32, input_shape=[4]), layers.dropout(rate=0.5),
                        layers.batch_normalization(), layers.dense(units=3, activation="softmax")], device="cpu")
    model.build()
    x = np.random.default_rng(3).random((1, 4), dtype=np.float32)
    for training in (True, False):
        model.net.train(training)
        before = {name: m.training for name, m in model.net.named_modules()}
        first, second = model.predict(x), model.predict(x)
        assert np.array_equal(first, second)  # no dropout, running statistics: the same numbers every call
        assert {name: m.training for name, m in model.net.named_modules()} == before


def test_only_the_engines_modules_that_read_the_training_mode_are_switched():
    model = Sequential([layers.conv2d(filters=4, kernel_size=3, input_shape=[8, 8, 1]), layers.batch_normalization(),
                        layers.flatten(), layers.dropout(rate=0.25), layers.dense(units=2)], device="cpu").build()
    switched = {type(m).__name__ for m in model.net.modules() if reads_training_mode(m)}
    assert switched == {"_BatchNorm", "_Dropout"}
    assert not any(reads_training_mode(m) for m in presets.build("mnist-conv", device="cpu").build().net.modules())
    assert reads_training_mode(torch.nn.Dropout())  # a module from elsewhere is assumed to depend on the mode


def test_every_engine_module_that_reads_the_training_mode_says_so():
    readers = []
    for module in vars(layers_pkg).values():
        if inspect.ismodule(module) and module.__name__.startswith("sightsound.engine.layers."):
            for cls in vars(module).values():
                if inspect.isclass(cls) and issubclass(cls, torch.nn.Module) and cls.__module__ == module.__name__ \
                        and "self.training" in inspect.getsource(cls):
                    readers.append(cls)
    assert readers and all(getattr(cls, "reads_training_mode", False) for cls in readers)


@pytest.mark.parametrize("x, message", [
    (np.zeros((28, 28, 1), dtype=np.float32), "single example"),
    (np.zeros((1, 28, 28), dtype=np.float32), r"expected shape \[N,28,28,1\], got \[1, 28, 28\]"),
    (np.zeros((1, 28, 28, 1), dtype=np.complex64), "expected numbers, got dtype torch.complex64"),
    (np.full((1, 28, 28, 1), np.inf, dtype=np.float32), "NaN or infinite"),
    (np.full((1, 28, 28, 1), np.nan), "NaN or infinite"),
    (torch.full((1, 28, 28, 1), float("nan"), requires_grad=True), "NaN or infinite"),
])
def test_bad_single_images_get_the_same_errors(x, message):
    with pytest.raises(ShapeError, match=message):
        presets.build("mnist-conv", device="cpu").predict(x)


def test_huge_finite_images_are_not_called_infinite():
    """Values whose sum overflows float32 are still finite: the check must not refuse them (one NaN among
    them must still be refused)."""
    model = presets.build("mnist-conv", device="cpu")
    huge = np.full((2, 28, 28, 1), 3e38, dtype=np.float32)
    assert model.predict(huge).shape == (2, 10)
    huge[1, 5, 5, 0] = np.nan
    with pytest.raises(ShapeError, match="NaN or infinite"):
        model.predict(huge)


def test_integer_and_float64_images_predict_like_float32_ones():
    model = presets.build("mnist-conv", device="cpu")
    pixels = np.random.default_rng(4).integers(0, 256, (2, 28, 28, 1))
    reference = model.predict(pixels.astype(np.float32))
    for x in (pixels.astype(np.uint8), pixels, pixels.astype(np.float64), torch.as_tensor(pixels, dtype=torch.int32)):
        assert np.array_equal(model.predict(x), reference)
    assert model.predict(np.zeros((0, 28, 28, 1), dtype=np.float32)).shape == (0, 10)


def test_float32_models_compute_in_float32_inside_an_autocast_region():
    """The float32 policy turns off an autocast the caller has on (bfloat16 would change the outputs); with none
    on, it enters no context at all."""
    for model in (presets.build("mnist-conv", device="cpu"), _two_way_model()):
        x = [_images(2), np.ones((2, 3), dtype=np.float32)] if len(model.inputs) > 1 else _images(2)
        plain = model.predict(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            inside = model.predict(x)
        for expected, got in zip(*(out if isinstance(out, list) else [out] for out in (plain, inside))):
            assert got.dtype == np.float32 and np.array_equal(got, expected)
