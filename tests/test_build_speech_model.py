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


def test_the_card_reports_other_engines_and_real_people_from_figures_kept_per_weights_file(tmp_path):
    build = _script()
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"\x00" * 16)
    digest = build.hashlib.sha256(b"\x00" * 16).hexdigest()[:12]
    flite = {"description": "flite: kal, slt (never trained on)",
             "clips": {"all": {"command_accuracy": 0.8125, "command_words": 16, "unknown_quiet": 0.5}},
             "stream": {"precision": 0.95, "recall": 0.5}, "sentences": {"false_alarms": 3, "minutes": 2.5}}
    (tmp_path / f"other_engines-{digest}.json").write_text(json.dumps({"engines": {"flite": flite}}))
    people = {"command_words": 13, "right": 9, "precision": 0.9, "false_alarms": 1, "minutes": 1.06}
    (tmp_path / f"real_people-{digest}.json").write_text(json.dumps({"totals": people}))
    lines = build.independent_figures(model, tmp_path).splitlines()
    assert lines[0].startswith("- flite: kal, slt (never trained on): 81.2% of 16 command words right, 50.0% ")
    assert "precision 0.950, recall 0.500; 3 false alarms in 2.5 min" in lines[0]
    assert "9 of 13 command words caught, precision 0.90, 1 false alarm." in lines[1]
    (model / "weights.bin").write_bytes(b"\x01" * 16)   # another model is measured again, not read from the old
    build.subprocess = type("NoRun", (), {"run": staticmethod(lambda *a, **k: (_ for _ in ()).throw(
        RuntimeError(" ".join(a[0][1:3]))))})
    with pytest.raises(RuntimeError, match=r"other_engines\.py --model"):
        build.independent_figures(model, tmp_path)


def test_the_other_speech_examples_come_from_training_voices_half_of_them_sentence_windows(tmp_path):
    import numpy as np

    from sightsound.speech import frontend
    from sightsound.speech.dataset import Dataset
    from sightsound.speech.wav import read_wav, write_wav

    build = _script()
    corpus = tmp_path / "corpus"
    clips = [("sentence_window", "training")] * 3 + [("sentence_window", "validation"), ("yes", "training")] \
        + [("bed", "training"), ("hello", "training"), ("cat", "testing"), ("bird", "training")]
    rows, spectrograms = [], {}
    for i, (word, split) in enumerate(clips):
        path = f"{word}/{i:08x}_nohash_0.wav"
        samples = np.random.default_rng(i).standard_normal(16000).astype(np.float32) * 0.1
        (corpus / word).mkdir(parents=True, exist_ok=True)
        write_wav(corpus / path, samples, 16000)
        rows.append({"path": path, "word": word, "split": split, "engine": "espeak"})
        spectrograms[path] = frontend.spectrogram(*read_wav(corpus / path))[..., 0]
    (corpus / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    data, windows = build.other_speech(corpus, seed=0, count=4)
    examples = list(Dataset.from_bytes(data).examples.values())
    assert windows == 2 and len(examples) == 4 and {e.label for e in examples} == {"_unknown_"}
    chosen = [next(p for p, s in spectrograms.items() if np.allclose(s, e.spectrogram, atol=1e-5)) for e in examples]
    assert [p.split("/")[0] for p in chosen].count("sentence_window") == 2
    assert all(rows[int(p.split("/")[1][:8], 16)]["split"] == "training" and not p.startswith("yes/") for p in chosen)
    assert build.other_speech(corpus, seed=0, count=4)[0] == data  # the same seed: the same examples
    data, windows = build.other_speech(corpus, seed=0, count=8)  # more than there are: every one once
    assert windows == 3 and len(Dataset.from_bytes(data).examples) == 6
