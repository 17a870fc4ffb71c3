"""Training callbacks (TF.js ``callbacks`` of ``model.fit``) and the History.

A callback is either an object with any of the methods below, or a dict that
maps hook names to functions, as in TF.js::

    model.fit(x, y, callbacks={"on_batch_end": lambda batch, logs: print(logs["loss"])})

camelCase names (``onBatchEnd``) are accepted too.
"""

from __future__ import annotations

import sys
import time

HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_batch_begin", "on_batch_end")
_CAMEL = {"onTrainBegin": "on_train_begin", "onTrainEnd": "on_train_end", "onEpochBegin": "on_epoch_begin",
          "onEpochEnd": "on_epoch_end", "onBatchBegin": "on_batch_begin", "onBatchEnd": "on_batch_end"}


class Callback:
    """Base class; override the hooks you need. ``self.model`` is set by ``fit``."""

    model = None

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_batch_begin(self, batch, logs=None): ...
    def on_batch_end(self, batch, logs=None): ...


class _FunctionCallback(Callback):
    def __init__(self, functions: dict):
        for key, fn in functions.items():
            hook = _CAMEL.get(key, key)
            if hook not in HOOKS:
                raise ValueError(f"unknown callback hook {key!r}; expected one of {', '.join(HOOKS)}")
            setattr(self, hook, fn)


class History(Callback):
    """What ``fit`` returns: ``history.history["val_acc"]`` etc., per epoch, plus
    ``history.batches``: one ``{"batch", "loss", "acc"}`` per training batch
    (``batch`` counts across epochs, as the chapter's plots do)."""

    def __init__(self):
        self.epoch: list[int] = []
        self.history: dict[str, list[float]] = {}
        self.batches: list[dict] = []

    def on_batch_end(self, batch, logs=None):
        entry = {"batch": len(self.batches) + 1}
        entry.update({k: v for k, v in (logs or {}).items() if k in ("loss", "acc")})
        self.batches.append(entry)

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def extend(self, later: "History") -> None:
        """Append the epochs and batches of a later ``fit`` of the same run (one ``fit`` per epoch)."""
        for i, epoch in enumerate(later.epoch):
            self.on_epoch_end(epoch, {key: values[i] for key, values in later.history.items()})
        for entry in later.batches:
            self.on_batch_end(None, entry)

    def to_json(self) -> dict:
        """The ``history.json`` layout: epochs (1-based) and per-batch figures."""
        epochs = []
        for i, epoch in enumerate(self.epoch):
            row = {"epoch": epoch + 1}
            row.update({k: v[i] for k, v in self.history.items()})
            epochs.append(row)
        return {"epochs": epochs, "batches": self.batches}


def concat_histories(*parts: dict | None) -> dict:
    """One ``history.json`` from the histories of runs that followed each other (resumed runs, per-epoch
    ``fit`` calls): epochs in order, batches numbered across all of them.

    >>> concat_histories({"epochs": [{"epoch": 1}], "batches": [{"batch": 1}]},
    ...                  {"epochs": [{"epoch": 2}], "batches": [{"batch": 1}]})["batches"]
    [{'batch': 1}, {'batch': 2}]
    """
    epochs, batches = [], []
    for part in parts:
        if part:
            offset = len(batches)
            epochs += part.get("epochs", [])
            batches += [{**b, "batch": b["batch"] + offset} for b in part.get("batches", [])]
    return {"epochs": epochs, "batches": batches}


class CallbackList:
    """Calls every callback's hook in order."""

    def __init__(self, callbacks, model):
        if callbacks is None:
            callbacks = []
        elif isinstance(callbacks, (dict, Callback)):
            callbacks = [callbacks]
        self.callbacks = [_FunctionCallback(c) if isinstance(c, dict) else c for c in callbacks]
        for c in self.callbacks:
            try:
                c.model = model
            except AttributeError:
                pass

    def call(self, hook: str, *args) -> None:
        for c in self.callbacks:
            fn = getattr(c, hook, None)
            if fn is not None:
                fn(*args)


class ProgressBar(Callback):
    """A per-epoch tqdm bar: loss, accuracy, samples/s and ETA; validation figures at the end."""

    def __init__(self, steps_per_epoch: int, epochs: int, samples: int, file=None):
        self.steps, self.epochs, self.samples = steps_per_epoch, epochs, samples
        self.file = file or sys.stderr
        self.bar = None

    def on_epoch_begin(self, epoch, logs=None):
        from tqdm import tqdm

        self.bar = tqdm(total=self.samples, desc=f"Epoch {epoch + 1}/{self.epochs}", unit="sample",
                        unit_scale=True, file=self.file, dynamic_ncols=True, leave=True)
        self.start = time.perf_counter()
        self.seen = 0

    def on_batch_end(self, batch, logs=None):
        logs = logs or {}
        size = int(logs.get("size", 0))
        self.seen += size
        rate = self.seen / max(time.perf_counter() - self.start, 1e-9)
        self.bar.update(size)
        self.bar.set_postfix(loss=f"{logs.get('loss', float('nan')):.4f}", acc=f"{logs.get('acc', 0):.4f}",
                             refresh=False)
        self.rate = rate

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        post = {"loss": f"{logs.get('loss', float('nan')):.4f}", "acc": f"{logs.get('acc', 0):.4f}"}
        if "val_loss" in logs:
            post.update(val_loss=f"{logs['val_loss']:.4f}", val_acc=f"{logs['val_acc']:.4f}")
        self.bar.set_postfix(post)
        self.bar.close()
