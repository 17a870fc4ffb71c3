"""The Teach words page's API (sightsound/web/teach.py): examples, training, recognition, files."""

import io
import time

import numpy as np
import pytest
import soundfile as sf
from conftest import needs_espeak
from fastapi.testclient import TestClient
from transfer_words import RATE, SETTINGS, WORDS, noise_clip, word_clip
from web_helpers import TESTCLIENT_HOST

from sightsound.speech.dataset import Dataset
from sightsound.web.app import create_app

NOISE = "_background_noise_"
pytestmark = needs_espeak()  # the words are rendered by espeak-ng


def wav(samples) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


@pytest.fixture()
def client(tmp_path):
    app = create_app(tmp_path / "models", allowed_hosts=[TESTCLIENT_HOST])
    with TestClient(app) as test_client:
        yield test_client


def post_example(client, sid, word, samples):
    reply = client.post(f"/api/teach/{sid}/examples", params={"word": word}, content=wav(samples),
                        headers={"Content-Type": "audio/wav"})
    assert reply.status_code == 200, reply.text
    return reply.json()


def train(client, sid, epochs, seed=0):
    assert client.post(f"/api/teach/{sid}/train", json={"epochs": epochs, "seed": seed}).status_code == 200
    for _ in range(600):
        state = client.get(f"/api/teach/{sid}/train").json()
        if not state["running"]:
            return state
        time.sleep(0.1)
    raise AssertionError("training did not end within a minute")


def test_teach_words_from_examples_then_recognise_save_and_reload(client, tmp_path):
    assert client.get("/teach").status_code == 200
    session = client.post("/api/teach").json()
    assert (session["noise_label"], session["unknown_label"]) == ("_background_noise_", "_unknown_")
    assert session["epochs"] == {"default": 50, "min": 1, "max": 500}
    assert session["seed"] == {"min": 0, "max": 2**31 - 1}
    assert session["other_speech_examples"] == 100  # shipped beside the model; every training teaches them
    sid = session["id"]
    first = post_example(client, sid, WORDS[0], word_clip(WORDS[0], *SETTINGS[0]))
    assert np.array(first["spectrogram"]).shape == (43, 232)
    reply = client.post(f"/api/teach/{sid}/train", json={"epochs": 2})
    assert reply.status_code == 400 and "Requires at least 2" in reply.json()["error"]
    for options, message in (({"epochs": 0}, "epochs must be an integer from 1 to 500"),
                             ({"epochs": True}, "epochs must be an integer"),
                             ({"seed": -1}, "seed must be an integer from 0 to 2147483647"),
                             ({"seed": "7"}, "seed must be an integer")):
        reply = client.post(f"/api/teach/{sid}/train", json=options)
        assert reply.status_code == 400 and message in reply.json()["error"], options
    for word in WORDS:
        for i, (pitch, rate) in enumerate(SETTINGS[1:4] if word == WORDS[0] else SETTINGS[:4]):
            state = post_example(client, sid, word, word_clip(word, pitch, rate, i))
    state = post_example(client, sid, NOISE, noise_clip(3, 0))
    assert state["counts"] == {NOISE: 1, **{w: 4 for w in WORDS}}
    extra = post_example(client, sid, WORDS[1], noise_clip(1, 5))  # a bad take...
    state = client.delete(f"/api/teach/{sid}/examples/{extra['uid']}").json()  # ...deleted
    assert state["counts"][WORDS[1]] == 4
    done = train(client, sid, 50)
    assert done["error"] is None and len(done["epochs"]) == 50 and done["trained"]
    heard = [client.post(f"/api/teach/{sid}/recognize", content=wav(word_clip(w, 60, 165, 7))).json()["word"]
             for w in WORDS]
    assert heard == list(WORDS)
    data = client.get(f"/api/teach/{sid}/examples.bin").content
    assert Dataset.from_bytes(data).counts() == state["counts"]
    assert client.post(f"/api/teach/{sid}/save", json={"name": "my-words"}).status_code == 200
    models = {m["name"]: m for m in client.get("/api/models").json()["models"]}
    assert models["my-words"]["kind"] == "speech" and models["my-words"]["labels"] == [NOISE, "_unknown_", *WORDS]
    assert client.get("/models/my-words/metadata.json").status_code == 200
    other = client.post("/api/teach").json()["id"]
    reply = client.post(f"/api/teach/{other}/examples.bin", content=b"TFJSSCDX" + data[8:])
    assert reply.status_code == 400 and "wrong descriptor" in reply.json()["error"]
    loaded = client.post(f"/api/teach/{other}/examples.bin", content=data).json()
    assert loaded["counts"] == state["counts"]
    assert train(client, other, 50)["epochs"] == done["epochs"]  # the same examples and seed: the same run
    assert client.get("/api/teach/nope").status_code == 400
