"""The MNIST training job behind ``sightsound mnist train``, the web app and the benchmarks.

One function does the chapter's whole recipe: load MNIST, build a preset,
compile, fit with a validation split, evaluate on the 10,000 test images, save
the model (TF.js format), ``history.json``, ``curves.png`` and
``test-results.png``::

    from sightsound.training.mnist import train_mnist
    result = train_mnist("mnist-conv", out_dir="runs/conv", epochs=1)
    print(result.test_accuracy)
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import presets
from ..data import mnist
from ..engine import distributed
from ..engine.callbacks import Callback, concat_histories
from ..engine.trainer import training_count
from ..errors import OutputError, SightsoundError
from ..fileio import write_text_atomic
from ..runtime import set_seed
from .checkpoint import CHECKPOINT_DIR, find_checkpoint, load_checkpoint, save_checkpoint
from .schedules import LearningRateScheduler, OneCycle
from .targets import smooth_labels



@dataclass
class TrainResult:
    """What a training run produced."""

    preset: str
    params: int
    epochs: int
    seconds: float
    test_loss: float
    test_accuracy: float
    history: dict
    out_dir: Path | None = None
    files: list[Path] = field(default_factory=list)
    model: object = None


@dataclass(frozen=True)
class MnistSettings:
    """Everything that decides an MNIST training run, in one object.

    :meth:`of` builds it from a recipe's defaults (:mod:`sightsound.presets`)
    and the caller's overrides; the command line, the web app and its page
    (which asks the server for them) all take their defaults from there. A
    checkpoint stores :meth:`to_checkpoint`, so a resumed run continues with
    the settings it started with.

    >>> MnistSettings.of("enhanced").batch_size, MnistSettings.of("conv", epochs=3).epochs
    (128, 3)
    """

    preset: str | None  # None: a model the caller builds
    recipe: str
    epochs: int
    batch_size: int
    validation_split: float
    optimizer: str | None  # None when resuming: the checkpoint holds the optimizer
    learning_rate: float | None = None  # None: the optimizer's TF.js default
    label_smoothing: float = 0.0
    schedule: dict | None = None
    keep_best: bool = False
    train_limit: int | None = None
    test_limit: int | None = None
    dtype_policy: str = "float32"
    augmentation: dict | None = None  # {"shift": k}: training images moved by up to k pixels, anew each epoch

    #: What a checkpoint keeps (the optimizer itself is saved with the model).
    CHECKPOINT_FIELDS = ("preset", "epochs", "batch_size", "validation_split", "train_limit", "test_limit",
                         "keep_best", "recipe", "label_smoothing", "dtype_policy", "schedule", "augmentation")

    @classmethod
    def of(cls, model: str = "conv", recipe: str = "chapter", **overrides) -> "MnistSettings":
        """The settings of ``recipe`` for MNIST ``model`` (``conv``, ``mnist-enhanced``...), with the
        ``overrides`` that are not None."""
        preset = presets.mnist_preset(model)
        values = {**presets.training_defaults(preset, recipe),
                  **{key: value for key, value in overrides.items() if value is not None}}
        preset = values.pop("model", preset)  # a recipe may train another model for the job (fast-99.5)
        settings = cls(preset=preset, recipe=recipe, **values)
        settings.check()
        return settings

    @classmethod
    def from_checkpoint(cls, stored: dict) -> "MnistSettings":
        return cls(**{key: stored.get(key) for key in cls.CHECKPOINT_FIELDS if key in stored}, optimizer=None)

    def to_checkpoint(self) -> dict:
        return {key: getattr(self, key) for key in self.CHECKPOINT_FIELDS}

    def check(self) -> None:
        """ValueError naming the first setting out of range."""
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 0:
            raise ValueError(f"epochs must be a non-negative int, got {self.epochs!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {self.batch_size!r}")
        if not 0 <= self.validation_split < 1:
            raise ValueError(f"validation_split must be in [0, 1), got {self.validation_split!r}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        shift = (self.augmentation or {}).get("shift", 0)
        if set(self.augmentation or {}) - {"shift"} or isinstance(shift, bool) or not isinstance(shift, int) \
                or not 0 <= shift < min(mnist.IMAGE_SIZE) // 2:
            raise ValueError(f"augmentation must be {{'shift': pixels}} with 0 <= pixels < {min(mnist.IMAGE_SIZE) // 2}, "
                             f"got {self.augmentation!r}")


def train_mnist(model="conv", *, data_dir=None, epochs: int | None = None, batch_size: int | None = None,
                validation_split: float | None = None, optimizer: str | None = None,
                learning_rate: float | None = None, device: str = "auto", seed: int | None = None,
                out_dir=None, train_limit: int | None = None, test_limit: int | None = None,
                callbacks=None, data: mnist.MnistData | None = None, progress: bool = False,
                keep_best: bool | None = None, defaults_from: str = "mnist-conv", checkpoint: bool = True,
                resume=None, recipe: str = "chapter", label_smoothing: float | None = None,
                dtype_policy: str | None = None) -> TrainResult:
    """Train an MNIST preset with the chapter's defaults (overridable) and evaluate on the test set.

    ``model`` is a :class:`MnistSettings`, a preset name (``conv``, ``mnist-enhanced``...; the
    keyword settings then override its recipe's defaults) or a callable
    returning a fresh, uncompiled :class:`Sequential` (then the training
    defaults are those of preset ``defaults_from``).

    ``train_limit``/``test_limit`` use only the first N images (for quick runs
    and tests). ``keep_best`` keeps the weights of the epoch with the best
    validation accuracy instead of the last epoch's.

    With ``out_dir`` and ``checkpoint`` (the default), the model, optimizer
    state, history and random state are saved atomically after every epoch in
    ``out_dir/checkpoint`` (TF.js format with ``trainingConfig``).
    ``resume=DIR`` continues such a run (``DIR`` is the run's ``out_dir`` or its
    checkpoint folder) with the settings it was started with; the result equals
    an uninterrupted run with the same seed. Ctrl-C leaves the last complete
    epoch in the checkpoint.

    ``recipe="fast"`` (Listing 4.1 only) swaps the chapter's settings for
    :data:`sightsound.presets.RECIPES` ``["fast"]``: Adam with a one-cycle
    learning-rate schedule and label smoothing, 99 % test accuracy in 2-3
    epochs. Explicit arguments still override the recipe's values.
    ``dtype_policy="mixed_bfloat16"`` trains in mixed precision (see
    :meth:`sightsound.engine.sequential.Sequential.compile`).
    """
    if resume is not None:
        return _resume(resume, data=data, data_dir=data_dir, epochs=epochs, device=device, out_dir=out_dir,
                       callbacks=callbacks, progress=progress)
    overrides = {"epochs": epochs, "batch_size": batch_size, "validation_split": validation_split,
                 "optimizer": optimizer, "learning_rate": learning_rate, "label_smoothing": label_smoothing,
                 "train_limit": train_limit, "test_limit": test_limit, "keep_best": keep_best,
                 "dtype_policy": dtype_policy}
    build = model if callable(model) else None
    settings = _settings_of(model, recipe, overrides, defaults_from)
    if seed is not None:
        set_seed(seed)
    start = time.perf_counter()
    data = data or mnist.load_mnist(data_dir, progress=progress)
    device = distributed.local_device(device)
    net = build().to(device) if build else presets.build(settings.preset, device=device)
    net.compile(optimizer=settings.optimizer, loss="categoricalCrossentropy", metrics=["accuracy"],
                learning_rate=settings.learning_rate, dtype_policy=settings.dtype_policy)
    if settings.schedule:  # the peak is the optimizer's rate, which compile resolved
        settings = dataclasses.replace(settings, schedule=dict(settings.schedule, peak=net.optimizer.learning_rate))
    return _fit_and_finish(net, settings.preset or net.name, settings, data, start, out_dir=out_dir,
                           callbacks=callbacks, progress=progress, checkpoint=checkpoint and build is None)


def _fit_and_finish(net, preset: str, settings: MnistSettings, data: mnist.MnistData, start: float, *, out_dir,
                    callbacks, progress, checkpoint, initial_epoch=0, previous_history=None) -> TrainResult:
    epochs, batch_size = settings.epochs, settings.batch_size
    validation_split, keep_best = settings.validation_split, settings.keep_best
    train_x = mnist.to_float_images(data.train_images[:settings.train_limit])
    train_y = mnist.one_hot(data.train_labels[:settings.train_limit])
    test_x = mnist.to_float_images(data.test_images[:settings.test_limit])
    test_y = data.test_labels[:settings.test_limit]
    main_process = distributed.is_main_process()
    if out_dir is not None:
        out_dir = Path(out_dir).expanduser()  # as model.save does: the model and its history stay together
        if main_process:
            _check_writable(out_dir)  # before training, not after it
    extra = list(callbacks or [])
    if checkpoint and out_dir is not None and main_process:
        extra.append(_Checkpoint(Path(out_dir) / CHECKPOINT_DIR, settings.to_checkpoint(), previous_history))
    best = _KeepBest() if keep_best and validation_split else None
    if best:
        extra.append(best)
    n_fit = training_count(len(train_x), validation_split) if validation_split else len(train_x)
    if settings.schedule:
        steps = math.ceil(n_fit / batch_size)
        schedule = OneCycle.from_config({**settings.schedule, "total_steps": steps * epochs})
        extra.append(LearningRateScheduler(schedule, steps_per_epoch=steps))
    train_y = smooth_labels(train_y, settings.label_smoothing)
    if progress and main_process:
        from ..engine.callbacks import ProgressBar

        extra.append(ProgressBar(math.ceil(n_fit / batch_size), epochs, n_fit))
    history = fit_mnist(net, settings, train_x, train_y, extra, initial_epoch)
    if best and best.state is not None:
        net.net.load_state_dict(best.state)
    test_loss, test_acc = net.evaluate(test_x, mnist.one_hot(test_y))
    seconds = time.perf_counter() - start
    result = TrainResult(preset, net.count_params(), epochs, seconds, test_loss, test_acc,
                         concat_histories(previous_history, history.to_json()), model=net)
    if out_dir is not None and main_process:
        result.out_dir = Path(out_dir)
        result.files = save_run(net, result, test_x, test_y)
    return result


def fit_mnist(net, settings: MnistSettings, train_x, train_y, callbacks: list, initial_epoch: int = 0):
    """``net.fit`` with the settings; with a shift augmentation, one ``fit`` per epoch on freshly shifted
    training images (the validation images stay as they are). Returns the run's :class:`History` as one."""
    shift = (settings.augmentation or {}).get("shift", 0)
    if not shift:
        return net.fit(train_x, train_y, batch_size=settings.batch_size, epochs=settings.epochs,
                       validation_split=settings.validation_split, callbacks=callbacks, initial_epoch=initial_epoch)
    from ..engine.callbacks import History

    n_fit = training_count(len(train_x), settings.validation_split) if settings.validation_split else len(train_x)
    val = (train_x[n_fit:], train_y[n_fit:]) if n_fit < len(train_x) else None
    history = History()
    for epoch in range(initial_epoch, settings.epochs):
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,))))  # follows the run's seed
        part = net.fit(mnist.random_shift(train_x[:n_fit], shift, rng), train_y[:n_fit],
                       batch_size=settings.batch_size, epochs=epoch + 1, initial_epoch=epoch, validation_data=val,
                       callbacks=callbacks)
        history.extend(part)
        if net.stop_training:
            break
    return history


def _check_writable(out: Path) -> None:
    """Create ``out`` and make sure files can be created in it, else :class:`OutputError` naming it."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError.from_os_error(err, out, "create the output folder") from err
    if not os.access(out, os.W_OK | os.X_OK):  # read-only file system (even for root) or no permission
        code = errno.EROFS if _read_only_fs(out) else errno.EACCES
        raise OutputError.from_os_error(OSError(code, os.strerror(code)), out, "write into the output folder")


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def _settings_of(model, recipe: str, overrides: dict, defaults_from: str) -> MnistSettings:
    """A run's settings: ``model`` itself when it is settings, else its preset's (or ``defaults_from``'s
    for a model-building callable, then with no preset) under ``recipe`` with ``overrides``."""
    if isinstance(model, MnistSettings):
        given = sorted(key for key, value in overrides.items() if value is not None)
        if given or recipe != "chapter":
            raise ValueError(f"train_mnist(settings) takes no separate settings; got {', '.join(given) or 'recipe'}"
                             f" (use dataclasses.replace on the settings)")
        model.check()
        return model
    if callable(model):
        return dataclasses.replace(MnistSettings.of(defaults_from, recipe, **overrides), preset=None)
    return MnistSettings.of(model, recipe, **overrides)


class _Checkpoint(Callback):
    """Saves model + optimizer state + history + RNG state atomically after each epoch."""

    def __init__(self, directory: Path, settings: dict, previous_history: dict | None):
        self.directory, self.settings, self.previous = directory, settings, previous_history
        from ..engine.callbacks import History

        self.history = History()

    def on_batch_end(self, batch, logs=None):
        self.history.on_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self.history.on_epoch_end(epoch, logs)
        save_checkpoint(self.model, self.directory, {
            "epochs_done": epoch + 1, "settings": self.settings,
            "history": concat_histories(self.previous, self.history.to_json())})


def _resume(resume, *, data, data_dir, epochs, device, out_dir, callbacks, progress) -> TrainResult:
    folder = find_checkpoint(resume)
    if folder is None:
        raise SightsoundError(f"no checkpoint to resume in {resume}: expected "
                              f"{Path(resume).expanduser() / CHECKPOINT_DIR / 'model.json'} "
                              f"(written after each epoch by 'sightsound mnist train --out DIR')")
    net, state = load_checkpoint(folder, distributed.local_device(device))
    if not (state.get("settings") or {}).get("preset"):
        raise SightsoundError(f"{folder} is a saved model, not a sightsound MNIST training checkpoint")
    settings = MnistSettings.from_checkpoint(state["settings"])
    net.set_dtype_policy(settings.dtype_policy or "float32")
    if epochs is not None:
        settings = dataclasses.replace(settings, epochs=epochs)
    start = time.perf_counter()
    data = data or mnist.load_mnist(data_dir, progress=progress)
    out_dir = out_dir if out_dir is not None else folder.parent
    return _fit_and_finish(net, settings.preset, settings, data, start, out_dir=out_dir, callbacks=callbacks,
                           progress=progress, checkpoint=True, initial_epoch=int(state["epochs_done"]),
                           previous_history=state["history"])


class _KeepBest(Callback):
    def __init__(self):
        self.best, self.state = -1.0, None

    def on_epoch_end(self, epoch, logs=None):
        acc = (logs or {}).get("val_acc", -1.0)
        if acc > self.best:
            self.best = acc
            self.state = {k: v.detach().clone() for k, v in self.model.net.state_dict().items()}


def save_run(model, result: TrainResult, test_x: np.ndarray, test_y: np.ndarray, grid: int = 50,
             metadata: dict | None = None) -> list[Path]:
    """Write the model, history.json, curves.png and test-results.png into ``result.out_dir``; ``metadata``
    adds entries to model.json's ``userDefinedMetadata`` (the web app marks a stopped run there)."""
    from .. import plots  # matplotlib only for a run that saves its plots

    out = result.out_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
        model.save(str(out), user_defined_metadata={
            "preset": result.preset, "test_accuracy": result.test_accuracy, "test_loss": result.test_loss,
            **(metadata or {})})
        history_path = write_text_atomic(out / "history.json", json.dumps(
            {**result.history, "test": {"loss": result.test_loss, "acc": result.test_accuracy},
             "preset": result.preset, "seconds": result.seconds}, indent=1))
        curves = plots.plot_curves(result.history, out / "curves.png", title=f"{result.preset} on MNIST")
        sample = test_x[:grid]
        predicted = model.predict(sample).argmax(axis=1)
        grid_path = plots.plot_test_results(sample, test_y[:grid], predicted, out / "test-results.png",
                                            title=f"{result.preset}: test images (wrong ones in red)")
    except OutputError:
        raise
    except OSError as err:  # read-only, disk full...: earlier files there are unchanged (all writes are atomic)
        raise OutputError.from_os_error(err, out, "save the run to") from err
    return [out / "model.json", history_path, curves, grid_path]
