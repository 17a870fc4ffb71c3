"""Tiny new words for the transfer-learning tests: espeak-ng renderings, one second at 16 kHz.

Each example gets its own pitch and rate and a little noise, so that a head trained on a few of
them has something to learn and something to generalise over.
"""

import numpy as np
import soundfile as sf

from sightsound.data.synth import espeak
from sightsound.data.synth.render import colored_noise
from sightsound.data.synth.spec import RATE as SYNTH_RATE

RATE = SYNTH_RATE  #: the corpus rate
WORDS = ("banana", "teapot", "violin")  #: none of the base model's 18 commands
VOICE = "gmw/en-US"
SETTINGS = ((30, 150), (50, 175), (70, 200), (40, 190), (60, 165))  #: (pitch, words per minute)


def word_clip(word: str, pitch: int, rate: int, seed: int = 0, seconds: float = 1.0) -> np.ndarray:
    """``word`` centred in one second (or ``seconds``), at 16 kHz, with faint white noise."""
    n = int(seconds * RATE)
    x = espeak.speak(word, VOICE, pitch, rate)[:n]
    out = np.zeros(n)
    start = (n - x.size) // 2
    out[start:start + x.size] = 0.5 * x
    return out + 0.003 * np.random.default_rng(seed).standard_normal(n)


def noise_clip(seconds: float, seed: int) -> np.ndarray:
    """Quiet pink noise, a stand-in for a room."""
    return 0.01 * colored_noise(int(seconds * RATE), "pink", np.random.default_rng(seed))


def write_example_folders(root, per_word: int = 4, noise_files: int = 2):
    """``root/<word>/*.wav`` and ``root/_background_noise_/*.wav``: the CLI's examples layout."""
    for word in WORDS:
        (root / word).mkdir(parents=True, exist_ok=True)
        for i, (pitch, rate) in enumerate(SETTINGS[:per_word]):
            sf.write(root / word / f"{i}.wav", word_clip(word, pitch, rate, i), RATE, subtype="FLOAT")
    (root / "_background_noise_").mkdir(exist_ok=True)
    for i in range(noise_files):
        sf.write(root / "_background_noise_" / f"room{i}.wav", noise_clip(2, i), RATE, subtype="FLOAT")
    return root
