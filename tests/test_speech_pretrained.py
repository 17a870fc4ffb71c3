"""The default speech model shipped in the package, and the speech-commands package's published models.

The shipped model's location (``model_files.PRETRAINED_DIR``) is pointed at a
small model each test saves; the published ``18w`` / ``directional4w`` models
are served from a local HTTP server on 127.0.0.1 under the package's own path
layout, through ``$SIGHTSOUND_SPEECH_MODELS_URL``.
"""

from __future__ import annotations

import json
import re
import urllib.parse

import numpy as np
import pytest
from conftest import NPM_FIX, REPO, require
from fastapi.testclient import TestClient
from http_helpers import local_server
from web_helpers import SPEECH_WORDS, TESTCLIENT_HOST, save_speech_model

from sightsound import audio, speech
from sightsound.cli import main
from sightsound.cli.speech_listen import add_listen_command
from sightsound.errors import FetchError, ModelFormatError
from sightsound.speech import model_files, published
from sightsound.web import create_app
from sightsound.web.models import BUILTIN_SPEECH_MODEL

SHARDS = ("group1-shard1of2", "group1-shard2of2")  # the published models' weight file names


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


# -- the web app -----------------------------------------------------------------------------------------

def web_client(models_dir):
    return TestClient(create_app(models_dir, data_dir=models_dir, allowed_hosts=[TESTCLIENT_HOST]))


def listen_ready(client, start: dict) -> dict:
    with client.websocket_connect("/ws/audio") as socket:
        socket.send_text(json.dumps(start))
        message = socket.receive_json()
        socket.send_text("stop")
    return message


def test_the_web_app_lists_and_uses_the_shipped_model(shipped, tmp_path):
    models = tmp_path / "models"
    (models / BUILTIN_SPEECH_MODEL).mkdir(parents=True)  # a folder of the reserved name shadows nothing
    (models / BUILTIN_SPEECH_MODEL / "model.json").write_text("{}")
    with web_client(models) as client:
        listed = client.get("/api/models").json()["models"]
        assert [(m["name"], m["kind"], m["builtin"]) for m in listed] == [(BUILTIN_SPEECH_MODEL, "speech", True)]
        assert listed[0]["labels"] == SPEECH_WORDS
        served = client.get(f"/models/{BUILTIN_SPEECH_MODEL}/model.json")
        assert served.status_code == 200 and served.content == (shipped / "model.json").read_bytes()
        ready = listen_ready(client, {"sample_rate": 16000})
        assert ready["type"] == "ready" and ready["model"] == BUILTIN_SPEECH_MODEL and ready["words"] == SPEECH_WORDS
        refused = client.post("/api/train", json={"model": "dense", "name": BUILTIN_SPEECH_MODEL})
        assert refused.status_code == 409 and "shipped" in refused.json()["error"]

    save_speech_model(models / "mine")  # the user's own speech model comes first and is the default
    with web_client(models) as client:
        listed = client.get("/api/models").json()["models"]
        assert [m["name"] for m in listed] == ["mine", BUILTIN_SPEECH_MODEL]
        assert listen_ready(client, {"sample_rate": 16000})["model"] == "mine"
        assert listen_ready(client, {"sample_rate": 16000, "model": BUILTIN_SPEECH_MODEL})["type"] == "ready"


def test_the_web_app_says_when_the_shipped_model_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(model_files, "PRETRAINED_DIR", tmp_path / "gone")
    with web_client(tmp_path / "models") as client:
        assert client.get("/api/models").json()["models"] == []
        assert client.get(f"/models/{BUILTIN_SPEECH_MODEL}/model.json").status_code == 404
        message = listen_ready(client, {"sample_rate": 16000})
        assert message["type"] == "error" and "install is incomplete" in message["error"]
        assert str(tmp_path) not in message["error"]  # no server paths for the page


# -- the published models --------------------------------------------------------------------------------

def test_the_published_urls_are_the_packages(monkeypatch):
    """As the installed speech-commands package builds them: MODEL_URL_PREFIX ('.../v' + major.minor of its
    version + '/browser_fft') + '/' + vocabulary + '/model.json', for its VALID_VOCABULARY_NAMES."""
    package = REPO / "node_modules" / "@tensorflow-models" / "speech-commands"
    require(package.is_dir(), "node_modules/@tensorflow-models/speech-commands", NPM_FIX)
    version = json.loads((package / "package.json").read_text())["version"]
    source = (package / "dist" / "browser_fft_recognizer.js").read_text()
    prefix = re.search(r'MODEL_URL_PREFIX = "([^"]+)" \+ getMajorAndMinorVersion\(version_1\.version\) '
                       r'\+ "([^"]+)"', source)
    names = re.search(r"VALID_VOCABULARY_NAMES = \[([^\]]*)\]", source)
    assert version == model_files.SPEECH_COMMANDS_VERSION
    assert published.DEFAULT_MODELS_URL == prefix.group(1) + ".".join(version.split(".")[:2]) + prefix.group(2)
    assert published.VOCABULARIES == tuple(re.findall(r"'([^']+)'", names.group(1)))
    monkeypatch.delenv(published.MODELS_URL_ENV, raising=False)
    assert published.model_url("18w") == ("https://storage.googleapis.com/tfjs-models/tfjs/speech-commands/v0.5/"
                                          "browser_fft/18w/model.json")
    assert published.metadata_url("directional4w").endswith("/v0.5/browser_fft/directional4w/metadata.json")
    assert published.CACHE_SUBDIR == ("speech-commands", "v0.5", "browser_fft")


def save_published_model(folder):
    """A small speech model laid out as the published ones: weights in two shards, metadata.json with
    ``words`` and ``frameSize`` only."""
    save_yes_model(folder)
    weights = (folder / "weights.bin").read_bytes()
    (folder / "weights.bin").unlink()
    (folder / SHARDS[0]).write_bytes(weights[:1000])
    (folder / SHARDS[1]).write_bytes(weights[1000:])
    doc = json.loads((folder / "model.json").read_text())
    doc["weightsManifest"][0]["paths"] = list(SHARDS)
    (folder / "model.json").write_text(json.dumps(doc))
    return folder


@pytest.fixture()
def mirror(tmp_path, monkeypatch):
    """The published '18w' model on a local server under the package's path layout; the cache in tmp_path."""
    save_published_model(tmp_path / "served" / "18w")
    monkeypatch.setenv("SIGHTSOUND_CACHE", str(tmp_path / "cache"))
    prefix = urllib.parse.urlsplit(published.DEFAULT_MODELS_URL).path
    with local_server() as server:
        server.serve_folder(f"{prefix}/18w", tmp_path / "served" / "18w")
        monkeypatch.setenv(published.MODELS_URL_ENV, server.url(prefix))
        yield server, tmp_path


def test_a_published_model_is_downloaded_once_then_used_offline(mirror, capsys):
    server, tmp_path = mirror
    recognizer = speech.create("BROWSER_FFT", "18w", device="cpu")
    cached = tmp_path / "cache" / "speech-commands" / "v0.5" / "browser_fft" / "18w"
    assert recognizer.where == str(cached) and recognizer.word_labels() == SPEECH_WORDS
    got = sorted(path.rsplit("/", 1)[1] for path, _ in server.requests)
    assert got == sorted(["model.json", "metadata.json", *SHARDS])
    assert sorted(p.name for p in cached.iterdir()) == sorted(["model.json", "metadata.json", *SHARDS])
    for path in cached.iterdir():
        assert path.read_bytes() == (tmp_path / "served" / "18w" / path.name).read_bytes()
    assert sorted(p.name for p in cached.parent.iterdir()) == ["18w"]  # no staging folder left behind
    assert recognizer.recognize(clip()).word == "yes"
    direct = speech.create("BROWSER_FFT", model=tmp_path / "served" / "18w", device="cpu")
    np.testing.assert_array_equal(recognizer.recognize(clip()).scores, direct.recognize(clip()).scores)

    server.httpd.shutdown()
    server.httpd.server_close()  # offline from here on
    again = speech.create("BROWSER_FFT", "18w", device="cpu")
    np.testing.assert_array_equal(again.recognize(clip()).scores, direct.recognize(clip()).scores)
    wav = audio.write_wav(tmp_path / "a.wav", clip(), 16000)
    assert main(["speech", "recognize", "--model", "18w", str(wav), "--device", "cpu"]) == 0
    assert capsys.readouterr().out == again.recognize_clip(*audio.read_wav(wav), path=str(wav)).line() + "\n"


def test_a_failed_download_names_the_url_and_leaves_nothing(mirror):
    server, tmp_path = mirror
    prefix = urllib.parse.urlsplit(published.DEFAULT_MODELS_URL).path
    with pytest.raises(FetchError, match="cannot download the speech-commands model 'directional4w'") as error:
        speech.create("BROWSER_FFT", "directional4w", device="cpu")
    message, url = str(error.value), server.url(f"{prefix}/directional4w/model.json")
    assert "HTTP 404" in message and url in message and error.value.url == url and error.value.status == 404
    assert "no copy is there yet" in message and published.MODELS_URL_ENV in message

    # model.json arrives, a weight file does not: the download is dropped whole
    served = tmp_path / "served" / "18w"
    server.routes[f"{prefix}/directional4w/model.json"] = (200, (served / "model.json").read_bytes(), {})
    server.routes[f"{prefix}/directional4w/{SHARDS[0]}"] = (200, (served / SHARDS[0]).read_bytes(), {})
    with pytest.raises(FetchError, match=SHARDS[1]):
        speech.create("BROWSER_FFT", "directional4w", device="cpu")
    # every file arrives, but one weight file is short: not a complete model either
    server.routes[f"{prefix}/directional4w/{SHARDS[1]}"] = (200, (served / SHARDS[1]).read_bytes()[:-4], {})
    server.routes[f"{prefix}/directional4w/metadata.json"] = (200, (served / "metadata.json").read_bytes(), {})
    with pytest.raises(ModelFormatError, match="manifest describes"):
        speech.create("BROWSER_FFT", "directional4w", device="cpu")
    cache = tmp_path / "cache" / "speech-commands" / "v0.5" / "browser_fft"
    assert sorted(p.name for p in cache.iterdir()) == []

    server.routes[f"{prefix}/directional4w/{SHARDS[1]}"] = (200, (served / SHARDS[1]).read_bytes(), {})
    assert speech.create("BROWSER_FFT", "directional4w", device="cpu").word_labels() == SPEECH_WORDS


def test_unknown_vocabularies_and_mixed_arguments_are_refused(mirror, tmp_path):
    server, _ = mirror
    with pytest.raises(ValueError, match=r"'20w'.*'18w', 'directional4w'"):
        speech.create("BROWSER_FFT", "20w")
    with pytest.raises(ValueError, match="vocabulary"):
        speech.create("BROWSER_FFT", "18w", model=tmp_path / "served" / "18w")
    assert server.requests == []
