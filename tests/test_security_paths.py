"""Every name or path that comes from a file or a request stays where it belongs.

* Weight paths in a ``model.json`` manifest: ``..``, absolute, other hosts,
  encoded dots, NUL, and symbolic links. Decision: a weight file must be a
  regular file inside model.json's folder *after* resolving links; a link
  leading out of the folder (or a FIFO, a directory) is a ModelFormatError.
  A model folder reached through a link is fine (the check is relative to
  where model.json really is).
* Model names in URLs, forms and the audio websocket, and the static routes:
  traversal, encoded dots, absolute paths, NUL, newlines, Unicode look-alikes;
  a model folder (or its model.json) that is a link leading out of the models
  folder is refused; a link to another model inside the folder is allowed.
* Training job output names, and ``sightsound mnist train --out`` with odd
  characters: the run lands in exactly the folder named, nowhere else.

Every "outside" file holds a marker that must never appear in a response, and
the outside model is valid, so following a bad path would *succeed* (and fail
the test) rather than fail for another reason.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from sightsound import load_layers_model, presets
from sightsound.tfjs.sources import HttpSource
from sightsound.errors import ModelFormatError
from sightsound.web import create_app
from web_helpers import TESTCLIENT_HOST

SECRET = "TOP-SECRET-MARKER"


def png_digit() -> bytes:
    drawing = np.full((60, 50), 255, dtype=np.uint8)
    drawing[10:50, 22:28] = 0
    buffer = io.BytesIO()
    Image.fromarray(drawing).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A valid saved model (dense, small) to copy and tamper with."""
    folder = tmp_path_factory.mktemp("saved") / "model"
    presets.build("mnist-dense", device="cpu").save(str(folder))
    return folder


def tampered(tmp_path: Path, saved: Path, paths: list | None = None) -> Path:
    """A copy of ``saved`` under ``tmp_path/inside/model``, its manifest paths replaced by ``paths``."""
    folder = tmp_path / "inside" / "model"
    shutil.copytree(saved, folder)
    if paths is not None:
        doc = json.loads((folder / "model.json").read_text())
        doc["weightsManifest"][0]["paths"] = paths
        (folder / "model.json").write_text(json.dumps(doc))
    return folder


# --------------------------------------------------------------------------- weights manifest paths

@pytest.mark.parametrize("path, complaint", [
    ("../outside/weights.bin", "contains '..'"),
    ("sub/../../outside/weights.bin", "contains '..'"),
    ("..\\outside\\weights.bin", "contains '..'"),
    ("%2e%2e/outside/weights.bin", "contains '..'"),
    ("%2E%2E%2Foutside%2Fweights.bin", "contains '..'"),
    ("{outside}/weights.bin", "is absolute"),
    ("\\\\server\\share\\weights.bin", "is absolute"),
    ("C:\\weights.bin", "another host or scheme|is absolute"),
    ("file:///etc/passwd", "another host or scheme"),
    ("http://other.example/weights.bin", "another host or scheme"),
    ("//other.example/weights.bin", "another host or scheme"),
    ("weights.bin\x00.png", "non-empty file name"),
    ("", "non-empty file name"),
    (7, "non-empty file name"),
])
def test_manifest_paths_that_leave_the_folder_are_refused(tmp_path, saved, path, complaint):
    outside = tmp_path / "outside"
    shutil.copytree(saved, outside)  # valid weights: following the path would load without error
    if isinstance(path, str):
        path = path.replace("{outside}", str(outside))
    folder = tampered(tmp_path, saved, [path])
    with pytest.raises(ModelFormatError, match=complaint):
        load_layers_model(str(folder), device="cpu")


def test_weight_file_linking_out_of_the_folder_is_refused(tmp_path, saved):
    outside = tmp_path / "outside"
    shutil.copytree(saved, outside)
    folder = tampered(tmp_path, saved)
    (folder / "weights.bin").unlink()
    (folder / "weights.bin").symlink_to(outside / "weights.bin")
    with pytest.raises(ModelFormatError, match="symbolic link leading out of the model folder"):
        load_layers_model(str(folder), device="cpu")
    (folder / "weights.bin").unlink()
    (folder / "weights.bin").symlink_to("/dev/zero")
    with pytest.raises(ModelFormatError, match="leading out"):
        load_layers_model(str(folder), device="cpu")


def test_weight_folder_linking_out_is_refused(tmp_path, saved):
    outside = tmp_path / "outside"
    shutil.copytree(saved, outside)
    folder = tampered(tmp_path, saved, ["shards/weights.bin"])
    (folder / "shards").symlink_to(outside)
    with pytest.raises(ModelFormatError, match="leading out"):
        load_layers_model(str(folder), device="cpu")


def test_links_that_stay_inside_are_fine(tmp_path, saved):
    folder = tampered(tmp_path, saved, ["shards/w.bin"])
    (folder / "shards").mkdir()
    (folder / "weights.bin").rename(folder / "shards" / "real.bin")
    (folder / "shards" / "w.bin").symlink_to("real.bin")
    load_layers_model(str(folder), device="cpu")
    alias = tmp_path / "alias"  # the model folder itself reached through a link
    alias.symlink_to(folder, target_is_directory=True)
    load_layers_model(str(alias), device="cpu")
    load_layers_model(f"file://{alias}/model.json", device="cpu")


def test_weight_path_to_a_fifo_or_folder_fails_fast(tmp_path, saved):
    folder = tampered(tmp_path, saved, ["pipe.bin"])
    os.mkfifo(folder / "pipe.bin")  # opening it would block forever
    result = {}

    def load():
        try:
            load_layers_model(str(folder), device="cpu")
        except ModelFormatError as err:
            result["error"] = str(err)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(20)
    assert not worker.is_alive(), "loading hangs on a FIFO weight file"
    assert "not a regular file" in result.get("error", ""), result
    folder = tampered(tmp_path / "2", saved, ["adir"])
    (folder / "adir").mkdir()
    with pytest.raises(ModelFormatError, match="not a regular file"):
        load_layers_model(str(folder), device="cpu")


@pytest.mark.parametrize("path", ["http://other.example/w.bin", "//other.example/w.bin", "https://host/w.bin",
                                  "../../w.bin", "/abs/w.bin", "%2e%2e/w.bin"])
def test_http_weight_paths_stay_on_the_same_host_and_folder(path):
    source = HttpSource("http://host/models/m/model.json", None)
    with pytest.raises(ModelFormatError):
        source.check_weight_path(path)
    source.check_weight_path("group1-shard1of1.bin")
    assert source._weight_url("sub/w.bin") == "http://host/models/m/sub/w.bin"


# --------------------------------------------------------------------------- the web app

MODEL = "digits"


@pytest.fixture(scope="module")
def web(tmp_path_factory, saved):
    """A models folder with one good model and every kind of link and oddity next to it."""
    root = tmp_path_factory.mktemp("web")
    models, outside = root / "models", root / "outside"
    models.mkdir()
    shutil.copytree(saved, models / MODEL)
    shutil.copytree(saved, outside / "model")
    (outside / "secret.json").write_text(json.dumps({"secret": SECRET}))
    (outside / "model" / "secret.json").write_text(json.dumps({"secret": SECRET}))
    (root / "secret.json").write_text(json.dumps({"secret": SECRET}))
    (models / "linked-out").symlink_to(outside / "model", target_is_directory=True)  # a whole model outside
    (models / "alias").symlink_to(models / MODEL, target_is_directory=True)  # another name inside: allowed
    (models / "json-out").mkdir()  # model.json leading out
    (models / "json-out" / "model.json").symlink_to(outside / "model" / "model.json")
    (models / "json-out" / "weights.bin").symlink_to(outside / "model" / "weights.bin")
    shutil.copytree(saved, models / "weights-out")  # only the weights lead out
    (models / "weights-out" / "weights.bin").unlink()
    (models / "weights-out" / "weights.bin").symlink_to(outside / "model" / "weights.bin")
    (models / "weights-out" / "secret.json").symlink_to(outside / "secret.json")
    (models / "broken").mkdir()
    (models / "broken" / "model.json").write_text("{not json")
    (models / "a-list").mkdir()
    (models / "a-list" / "model.json").write_text("[1, 2, 3]")
    (models / "odd-topology").mkdir()
    (models / "odd-topology" / "model.json").write_text(json.dumps(
        {"modelTopology": "x", "userDefinedMetadata": [1], "weightsManifest": []}))
    (models / "huge-labels").mkdir()
    (models / "huge-labels" / "model.json").write_text(json.dumps({"modelTopology": {"config": {"layers": [
        {"config": {"batch_input_shape": [None, 4]}}, {"config": {"units": 10**12}}]}}}))
    app = create_app(models, allowed_hosts=[TESTCLIENT_HOST])
    with TestClient(app) as client:
        yield client, models, outside


def assert_refused(response, statuses=(400, 404, 422)) -> dict:
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    assert SECRET not in response.text
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"]
    return body


HOSTILE_NAMES = ["..", "../digits", "..%2Fdigits", "%2e%2e", "%2E%2E", "%252e%252e", "%2Fetc%2Fpasswd",
                 "digits%00", "digits%0A", "digits%0D%0A", "%EF%BC%8E%EF%BC%8E", "%E2%80%A4%E2%80%A4",
                 "di%CC%81gits", "%E2%80%AEstigid", "%EF%BD%84igits", "digits%2F..%2F..", "..%5C..%5Csecret.json",
                 "linked-out", "json-out", "x" * 65, "-digits", ".digits", "%20digits"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_model_names_in_urls(web, name):
    client, _, _ = web
    assert_refused(client.get(f"/models/{name}/model.json"))
    assert_refused(client.get(f"/models/{name}/secret.json"))
    assert_refused(client.get(f"/api/test-results/{name}"))


@pytest.mark.parametrize("name", [
    "..", "../digits", "/etc/passwd", "digits\x00", "digits\n", "digits/../digits", "．．", "\u2024\u2024",
    "ｄigits", "di\u0301gits", "\u202estigid", "linked-out", "json-out", "x" * 65, " ", "C:\\x"])
def test_hostile_model_names_in_forms_and_sockets(web, name):
    client, _, _ = web
    body = assert_refused(client.post("/api/predict", files={"file": ("d.png", png_digit(), "image/png")},
                                      data={"model": name}))
    assert "model" in body["error"] or "no model" in body["error"] or "image" in body["error"]
    with client.websocket_connect("/ws/audio") as socket:
        socket.send_text(json.dumps({"model": name, "sample_rate": 16000}))
        message = socket.receive_json()
    assert message["type"] == "error" and SECRET not in json.dumps(message)


@pytest.mark.parametrize("filename", ["..", "..%2Fmodel.json", "%2e%2e%2fsecret.json", "model.json%00",
                                      "model.json%0A", "secret.json", ".model.json", "weights.bin%2F..%2F..%2Fsecret.json",
                                      "%2Fetc%2Fpasswd.json", "..%5Csecret.json", "model.json%20",
                                      "model%2Ejson%2F..%2F..%2Fsecret.json"])
def test_hostile_file_names_of_a_good_model(web, filename):
    client, _, _ = web
    assert_refused(client.get(f"/models/{MODEL}/{filename}"))


@pytest.mark.parametrize("url", ["/static/..%2F..%2F..%2Fsecret.json", "/static/%252e%252e/app.py",
                                 "/static/..%5C..%5Capp.py", "/static//etc/passwd", "/static/js%00/draw.js",
                                 "/static/%2Fetc%2Fpasswd", "/vendor/..%2F..%2F..%2Fsecret.json",
                                 "/vendor/%2e%2e", "/..%2F..%2Fsecret.json", "/%2e%2e", "/train%00",
                                 "/models/weights-out/secret.json"])
def test_static_routes_stay_in_their_folders(web, url):
    client, _, _ = web
    response = client.get(url)
    assert response.status_code in (400, 404, 405), (url, response.status_code)
    assert SECRET not in response.text and "import " not in response.text


def test_links_leading_out_of_the_models_folder(web):
    client, models, _ = web
    listed = {m["name"] for m in client.get("/api/models").json()["models"] if not m["builtin"]}
    assert listed == {MODEL, "alias", "weights-out"}, listed
    for name in ("linked-out", "json-out"):
        assert "link" in assert_refused(client.get(f"/models/{name}/model.json"))["error"] or name == "linked-out"
        assert_refused(client.get(f"/models/{name}/weights.bin"))
    # A model whose weights lead out: its files are not served and it does not load.
    assert client.get("/models/weights-out/model.json").status_code == 200  # the folder's own model.json
    assert_refused(client.get("/models/weights-out/weights.bin"), (404,))
    body = assert_refused(client.post("/api/predict", files={"file": ("d.png", png_digit(), "image/png")},
                                      data={"model": "weights-out"}), (422,))
    assert "leading out" in body["error"]
    # A link to another model inside the folder works like that model.
    response = client.post("/api/predict", files={"file": ("d.png", png_digit(), "image/png")},
                           data={"model": "alias"})
    assert response.status_code == 200, response.text
    assert client.get("/models/alias/weights.bin").content == (models / MODEL / "weights.bin").read_bytes()


@pytest.mark.parametrize("name", ["broken", "a-list", "odd-topology", "huge-labels"])
def test_broken_model_files_are_json_errors_not_500s(web, name):
    client, _, _ = web
    assert_refused(client.post("/api/predict", files={"file": ("d.png", png_digit(), "image/png")},
                               data={"model": name}), (422,))
    assert_refused(client.get(f"/api/test-results/{name}"), (422,))
    with client.websocket_connect("/ws/audio") as socket:
        socket.send_text(json.dumps({"model": name, "sample_rate": 16000}))
        assert socket.receive_json()["type"] == "error"


# --------------------------------------------------------------------------- training output names

@pytest.fixture()
def jobs_client(tmp_path, monkeypatch):
    """An app whose training jobs do not train (the names are what is tested)."""
    from sightsound.web.jobs import TrainingJob

    def start(job):
        job.state = "done"
        job.thread = threading.Thread(target=lambda: None)
        job.thread.start()

    monkeypatch.setattr(TrainingJob, "start", start)
    models = tmp_path / "models"
    models.mkdir()
    (models / "dangling").symlink_to(tmp_path / "nowhere")
    (models / "out-link").symlink_to(tmp_path, target_is_directory=True)
    app = create_app(models, allowed_hosts=[TESTCLIENT_HOST])
    with TestClient(app) as client:
        yield client, models


@pytest.mark.parametrize("name, status", [
    ("../evil", 400), ("/tmp/evil", 400), ("a/b", 400), ("a\\b", 400), ("..", 400), ("a..b", 400),
    ("abc\n", 400), ("abc\r", 400), ("abc\x00", 400), (".hidden", 400), ("-dash", 400), ("x" * 65, 400),
    ("ｅｖｉｌ", 400), ("e\u0301", 400), ("\u202elive", 400), ("sp ace", 400), ("%2e%2e", 400),
    ("dangling", 409), ("out-link", 409),
    ("x" * 64, 201), ("Odd.name_1-x", 201), ("CON", 201), ("trailing.", 201),
])
def test_training_output_names(jobs_client, name, status):
    client, models = jobs_client
    response = client.post("/api/train", json={"model": "dense", "epochs": 1, "name": name})
    assert response.status_code == status, response.text
    if status == 201:
        assert response.json()["name"] == name
    else:
        assert response.json()["error"]
    assert sorted(os.listdir(models)) == ["dangling", "out-link"]  # nothing was created for any of them


def test_a_job_saves_exactly_under_its_odd_name(tmp_path):
    """A real (tiny) job named with every allowed kind of character lands in ``models/<name>`` only."""
    from sightsound.data import mnist

    data_dir = tmp_path / "data"
    (data_dir / "mnist").mkdir(parents=True)
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 255, (300, 28, 28)).astype(np.uint8), rng.integers(0, 10, 300).astype(np.uint8)
    np.savez(data_dir / "mnist" / "mnist.npz", x_train=images[:200], y_train=labels[:200], x_test=images[200:],
             y_test=labels[200:])
    models = tmp_path / "models"
    app = create_app(models, data_dir=data_dir, allowed_hosts=[TESTCLIENT_HOST])
    name = "Odd.name_1-x."
    with TestClient(app) as client:
        job = client.post("/api/train", json={"model": "dense", "epochs": 1, "batch_size": 100, "name": name}).json()
        app.state.web.jobs.get(job["job_id"]).thread.join(60)
        state = client.get(f"/api/train/{job['job_id']}").json()
    assert state["state"] == "done", state
    assert sorted(os.listdir(models)) == [name] and sorted(os.listdir(tmp_path)) == ["data", "models"]
    assert mnist is not None and (models / name / "model.json").is_file()


# --------------------------------------------------------------------------- sightsound mnist train --out

@pytest.fixture(scope="module")
def tiny_data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-data")
    (root / "mnist").mkdir()
    rng = np.random.default_rng(1)
    images, labels = rng.integers(0, 255, (250, 28, 28)).astype(np.uint8), rng.integers(0, 10, 250).astype(np.uint8)
    np.savez(root / "mnist" / "mnist.npz", x_train=images[:200], y_train=labels[:200], x_test=images[200:],
             y_test=labels[200:])
    return root


def run_train(out: str, data_dir: Path, capsys) -> tuple[int, str, str]:
    from sightsound.cli import main

    capsys.readouterr()
    code = main(["mnist", "train", "--model", "dense", "--epochs", "1", "--batch-size", "100", "--device", "cpu",
                 "--data-dir", str(data_dir), f"--out={out}"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


RUN_FILES = {"model.json", "weights.bin", "history.json", "curves.png", "test-results.png", "checkpoint"}


@pytest.mark.parametrize("out, lands_in", [
    ("with space & ünïcödé ✓", "with space & ünïcödé ✓"),
    ("-dash;$(echo x)`id`#?%20*", "-dash;$(echo x)`id`#?%20*"),
    ("new\nline", "new\nline"),
    ("file://looks-like-a-url", "file:/looks-like-a-url"),  # a path: '//' collapses, as in any shell path
    ("~/quoted-tilde", "home/quoted-tilde"),  # expanded for the model *and* its history (was split in two)
])
def test_train_out_with_odd_characters(tmp_path, monkeypatch, capsys, tiny_data_dir, out, lands_in):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    code, printed, err = run_train(out, tiny_data_dir, capsys)
    assert code == 0, err
    folder = tmp_path / lands_in
    assert set(os.listdir(folder)) == RUN_FILES
    load_layers_model(str(folder), device="cpu")
    if "\n" not in out:  # the files the command says it wrote are those
        wrote = [line.strip() for line in printed.split("Wrote:")[1].splitlines() if line.strip()]
        assert all(Path(p).expanduser().resolve().parent == folder.resolve() for p in wrote), wrote
    everything = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    assert all(p.startswith(lands_in + "/") for p in everything), everything  # nothing anywhere else


def test_train_out_that_is_a_file_or_under_one(tmp_path, monkeypatch, capsys, tiny_data_dir):
    monkeypatch.chdir(tmp_path)
    Path("a-file").write_text("keep me")
    for out in ("a-file", "a-file/sub"):
        code, _, err = run_train(out, tiny_data_dir, capsys)
        assert code == 2 and err.startswith("sightsound: error: ") and "Traceback" not in err, err
        assert "a-file" in err
    assert Path("a-file").read_text() == "keep me" and os.listdir(tmp_path) == ["a-file"]
