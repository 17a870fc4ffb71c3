"""A read-only output folder and a full disk: a clear error, the previous files intact, no temp files left.

For ``model.save`` and for ``sightsound mnist train --out`` (``train_mnist``
with a tiny synthetic dataset). The disk is a real one: a small tmpfs mounted
for the test (``mount -t tmpfs -o size=...``, made read-only with ``mount -o
remount,ro``; needs root, as in the project's CI container), filled up to a
chosen number of free bytes. Where mounting is not possible the test says why
and simulates the failures instead, by making the model writer's file writes
raise ``ENOSPC`` / ``EROFS`` (monkeypatch).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import time
from contextlib import suppress
from pathlib import Path

import numpy as np
import pytest

from sightsound import load_layers_model, presets, tfjs
from sightsound.errors import OutputError, SightsoundError
from sightsound.tfjs import commit

TEMP_NAMES = re.compile(r"^(\..*\.tmp|weights\.[0-9a-f]{16}\.bin)$")  # what an interrupted save could leave


class Disk:
    """A folder on a small tmpfs of its own, or (when mounting fails) a plain folder with simulated failures."""

    def __init__(self, root: Path, monkeypatch, size: str = "2m"):
        self.root = root
        self.monkeypatch = monkeypatch
        root.mkdir(parents=True)
        try:
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(root)],
                                  capture_output=True, text=True)
            self.mounted, why = done.returncode == 0, (done.stderr or done.stdout).strip()
        except OSError as err:  # no mount command
            self.mounted, why = False, str(err)
        if not self.mounted:
            print(f"cannot mount a tmpfs ({why}): simulating the disk errors by monkeypatching the model "
                  f"writer's file writes instead")

    def close(self) -> None:
        if self.mounted:
            if subprocess.run(["umount", str(self.root)], capture_output=True).returncode:
                subprocess.run(["umount", "-l", str(self.root)], capture_output=True)
            self.mounted = False

    def free(self) -> int:
        stat = os.statvfs(self.root)
        return stat.f_bavail * stat.f_frsize

    def fill(self, leave: int, fail_on: str = "") -> None:
        """Leave about ``leave`` free bytes (simulated: writes of files whose name contains ``fail_on`` fail)."""
        if not self.mounted:
            self._simulate(errno.ENOSPC, fail_on)
            return
        with open(self.root / "filler", "wb") as f:
            left = self.free() - leave
            block = bytes(65536)
            with suppress(OSError):
                while left > 0:
                    left -= f.write(block[:min(left, len(block))])
                f.flush()
        assert self.free() <= leave + 8192, (self.free(), leave)

    def read_only(self) -> None:
        if not self.mounted:
            self._simulate(errno.EROFS, "")
            return
        subprocess.run(["mount", "-o", "remount,ro", str(self.root)], check=True, capture_output=True)

    def _simulate(self, code: int, fail_on: str) -> None:
        real = commit.write_synced

        def failing(path, chunks):
            if fail_on not in path.name:
                return real(path, chunks)
            if code == errno.ENOSPC:  # a part of the data lands, as on a real full disk
                with open(path, "xb") as f:
                    f.write(b"".join(chunks)[:100])
            raise OSError(code, os.strerror(code), str(path))

        self.monkeypatch.setattr(commit, "write_synced", failing)


@pytest.fixture()
def disk(tmp_path, monkeypatch):
    made = []

    def make(size: str = "2m") -> Disk:
        made.append(Disk(tmp_path / f"disk{len(made)}", monkeypatch, size))
        return made[-1]

    yield make
    for d in made:
        d.close()


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative name -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob("*") if TEMP_NAMES.match(p.name)]


def assert_output_error(error: BaseException, path: Path, problem: str) -> None:
    assert isinstance(error, OutputError) and isinstance(error, OSError)
    message = str(error)
    assert str(path) in message and problem in message, message


# --------------------------------------------------------------------------- model.save

def dense_model(seed: int):
    model = presets.build("mnist-dense", device="cpu")
    rng = np.random.default_rng(seed)
    for weight in tfjs.model_weights(model):
        weight.tensor.data.copy_(torch_tensor(rng.standard_normal(tuple(weight.tensor.shape)).astype(np.float32)))
    return model


def torch_tensor(array):
    import torch

    return torch.from_numpy(array)


def assert_is_model(folder: Path, model) -> None:
    """``folder`` holds ``model`` exactly (loadable, same predictions)."""
    x = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    loaded = load_layers_model(str(folder), device="cpu")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


@pytest.mark.parametrize("fails_at", ["weights", "model.json"])
def test_model_save_on_a_full_disk(disk, fails_at):
    d = disk()
    folder = d.root / "model"
    old, new = dense_model(1), dense_model(2)
    old.save(str(folder))
    before = snapshot(folder)
    weights = len(before["weights.bin"])
    # Room for nothing, or for the new weights but not for the new model.json that would name them.
    d.fill(leave=0 if fails_at == "weights" else weights + 4096 - weights % 4096,
           fail_on="weights" if fails_at == "weights" else "model.json")
    with pytest.raises(SightsoundError) as raised:
        new.save(str(folder))
    assert_output_error(raised.value, folder, "disk is full")
    assert raised.value.errno == errno.ENOSPC
    assert snapshot(folder) == before and not leftovers(d.root)
    assert_is_model(folder, old)


def test_model_save_into_a_read_only_folder(disk):
    d = disk()
    folder = d.root / "model"
    old = dense_model(1)
    old.save(str(folder))
    before = snapshot(folder)
    d.read_only()
    with pytest.raises(SightsoundError) as raised:
        dense_model(2).save(str(folder))
    assert_output_error(raised.value, folder, "read-only")
    assert snapshot(folder) == before and not leftovers(d.root)
    assert_is_model(folder, old)
    if d.mounted:  # a new folder cannot be made there either
        with pytest.raises(OutputError, match="cannot create the model folder .*read-only"):
            old.save(str(d.root / "new" / "model"))


# --------------------------------------------------------------------------- sightsound mnist train --out

def tiny_mnist():
    from web_helpers import synthetic_mnist

    from sightsound.data import mnist

    x_train, y_train, x_test, y_test = synthetic_mnist(400, 100, seed=0)
    return mnist.MnistData(x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64))


def train(out: Path, data, **options):
    from sightsound.training.mnist import train_mnist

    return train_mnist("dense", data=data, epochs=1, batch_size=100, train_limit=300, test_limit=100, seed=0,
                       device="cpu", out_dir=out, **options)


@pytest.fixture(scope="module")
def previous_run(tmp_path_factory):
    """A finished tiny run (model, checkpoint, history, figures) to copy into each test's disk."""
    data = tiny_mnist()
    out = tmp_path_factory.mktemp("previous") / "run"
    train(out, data)
    return out, data


def test_train_into_a_read_only_folder(disk, previous_run, capsys, tmp_path):
    source, data = previous_run
    d = disk()
    out = d.root / "run"
    shutil.copytree(source, out)
    before = snapshot(out)
    d.read_only()
    started = time.perf_counter()
    batches = []
    from sightsound.engine.callbacks import Callback

    class Count(Callback):
        def on_batch_end(self, batch, logs=None):
            batches.append(batch)

    with pytest.raises(SightsoundError) as raised:
        train(out, data, callbacks=[Count()])
    assert_output_error(raised.value, out, "read-only")
    if d.mounted:
        assert not batches, "the read-only folder should be refused before training"
    assert snapshot(out) == before and not leftovers(d.root)
    assert_is_model(out, load_layers_model(str(source), device="cpu"))
    assert time.perf_counter() - started < 60

    if d.mounted:  # the command line: one line naming the folder and the problem, exit status 2
        from sightsound.cli import main

        data_dir = tmp_path / "data"
        (data_dir / "mnist").mkdir(parents=True)
        np.savez(data_dir / "mnist" / "mnist.npz", x_train=data.train_images, y_train=data.train_labels,
                 x_test=data.test_images, y_test=data.test_labels)
        capsys.readouterr()
        code = main(["mnist", "train", "--model", "dense", "--epochs", "1", "--data-dir", str(data_dir),
                     "--device", "cpu", "--out", str(out / "sub")])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("sightsound: error: cannot create the output folder ")
        assert str(out / "sub") in err and "read-only" in err and "Traceback" not in err


@pytest.mark.parametrize("checkpoint", [True, False], ids=["checkpoint-fails", "final-save-fails"])
def test_train_on_a_full_disk(disk, previous_run, checkpoint):
    source, data = previous_run
    d = disk()
    out = d.root / "run"
    shutil.copytree(source, out)
    before = snapshot(out)
    d.fill(leave=64 * 1024, fail_on="weights")  # less than one copy of the weights
    with pytest.raises(SightsoundError) as raised:
        train(out, data, checkpoint=checkpoint)
    saving = out / "checkpoint" if checkpoint else out
    assert_output_error(raised.value, saving, "disk is full")
    assert snapshot(out) == before and not leftovers(d.root)
    assert_is_model(out, load_layers_model(str(source), device="cpu"))
    resumed = load_layers_model(str(out / "checkpoint"), device="cpu")  # the old checkpoint still resumes
    assert resumed.user_defined_metadata["sightsound_checkpoint"]["epochs_done"] == 1
