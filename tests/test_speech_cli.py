"""``sightsound speech synth|train|evaluate|recognize|spectrogram`` end to end on a small corpus."""

import json
import re

import numpy as np
import pytest
import soundfile as sf
from conftest import needs_espeak

from sightsound import audio
from sightsound.cli import main
from sightsound.data import speech_commands as sc

pytestmark = [needs_espeak(),
              pytest.mark.usefixtures("private_speech_cache")]


@pytest.fixture(scope="module")
def cli_corpus(tmp_path_factory):
    """The small corpus for seed 0, made through the CLI unless test_speech_data built it already
    (the corpus is deterministic, so both give the same files)."""
    path = tmp_path_factory.getbasetemp() / "speech-small-seed0"
    if not path.is_dir():
        assert main(["speech", "synth", str(path), "--size", "small", "--seed", "0"]) == 0
    return path


@pytest.fixture(scope="module")
def trained(cli_corpus, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("cli") / "model"
    code = main(["speech", "train", str(cli_corpus), str(model_dir), "--epochs", "2", "--seed", "0",
                 "--device", "cpu", "--batch-size", "32"])
    assert code == 0
    return model_dir


def test_synth_cli_made_the_layout(cli_corpus, capsys):
    assert (cli_corpus / "validation_list.txt").is_file() and (cli_corpus / "testing_list.txt").is_file()
    assert len(list((cli_corpus / "stop").glob("*_nohash_*.wav"))) == 20
    assert main(["speech", "synth", str(cli_corpus), "--size", "small"]) == 2
    assert "not empty" in capsys.readouterr().err


def test_train_writes_every_file(trained):
    for name in ("model.json", "weights.bin", "metadata.json", "history.json", "curves.png", "confusion.png",
                 "test_results.json"):
        assert (trained / name).is_file(), name
    meta = json.loads((trained / "metadata.json").read_text())
    assert meta["words"] == list(sc.WORDS) and meta["frameSize"] == 232
    history = json.loads((trained / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    assert all("val_acc" in e for e in history["epochs"])
    assert history["batches"][-1]["batch"] == len(history["batches"])
    results = json.loads((trained / "test_results.json").read_text())
    assert set(results["per_class_accuracy"]) == set(sc.WORDS)
    assert np.array(results["confusion"]).shape == (20, 20)
    model_json = json.loads((trained / "model.json").read_text())
    assert model_json["format"] == "layers-model"


def test_evaluate_matches_training_report(trained, cli_corpus, capsys):
    capsys.readouterr()
    assert main(["speech", "evaluate", str(trained), str(cli_corpus), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    accuracy = float(re.search(r"test accuracy = ([0-9.]+)", out).group(1))
    assert accuracy == pytest.approx(json.loads((trained / "test_results.json").read_text())["accuracy"], abs=1e-4)
    assert "_background_noise_" in out and "zero" in out


def test_recognize_prints_three_guesses_per_file(trained, cli_corpus, tmp_path, capsys):
    clip = sorted((cli_corpus / "yes").glob("*.wav"))[0]
    long = tmp_path / "long.wav"
    x, rate = audio.read_wav(clip)
    sf.write(long, np.concatenate([np.zeros(rate), x, np.zeros(rate)]), rate, subtype="PCM_16")
    capsys.readouterr()
    assert main(["speech", "recognize", "--model", str(trained), str(clip), str(long), "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    word = "|".join(re.escape(w) for w in sc.WORDS)
    pattern = re.compile(rf"^(.+)\t({word})\t(0\.\d{{4}}|1\.0000)\t({word}):(\d\.\d{{4}})\t({word}):(\d\.\d{{4}})$")
    for line, path in zip(lines, (clip, long)):
        m = pattern.match(line)
        assert m, line
        assert m.group(1) == str(path)
        probs = [float(m.group(3)), float(m.group(5)), float(m.group(7))]
        assert probs == sorted(probs, reverse=True)
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    assert main(["speech", "recognize", "--model", str(trained), str(bad), str(clip), "--device", "cpu"]) == 2
    captured = capsys.readouterr()
    assert "bad.wav" in captured.err and len(captured.out.strip().splitlines()) == 1


def test_spectrogram_cli(cli_corpus, tmp_path, capsys):
    clip = sorted((cli_corpus / "seven").glob("*.wav"))[0]
    out = tmp_path / "seven.png"
    assert main(["speech", "spectrogram", str(clip), "-o", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    (tmp_path / "x.wav").write_bytes(b"RIFF")
    assert main(["speech", "spectrogram", str(tmp_path / "x.wav")]) == 2
    assert "x.wav" in capsys.readouterr().err


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["speech", "train", str(tmp_path / "missing"), str(tmp_path / "m"), "--epochs", "1"]) == 2
    assert "no such dataset folder" in capsys.readouterr().err
    (tmp_path / "model").mkdir()
    assert main(["speech", "recognize", "--model", str(tmp_path / "model"), str(tmp_path / "a.wav")]) == 2
    assert "metadata.json" in capsys.readouterr().err


def test_fine_tuning_starts_from_the_saved_weights(trained, cli_corpus, tmp_path, capsys):
    from sightsound.training.speech import load_speech_model

    before, _ = load_speech_model(trained, device="cpu")
    first = json.loads((trained / "history.json").read_text())["epochs"][-1]
    tuned = tmp_path / "tuned"
    assert main(["speech", "train", str(cli_corpus), str(tuned), "--from", str(trained), "--epochs", "1",
                 "--seed", "0", "--device", "cpu", "--batch-size", "32", "--snr", "-5", "20",
                 "--noise-probability", "0.9", "--learning-rate", "0.001"]) == 0
    assert "Total params" not in capsys.readouterr().out  # no fresh network summary
    after, _ = load_speech_model(tuned, device="cpu")
    changes = [float((a - b).abs().max().detach()) for a, b in zip(before.net.parameters(), after.net.parameters())]
    assert 0 < max(changes) < 0.1  # moved a little from the saved weights, not re-initialised
    epoch = json.loads((tuned / "history.json").read_text())["epochs"][0]
    assert epoch["acc"] > first["acc"] - 0.2  # starts where the saved model was, not at chance (0.05)


def test_fine_tuning_and_augmentation_options_are_checked(trained, cli_corpus, tmp_path, capsys):
    other = tmp_path / "fewer-words"
    other.mkdir()
    meta = json.loads((trained / "metadata.json").read_text())
    for name in ("model.json", "weights.bin"):
        (other / name).write_bytes((trained / name).read_bytes())
    changed = meta["words"][:-1] + ["zebra"]
    (other / "metadata.json").write_text(json.dumps({**meta, "words": changed, "wordLabels": changed}))
    args = ["speech", "train", str(cli_corpus), str(tmp_path / "x"), "--epochs", "1", "--device", "cpu"]
    assert main(args + ["--from", str(other)]) == 2
    assert "fine-tuning needs the same word list" in capsys.readouterr().err
    assert main(args + ["--snr", "20", "5"]) == 2
    assert "snr_db must be a finite (min, max) range" in capsys.readouterr().err
    assert main(args + ["--no-augment", "--snr", "0", "10"]) == 2
    assert "--no-augment turns augmentation off; drop --snr or it" in capsys.readouterr().err
    assert main(args + ["--no-augment", "--fragment-probability", "0.1", "--snr-over", "word"]) == 2
    assert "drop --snr-over/--fragment-probability or it" in capsys.readouterr().err
    assert main(args + ["--partial-probability", "2"]) == 2
    assert "partial_probability must be in [0, 1]" in capsys.readouterr().err
    assert main(args + ["--noise-probability", "1.5"]) == 2
    assert "noise_probability must be in [0, 1]" in capsys.readouterr().err


def test_robust_recipe_trains_with_its_settings_and_schedule(cli_corpus, tmp_path):
    model_dir = tmp_path / "robust"
    assert main(["speech", "train", str(cli_corpus), str(model_dir), "--recipe", "robust", "--epochs", "2",
                 "--seed", "0", "--device", "cpu", "--batch-size", "32", "--snr", "0", "20", "--snr-over", "word"]) == 0
    settings = json.loads((model_dir / "history.json").read_text())["settings"]
    assert settings["recipe"] == "robust" and settings["optimizer"] == "Adam" and settings["epochs"] == 2
    assert settings["unknown_share"] == 0.2 and settings["noise_share"] == 0.1 and settings["augmentation"]["noise_probability"] == 0.85
    assert settings["augmentation"]["snr_db"] == [0.0, 20.0]  # the explicit option beats the recipe's -5 30
    assert settings["augmentation"]["snr_over"] == "word"
    assert settings["schedule"]["class_name"] == "OneCycle"
    assert settings["augmentation"]["fragment_probability"] == 0.1
    assert settings["augmentation"]["partial_probability"] == 0.15


def test_robust_recipe_follows_a_one_cycle_learning_rate(cli_corpus):
    from sightsound.engine.callbacks import Callback
    from sightsound.training.speech import train_speech

    class Rates(Callback):
        seen = []

        def on_batch_begin(self, batch, logs=None):
            self.seen.append(self.model.optimizer.learning_rate)

    result = train_speech(cli_corpus, epochs=2, batch_size=32, device="cpu", seed=0, recipe="robust",
                          callbacks=[Rates()])
    rates = Rates.seen
    peak = int(np.argmax(rates))
    assert rates[0] == pytest.approx(0.0002) and rates[peak] == pytest.approx(0.002, rel=0.05)
    assert 0 < peak < len(rates) // 4 and rates[-1] == pytest.approx(0.000002)  # up 10 %, then down to 1/1000
    assert result.settings["learning_rate"] == 0.002
    chapter = train_speech(cli_corpus, epochs=1, batch_size=32, device="cpu", seed=0)
    assert chapter.settings["optimizer"] == "SGD" and chapter.settings["schedule"] is None
    with pytest.raises(ValueError, match="recipe 'fast' is defined for mnist-conv"):
        train_speech(cli_corpus, epochs=1, recipe="fast")


def test_a_speech_job_takes_one_settings_object(cli_corpus):
    from sightsound.training.speech import SpeechSettings, train_speech

    settings = SpeechSettings.of("robust", epochs=1, batch_size=32, augmentation=None)
    assert (settings.optimizer, settings.learning_rate, settings.unknown_share) == ("adam", 0.002, 0.2)
    assert SpeechSettings.of(optimizer="adam").learning_rate is None  # another optimizer: its own default rate
    result = train_speech(cli_corpus, settings=settings, device="cpu", seed=0)
    assert result.settings["recipe"] == "robust" and result.settings["augmentation"] is None
    with pytest.raises(ValueError, match="takes no separate settings"):
        train_speech(cli_corpus, settings=settings, epochs=3)


def test_an_interrupted_training_run_continues_where_it_stopped(cli_corpus, tmp_path):
    import torch

    from sightsound.engine.callbacks import Callback
    from sightsound.tfjs import load_layers_model
    from sightsound.training.speech import train_speech

    class StopAtSecondEpoch(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    options = dict(epochs=2, batch_size=32, device="cpu", seed=4, recipe="people")
    whole = train_speech(cli_corpus, tmp_path / "whole", **options)
    assert not (tmp_path / "whole" / "checkpoint").exists()  # a finished run leaves no checkpoint
    with pytest.raises(KeyboardInterrupt):
        train_speech(cli_corpus, tmp_path / "resumed", callbacks=[StopAtSecondEpoch()], **options)
    assert (tmp_path / "resumed" / "checkpoint" / "model.json").is_file()
    resumed = train_speech(cli_corpus, tmp_path / "resumed", **options)
    assert resumed.epochs == 2 and [e["epoch"] for e in resumed.history["epochs"]] == [e["epoch"] for e in whole.history["epochs"]]
    a = load_layers_model(str(tmp_path / "whole")).net.state_dict()
    b = load_layers_model(str(tmp_path / "resumed")).net.state_dict()
    differ = {k: float((a[k].double() - b[k].double()).abs().max()) for k in a if not torch.equal(a[k], b[k])}
    assert a.keys() == b.keys() and not differ, differ
    with pytest.warns(UserWarning, match="other settings"):  # a checkpoint of another run is not continued
        with pytest.raises(KeyboardInterrupt):
            train_speech(cli_corpus, tmp_path / "other", callbacks=[StopAtSecondEpoch()], **options)
        train_speech(cli_corpus, tmp_path / "other", **{**options, "seed": 5})


def test_train_takes_the_recipes_architecture_or_the_one_asked_for(cli_corpus, tmp_path, capsys):
    out = tmp_path / "bn"
    assert main(["speech", "train", str(cli_corpus), str(out), "--architecture", "speech-bn", "--epochs", "1",
                 "--device", "cpu", "--batch-size", "32"]) == 0
    history = json.loads((out / "history.json").read_text())
    assert history["preset"] == "speech-bn" and history["settings"]["model"] == "speech-bn"
    assert "batch_normalization" in (out / "model.json").read_text()
    assert "230,084" in capsys.readouterr().out.replace("230084", "230,084")  # the summary of what it trains
    with pytest.raises(SystemExit):
        main(["speech", "train", str(cli_corpus), str(out), "--architecture", "mnist-conv"])
