"""Voices, rooms and microphones on dB frames (sightsound.data.acoustics) and the ``people`` recipe."""

import numpy as np
import pytest
import torch

from sightsound.data import acoustics
from sightsound.data import speech_commands as sc
from sightsound.speech import frontend

FLOOR = -80.0


def _word(first: int, last: int, peak_bin: int = 60, n: int = 1) -> torch.Tensor:
    """``[n, 43, 232]`` dB frames: a quiet floor and a word in frames [first, last) with a formant at ``peak_bin``."""
    x = torch.full((n, frontend.NUM_FRAMES, frontend.FRAME_SIZE), FLOOR)
    bins = torch.arange(frontend.FRAME_SIZE, dtype=torch.float32)
    x[:, first:last] = (-20.0 - 0.01 * (bins - peak_bin) ** 2).clamp(min=FLOOR)
    return x


def _loud_frames(x: torch.Tensor) -> np.ndarray:
    return np.flatnonzero((x[0].amax(dim=1) > FLOOR + 10).numpy())


def test_stretch_time_changes_how_long_the_word_lasts_about_the_middle():
    word = _word(15, 28)
    assert torch.allclose(acoustics.stretch_time(word.clone(), np.array([1.0])), word)
    faster = _loud_frames(acoustics.stretch_time(word.clone(), np.array([1.3])))
    slower = _loud_frames(acoustics.stretch_time(word.clone(), np.array([0.77])))
    assert len(faster) < 13 < len(slower)
    assert abs(faster.mean() - 21) <= 1.5 and abs(slower.mean() - 21) <= 1.5


def test_warp_frequency_moves_formants_by_the_factor():
    word = _word(10, 30, peak_bin=60)
    for alpha in (0.85, 1.0, 1.2):
        warped = acoustics.warp_frequency(word.clone(), np.array([alpha]))
        assert int(warped[0, 20].argmax()) == pytest.approx(60 * alpha, abs=1)


def test_reverberation_adds_a_tail_that_a_longer_room_makes_longer():
    word = _word(10, 14)
    tails = []
    for rt60 in (0.2, 0.8):
        wet = acoustics.reverberate(word.clone(), np.array([rt60]), np.array([0.0]))
        after = wet[0, 14:, 60]
        assert (after.diff() <= 1e-4).all()  # it dies away
        tails.append(int((after > FLOOR + 10).sum()))
        assert torch.allclose(wet[0, :10], wet[0, :1].expand(10, -1))  # nothing of the word before it
    assert 0 < tails[0] < tails[1]
    dry = acoustics.reverberate(word.clone(), np.array([0.8]), np.array([40.0]))
    assert (dry - word)[0, 10:14].abs().max() < 0.01  # far more direct sound: the word itself is unchanged


def test_microphone_responses_cut_lows_and_leave_the_silence_floor():
    rng = np.random.default_rng(0)
    response = acoustics.microphone_response(frontend.FRAME_SIZE, rng, 200)
    assert response.shape == (200, frontend.FRAME_SIZE)
    assert (response[:, 0] < response[:, 50]).float().mean() > 0.9  # DC is below 1 kHz
    assert response[:, 46].abs().max() < 15  # near 1 kHz: resonances and tilt only
    x = _word(10, 20)
    x[0, :5] = frontend.SILENCE_DB
    heard = acoustics.microphone(x.clone(), rng)
    assert (heard[0, :5] == frontend.SILENCE_DB).all() and not torch.equal(heard, x)


def test_masks_set_stripes_to_the_mean():
    x = torch.ones(64, 43, 232)
    acoustics.mask(x, np.random.default_rng(1), time_masks=1, time_width=5, freq_masks=0, freq_width=20)
    zero_rows = (x == 0).all(dim=2).sum(dim=1)
    assert zero_rows.max() <= 5 and (zero_rows > 0).float().mean() > 0.6
    assert ((x == 0).sum(dim=(1, 2)) == zero_rows * 232).all()  # whole frames only


def test_people_augmentation_is_reproducible_and_validated():
    from sightsound.training.speech import SpeechSettings

    settings = SpeechSettings.of("people")
    assert settings.model == "speech-bn" and settings.epochs == 30
    aug = settings.augmentation
    assert aug.warp_probability > 0 and aug.reverb_probability > 0 and aug.time_masks > 0
    positions = [(14, 34), (20, 28), (8, 40)] * 20
    frames = np.full((len(positions), frontend.NUM_FRAMES + 2 * sc.CONTEXT_FRAMES, frontend.FRAME_SIZE), -80.0)
    for i, (first, last) in enumerate(positions):
        frames[i, first:last] = -20.0
    words = tuple(sorted((sc.BACKGROUND_NOISE, sc.UNKNOWN, "yes", "no")))
    from pathlib import Path
    clips = [sc.Clip(Path(f"yes/{i}.wav"), "yes", "yes", f"s{i}") for i in range(len(positions))]
    split = sc.SpeechSplit("training", words, clips, frames.astype(np.float16), [], 0, seed=0)
    a, _ = split.arrays(aug, np.random.default_rng(5))
    b, _ = split.arrays(aug, np.random.default_rng(5))
    plain, _ = split.arrays()
    assert np.array_equal(a, b) and np.isfinite(a).all() and not np.allclose(a, plain)
    with pytest.raises(ValueError, match="warp"):
        sc.Augmentation(warp=(0.0, 1.1))
    with pytest.raises(ValueError, match="reverb_probability"):
        sc.Augmentation(reverb_probability=2.0)
    with pytest.raises(ValueError, match="time_masks"):
        sc.Augmentation(time_masks=-1)
    with pytest.raises(ValueError, match="speech preset"):
        SpeechSettings.of("people", model="mnist-conv")
    with pytest.raises(ValueError, match="label_smoothing"):
        SpeechSettings.of("people", label_smoothing=1.0)
