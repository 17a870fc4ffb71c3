import functools
import json
import math
import os
import subprocess

import numpy as np
import pytest
import torch

import sightsound
from sightsound import presets
from sightsound.engine import layers, optimizers
from sightsound.engine.sequential import Sequential
from sightsound.errors import ShapeError, TrainingError

# What TF.js 4.22 prints for Listing 4.1 built first in a fresh process (Node, @tensorflow/tfjs).
TFJS_SUMMARY_41 = """\
__________________________________________________________________________________________
Layer (type)                Input Shape               Output shape              Param #   
==========================================================================================
conv2d_Conv2D1 (Conv2D)     [[null,28,28,1]]          [null,26,26,16]           160       
__________________________________________________________________________________________
max_pooling2d_MaxPooling2D1 [[null,26,26,16]]         [null,13,13,16]           0         
__________________________________________________________________________________________
conv2d_Conv2D2 (Conv2D)     [[null,13,13,16]]         [null,11,11,32]           4640      
__________________________________________________________________________________________
max_pooling2d_MaxPooling2D2 [[null,11,11,32]]         [null,5,5,32]             0         
__________________________________________________________________________________________
flatten_Flatten1 (Flatten)  [[null,5,5,32]]           [null,800]                0         
__________________________________________________________________________________________
dense_Dense1 (Dense)        [[null,800]]              [null,64]                 51264     
__________________________________________________________________________________________
dense_Dense2 (Dense)        [[null,64]]               [null,10]                 650       
==========================================================================================
Total params: 56714
Trainable params: 56714
Non-trainable params: 0
__________________________________________________________________________________________"""


@pytest.mark.parametrize("name,params,output", [("mnist-conv", 56714, (10,)), ("mnist-dense", 33400, (10,)),
                                                ("mnist-enhanced", 594922, (10,)),
                                                ("speech-conv", 1468684, (20,))])
def test_preset_parameter_counts_and_shapes(name, params, output):
    model = presets.build(name, device="cpu")
    assert model.count_params() == params
    assert model.output_shape == output
    assert sum(p.numel() for p in model.build().net.parameters()) == params


def test_speech_preset_shapes_follow_listing_48():
    model = presets.build("speech-conv", device="cpu")
    assert model.input_shape == (43, 232, 1)
    assert [out for _, out in model.shapes][:9] == [(42, 225, 8), (21, 112, 8), (20, 109, 32), (10, 54, 32),
                                                     (9, 51, 32), (4, 25, 32), (3, 22, 32), (2, 11, 32), (704,)]


def test_summary_matches_tfjs_text():
    # rename the layers as a fresh TF.js process would number them
    model = presets.build("mnist-conv", device="cpu")
    names = ["conv2d_Conv2D1", "max_pooling2d_MaxPooling2D1", "conv2d_Conv2D2", "max_pooling2d_MaxPooling2D2",
             "flatten_Flatten1", "dense_Dense1", "dense_Dense2"]
    for layer, name in zip(model.layers, names):
        layer.name = name
    lines = []
    model.summary(print_fn=lines.append)
    assert "\n".join(lines) == TFJS_SUMMARY_41


def _tiny_model(**compile_args):
    model = Sequential([layers.dense(units=3, activation="softmax", input_shape=[4])], device="cpu")
    model.compile(**{"optimizer": "sgd", "loss": "categoricalCrossentropy", "metrics": ["accuracy"],
                     **compile_args})
    return model


def test_validation_split_takes_the_last_fraction_before_shuffling():
    model = _tiny_model()
    x = np.zeros((100, 4), dtype="float32")
    x[85:] = 1000.0  # the last 15 % are extreme: only validation sees them
    y = np.eye(3, dtype="float32")[np.zeros(100, dtype=int)]
    seen = []

    class Spy(sightsound.engine.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            seen.append(logs["size"])

    model.fit(x, y, batch_size=10, epochs=1, validation_split=0.15, callbacks=[Spy()])
    assert sum(seen) == 85  # floor(100 * 0.85) training examples
    assert seen == [10] * 8 + [5]


def test_callbacks_order_and_logs():
    model = _tiny_model()
    x, y = np.random.rand(20, 4).astype("float32"), np.eye(3, dtype="float32")[np.random.randint(0, 3, 20)]
    events = []
    model.fit(x, y, batch_size=10, epochs=2, validation_split=0.5, callbacks={
        "on_train_begin": lambda logs: events.append("train_begin"),
        "onEpochBegin": lambda e, logs: events.append(f"epoch_begin{e}"),
        "on_batch_end": lambda b, logs: events.append(f"batch{b}:{sorted(logs)}"),
        "on_epoch_end": lambda e, logs: events.append(f"epoch_end{e}:{sorted(logs)}"),
        "on_train_end": lambda logs: events.append("train_end")})
    assert events == ["train_begin", "epoch_begin0", "batch0:['acc', 'batch', 'loss', 'size']",
                      "epoch_end0:['acc', 'loss', 'val_acc', 'val_loss']", "epoch_begin1",
                      "batch0:['acc', 'batch', 'loss', 'size']",
                      "epoch_end1:['acc', 'loss', 'val_acc', 'val_loss']", "train_end"]


def test_history_records_epochs_and_batches():
    model = _tiny_model()
    x, y = np.random.rand(30, 4).astype("float32"), np.eye(3, dtype="float32")[np.random.randint(0, 3, 30)]
    history = model.fit(x, y, batch_size=10, epochs=3)
    assert len(history.history["loss"]) == 3 and history.epoch == [0, 1, 2]
    data = history.to_json()
    assert [e["epoch"] for e in data["epochs"]] == [1, 2, 3]
    assert [b["batch"] for b in data["batches"]] == list(range(1, 10))


def test_stop_training_from_a_callback():
    model = _tiny_model()
    x, y = np.random.rand(40, 4).astype("float32"), np.eye(3, dtype="float32")[np.random.randint(0, 3, 40)]

    def stop(batch, logs):
        model.stop_training = True

    history = model.fit(x, y, batch_size=10, epochs=5, callbacks={"on_batch_end": stop})
    assert len(history.batches) == 1 and history.epoch == [0]


def test_rmsprop_follows_tfjs_update_rule():
    torch.manual_seed(1)
    model = Sequential([layers.dense(units=2, input_shape=[3], use_bias=False)], device="cpu")
    model.compile(optimizer="rmsprop", loss="meanSquaredError")
    w = model.layers[0].tfjs_weights(model.net.blocks[0])["kernel"]
    w0 = w.detach().numpy().copy()
    x = np.random.rand(4, 3).astype("float32")
    y = np.random.rand(4, 2).astype("float32")
    model.fit(x, y, batch_size=4, epochs=2, shuffle=False)
    # the same two steps by hand: TF.js puts epsilon inside the square root, decay 0.9
    weight, ms = w0.astype("float64"), np.zeros_like(w0, dtype="float64")
    for _ in range(2):
        pred = x @ weight.T
        grad = (2 / pred.size) * (pred - y).T @ x
        ms = 0.9 * ms + 0.1 * grad ** 2
        weight = weight - 0.001 * grad / np.sqrt(ms + 1e-7)
    assert np.allclose(w.detach().numpy(), weight, atol=1e-6)


def test_adam_matches_torch_adam_with_tfjs_epsilon():
    params = [torch.randn(5, requires_grad=True)]
    ref = [params[0].detach().clone().requires_grad_(True)]
    ours = optimizers.make("adam").bind(params)
    theirs = torch.optim.Adam(ref, lr=0.001, eps=1e-7)
    for _ in range(3):
        g = torch.randn(5)
        params[0].grad, ref[0].grad = g.clone(), g.clone()
        ours.step()
        theirs.step()
    assert torch.allclose(params[0], ref[0], atol=1e-7)


def test_wrong_input_and_label_shapes_name_expected_and_got():
    model = presets.build("mnist-conv", device="cpu")
    model.compile(optimizer="rmsprop", loss="categoricalCrossentropy", metrics=["accuracy"])
    with pytest.raises(ShapeError, match=r"expected shape \[N,28,28,1\], got \[5, 28, 28\]"):
        model.predict(np.zeros((5, 28, 28)))
    with pytest.raises(ShapeError, match="single example"):
        model.predict(np.zeros((28, 28, 1)))
    with pytest.raises(ShapeError, match=r"expected shape \[N,10\], got \[5\].*one-hot"):
        model.fit(np.zeros((5, 28, 28, 1)), np.zeros(5), epochs=1)
    with pytest.raises(ShapeError, match="has 5 examples but y has 4"):
        model.fit(np.zeros((5, 28, 28, 1)), np.zeros((4, 10)), epochs=1)
    with pytest.raises(ShapeError, match="NaN"):
        model.predict(np.full((1, 28, 28, 1), np.nan))
    model.compile(optimizer="rmsprop", loss="sparseCategoricalCrossentropy", metrics=["accuracy"])
    with pytest.raises(ShapeError, match=r"class ids must be in 0..9, got 0..12"):
        model.fit(np.zeros((2, 28, 28, 1)), np.array([0, 12]), epochs=1)


def test_nan_loss_stops_with_a_clear_error():
    model = Sequential([layers.dense(units=3, input_shape=[4])], device="cpu")
    model.compile(optimizer=optimizers.SGD(1e30), loss="meanSquaredError")
    x = np.random.rand(8, 4).astype("float32") * 1e10
    with pytest.raises(TrainingError, match="loss became"):
        model.fit(x, np.random.rand(8, 3).astype("float32"), batch_size=4, epochs=5)


def test_dropout_only_while_fitting():
    model = Sequential([layers.dropout(rate=0.5, input_shape=[1000])], device="cpu")
    model.compile(optimizer="sgd", loss="meanSquaredError")
    x = np.ones((2, 1000), dtype="float32")
    assert np.array_equal(model.predict(x), x)


def test_seed_makes_runs_repeat():
    def run():
        sightsound.set_seed(7)
        model = _tiny_model()
        x, y = np.random.rand(30, 4).astype("float32"), np.eye(3, dtype="float32")[np.random.randint(0, 3, 30)]
        return model.fit(x, y, batch_size=8, epochs=2).history["loss"]

    assert run() == run()


def test_learns_real_mnist_subset(real_mnist):
    """A small real run: 6,000 training images, 2 epochs, must pass 90 % on 2,000 test images."""
    from sightsound.data import mnist

    sightsound.set_seed(0)
    model = presets.build("mnist-conv", device="cpu")
    model.compile(optimizer="rmsprop", loss="categoricalCrossentropy", metrics=["accuracy"])
    x, y = mnist.to_float_images(real_mnist.train_images[:6000]), mnist.one_hot(real_mnist.train_labels[:6000])
    model.fit(x, y, batch_size=64, epochs=2, validation_split=0.15)
    loss, acc = model.evaluate(mnist.to_float_images(real_mnist.test_images[:2000]),
                               mnist.one_hot(real_mnist.test_labels[:2000]))
    assert acc >= 0.90, acc
    assert math.isfinite(loss) and loss < 0.4


# -- mixed precision ---------------------------------------------------------------------------

def _image_block_dtypes(model):
    """The dtypes of the image-shaped outputs of the model's blocks: its convolutions, its poolings and what the
    engine runs after a pooling (a convolution's bias and relu)."""
    seen = []
    for block in model.net.blocks:
        block.register_forward_hook(lambda m, args, out: seen.append(out.dtype) if out.dim() == 4 else None)
    assert seen == [] and any(isinstance(getattr(m, "conv", None), torch.nn.Conv2d) for m in model.net.modules())
    return seen


def test_mixed_bfloat16_runs_layers_in_bfloat16_with_float32_weights(tmp_path):
    from sightsound.engine.trainer import bfloat16_is_fast

    rng = np.random.default_rng(0)
    x = rng.random((256, 28, 28, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[(x[:, :14].mean(axis=(1, 2, 3)) * 10).astype(int) % 10]
    torch.manual_seed(0)
    reference = presets.build("mnist-conv", device="cpu")
    mixed = presets.build("mnist-conv", device="cpu").build()
    mixed.net.load_state_dict(reference.build().net.state_dict())
    reference.compile("adam", "categoricalCrossentropy", ["accuracy"])
    if not bfloat16_is_fast(torch.device("cpu")):
        with pytest.warns(RuntimeWarning, match="no fast bfloat16 kernels"):
            mixed.compile("adam", "categoricalCrossentropy", ["accuracy"], dtype_policy="mixed_bfloat16")
    else:
        mixed.compile("adam", "categoricalCrossentropy", ["accuracy"], dtype_policy="mixed_bfloat16")
    dtypes = _image_block_dtypes(mixed)
    p_ref, p_mixed = reference.predict(x[:32]), mixed.predict(x[:32])
    assert p_mixed.dtype == np.float32 and set(dtypes) == {torch.bfloat16}
    assert np.abs(p_ref - p_mixed).max() < 0.05  # bfloat16 keeps about 3 significant digits
    assert not np.array_equal(p_ref, p_mixed)
    history = mixed.fit(x, y, batch_size=64, epochs=3)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert all(p.dtype == torch.float32 for p in mixed.net.parameters())
    mixed.save(str(tmp_path))
    restored = sightsound.load_layers_model(str(tmp_path), device="cpu")
    assert restored.dtype_policy == "float32"  # a saved model is plain float32 TF.js weights
    mixed.set_dtype_policy("float32")
    np.testing.assert_allclose(restored.predict(x[:8]), mixed.predict(x[:8]), atol=1e-6)


def test_unknown_dtype_policy_is_refused():
    model = presets.build("mnist-dense", device="cpu")
    with pytest.raises(ValueError, match="unknown dtype policy 'float16'"):
        model.compile("sgd", "categoricalCrossentropy", dtype_policy="float16")


def test_predict_and_evaluate_in_a_callback_keep_training_mode_for_later_batches():
    model = Sequential([layers.dense(units=8, input_shape=[4]), layers.dropout(rate=0.5),
                        layers.dense(units=3, activation="softmax")], device="cpu")
    model.compile(optimizer="sgd", loss="categoricalCrossentropy", metrics=["accuracy"])
    x, y = np.random.rand(40, 4).astype("float32"), np.eye(3, dtype="float32")[np.random.randint(0, 3, 40)]
    modes = []

    class PredictsAfterEachBatch(sightsound.engine.callbacks.Callback):
        def on_batch_begin(self, batch, logs=None):
            modes.append(model.net.training)

        def on_batch_end(self, batch, logs=None):
            model.predict(x[:2])
            model.evaluate(x[:4], y[:4])

    model.fit(x, y, batch_size=10, epochs=2, validation_split=0.25, callbacks=[PredictsAfterEachBatch()])
    assert modes == [True] * 6  # dropout stays on for every training batch
    assert np.array_equal(model.predict(x[:3]), model.predict(x[:3]))  # and predict has dropout off


@pytest.mark.parametrize("n", [7, 10, 90, 100, 170, 180, 999, 60000])
@pytest.mark.parametrize("split", [0.1, 0.15, 0.2, 0.3, 1 / 3, 0.7])
def test_validation_split_trains_on_tfjs_count(n, split):
    from sightsound.engine.trainer import training_count

    expected = _tfjs_training_counts()[f"{n}:{split!r}"]
    assert training_count(n, split) == expected
    model = _tiny_model()
    x, y = np.zeros((n, 4), dtype="float32"), np.eye(3, dtype="float32")[np.zeros(n, dtype=int)]
    sizes = []
    model.fit(x, y, batch_size=max(n, 1), epochs=1, validation_split=split,
              callbacks={"on_batch_end": lambda batch, logs: sizes.append(logs["size"])})
    assert sizes == [expected]


@functools.lru_cache(maxsize=1)
def _tfjs_training_counts() -> dict:
    """``Math.floor(n * (1 - validationSplit))`` (tfjs-layers' fit) computed by Node for the test grid."""
    script = ("const out = {}; for (const n of [7, 10, 90, 100, 170, 180, 999, 60000]) "
              "for (const s of [0.1, 0.15, 0.2, 0.3, 1 / 3, 0.7]) out[`${n}:${s}`] = Math.floor(n * (1 - s)); "
              "console.log(JSON.stringify(out))")
    counts = json.loads(subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True).stdout)
    # JS prints 1/3 as 0.3333333333333333, which is also Python's repr
    return counts


def test_predict_and_evaluate_honour_a_small_batch_size(monkeypatch):
    model = _tiny_model()
    x, y = np.random.rand(10, 4).astype("float32"), np.eye(3, dtype="float32")[np.random.randint(0, 3, 10)]
    batches = []
    forward = model.net.forward
    monkeypatch.setattr(model.net, "forward", lambda inputs, **kw: batches.append(len(inputs)) or forward(inputs, **kw))
    model.predict(x, batch_size=4)
    assert batches == [4, 4, 2]
    batches.clear()
    model.evaluate(x, y, batch_size=3)
    assert batches == [3, 3, 3, 1]
    batches.clear()
    model.predict(x)  # no batch size: the engine's choice, one pass here
    assert batches == [10]
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        model.predict(x, batch_size=0)


def test_set_seed_leaves_the_environment_alone(monkeypatch):
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    sightsound.set_seed(3)
    assert "PYTHONHASHSEED" not in os.environ


def test_fit_evaluate_predict_and_compile_take_the_chapters_config_dicts():
    # Listing 4.2's call style: model.fit(xs, ys, {epochs, validationSplit, batchSize, callbacks})
    model = Sequential([layers.dense(units=3, activation="softmax", inputShape=[4])], device="cpu")
    model.compile({"optimizer": "sgd", "loss": "categoricalCrossentropy", "metrics": ["accuracy"]})
    x, y = np.random.rand(20, 4).astype("float32"), np.eye(3, dtype="float32")[np.random.randint(0, 3, 20)]
    epochs = []
    history = model.fit(x, y, {"epochs": 3, "validationSplit": 0.25, "batchSize": 5,
                               "callbacks": {"onEpochEnd": lambda epoch, logs: epochs.append(epoch)}})
    assert epochs == [0, 1, 2] and len(history.batches) == 9 and "val_acc" in history.history
    assert len(model.fit(x, y, batchSize=10, epochs=1).batches) == 2
    loss, acc = model.evaluate(x, y, {"batchSize": 4})
    assert (loss, acc) == pytest.approx(model.evaluate(x, y, batch_size=20))
    assert model.predict(x, {"batchSize": 3}).shape == (20, 3)
    with pytest.raises(TypeError, match=r"fit\(\) got unknown option 'yieldEvry'; accepted: batch_size \(batchSize\)"):
        model.fit(x, y, {"epochs": 1, "yieldEvry": "never"})
    with pytest.raises(TypeError, match="given both in the config dict and as keyword"):
        model.fit(x, y, {"batchSize": 4}, batch_size=5)
