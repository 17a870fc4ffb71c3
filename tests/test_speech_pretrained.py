"""The default speech model shipped in the package.

The shipped model's location (``model_files.PRETRAINED_DIR``) is pointed at a
small model each test saves.
"""

from __future__ import annotations

import numpy as np
import pytest
from web_helpers import SPEECH_WORDS, save_speech_model

from sightsound import audio, speech
from sightsound.cli import main
from sightsound.cli.speech_listen import add_listen_command
from sightsound.errors import ModelFormatError
from sightsound.speech import model_files


def clip(seconds: float = 1.0, rate: int = 16000, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * rate))).astype(np.float32)


def save_yes_model(folder):
    """A small speech model (``SPEECH_WORDS``) whose output bias makes it hear "yes" in anything."""
    import torch

    import sightsound
    from sightsound.tfjs import model_weights

    save_speech_model(folder)
    model = sightsound.load_layers_model(str(folder), device="cpu")
    bias = model_weights(model)[-1]
    assert bias.name.endswith("bias") and bias.shape == (len(SPEECH_WORDS),)
    with torch.no_grad():
        bias.tensor.copy_(torch.tensor([0.0, 0.0, 0.0, 8.0]))
    model.save(str(folder))
    return folder


@pytest.fixture()
def shipped(tmp_path, monkeypatch):
    """A small speech model standing in for the shipped one."""
    folder = save_yes_model(tmp_path / "pretrained")
    monkeypatch.setattr(model_files, "PRETRAINED_DIR", folder)
    return folder


# -- the shipped model -----------------------------------------------------------------------------------

def test_create_without_a_model_loads_the_shipped_one(shipped):
    recognizer = speech.create("BROWSER_FFT", device="cpu")
    assert recognizer.word_labels() == SPEECH_WORDS and recognizer.where == str(shipped)
    assert recognizer.recognize(clip()).word == "yes"
    direct = speech.create("BROWSER_FFT", model=shipped, device="cpu")
    np.testing.assert_array_equal(recognizer.recognize(clip()).scores, direct.recognize(clip()).scores)


def test_a_missing_shipped_model_is_an_incomplete_install(tmp_path, monkeypatch):
    monkeypatch.setattr(model_files, "PRETRAINED_DIR", tmp_path / "pretrained")
    with pytest.raises(ModelFormatError, match="install is incomplete") as error:
        speech.create("BROWSER_FFT")
    assert str(tmp_path / "pretrained") in str(error.value) and "model.json" in str(error.value)
    save_speech_model(tmp_path / "pretrained")
    (tmp_path / "pretrained" / "metadata.json").unlink()
    with pytest.raises(ModelFormatError, match=r"no metadata\.json in .*install is incomplete"):
        speech.create("BROWSER_FFT")


def test_recognize_and_listen_use_the_shipped_model_without_model(shipped, tmp_path, capsys):
    wav = audio.write_wav(tmp_path / "a.wav", clip(2.5), 16000)
    assert main(["speech", "recognize", str(wav), "--device", "cpu"]) == 0
    line = capsys.readouterr().out.strip()
    expected = speech.create("BROWSER_FFT", model=shipped, device="cpu").recognize_clip(*audio.read_wav(wav),
                                                                                         path=str(wav))
    assert line == expected.line()

    import argparse

    parser = argparse.ArgumentParser()
    add_listen_command(parser.add_subparsers())
    args = parser.parse_args(["listen", "--file", str(wav), "--threshold", "0", "--device", "cpu"])
    assert args.model is None and args.func(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    heard = []
    direct = speech.create("BROWSER_FFT", model=shipped, device="cpu")
    direct.listen(heard.append, source=speech.WavFileSource(wav))
    assert direct.wait(30)
    assert lines == [f"{r.time:.3f}\tyes\t{r.score:.3f}" for r in heard] and len(lines) >= 3


def test_recognize_names_the_missing_shipped_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(model_files, "PRETRAINED_DIR", tmp_path / "gone")
    wav = audio.write_wav(tmp_path / "a.wav", clip(), 16000)
    assert main(["speech", "recognize", str(wav)]) == 2
    err = capsys.readouterr().err
    assert "install is incomplete" in err and str(tmp_path / "gone") in err and len(err.strip().splitlines()) == 1
