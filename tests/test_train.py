"""The MNIST training job: files it writes, checkpoints, resume, Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import sightsound
from sightsound.cli import main
from sightsound.training.mnist import train_mnist

SMALL = {"train_limit": 2000, "test_limit": 500, "batch_size": 100, "device": "cpu"}


def test_cli_train_writes_model_history_and_plots(tmp_path, real_mnist, capsys):
    out = tmp_path / "run"
    code = main(["mnist", "train", "--model", "dense", "--epochs", "2", "--out", str(out), "--seed", "1",
                 "--device", "cpu"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Total params: 33400" in printed
    assert "Evaluation result:\n  Loss = " in printed and "; Accuracy = 0.9" in printed
    history = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    assert set(history["epochs"][0]) >= {"loss", "acc", "val_loss", "val_acc"}
    assert len(history["batches"]) == 2 * 160  # 51,000 training images / 320 per batch, rounded up
    for name in ("curves.png", "test-results.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = sightsound.load_layers_model(str(out), device="cpu")
    assert model.count_params() == 33400
    assert main(["mnist", "evaluate", str(out), "--device", "cpu"]) == 0
    assert f"Accuracy = {history['test']['acc']:.3f}" in capsys.readouterr().out


def test_resume_equals_uninterrupted_run(tmp_path, real_mnist):
    full = train_mnist("enhanced", data=real_mnist, epochs=2, seed=3, out_dir=tmp_path / "full", **SMALL)
    first = train_mnist("enhanced", data=real_mnist, epochs=1, seed=3, out_dir=tmp_path / "split", **SMALL)
    assert first.history["epochs"][0]["loss"] == full.history["epochs"][0]["loss"]
    resumed = train_mnist(data=real_mnist, epochs=2, resume=tmp_path / "split", device="cpu")
    assert [e["epoch"] for e in resumed.history["epochs"]] == [1, 2]
    assert len(resumed.history["batches"]) == len(full.history["batches"])
    for a, b in zip(full.model.net.parameters(), resumed.model.net.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    assert resumed.test_accuracy == pytest.approx(full.test_accuracy, abs=1e-6)


def test_resume_of_a_plain_model_is_refused(tmp_path):
    model = sightsound.presets.build("mnist-dense", device="cpu")
    model.save(str(tmp_path))
    with pytest.raises(sightsound.SightsoundError, match="not a sightsound training checkpoint"):
        train_mnist(resume=tmp_path, device="cpu")
    with pytest.raises(sightsound.SightsoundError, match="no checkpoint to resume"):
        train_mnist(resume=tmp_path / "nothing", device="cpu")


def _interruptible():
    """Give the child the default SIGINT disposition: started from a background job (``cmd &`` in a
    script, as CI may run), it would inherit an ignored SIGINT, and Python then never raises
    KeyboardInterrupt, as with ``nohup``."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_keeps_the_last_complete_epoch(tmp_path, real_mnist):
    out = tmp_path / "run"
    log = tmp_path / "stderr.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "sightsound", "mnist", "train", "--model", "conv",
                                 "--epochs", "50", "--batch-size", "256", "--out", str(out), "--device", "cpu"],
                                stdout=subprocess.PIPE, stderr=stderr, text=True,
                                env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"},
                                preexec_fn=_interruptible)
    checkpoint = out / "checkpoint" / "model.json"
    deadline = time.time() + 240
    while not checkpoint.exists() and time.time() < deadline:
        time.sleep(0.5)
    assert checkpoint.exists(), "no checkpoint after the first epoch"
    proc.send_signal(signal.SIGINT)
    try:
        stdout, _ = proc.communicate(timeout=180)  # generous: the CI machine may be busy
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack to the log
        proc.communicate(timeout=30)
        raise AssertionError("training did not stop after Ctrl-C; its stacks:\n" + log.read_text()[-4000:])
    assert proc.returncode == 130
    assert "sightsound mnist train --resume" in stdout
    model = sightsound.load_layers_model(str(out / "checkpoint"), device="cpu")
    state = model.user_defined_metadata["sightsound_checkpoint"]
    assert state["epochs_done"] >= 1 and len(state["history"]["epochs"]) == state["epochs_done"]
    assert model.optimizer is not None


def test_fast_recipe_beats_the_chapter_recipe_on_the_same_budget(tmp_path, real_mnist):
    budget = {"train_limit": 6000, "test_limit": 2000, "epochs": 2, "device": "cpu", "seed": 5}
    chapter = train_mnist("conv", data=real_mnist, **budget)
    fast = train_mnist("conv", data=real_mnist, recipe="fast", out_dir=tmp_path / "fast", **budget)
    assert fast.model.optimizer.get_config()["learningRate"] == pytest.approx(1e-5)  # annealed to peak/1000
    assert len(fast.history["batches"]) == 2 * 24  # all 6,000 images (no validation split), batch 256
    assert "val_acc" not in fast.history["epochs"][0]
    assert fast.test_accuracy > chapter.test_accuracy + 0.01, (fast.test_accuracy, chapter.test_accuracy)
    settings = json.loads((tmp_path / "fast" / "checkpoint" / "model.json").read_text())
    stored = settings["userDefinedMetadata"]["sightsound_checkpoint"]["settings"]
    assert stored["recipe"] == "fast" and stored["label_smoothing"] == 0.1
    assert stored["schedule"] == {"class_name": "OneCycle", "warmup": 0.2, "peak": 0.01}


def test_fast_recipe_resumes_on_its_schedule(tmp_path, real_mnist):
    small = {"train_limit": 1500, "test_limit": 300, "device": "cpu", "recipe": "fast"}
    full = train_mnist("conv", data=real_mnist, epochs=2, seed=4, out_dir=tmp_path / "full", **small)
    split = tmp_path / "split"
    train_mnist("conv", data=real_mnist, epochs=2, seed=4, out_dir=split, callbacks=[StopAfterFirstEpoch()],
                **small)
    resumed = train_mnist(data=real_mnist, resume=split, device="cpu")
    for a, b in zip(full.model.net.parameters(), resumed.model.net.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_fast_recipe_exists_for_listing_4_1_only(real_mnist, capsys):
    with pytest.raises(ValueError, match="defined for mnist-conv, not mnist-dense"):
        train_mnist("dense", data=real_mnist, recipe="fast")
    assert main(["mnist", "train", "--model", "enhanced", "--recipe", "fast"]) == 2
    assert "--recipe fast" in capsys.readouterr().err


class StopAfterFirstEpoch(sightsound.engine.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.model.stop_training = True


def test_the_schedule_counts_the_examples_that_fit_trains(real_mnist):
    # 90 images with a 0.3 split: fit trains on floor(90 * 0.7) = 62 an epoch, and the one-cycle
    # schedule must give each of the 2 x 62 steps its own learning rate, ending annealed to peak / 1000.
    rates = []

    class Rates(sightsound.engine.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            rates.append(self.model.optimizer.learning_rate)

    result = train_mnist("conv", data=real_mnist, recipe="fast", validation_split=0.3, train_limit=90,
                         test_limit=100, batch_size=1, epochs=2, device="cpu", seed=1, callbacks=[Rates()])
    assert len(result.history["batches"]) == 124
    assert len(set(rates)) == 124, "a step of the schedule was used twice or skipped"
    assert rates[-1] == pytest.approx(1e-5)


def test_a_job_takes_one_settings_object(real_mnist):
    from sightsound.training.mnist import MnistSettings

    settings = MnistSettings.of("dense", epochs=1, batch_size=50, train_limit=200, test_limit=100)
    assert (settings.preset, settings.optimizer, settings.validation_split) == ("mnist-dense", "rmsprop", 0.15)
    result = train_mnist(settings, data=real_mnist, device="cpu", seed=2)
    assert result.preset == "mnist-dense" and len(result.history["batches"]) == 4  # 170 of 200 images train
    with pytest.raises(ValueError, match="takes no separate settings; got epochs"):
        train_mnist(settings, data=real_mnist, epochs=2)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        MnistSettings.of("conv", batch_size=0)


def test_fast_99_5_recipe_trains_the_batch_normalised_model_on_shifted_images(tmp_path, real_mnist):
    from sightsound.training.mnist import MnistSettings

    settings = MnistSettings.of("conv", "fast-99.5")
    assert (settings.preset, settings.augmentation, settings.validation_split) == ("mnist-bn", {"shift": 2}, 0.0)
    seen = []

    class Inputs(sightsound.engine.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(epoch)

    small = {"train_limit": 600, "test_limit": 200, "batch_size": 100, "device": "cpu", "recipe": "fast-99.5"}
    result = train_mnist("conv", data=real_mnist, epochs=2, seed=3, out_dir=tmp_path / "run", callbacks=[Inputs()],
                         **small)
    assert result.preset == "mnist-bn" and result.model.count_params() == 225_834
    assert seen == [0, 1]
    assert [e["epoch"] for e in result.history["epochs"]] == [1, 2]
    assert [b["batch"] for b in result.history["batches"]] == list(range(1, 13))  # one fit per epoch, one history
    assert result.model.optimizer.get_config()["learningRate"] == pytest.approx(1e-5)  # the schedule spans both
    saved = json.loads((tmp_path / "run" / "checkpoint" / "model.json").read_text())
    assert saved["userDefinedMetadata"]["sightsound_checkpoint"]["settings"]["augmentation"] == {"shift": 2}
    resumed = train_mnist(data=real_mnist, resume=tmp_path / "run", epochs=3, device="cpu")
    assert [e["epoch"] for e in resumed.history["epochs"]] == [1, 2, 3]


def test_fast_99_recipe_trains_the_strided_model_for_two_epochs(real_mnist):
    from sightsound.training.mnist import MnistSettings

    settings = MnistSettings.of("conv", "fast-99")
    assert (settings.preset, settings.epochs, settings.batch_size, settings.validation_split) == \
        ("mnist-strided", 2, 192, 0.0)
    result = train_mnist("conv", recipe="fast-99", data=real_mnist, train_limit=3000, test_limit=1000, seed=0,
                         device="cpu")
    assert result.preset == "mnist-strided" and result.model.count_params() == 109_018
    assert [e["epoch"] for e in result.history["epochs"]] == [1, 2]
    assert result.test_accuracy >= 0.9, result.test_accuracy  # 3,000 images, 32 batches


def test_a_shift_augmentation_out_of_range_is_refused():
    from sightsound.training.mnist import MnistSettings

    for bad in ({"shift": 14}, {"shift": -1}, {"shift": 1.5}, {"rotate": 10}):
        with pytest.raises(ValueError, match="augmentation must be"):
            MnistSettings.of("conv", "fast-99.5", augmentation=bad)
