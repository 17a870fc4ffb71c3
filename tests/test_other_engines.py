"""The independent check's synthesisers (benchmarks/other_engines.py): flite and Festival voices that no
sightsound corpus uses, each saying a word as 16 kHz audio that the benchmark can place like a corpus clip."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import APT_FIX, require

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import other_engines  # noqa: E402

from sightsound.data import synth  # noqa: E402


@pytest.fixture(scope="module")
def tts():
    for tool, package in (("flite", "flite"), ("text2wave", "festival")):
        require(shutil.which(tool) is not None, f"{tool} (benchmarks/other_engines.py)", APT_FIX.format(package=package))
    return other_engines.OtherVoices()


@pytest.mark.parametrize("voice", list(other_engines.VOICES))
def test_every_voice_says_a_word_at_16k_and_slower_when_stretched(tts, voice):
    said = tts.speak("seven", voice)
    assert said.dtype == np.float32 and 0.3 < said.size / synth.RATE < 1.5, said.size
    assert np.abs(said).max() > 0.05
    assert tts.speak("seven", voice, stretch=1.2).size > said.size * 1.1


def test_the_takes_vary_and_every_word_is_planned_for_every_voice():
    planned = other_engines.plan_takes(["flite-slt", "festival-kal"], takes=3, seed=0)
    jobs = [job for job, _ in planned]
    for voice in ("flite-slt", "festival-kal"):
        mine = [j for j in jobs if j.voice == voice]
        assert sum(j.word == "seven" for j in mine) == 3 and sum(j.word == "bed" for j in mine) == 1
    assert len({j.relpath for j in jobs}) == len(jobs)
    assert len({s for _, s in planned}) == len(planned)
    assert all(other_engines.STRETCH[0] <= s <= other_engines.STRETCH[1] for _, s in planned)
    assert other_engines.plan_takes(["flite-slt"], 3, 0) == other_engines.plan_takes(["flite-slt"], 3, 0)
