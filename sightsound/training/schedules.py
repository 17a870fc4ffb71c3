"""Learning-rate schedules, applied during ``fit`` by :class:`LearningRateScheduler`.

A schedule maps a step (an epoch, or a batch counted across epochs) to a
learning rate. :class:`OneCycle` is the schedule of the fast MNIST recipe
(``sightsound mnist train --recipe fast``): a linear warm-up from a tenth of
the peak, then a cosine down to a thousandth of it, which lets Adam at a high
peak rate converge in a few epochs.

>>> schedule = OneCycle(peak=0.01, total_steps=5, warmup=0.25)
>>> [round(schedule(step), 6) for step in range(5)]
[0.001, 0.01, 0.007503, 0.002508, 1e-05]

As in Keras, a schedule can also be any function of ``(step, current_lr)``::

    model.fit(x, y, callbacks=[LearningRateScheduler(lambda epoch, lr: lr * 0.9)])
"""

from __future__ import annotations

import math

from ..engine.callbacks import Callback


class OneCycle:
    """Warm up linearly from ``peak / start_divisor`` to ``peak`` over the first ``warmup``
    share of ``total_steps``, then follow a cosine down to ``peak / end_divisor``."""

    def __init__(self, peak: float, total_steps: int, warmup: float = 0.2, start_divisor: float = 10.0,
                 end_divisor: float = 1000.0):
        if not peak > 0:
            raise ValueError(f"peak learning rate must be positive, got {peak!r}")
        if total_steps < 1:
            raise ValueError(f"total_steps must be at least 1, got {total_steps!r}")
        if not 0 <= warmup < 1:
            raise ValueError(f"warmup must be a share in [0, 1), got {warmup!r}")
        if start_divisor < 1 or end_divisor < 1:
            raise ValueError("start_divisor and end_divisor must be at least 1")
        self.peak, self.total_steps, self.warmup = float(peak), int(total_steps), float(warmup)
        self.start_divisor, self.end_divisor = float(start_divisor), float(end_divisor)

    def __call__(self, step: int, lr: float | None = None) -> float:
        if self.total_steps == 1:
            return self.peak
        t = min(max(step, 0), self.total_steps - 1) / (self.total_steps - 1)
        low, high = self.peak / self.start_divisor, self.peak
        if t < self.warmup:
            return low + (high - low) * t / self.warmup
        u = (t - self.warmup) / (1 - self.warmup)
        end = self.peak / self.end_divisor
        return end + (high - end) * 0.5 * (1 + math.cos(math.pi * u))

    def get_config(self) -> dict:
        """Everything needed to rebuild this schedule (kept in training checkpoints)."""
        return {"class_name": "OneCycle", "peak": self.peak, "total_steps": self.total_steps,
                "warmup": self.warmup, "start_divisor": self.start_divisor, "end_divisor": self.end_divisor}

    @classmethod
    def from_config(cls, config: dict) -> "OneCycle":
        options = {k: v for k, v in config.items() if k != "class_name"}
        return cls(**options)


class LearningRateScheduler(Callback):
    """Set the optimizer's learning rate from ``schedule`` before each epoch, or before each
    batch when ``steps_per_epoch`` is given (the step then counts batches across epochs,
    so a resumed run continues the schedule where it stopped)."""

    def __init__(self, schedule, steps_per_epoch: int | None = None):
        if steps_per_epoch is not None and steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be at least 1, got {steps_per_epoch!r}")
        self.schedule = schedule
        self.steps_per_epoch = steps_per_epoch
        self._epoch = 0

    def _set(self, step: int) -> None:
        optimizer = self.model.optimizer
        lr = float(self.schedule(step, optimizer.learning_rate))
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"the learning-rate schedule gave {lr!r} at step {step}; it must be positive")
        optimizer.learning_rate = lr

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self.steps_per_epoch is None:
            self._set(epoch)

    def on_batch_begin(self, batch, logs=None):
        if self.steps_per_epoch is not None:
            self._set(self._epoch * self.steps_per_epoch + batch)
