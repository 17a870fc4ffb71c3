"""scripts/build_speech_model.py keeps finished steps, but never a model trained with another recipe."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from sightsound.training.speech import SpeechSettings

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "build_speech_model.py"


def _script():
    spec = importlib.util.spec_from_file_location("build_speech_model", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _history(folder: Path, settings: dict) -> Path:
    folder.mkdir()
    (folder / "history.json").write_text(json.dumps({"settings": settings}))
    return folder


def test_a_model_trained_with_the_recipe_is_kept_and_another_is_refused(tmp_path):
    build = _script()
    recipe = SpeechSettings.of(build.RECIPE).to_json()
    # as train_speech writes it: the optimizer by its class, the seed; an older model lacks newer options
    trained = {**recipe, "optimizer": "Adam", "seed": 0,
               "augmentation": {k: v for k, v in recipe["augmentation"].items() if k != "snr_over"}}
    build.check_trained_model(_history(tmp_path / "same", json.loads(json.dumps(trained))), None, 0)
    with pytest.raises(SystemExit, match=r"\(seed differ\); remove that folder"):
        build.check_trained_model(_history(tmp_path / "seed", trained), None, 1)
    other = {**trained, "augmentation": {**recipe["augmentation"], "snr_over": "word"}, "epochs": 3}
    with pytest.raises(SystemExit, match=r"\(augmentation, epochs differ\)"):
        build.check_trained_model(_history(tmp_path / "other", other), None, 0)
