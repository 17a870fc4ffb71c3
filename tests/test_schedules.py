"""Learning-rate schedules and the callback that applies them during fit."""

import numpy as np
import pytest

from sightsound.engine import layers as L
from sightsound.engine.callbacks import Callback
from sightsound.engine.sequential import Sequential
from sightsound.training.schedules import LearningRateScheduler, OneCycle


def test_one_cycle_warms_up_peaks_and_anneals():
    schedule = OneCycle(peak=0.01, total_steps=101, warmup=0.2)
    rates = np.array([schedule(step) for step in range(101)])
    assert rates[0] == pytest.approx(0.001)
    assert rates.argmax() == 20 and rates.max() == pytest.approx(0.01)
    assert np.all(np.diff(rates[:21]) > 0) and np.all(np.diff(rates[20:]) < 0)
    assert rates[-1] == pytest.approx(1e-5)
    assert schedule(500) == rates[-1] and schedule(-3) == rates[0]  # clamped outside the run
    assert OneCycle.from_config(schedule.get_config())(37) == schedule(37)


@pytest.mark.parametrize("kwargs", [{"peak": 0}, {"total_steps": 0}, {"warmup": 1.0}, {"end_divisor": 0.5}])
def test_one_cycle_refuses_bad_settings(kwargs):
    with pytest.raises(ValueError):
        OneCycle(**{"peak": 0.01, "total_steps": 10, **kwargs})


class RecordRate(Callback):
    def __init__(self):
        self.rates = []

    def on_batch_begin(self, batch, logs=None):
        self.rates.append(self.model.optimizer.learning_rate)


def tiny_model():
    model = Sequential([L.dense(units=3, input_shape=[4], activation="softmax")], device="cpu")
    model.compile(optimizer="adam", loss="categoricalCrossentropy", learning_rate=0.5)
    return model


def data(n=40):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4)).astype(np.float32), np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)]


def test_scheduler_sets_the_rate_before_every_batch_across_epochs():
    model, record = tiny_model(), RecordRate()
    schedule = OneCycle(peak=0.02, total_steps=12, warmup=0.25)
    x, y = data()
    model.fit(x, y, batch_size=10, epochs=3, callbacks=[LearningRateScheduler(schedule, steps_per_epoch=4), record])
    assert record.rates == pytest.approx([schedule(step) for step in range(12)])


def test_scheduler_per_epoch_takes_a_keras_style_function():
    model, record = tiny_model(), RecordRate()
    x, y = data()
    model.fit(x, y, batch_size=20, epochs=3, callbacks=[LearningRateScheduler(lambda epoch, lr: lr * 0.5), record])
    assert record.rates == pytest.approx([0.25, 0.25, 0.125, 0.125, 0.0625, 0.0625])


def test_scheduler_refuses_a_rate_that_is_not_positive():
    model = tiny_model()
    x, y = data()
    with pytest.raises(ValueError, match="gave 0.0 at step 0"):
        model.fit(x, y, epochs=1, callbacks=[LearningRateScheduler(lambda epoch, lr: 0.0)])
