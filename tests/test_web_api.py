"""The web app's JSON API, static model files and websockets, through FastAPI's TestClient.

No browser and no real MNIST: models are random-weight presets saved in a temp
folder, and training jobs run on a tiny synthetic ``mnist.npz``.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
import zipfile

import numpy as np
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

import sightsound.speech  # noqa: F401  (the audio socket serves it: a broken import must fail, not skip)
from sightsound import presets
from sightsound.web import create_app, pages
from sightsound.web.app import WS_MAX_MESSAGES_PER_SECOND, _stream_job
from web_helpers import SPEECH_WORDS, TESTCLIENT_HOST, png_bytes, save_speech_model, write_synthetic_mnist
from sightsound.web.predict import MAX_UPLOAD_BYTES
from sightsound.web.security import INTERNAL_ERROR

PAGE_ORDER = [f"/{name}" for name in pages.PAGES]

MODEL = "conv-random"



def digit_one_png() -> bytes:
    """A dark "1" on white paper, 100x80."""
    drawing = np.full((100, 80), 255, dtype=np.uint8)
    drawing[15:85, 37:45] = 0
    return png_bytes(drawing)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    presets.build("mnist-conv", device="cpu").save(str(folder / MODEL),
                                                   user_defined_metadata={"preset": "mnist-conv"})
    (folder / "not-a-model").mkdir()
    (folder / "secret.txt").write_text("do not serve")
    return folder


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A tiny synthetic MNIST (Keras npz layout): enough for training jobs to run in a blink."""
    return write_synthetic_mnist(tmp_path_factory.mktemp("data"), 400, 100, seed=0)


@pytest.fixture()
def client(models_dir, data_dir):
    app = create_app(models_dir, data_dir=data_dir, allowed_hosts=[TESTCLIENT_HOST])
    with TestClient(app) as test_client:
        yield test_client
        app.state.web.jobs.stop_all()


def assert_json_error(response, status: int, code: str | None = None) -> str:
    """The answer is ``{"error": message, "code": code}`` with ``status`` (and ``code`` when given)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"]
    assert isinstance(body.get("code"), str) and body["code"], body
    assert code is None or body["code"] == code, body
    return body["error"]


# --------------------------------------------------------------------------- models and pages

def test_models_list_shows_saved_models_only(client):
    models = [m for m in client.get("/api/models").json()["models"] if not m["builtin"]]  # not the shipped one
    assert [m["name"] for m in models] == [MODEL]
    (info,) = models
    assert info["kind"] == "mnist" and info["input_shape"] == [28, 28, 1] and info["labels"] == list(range(10))
    assert info["model_json"] == f"/models/{MODEL}/model.json"


def test_a_broken_model_json_is_named_without_its_path_and_left_out_of_the_list(tmp_path):
    from sightsound.errors import ModelFormatError
    from sightsound.web.models import ModelStore

    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.json").write_text('{"modelTopology": ')
    store = ModelStore(tmp_path)
    with pytest.raises(ModelFormatError, match=r"^broken/model.json: malformed JSON") as error:
        store.info("broken")
    assert str(tmp_path) not in str(error.value)
    assert [info for info in store.list() if not info.builtin] == []


def test_pages_and_vendor_files_are_served(client):
    for page in PAGE_ORDER:
        response = client.get(page)
        assert response.status_code == 200 and "<html" in response.text
    assert client.get("/").status_code == 200  # redirects to /draw
    chart = client.get("/vendor/chart.umd.min.js")
    assert chart.status_code == 200 and "Chart" in chart.text[:2000]
    assert client.get("/static/js/draw.js").status_code == 200
    assert_json_error(client.get("/vendor/package.json"), 404)
    assert_json_error(client.get("/no-such-page"), 404, "not_found")


def test_pages_share_one_navigation_in_the_chapters_order(client):
    assert PAGE_ORDER == ["/train", "/test", "/draw", "/speech", "/teach"]
    for page, following in zip(PAGE_ORDER, PAGE_ORDER[1:] + [None]):
        html = client.get(page).text
        assert re.findall(r'<nav aria-label="Pages">(.*?)</nav>', html)[0].count("<a ") == len(PAGE_ORDER)
        assert re.findall(r'href="(/\w+)"', html.split('<nav aria-label="Pages">')[1].split("</nav>")[0]) == \
            PAGE_ORDER
        assert f'<a href="{page}" aria-current="page">' in html
        assert (f'class="next" href="{following}"' in html) if following else 'class="next"' not in html
    assert client.get("/", follow_redirects=False).headers["location"] == "/train"


def test_an_unknown_page_asked_for_by_a_browser_is_a_page(client):
    for path in ("/no-such-page", "/a/b/c"):
        answer = client.get(path, headers={"accept": "text/html,application/xhtml+xml"})
        assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html")
        assert "<h1>Page not found</h1>" in answer.text and '<nav aria-label="Pages">' in answer.text
    escaped = client.get("/<script>", headers={"accept": "text/html"})
    assert "<script>" not in escaped.text.split("<main")[1]
    for path in ("/api/nope", "/models/nope/model.json", "/static/nope.js"):  # machine resources stay JSON
        assert_json_error(client.get(path, headers={"accept": "text/html"}), 404)


def test_model_files_are_served_for_tfjs(client):
    model_json = client.get(f"/models/{MODEL}/model.json")
    assert model_json.status_code == 200
    manifest = model_json.json()["weightsManifest"]
    for group in manifest:
        for path in group["paths"]:
            weights = client.get(f"/models/{MODEL}/{path}")
            assert weights.status_code == 200 and len(weights.content) > 0


def test_a_model_downloads_as_a_zip_that_loads_where_it_is_unzipped(client, models_dir, tmp_path):
    from sightsound import load_layers_model

    answer = client.get(f"/api/models/{MODEL}/download")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
    assert answer.headers["content-disposition"] == f'attachment; filename="{MODEL}.zip"'
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        assert sorted(archive.namelist()) == [f"{MODEL}/model.json", f"{MODEL}/weights.bin"]
        archive.extractall(tmp_path)
    x = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)
    unzipped = load_layers_model(str(tmp_path / MODEL), device="cpu").predict(x)
    np.testing.assert_allclose(unzipped, load_layers_model(str(models_dir / MODEL), device="cpu").predict(x))
    assert_json_error(client.get("/api/models/nope/download"), 404, "model_not_found")
    assert_json_error(client.get("/api/models/..%2F..%2Fetc/download"), 404)


def test_deleting_a_model_removes_its_folder_and_nothing_else(client, models_dir, tmp_path):
    import shutil

    shutil.copytree(models_dir / MODEL, models_dir / "doomed")
    outside = tmp_path / "outside"
    shutil.copytree(models_dir / MODEL, outside)
    (models_dir / "link-out").symlink_to(outside, target_is_directory=True)
    try:
        assert client.delete("/api/models/doomed").json() == {"deleted": "doomed"}
        assert not (models_dir / "doomed").exists()
        assert "doomed" not in [m["name"] for m in client.get("/api/models").json()["models"]]
        assert_json_error(client.delete("/api/models/doomed"), 404, "model_not_found")
        assert_json_error(client.delete("/api/models/link-out"), 400, "bad_model_name")
        assert_json_error(client.delete("/api/models/built-in"), 403, "builtin_model")
        for name in ("..", "..%2F..%2Ftmp", ".hidden", "a%2Fb", "not-a-model"):
            assert client.delete(f"/api/models/{name}").status_code in (400, 404, 405)
        assert (outside / "model.json").is_file() and (models_dir / MODEL / "model.json").is_file()
        assert (models_dir / "secret.txt").is_file() and (models_dir / "not-a-model").is_dir()
        assert not [p for p in models_dir.iterdir() if p.name.startswith(".deleting")]
    finally:
        (models_dir / "link-out").unlink()


@pytest.mark.parametrize("url", [
    "/models/..%2F..%2Fetc/passwd",
    "/models/%2e%2e/model.json",
    "/models/..%2Fsecret.txt/model.json",
    f"/models/{MODEL}/..%2F..%2Fsecret.txt",
    f"/models/{MODEL}/%2e%2e%2fsecret.txt",
    f"/models/{MODEL}/..",
    "/models/../secret.txt",
    f"/models/{MODEL}/.hidden.json",
    "/models/not-a-model/model.json",
    "/static/..%2F..%2Fapp.py",
    "/static/%2e%2e/app.py",
    "/vendor/..%2F..%2Fpackage.json",
    "/api/test-results/..%2F..%2Fetc",
    "/api/test-results/..",
])
def test_path_traversal_is_refused(client, url):
    response = client.get(url)
    assert response.status_code in (400, 404), (url, response.status_code, response.text[:200])
    assert "error" in response.json()
    assert "do not serve" not in response.text


def test_missing_front_end_libraries_say_how_to_install(tmp_path, capsys):
    from sightsound.cli import main
    from sightsound.web.assets import AssetsMissing

    with pytest.raises(AssetsMissing, match="npm ci"):
        create_app(tmp_path / "models", assets_dir=tmp_path / "no-node-modules")
    assert main(["serve", "--port", "0", "--models", str(tmp_path / "models"),
                 "--assets", str(tmp_path / "no-node-modules")]) == 2
    assert "make setup" in capsys.readouterr().err


# --------------------------------------------------------------------------- predict

def test_predict_returns_top_k(client):
    response = client.post("/api/predict", files={"file": ("one.png", digit_one_png(), "image/png")},
                           data={"model": MODEL, "top_k": "5"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == MODEL and len(body["top"]) == 5
    probs = [p for _, p in body["top"]]
    assert probs == sorted(probs, reverse=True)
    assert abs(sum(body["probabilities"]) - 1) < 1e-3
    assert body["input"]["width"] == 28 and len(body["input"]["pixels"]) > 0


def test_predict_serves_through_onnx_runtime_once_exported_with_the_same_answer(client, models_dir):
    from sightsound.onnx_export import OnnxPredictor
    from sightsound.web.models import ModelStore

    store = ModelStore(models_dir)
    first = store.predictor(MODEL)  # the loaded model, while the export runs in the background
    assert first is store.load(MODEL)
    for _ in range(300):
        served = store.predictor(MODEL)
        if isinstance(served, OnnxPredictor):
            break
        time.sleep(0.1)
    assert isinstance(served, OnnxPredictor), "the ONNX predictor was not made within 30 s"
    x = np.random.default_rng(0).random((1, 28, 28, 1), dtype=np.float32)
    assert np.abs(served.predict(x) - first.predict(x)).max() <= 1e-5
    answers = [client.post("/api/predict", files={"file": ("one.png", digit_one_png(), "image/png")},
                           data={"model": MODEL}).json()["probabilities"] for _ in range(2)]
    assert np.abs(np.subtract(*answers)).max() <= 1e-5


def test_predict_accepts_raw_image_body_and_raw_mode(client):
    response = client.post(f"/api/predict?model={MODEL}&raw=1", content=digit_one_png(),
                           headers={"content-type": "image/png"})
    assert response.status_code == 200, response.text
    assert response.json()["raw"] is True and len(response.json()["top"]) == 3


def test_predict_uses_newest_model_when_none_named(client):
    response = client.post("/api/predict", files={"file": ("one.png", digit_one_png(), "image/png")})
    assert response.status_code == 200 and response.json()["model"] == MODEL


def test_blank_image_says_no_digit(client):
    blank = png_bytes(np.full((50, 50), 255, dtype=np.uint8))
    response = client.post("/api/predict", files={"file": ("blank.png", blank, "image/png")}, data={"model": MODEL})
    assert_json_error(response, 422, "no_digit")
    assert response.json()["no_digit"] is True


def test_an_upload_that_is_no_image_says_which_formats_are_read(client):
    for name, content, kind in [("notes.png", b"shopping list\n" * 20, "image/png"), ("a.txt", b"hi", "text/plain"),
                                ("a.jpg", digit_one_png(), "image/jpeg")]:
        response = client.post("/api/predict", files={"file": (name, content, kind)}, data={"model": MODEL})
        assert_json_error(response, response.status_code, "not_an_image")
        assert response.json()["formats"] == "PNG, JPEG, GIF, WebP, BMP"


@pytest.mark.parametrize("files, data, status", [
    ({"file": ("a.txt", b"hello", "text/plain")}, {}, 415),                       # wrong content type
    ({"file": ("a.png", b"\x89PNG\r\n\x1a\nnot really", "image/png")}, {}, 400),  # corrupt image
    ({"file": ("a.png", b"", "image/png")}, {}, 400),                            # empty
    ({"file": ("a.jpg", None, "image/jpeg")}, {}, 415),                          # PNG bytes labelled JPEG
    ({"other": ("a.png", None, "image/png")}, {}, 400),                          # no "file" field
    ({"file": ("a.png", None, "image/png")}, {"model": "../../etc"}, 400),       # traversal in model name
    ({"file": ("a.png", None, "image/png")}, {"model": "missing"}, 404),         # unknown model
    ({"file": ("a.png", None, "image/png")}, {"top_k": "many"}, 400),            # not an integer
    ({"file": ("a.png", None, "image/png")}, {"top_k": "50"}, 400),              # too many
])
def test_bad_predict_requests_get_json_errors(client, files, data, status):
    files = {key: (name, content if content is not None else digit_one_png(), kind)
             for key, (name, content, kind) in files.items()}
    assert_json_error(client.post("/api/predict", files=files, data=data), status)


def test_predict_caps_upload_size(client):
    huge = b"\x89PNG" + bytes(MAX_UPLOAD_BYTES + 100)
    response = client.post("/api/predict", files={"file": ("big.png", huge, "image/png")}, data={"model": MODEL})
    assert "larger than" in assert_json_error(response, 413)


def test_predict_caps_pixels_before_decoding(client):
    bomb = png_bytes(np.zeros((5000, 4000), dtype=np.uint8))  # 20 Mpx of zeros: a small file
    assert len(bomb) < MAX_UPLOAD_BYTES
    response = client.post("/api/predict", files={"file": ("bomb.png", bomb, "image/png")}, data={"model": MODEL})
    assert "pixels" in assert_json_error(response, 413)


def test_predict_decodes_like_the_library(client):
    """One decoder: the page's upload is EXIF-rotated as the browser shows it, and the model sees what the CLI sees."""
    import base64
    import io

    from PIL import Image

    from sightsound import image

    lying = Image.new("L", (100, 80), 255)  # a "1" drawn lying down; EXIF 6 says: turn it upright
    lying.paste(0, (15, 36, 85, 44))
    exif = lying.getexif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    lying.save(buffer, "JPEG", exif=exif, quality=95)
    response = client.post("/api/predict", files={"file": ("one.jpg", buffer.getvalue(), "image/jpeg")},
                           data={"model": MODEL})
    assert response.status_code == 200, response.text
    seen = np.frombuffer(base64.b64decode(response.json()["input"]["pixels"]), dtype=np.uint8).reshape(28, 28)
    rows, cols = np.nonzero(seen > 128)
    assert np.ptp(rows) > 3 * np.ptp(cols)  # upright
    expected = image.model_input(buffer.getvalue())[..., 0]
    assert np.array_equal(seen, np.clip(expected * 255.0 + 0.5, 0, 255).astype(np.uint8))


def test_predict_accepts_multi_picture_jpeg_from_phones(client):
    """Pillow calls a JPEG holding several pictures (phones write them) 'MPO': it is image/jpeg all the same."""
    import io

    from PIL import Image

    one = Image.open(io.BytesIO(digit_one_png())).convert("RGB")
    buffer = io.BytesIO()
    one.save(buffer, "MPO", save_all=True, append_images=[Image.new("RGB", one.size, "black")])
    response = client.post("/api/predict", files={"file": ("one.jpg", buffer.getvalue(), "image/jpeg")},
                           data={"model": MODEL})
    assert response.status_code == 200, response.text


def test_predict_pixel_cap_is_the_servers_and_named(client, monkeypatch):
    from sightsound.web import predict

    monkeypatch.setattr(predict, "MAX_UPLOAD_PIXELS", 1000)
    response = client.post("/api/predict", files={"file": ("one.png", digit_one_png(), "image/png")},
                           data={"model": MODEL})
    assert "more than the 1,000 allowed" in assert_json_error(response, 413)


def test_predict_rejects_other_bodies(client):
    assert_json_error(client.post("/api/predict", json={"image": "x"}), 415)
    assert_json_error(client.post("/api/predict", content=b"--x\r\nbroken",
                                  headers={"content-type": "multipart/form-data; boundary=x"}), 400)


def test_unexpected_failure_is_a_json_500_and_the_server_lives_on(client, monkeypatch):
    def explode():
        raise RuntimeError("boom")

    monkeypatch.setattr(client.app.state.web.store, "list", explode)
    assert assert_json_error(client.get("/api/models"), 500) == INTERNAL_ERROR
    monkeypatch.undo()
    assert client.get("/api/models").status_code == 200


# --------------------------------------------------------------------------- test results

def test_test_results_grid(client):
    body = client.get(f"/api/test-results/{MODEL}?offset=10&count=20").json()
    assert body["count"] == 20 and body["offset"] == 10 and body["total"] == 100
    assert [item["index"] for item in body["items"]] == list(range(10, 30))
    assert body["wrong"] == sum(item["label"] != item["predicted"] for item in body["items"])
    assert all(len(item["pixels"]) == 1048 for item in body["items"])  # base64 of 784 bytes
    assert_json_error(client.get(f"/api/test-results/{MODEL}?count=100000"), 400)
    assert_json_error(client.get(f"/api/test-results/{MODEL}?count=abc"), 400)
    assert_json_error(client.get("/api/test-results/missing"), 404)


# --------------------------------------------------------------------------- training jobs

def collect_events(client, job_id: str, timeout: float = 60) -> list[dict]:
    """Every event of one job's websocket until the server closes it."""
    events = []
    deadline = time.monotonic() + timeout
    with client.websocket_connect(f"/ws/train/{job_id}") as socket:
        while time.monotonic() < deadline:
            try:
                events.append(socket.receive_json())
            except WebSocketDisconnect:
                break
            if events[-1]["type"] in ("done", "stopped", "error"):
                break
    return events


def test_two_jobs_stream_only_their_own_events(client, models_dir):
    first = client.post("/api/train", json={"model": "dense", "epochs": 2, "batch_size": 32, "seed": 1})
    second = client.post("/api/train", json={"model": "dense", "epochs": 1, "batch_size": 100, "name": "second"})
    assert first.status_code == 201 and second.status_code == 201, (first.text, second.text)
    ids = first.json()["job_id"], second.json()["job_id"]
    assert ids[0] != ids[1]
    streams = [collect_events(client, job_id) for job_id in ids]
    for job_id, events, (epochs, batch) in zip(ids, streams, [(2, 32), (1, 100)]):
        assert {e["job_id"] for e in events} == {job_id}
        start = next(e for e in events if e["type"] == "start")
        per_epoch = -(-start["train_examples"] // batch)
        assert start["batch_size"] == batch and start["total_batches"] == per_epoch * epochs
        batches = [e for e in events if e["type"] == "batch"]
        assert [e["batch"] for e in batches] == list(range(1, per_epoch * epochs + 1))
        assert len([e for e in events if e["type"] == "epoch"]) == epochs
        assert all("val_acc" in e for e in events if e["type"] == "epoch")
        final = events[-1]
        assert final["type"] == "done" and 0 <= final["test_acc"] <= 1 and final["epochs_run"] == epochs
        state = client.get(f"/api/train/{job_id}").json()
        assert state["state"] == "done" and state["progress"] == 1 and state["result"]["model"] == final["model"]
        assert (models_dir / final["model"] / "model.json").is_file()
        assert (models_dir / final["model"] / "history.json").is_file()
    assert streams[1][-1]["model"] == "second"
    names = {m["name"] for m in client.get("/api/models").json()["models"]}
    assert {streams[0][-1]["model"], "second"} <= names
    assert not [p for p in models_dir.iterdir() if p.name.startswith(".training")]


def test_stop_ends_a_job_early_and_keeps_the_model(client, models_dir):
    job = client.post("/api/train", json={"model": "dense", "epochs": 100, "batch_size": 10}).json()
    job_id = job["job_id"]
    deadline = time.monotonic() + 30
    while client.get(f"/api/train/{job_id}").json()["events"] < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.post(f"/api/train/{job_id}/stop").status_code == 200
    events = collect_events(client, job_id)
    assert events[-1]["type"] == "stopped" and events[-1]["epochs_run"] < 100
    name = events[-1]["model"]
    assert (models_dir / name / "model.json").is_file()
    # Marked as stopped: listed so, never the default (the finished MODEL is older but stays the default).
    listing = client.get("/api/models").json()
    assert {m["name"]: m["stopped"] for m in listing["models"]}[name] is True
    assert listing["defaults"]["mnist"] != name
    assert client.post("/api/predict", files={"file": ("one.png", digit_one_png(), "image/png")}).json()["model"] \
        != name
    # The job's time is the whole job's: every event carries the time since it began, the last one included.
    elapsed = [event["elapsed"] for event in events]
    assert elapsed == sorted(elapsed) and events[-1]["seconds"] >= events[-2]["elapsed"]
    assert events[-1]["seconds"] >= events[-1]["train_seconds"]


def test_stop_over_the_websocket(client):
    job_id = client.post("/api/train", json={"model": "dense", "epochs": 100, "batch_size": 10}).json()["job_id"]
    with client.websocket_connect(f"/ws/train/{job_id}") as socket:
        socket.receive_json()
        socket.send_text("stop")
        while True:
            event = socket.receive_json()
            if event["type"] in ("stopped", "done", "error"):
                break
    assert event["type"] == "stopped"


@pytest.mark.parametrize("body", [
    {"model": "resnet"}, {"epochs": 0}, {"epochs": 1000}, {"batch_size": -1}, {"validation_split": 0.9},
    {"name": "../evil"}, {"name": "a/b"}, {"name": ".hidden"}, {"unknown": 1}, {"train_limit": 5}, [], "text",
])
def test_bad_training_requests_get_json_errors(client, body):
    assert_json_error(client.post("/api/train", json=body), 400)


def test_training_request_with_malformed_json(client):
    response = client.post("/api/train", content=b"{not json", headers={"content-type": "application/json"})
    assert_json_error(response, 400)


def test_name_clash_and_job_cap(client):
    assert "exists" in assert_json_error(client.post("/api/train", json={"name": MODEL}), 409, "name_taken")
    long_jobs = [client.post("/api/train", json={"model": "dense", "epochs": 100, "batch_size": 10}).json()
                 for _ in range(2)]
    assert "already running" in assert_json_error(client.post("/api/train", json={"model": "dense"}), 429,
                                                  "too_many_jobs")
    for job in long_jobs:
        client.post(f"/api/train/{job['job_id']}/stop")
    for job in long_jobs:
        collect_events(client, job["job_id"])


def test_unknown_job(client):
    assert_json_error(client.get("/api/train/nope"), 404)
    assert_json_error(client.post("/api/train/nope/stop"), 404)
    with client.websocket_connect("/ws/train/nope") as socket:
        assert "no training job" in socket.receive_json()["error"]
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
    assert closed.value.code == 4404


@pytest.mark.parametrize("flood, code", [(["x" * 5000], 1009), (["ping"] * 400, 1008)])
def test_websocket_message_size_and_rate_caps(client, flood, code):
    job_id = client.post("/api/train", json={"model": "dense", "epochs": 100, "batch_size": 10}).json()["job_id"]
    try:
        with client.websocket_connect(f"/ws/train/{job_id}") as socket:
            for message in flood:
                socket.send_text(message)
            with pytest.raises(WebSocketDisconnect) as closed:
                for _ in range(100_000):
                    socket.receive_json()
        assert closed.value.code == code
    finally:
        client.post(f"/api/train/{job_id}/stop")
        collect_events(client, job_id)


class EndlessJob:
    """A job whose training thread always has a new event: the stream is sending whenever the page floods it."""

    finished = False

    def __init__(self):
        self.stopped = False
        self.waiters = []

    def add_waiter(self, loop, event):
        self.waiters.append(event)

    def remove_waiter(self, loop, event):
        self.waiters.remove(event)

    def events_since(self, cursor):
        for event in self.waiters:
            event.set()  # the next event is already on its way
        return [{"type": "batch", "batch": cursor}]

    def stop(self):
        self.stopped = True


def test_flooded_training_socket_is_closed_even_while_events_are_being_sent():
    """The close after a flood reaches the page although an event send is in flight at that moment."""
    incoming = [{"type": "websocket.receive", "text": "ping"}] * (WS_MAX_MESSAGES_PER_SECOND + 5)
    sent = []

    async def receive():
        await asyncio.sleep(0)
        return incoming.pop(0) if incoming else await asyncio.Event().wait()

    async def send(message):
        for _ in range(5):  # a server's send waits for its transport: other tasks run before the message leaves
            await asyncio.sleep(0)
        sent.append(message)

    socket = WebSocket({"type": "websocket", "path": "/ws/train/x", "headers": []}, receive, send)
    socket.client_state = socket.application_state = WebSocketState.CONNECTED
    asyncio.run(asyncio.wait_for(_stream_job(socket, EndlessJob(), str), timeout=10))
    assert sent[-1] == {"type": "websocket.close", "code": 1008, "reason": ""}


# --------------------------------------------------------------------------- audio websocket

SPEECH_MODEL = "speech-random"


@pytest.fixture(scope="module")
def speech_models(tmp_path_factory):
    """A models folder with a tiny random-weight speech model (metadata.json with 4 words) and a digits model."""
    folder = tmp_path_factory.mktemp("speech-models")
    save_speech_model(folder / SPEECH_MODEL)
    presets.build("mnist-dense", device="cpu").save(str(folder / "digits"))
    return folder


@pytest.fixture(scope="module")
def speech_client(speech_models, data_dir):
    app = create_app(speech_models, data_dir=data_dir, allowed_hosts=[TESTCLIENT_HOST])
    with TestClient(app) as test_client:
        yield test_client


def receive_until(socket, kind: str, limit: int = 500) -> list[dict]:
    messages = []
    for _ in range(limit):
        messages.append(socket.receive_json())
        if messages[-1]["type"] in (kind, "error"):
            return messages
    raise AssertionError(f"no {kind!r} message in {limit}")


def test_without_the_built_in_model_and_no_speech_model_a_session_is_told_no_model(models_dir, data_dir):
    app = create_app(models_dir, data_dir=data_dir, allowed_hosts=[TESTCLIENT_HOST], builtin_speech=False)
    with TestClient(app) as plain:
        listing = plain.get("/api/models").json()
        assert not [m for m in listing["models"] if m["kind"] == "speech"] and listing["defaults"]["speech"] is None
        assert plain.get("/api/info").json()["builtin_speech"] is False
        assert_json_error(plain.get("/models/built-in/model.json"), 404, "model_not_found")
        with plain.websocket_connect("/ws/audio") as socket:
            socket.send_text(json.dumps({"sample_rate": 48000}))
            message = socket.receive_json()
    assert message["type"] == "error" and message["code"] == "no_model", message


def test_speech_models_list_the_words_a_person_can_say(speech_client):
    (model,) = [m for m in speech_client.get("/api/models").json()["models"] if m["name"] == SPEECH_MODEL]
    assert model["words"] == [w for w in SPEECH_WORDS if not w.startswith("_")] == ["no", "yes"]


def test_speech_models_are_listed_and_refused_for_digits(speech_client):
    models = {m["name"]: m for m in speech_client.get("/api/models").json()["models"]}
    assert models[SPEECH_MODEL]["kind"] == "speech" and models[SPEECH_MODEL]["labels"] == SPEECH_WORDS
    assert models[SPEECH_MODEL]["input_shape"] == [43, 232, 1]
    response = speech_client.post("/api/predict", files={"file": ("one.png", digit_one_png(), "image/png")},
                                  data={"model": SPEECH_MODEL})
    assert "not 28x28" in assert_json_error(response, 400)


def test_audio_stream_gives_frames_and_scores(speech_client):
    rate = 16000
    samples = (0.1 * np.random.default_rng(0).standard_normal(rate * 2)).astype("<f4")
    with speech_client.websocket_connect("/ws/audio") as socket:
        socket.send_text(json.dumps({"model": SPEECH_MODEL, "sample_rate": rate, "threshold": 0.0}))
        ready = socket.receive_json()
        assert ready["type"] == "ready" and ready["words"] == SPEECH_WORDS and ready["model"] == SPEECH_MODEL
        socket.send_text(json.dumps({"type": "threshold", "value": 0.0}))
        for start in range(0, samples.size, 4000):
            socket.send_bytes(samples[start:start + 4000].tobytes())
        messages = receive_until(socket, "scores")
        socket.send_text("stop")
    frames = [m for m in messages if m["type"] == "frames"]
    assert frames and all(m["bins"] == 232 for m in frames)
    # the recognizer's own frames, passed on before the window they complete is scored: 44 frames
    # (at 44.1 kHz) before the first recognition at the default overlap
    assert sum(m["count"] for m in frames) >= 44
    scores = messages[-1]
    assert scores["type"] == "scores" and len(scores["scores"]) == 4 and abs(sum(scores["scores"]) - 1) < 1e-2


@pytest.mark.parametrize("start, payloads, code", [
    ("not json", [], 1008),
    (json.dumps({"model": "../x", "sample_rate": 16000}), [], 4400),
    (json.dumps({"model": "digits", "sample_rate": 16000}), [], 1008),
    (json.dumps({"model": "nope", "sample_rate": 16000}), [], 4400),
    (json.dumps({"model": SPEECH_MODEL, "sample_rate": 5}), [], 4400),
    (json.dumps({"model": SPEECH_MODEL, "sample_rate": 16000, "threshold": 7}), [], 1008),
    (json.dumps({"model": SPEECH_MODEL, "sample_rate": 16000}), [b"x" * (64 * 1024 + 4)], 1009),
    (json.dumps({"model": SPEECH_MODEL, "sample_rate": 8000}), [bytes(60 * 1024)] * 6, 1008),
    (json.dumps({"model": SPEECH_MODEL, "sample_rate": 16000}), [b"abc"], 1003),
    (json.dumps({"model": SPEECH_MODEL, "sample_rate": 16000}), [np.full(8, np.nan, "<f4").tobytes()], 4400),
    (json.dumps({"model": SPEECH_MODEL, "sample_rate": 16000}), ["x" * 2000], 1009),
    (json.dumps({"model": SPEECH_MODEL, "sample_rate": 16000}), ['{"type": "dance"}'], 1008),
])
def test_audio_stream_caps_and_bad_input(speech_client, start, payloads, code):
    with speech_client.websocket_connect("/ws/audio") as socket:
        socket.send_text(start)
        for payload in payloads:
            if isinstance(payload, bytes):
                socket.send_bytes(payload)
            else:
                socket.send_text(payload)
        messages = []
        with pytest.raises(WebSocketDisconnect) as closed:
            for _ in range(1000):
                messages.append(socket.receive_json())
    assert closed.value.code == code, messages
    assert messages and messages[-1]["type"] == "error" and messages[-1]["error"]
    assert speech_client.get("/api/info").status_code == 200  # the server lives on


def test_train_options_are_the_chapters_settings_from_one_place(client):
    from sightsound import presets

    options = client.get("/api/train/options").json()
    assert [m["name"] for m in options["models"]] == list(presets.MNIST_MODELS) == client.get(
        "/api/info").json()["train_models"]
    enhanced = next(m for m in options["models"] if m["name"] == "enhanced")
    assert enhanced["defaults"] == {"epochs": 20, "batch_size": 128, "validation_split": 0.15}  # Listing 4.6
    assert options["limits"]["epochs"] == [1, 100] and options["default_model"] == "conv"
    page = client.get("/train").text
    assert 'value="320"' not in page and "<option" not in page  # the page takes them from the server


def test_a_request_without_settings_trains_with_the_models_chapter_settings(client):
    job = client.post("/api/train", json={"model": "enhanced", "train_limit": 20, "test_limit": 10}).json()
    try:
        assert job["params"]["epochs"] == 20 and job["params"]["batch_size"] == 128
        assert job["params"]["validation_split"] == 0.15
    finally:
        client.post(f"/api/train/{job['job_id']}/stop")
        collect_events(client, job["job_id"])
