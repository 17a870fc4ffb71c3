"""The web app under concurrent use and hostile request bodies.

* Two training jobs at once (tiny: 1,000 images, one epoch) while predictions
  keep coming: no crash, every event carries its own job's id and settings,
  both models are saved under their own names, predictions are answered.
* Hypothesis-generated bodies for ``POST /api/predict``, ``POST /api/train``
  and the websocket text messages of ``/ws/audio`` and ``/ws/train``: the
  answer is always a result or a JSON error; a 500 (even a JSON one), a
  traceback escaping the app or an abnormal websocket close is a bug.

Models are random-weight presets and the data is a tiny synthetic
``mnist.npz``, so nothing here needs the real MNIST.
"""

from __future__ import annotations

import json
import random
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starlette.websockets import WebSocketDisconnect

import sightsound.speech  # noqa: F401  (the audio socket serves it: a broken import must fail, not skip)
from sightsound import presets
from sightsound.web import create_app
from web_helpers import SPEECH_WORDS, TESTCLIENT_HOST, png_bytes, save_speech_model, write_synthetic_mnist
from sightsound.web.jobs import TrainingJob

DIGITS = "conv-digits"
SPEECH = "speech-tiny"
HYPOTHESIS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])



def digit_png() -> bytes:
    drawing = np.full((60, 50), 255, dtype=np.uint8)
    drawing[10:50, 22:28] = 0
    return png_bytes(drawing)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A synthetic MNIST (Keras npz layout) with 1,200 training and 200 test images."""
    return write_synthetic_mnist(tmp_path_factory.mktemp("load-data"), 1200, 200, seed=3)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    """A digits model and, once sightsound.speech exists, a tiny random-weight speech model."""
    folder = tmp_path_factory.mktemp("load-models")
    presets.build("mnist-conv", device="cpu").save(str(folder / DIGITS), user_defined_metadata={"preset": "mnist-conv"})
    save_speech_model(folder / SPEECH, filters=2)
    return folder


@pytest.fixture(scope="module")
def client(models_dir, data_dir):
    app = create_app(models_dir, data_dir=data_dir, allowed_hosts=[TESTCLIENT_HOST])
    with TestClient(app) as test_client:
        yield test_client
        app.state.web.jobs.stop_all()


def assert_answer(response, ok_keys: tuple[str, ...]) -> dict:
    """A result (2xx with ``ok_keys``) or a JSON error (4xx with a message); never a 5xx."""
    event(f"HTTP {response.status_code}")
    assert response.status_code < 500, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json"), response.text[:200]
    body = response.json()
    if response.status_code < 300:
        assert all(key in body for key in ok_keys), body
    else:
        assert isinstance(body.get("error"), str) and body["error"], body
    return body


# --------------------------------------------------------------------------- two jobs and predictions

def follow(client, job_id: str, into: list, timeout: float = 120) -> None:
    """Every event of one job's websocket (run in its own thread), until the job ends."""
    deadline = time.monotonic() + timeout
    with client.websocket_connect(f"/ws/train/{job_id}") as socket:
        while time.monotonic() < deadline:
            try:
                into.append(socket.receive_json())
            except WebSocketDisconnect:
                return
            if into[-1]["type"] in ("done", "stopped", "error"):
                return


def test_two_jobs_and_predictions_at_once(client, models_dir, monkeypatch):
    timeline = []  # (time, job id, event type) of every event, to see that the jobs really overlap
    emit = TrainingJob.emit
    monkeypatch.setattr(TrainingJob, "emit",
                        lambda job, event: (timeline.append((time.monotonic(), job.id, event["type"])),
                                            emit(job, event))[-1])
    requests = {
        "load-a": {"model": "conv", "epochs": 1, "batch_size": 50, "train_limit": 1000, "test_limit": 100,
                   "validation_split": 0.1, "seed": 1, "name": "load-a"},
        "load-b": {"model": "dense", "epochs": 1, "batch_size": 20, "train_limit": 900, "test_limit": 150,
                   "validation_split": 0.2, "seed": 2, "name": "load-b"},
    }
    jobs = {}
    for name, body in requests.items():
        response = client.post("/api/train", json=body)
        assert response.status_code == 201, response.text
        jobs[name] = response.json()["job_id"]
    assert jobs["load-a"] != jobs["load-b"]
    streams = {name: [] for name in jobs}
    followers = [threading.Thread(target=follow, args=(client, jobs[name], streams[name]), daemon=True)
                 for name in jobs]
    for thread in followers:
        thread.start()

    answered, during_training = predict_until_finished(client, jobs.values())
    for thread in followers:
        thread.join(30)
    assert during_training >= 3, (answered, during_training)
    batch_times = {job_id: [t for t, i, kind in timeline if i == job_id and kind == "batch"] for job_id in jobs.values()}
    a, b = batch_times[jobs["load-a"]], batch_times[jobs["load-b"]]
    assert a and b and max(a[0], b[0]) < min(a[-1], b[-1]), "the two jobs did not train at the same time"

    for name, job_id in jobs.items():
        check_finished_job(client, models_dir, name, requests[name], job_id, streams[name])
    assert not [p for p in models_dir.iterdir() if p.name.startswith(".training")]
    listed = {m["name"] for m in client.get("/api/models").json()["models"]}
    assert {"load-a", "load-b", DIGITS} <= listed


def predict_until_finished(client, job_ids) -> tuple[int, int]:
    """Ask for predictions until the jobs end (each must be answered); returns how many were answered and
    how many of them while a job was past its first epoch's start."""
    manager = client.app.state.web.jobs
    answered, during_training = 0, 0
    deadline = time.monotonic() + 120
    while any(not manager.get(i).finished for i in job_ids) and time.monotonic() < deadline:
        training = any(manager.get(i).state == "running" and manager.get(i).epoch >= 1 for i in job_ids)
        response = client.post("/api/predict", files={"file": ("d.png", digit_png(), "image/png")},
                               data={"model": DIGITS, "top_k": "2"})
        assert response.status_code == 200, response.text
        assert len(response.json()["top"]) == 2
        answered += 1
        during_training += training
    return answered, during_training


def check_finished_job(client, models_dir, name: str, body: dict, job_id: str, events: list[dict]) -> None:
    """A job's events (its own, every batch, done), its state and the model and history it saved."""
    from sightsound import load_layers_model

    assert events and {e["job_id"] for e in events} == {job_id}, name
    start = next(e for e in events if e["type"] == "start")
    assert start["name"] == name and start["model"] == body["model"] and start["batch_size"] == body["batch_size"]
    n_train = int(body["train_limit"] * (1 - body["validation_split"]))
    assert start["train_examples"] == n_train and start["total_batches"] == -(-n_train // body["batch_size"])
    batches = [e["batch"] for e in events if e["type"] == "batch"]
    assert batches == list(range(1, start["total_batches"] + 1)), name
    final = events[-1]
    assert final["type"] == "done" and final["model"] == name, final
    state = client.get(f"/api/train/{job_id}").json()
    assert state["params"] == body and state["name"] == name
    saved = load_layers_model(str(models_dir / name), device="cpu")
    assert saved.user_defined_metadata["preset"] == f"mnist-{body['model']}"
    history = json.loads((models_dir / name / "history.json").read_text())
    assert len(history["batches"]) == start["total_batches"]


# --------------------------------------------------------------------------- hostile bodies

NAMES = st.sampled_from([DIGITS, SPEECH, "missing", "../../etc/passwd", "..", "%2e%2e", "/etc", "a\x00b",
                         "x" * 65, "ｃｏｎｖ", "conv-digits\n", "", " ", "CON", "a/b", "\u202eevil", ".hidden"])
SCALARS = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=30) | NAMES)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)


def _json_text(value) -> str:
    return json.dumps(value)  # NaN and Infinity as JavaScript writes them: json.loads accepts them


_IMAGE_SEED = digit_png()


@st.composite
def image_bodies(draw):
    kind = draw(st.sampled_from(["png", "png", "mutated", "mutated", "random", "empty"]))
    if kind == "png":
        return _IMAGE_SEED
    if kind == "mutated":
        from fuzz_targets import mutate

        return mutate(_IMAGE_SEED, random.Random(draw(st.integers(0, 2**32))))
    if kind == "random":
        return draw(st.binary(max_size=300))
    return b""


VALID_TYPES = st.sampled_from(["image/png", "image/png", "IMAGE/PNG; charset=x"])
CONTENT_TYPES = VALID_TYPES | st.sampled_from([
    "image/jpeg", "image/gif", "image/svg+xml", "application/json", "text/plain", "", "multipart/form-data",
    "multipart/form-data; boundary=", "multipart/form-data; boundary=zzz", "application/octet-stream", "image/"])
GOOD_FIELDS = st.fixed_dictionaries({}, optional={"model": st.just(DIGITS), "top_k": st.integers(1, 10).map(str),
                                                  "raw": st.sampled_from(["1", "0", "true", "no"])})
FIELDS = GOOD_FIELDS | st.dictionaries(st.sampled_from(["model", "top_k", "raw", "file", "other"]),
                                       NAMES | st.text(max_size=12) | st.integers(-5, 50).map(str), max_size=4)


@HYPOTHESIS
@given(how=st.sampled_from(["raw", "multipart", "multipart", "form-only"]), body=image_bodies(),
       content_type=CONTENT_TYPES, fields=FIELDS, query=GOOD_FIELDS | FIELDS, part_type=CONTENT_TYPES)
def test_predict_answers_any_body(client, how, body, content_type, fields, query, part_type):
    if how == "raw":
        headers = {"content-type": content_type} if content_type else {}
        response = client.post("/api/predict", params=query, content=body, headers=headers)
    elif how == "multipart":
        response = client.post("/api/predict", params=query, data=fields,
                               files={"file": ("x.png", body, part_type or "image/png")})
    else:
        response = client.post("/api/predict", params=query, data=fields or {"a": "b"})
    assert_answer(response, ("top", "probabilities", "model"))


TRAIN_KEYS = st.sampled_from(["model", "epochs", "batch_size", "validation_split", "train_limit", "test_limit",
                              "name", "seed", "extra"])
VALID_TRAIN = st.fixed_dictionaries({}, optional={
    "model": st.sampled_from(["conv", "dense", "enhanced"]), "epochs": st.integers(1, 100),
    "batch_size": st.integers(1, 4096), "validation_split": st.floats(0, 0.5), "train_limit": st.integers(10, 60_000),
    "test_limit": st.integers(10, 10_000), "name": st.from_regex(r"\A[a-z0-9][a-z0-9._-]{0,20}\Z"),
    "seed": st.integers(0, 2**31 - 1)})
TRAIN_BODIES = (VALID_TRAIN | VALID_TRAIN
                | st.builds(lambda body, key, value: {**body, key: value}, VALID_TRAIN, TRAIN_KEYS, JSON_VALUES)
                | st.dictionaries(TRAIN_KEYS, JSON_VALUES | st.integers(0, 70_000), max_size=6)
                | JSON_VALUES)


@pytest.fixture()
def no_training(monkeypatch):
    """Accepted jobs end at once instead of training (the bodies are what is tested, not training)."""
    def start(job):
        job.state = "done"
        _no_thread(job)

    monkeypatch.setattr(TrainingJob, "start", start)


def _no_thread(job) -> None:
    """Give ``job`` a finished thread instead of training (so ``stop_all`` can join it)."""
    job.thread = threading.Thread(target=lambda: None, daemon=True)
    job.thread.start()


@HYPOTHESIS
@given(body=TRAIN_BODIES, raw=st.none() | st.binary(max_size=80),
       content_type=st.sampled_from(["application/json", "text/plain", "", "application/x-www-form-urlencoded"]))
def test_train_answers_any_body(client, no_training, body, raw, content_type):
    data = raw if raw is not None else _json_text(body).encode()
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/api/train", content=data, headers=headers)
    assert_answer(response, ("job_id", "state", "params"))


WS_CLOSE_CODES = {1000, 1003, 1008, 1009, 4400, 4404, 4501}
CONFIG_KEYS = st.sampled_from(["model", "sample_rate", "threshold", "overlap", "type", "value"])
GOOD_CONFIG = st.fixed_dictionaries({"sample_rate": st.sampled_from([8000, 16000, 44100, 48000])}, optional={
    "model": st.just(SPEECH), "threshold": st.floats(0, 1), "overlap": st.floats(0, 0.9)})
CONFIGS = (GOOD_CONFIG | GOOD_CONFIG
           | st.builds(lambda config, key, value: {**config, key: value}, GOOD_CONFIG, CONFIG_KEYS, JSON_VALUES)
           | st.dictionaries(CONFIG_KEYS, JSON_VALUES | st.integers(0, 200_000), max_size=4) | JSON_VALUES)
PCM = st.lists(st.floats(-1, 1, width=32), max_size=400).map(lambda xs: np.asarray(xs, "<f4").tobytes())
CONTROL = (st.builds(lambda v: {"type": "threshold", "value": v}, st.floats(0, 1) | JSON_VALUES)
           | st.dictionaries(CONFIG_KEYS, JSON_VALUES, max_size=3) | JSON_VALUES).map(_json_text)
MESSAGES = st.lists(PCM | PCM | CONTROL | st.text(max_size=40) | st.binary(max_size=512).map(bytes), max_size=4)


@HYPOTHESIS
@given(start=CONFIGS.map(_json_text) | st.text(max_size=60), messages=MESSAGES)
def test_audio_socket_answers_any_messages(client, start, messages):
    received = []
    with client.websocket_connect("/ws/audio") as socket:
        socket.send_text(start)
        for message in messages + ["stop"]:
            if isinstance(message, bytes):
                socket.send_bytes(message)
            else:
                socket.send_text(message)
        with pytest.raises(WebSocketDisconnect) as closed:
            for _ in range(10_000):
                received.append(socket.receive_json())
    event(f"close {closed.value.code}" + (" after ready" if any(m["type"] == "ready" for m in received) else ""))
    assert closed.value.code in WS_CLOSE_CODES, (closed.value.code, received[-3:])
    assert all(isinstance(m, dict) and isinstance(m.get("type"), str) for m in received)
    if closed.value.code != 1000:
        assert received and received[-1]["type"] == "error" and received[-1]["error"], received[-3:]


@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(st.text(max_size=200) | st.binary(max_size=200), min_size=1, max_size=4))
def test_train_socket_answers_any_messages(client, monkeypatch, messages):
    monkeypatch.setattr(TrainingJob, "start", _no_thread)  # a job that waits until the test ends it
    job_id = client.post("/api/train", json={"model": "dense", "epochs": 1}).json()["job_id"]
    job = client.app.state.web.jobs.get(job_id)
    try:
        with client.websocket_connect(f"/ws/train/{job_id}") as socket:
            for message in messages:
                if isinstance(message, bytes):
                    socket.send_bytes(message)
                else:
                    socket.send_text(message)
            job.state = "stopped"
            job.emit({"type": "stopped", "state": "stopped"})
            with pytest.raises(WebSocketDisconnect) as closed:
                for _ in range(100):
                    event = socket.receive_json()
                    assert isinstance(event, dict) and event["job_id"] == job_id
    finally:
        job.state = "stopped"
    assert closed.value.code in WS_CLOSE_CODES
