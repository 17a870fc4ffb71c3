"""The TF.js Layers format, proven against real TensorFlow.js 4.22 running in Node.

Direction 1: TF.js builds the chapter's listings, saves them with a file
writer like tfjs-node's ``file://`` handler and predicts; sightsound loads the
files and must predict the same (and re-save byte-identical files).
Direction 2: sightsound trains and saves; TF.js loads with ``tf.loadLayersModel``
and must predict the same. Plus HTTP loading, crash-safe saving (SIGKILL at
random moments) and every bad input the issue lists.

Node runs twice per session (one ``make``, one ``check``), in module fixtures.
"""

from __future__ import annotations

import ast
import http.server
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_node_script

import sightsound
from sightsound import presets
from sightsound.cli import main as cli_main
from sightsound.errors import ModelFormatError
from sightsound.tfjs import commit, js_json, js_number, model_weights, read_model_json

REPO = Path(__file__).resolve().parents[1]
NODE_SCRIPT = REPO / "tests" / "js" / "tfjs_models.js"
TOL = 1e-5
TFJS_GENERATED_BY = "TensorFlow.js tfjs-layers v4.22.0"
FROM_TFJS = ["mnist-conv", "mnist-dense", "mnist-enhanced", "speech-conv", "coverage", "trained-adam",
             "trained-rmsprop"]
LISTINGS = ["mnist-conv", "mnist-dense", "mnist-enhanced", "speech-conv"]
RECIPE_MODELS = ["mnist-bn", "mnist-strided"]  # the models of the fast-99.5 and fast-99 recipes
QUANTIZED = ["sharded", "float16", "uint8", "uint16"]


# ---------------------------------------------------------------------------
# Node


def run_node(*args, script: Path = NODE_SCRIPT) -> None:
    run_node_script(script, *args)


def load(path, **kwargs):
    return sightsound.load_layers_model(path, device="cpu", **kwargs)


def inputs_of(entry: dict) -> np.ndarray:
    return np.array(entry["inputs"], dtype=np.float32).reshape(entry["input_shape"])


def max_diff(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64).ravel() - np.asarray(b, dtype=np.float64).ravel()).max())


def weights_file(directory: Path) -> bytes:
    doc = json.loads((directory / "model.json").read_text())
    return b"".join((directory / p).read_bytes() for g in doc["weightsManifest"] for p in g["paths"])


def fit_step(model, step: dict) -> None:
    x = np.array(step["x"], np.float32).reshape(step["x_shape"])
    y = np.array(step["y"], np.float32).reshape(step["y_shape"])
    model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False)


# ---------------------------------------------------------------------------
# Direction 1: TF.js saves, sightsound loads


@pytest.fixture(scope="module")
def from_tfjs(tmp_path_factory):
    root = tmp_path_factory.mktemp("from_tfjs")
    run_node("make", root)
    return root, json.loads((root / "expect.json").read_text())


@pytest.mark.parametrize("name", FROM_TFJS)
def test_tfjs_saved_model_predicts_the_same_in_sightsound(from_tfjs, name):
    root, expect = from_tfjs
    entry = expect["models"][name]
    model = load(root / name)
    assert max_diff(model.predict(inputs_of(entry)), entry["predictions"]) <= TOL
    assert model.summary_lines() == entry["summary"]


@pytest.mark.parametrize("name", FROM_TFJS)
def test_resaving_a_tfjs_model_writes_tfjs_bytes(from_tfjs, tmp_path, name):
    """sightsound's model.json and weights.bin equal TF.js's byte for byte (generatedBy is kept from the file)."""
    root, _ = from_tfjs
    model = load(root / name)
    model.save(tmp_path / "a", include_optimizer=model.optimizer is not None)
    ours = (tmp_path / "a" / "model.json").read_text(encoding="utf-8")
    assert json.dumps(TFJS_GENERATED_BY) in ours
    assert ours == (root / name / "model.json").read_text(encoding="utf-8")
    assert sorted(os.listdir(tmp_path / "a")) == ["model.json", "weights.bin"]
    assert (tmp_path / "a" / "weights.bin").read_bytes() == (root / name / "weights.bin").read_bytes()
    # load -> save -> load -> save: byte-identical weights
    load(tmp_path / "a").save(tmp_path / "b", include_optimizer=model.optimizer is not None)
    assert weights_file(tmp_path / "b") == weights_file(tmp_path / "a")


def test_restored_adam_state_continues_training_like_tfjs(from_tfjs):
    root, expect = from_tfjs
    entry = expect["models"]["trained-adam"]
    model = load(root / "trained-adam")
    assert (model.loss, model.metrics, model.optimizer.class_name) == ("categoricalCrossentropy", ["accuracy"],
                                                                       "Adam")
    assert model.optimizer.iterations == 3 and model.optimizer.learning_rate == pytest.approx(0.01)
    fit_step(model, entry["step"])
    assert max_diff(model.predict(inputs_of(entry)), entry["after_step"]) <= TOL


def test_restored_rmsprop_state_matches_tfjs(from_tfjs):
    # (The step itself is not compared here: this model has a trainable:false BatchNormalization layer.)
    root, _ = from_tfjs
    model = load(root / "trained-rmsprop")
    opt = model.optimizer
    assert (opt.class_name, opt.momentum, opt.iterations) == ("RMSProp", 0.5, 3)
    assert all(float(s.abs().sum()) > 0 for s in opt.slots["rms"] + opt.slots["momentum"]
               if s.shape != torch.Size([6]))  # every trainable weight's slots were restored (frozen BN aside)


def test_user_defined_metadata_is_kept(from_tfjs, tmp_path):
    root, _ = from_tfjs
    model = load(root / "speech-conv")
    assert model.user_defined_metadata == {"words": ["_background_noise_", "_unknown_", "zero"], "frameSize": 232}
    model.save(tmp_path, user_defined_metadata={"words": ["a"]})
    assert json.loads((tmp_path / "model.json").read_text())["userDefinedMetadata"] == {"words": ["a"]}


# ---------------------------------------------------------------------------
# Direction 2: sightsound saves, TF.js loads


def _train_briefly(name: str, seed: int):
    sightsound.set_seed(seed)
    model = presets.build(name, device="cpu")
    settings = presets.TRAINING_DEFAULTS.get(name, {"optimizer": "adam"})
    model.compile(optimizer=settings["optimizer"], loss="categoricalCrossentropy", metrics=["accuracy"],
                  learning_rate=settings.get("learning_rate"))
    classes = model.output_shape[-1]
    x = torch.rand((16, *model.input_shape), generator=torch.Generator().manual_seed(seed)).numpy()
    y = np.eye(classes, dtype=np.float32)[np.arange(16) % classes]
    model.fit(x, y, batch_size=8, epochs=1)  # two batches
    return model


def _step_batch(model, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    classes = model.output_shape[-1]
    x = rng.random((4, *model.input_shape), dtype=np.float32)
    y = np.eye(classes, dtype=np.float32)[[0, 3, 5, 7]]
    return {"x": x.ravel().tolist(), "x_shape": list(x.shape), "y": y.ravel().tolist(), "y_shape": list(y.shape)}


def shard(src: Path, dst: Path, parts: int) -> None:
    """Split weights.bin over group1-shardKofN.bin files, as the TF.js converter does."""
    dst.mkdir(parents=True)
    doc = json.loads((src / "model.json").read_text())
    data = (src / "weights.bin").read_bytes()
    bounds = np.linspace(0, len(data), parts + 1).astype(int)
    doc["weightsManifest"][0]["paths"] = [f"group1-shard{k + 1}of{parts}.bin" for k in range(parts)]
    for k, path in enumerate(doc["weightsManifest"][0]["paths"]):
        (dst / path).write_bytes(data[bounds[k]:bounds[k + 1]])
    (dst / "model.json").write_text(json.dumps(doc))


def dequantized(values: np.ndarray, dtype: str):
    """(stored bytes, manifest quantization, values as TF.js decodes them)."""
    if dtype == "float16":
        q = values.astype("<f2")
        return q.tobytes(), {"dtype": "float16"}, q.astype(np.float32)
    levels = 255 if dtype == "uint8" else 65535
    low, high = float(values.min()), float(values.max())
    scale = (high - low) / levels if high > low else 1.0
    q = np.round((values.astype(np.float64) - low) / scale).astype("<u1" if dtype == "uint8" else "<u2")
    return q.tobytes(), {"dtype": dtype, "min": low, "scale": scale}, (q * scale + low).astype(np.float32)


def quantize(src: Path, dst: Path, dtype: str) -> dict:
    """Rewrite a float32 model with the converter's quantization; returns the expected weight values."""
    dst.mkdir(parents=True)
    doc = json.loads((src / "model.json").read_text())
    data, offset, chunks, expected = (src / "weights.bin").read_bytes(), 0, [], {}
    for spec in doc["weightsManifest"][0]["weights"]:
        count = int(np.prod(spec["shape"]))
        values = np.frombuffer(data, "<f4", count, offset)
        offset += 4 * count
        raw, spec["quantization"], expected[spec["name"]] = dequantized(values, dtype)
        chunks.append(raw)
    (dst / "weights.bin").write_bytes(b"".join(chunks))
    (dst / "model.json").write_text(json.dumps(doc))
    return expected


@pytest.fixture(scope="module")
def to_tfjs(tmp_path_factory):
    """sightsound trains and saves every listing (+ sharded / quantized copies); TF.js loads them all."""
    root = tmp_path_factory.mktemp("to_tfjs")
    ours, spec = {}, {"models": []}
    for i, name in enumerate(LISTINGS + RECIPE_MODELS):
        model = _train_briefly(name, seed=10 + i)
        model.save(f"file://{root / name}", include_optimizer=True)
        x = np.random.default_rng(i).random((2, *model.input_shape), dtype=np.float32)
        item = {"name": name, "dir": str(root / name), "input_shape": list(x.shape), "inputs": x.ravel().tolist()}
        ours[name] = {"model": model, "predictions": model.predict(x), "x": x}
        if name in ("mnist-conv", "mnist-dense"):  # no dropout: one more step must agree too
            item["step"] = _step_batch(model, seed=i)
            fit_step(model, item["step"])
            ours[name]["after_step"] = model.predict(x)
        spec["models"].append(item)
    plain = root / "mnist-conv-plain"
    load(root / "mnist-conv").save(plain)
    shard(plain, root / "sharded", 3)
    for dtype in QUANTIZED[1:]:
        ours[dtype] = {"expected_weights": quantize(plain, root / dtype, dtype)}
    for name in QUANTIZED:
        x = ours["mnist-conv"]["x"]
        ours[name] = {**ours.get(name, {}), "predictions": load(root / name).predict(x)}
        spec["models"].append({"name": name, "dir": str(root / name), "input_shape": list(x.shape),
                               "inputs": x.ravel().tolist()})
    (root / "spec.json").write_text(json.dumps(spec))
    run_node("check", root / "spec.json", root / "out.json")
    return root, ours, json.loads((root / "out.json").read_text())


@pytest.mark.parametrize("name", LISTINGS + RECIPE_MODELS)
def test_sightsound_saved_model_predicts_the_same_in_tfjs(to_tfjs, name):
    _, ours, tfjs = to_tfjs
    assert max_diff(ours[name]["predictions"], tfjs[name]["predictions"]) <= TOL
    assert tfjs[name]["summary"] == ours[name]["model"].summary_lines()
    optimizer = tfjs[name]["optimizer"]  # TF.js compiled the model from our trainingConfig
    assert optimizer["class_name"] == ours[name]["model"].optimizer.class_name
    assert optimizer["loss"] == "categoricalCrossentropy"


@pytest.mark.parametrize("name", ["mnist-conv", "mnist-dense"])
def test_tfjs_continues_training_from_sightsound_optimizer_state(to_tfjs, name):
    _, ours, tfjs = to_tfjs
    assert tfjs[name]["optimizer"]["iterations"] == 2
    assert max_diff(ours[name]["after_step"], tfjs[name]["after_step"]) <= TOL


@pytest.mark.parametrize("name", QUANTIZED)
def test_sharded_and_quantized_weights_decode_like_tfjs(to_tfjs, name):
    root, ours, tfjs = to_tfjs
    assert max_diff(ours[name]["predictions"], tfjs[name]["predictions"]) <= TOL
    if name != "sharded":
        model = load(root / name)
        for weight in model_weights(model):
            np.testing.assert_array_equal(weight.to_tfjs().ravel(), ours[name]["expected_weights"][weight.name])
        assert max_diff(ours[name]["predictions"], ours["mnist-conv"]["predictions"]) < 0.05


# ---------------------------------------------------------------------------
# Saving: format details and crash safety


def small_model(seed: int = 0):
    sightsound.set_seed(seed)
    return presets.build("mnist-dense", device="cpu")


def test_save_layout_and_manifest(tmp_path):
    model = presets.build("mnist-conv", device="cpu")
    info = model.save(str(tmp_path))
    assert info["weightDataBytes"] == 4 * model.count_params()
    doc = json.loads((tmp_path / "model.json").read_text())
    assert list(doc) == ["modelTopology", "weightsManifest", "format", "generatedBy", "convertedBy"]
    specs = doc["weightsManifest"][0]["weights"]
    conv = model.layers[0].name
    assert specs[0] == {"name": f"{conv}/kernel", "shape": [3, 3, 1, 16], "dtype": "float32"}
    kernel = np.frombuffer((tmp_path / "weights.bin").read_bytes(), "<f4", 144).reshape(3, 3, 1, 16)
    torch_kernel = model.layers[0].tfjs_weights(model.net.blocks[0])["kernel"].detach().numpy()  # [out, in, kh, kw]
    np.testing.assert_array_equal(kernel, torch_kernel.transpose(2, 3, 1, 0))


def test_save_with_optimizer_writes_tfjs_names(tmp_path):
    model = small_model()
    model.compile(optimizer="sgd", loss="sparseCategoricalCrossentropy", metrics=["acc"], learning_rate=0.1)
    model.fit(np.random.rand(4, 28, 28, 1).astype(np.float32), np.array([0, 1, 2, 3]), batch_size=2)
    model.save(tmp_path, include_optimizer=True)
    doc = json.loads((tmp_path / "model.json").read_text())
    assert doc["trainingConfig"] == {"loss": "sparse_categorical_crossentropy", "metrics": ["acc"],
                                     "optimizer_config": {"class_name": "SGD", "config": {"learningRate": 0.1}}}
    assert doc["weightsManifest"][0]["weights"][-1] == {"name": "iter", "shape": [], "dtype": "int32",
                                                        "group": "optimizer"}
    assert np.frombuffer((tmp_path / "weights.bin").read_bytes()[-4:], "<i4")[0] == 2
    again = load(tmp_path)
    assert (again.loss, again.optimizer.iterations, again.optimizer.learning_rate) == \
        ("sparseCategoricalCrossentropy", 2, 0.1)
    model.save(tmp_path)  # the default leaves the optimizer out
    doc = json.loads((tmp_path / "model.json").read_text())
    assert "trainingConfig" not in doc and all("group" not in w for w in doc["weightsManifest"][0]["weights"])


def test_save_touches_no_other_file_and_cleans_its_leftovers(tmp_path):
    history = tmp_path / "history.json"
    history.write_text('{"loss": [1, 0.5]}')
    stamp = history.stat().st_mtime_ns
    (tmp_path / "weights.0123456789abcdef.bin").write_bytes(b"stale staged weights")  # an interrupted save's
    (tmp_path / ".model.json.0123456789abcdef.tmp").write_bytes(b"{")
    (tmp_path / "weights.old.bin").write_bytes(b"not ours")
    small_model().save(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["history.json", "model.json", "weights.bin", "weights.old.bin"]
    assert history.read_text() == '{"loss": [1, 0.5]}' and history.stat().st_mtime_ns == stamp


def test_interrupted_save_keeps_the_old_model(tmp_path, monkeypatch):
    small_model(1).save(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        small_model(2).save(tmp_path)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


CRASH_WORKER = r"""
import os, signal, sys
import torch
torch.set_num_threads(1)  # fork-safe: no OpenMP team in the children
import sightsound
from sightsound import presets

target, ref_a, ref_b = sys.argv[1:4]
sightsound.set_seed(1)
a = presets.build("mnist-dense", device="cpu")
sightsound.set_seed(2)
b = presets.build("mnist-dense", device="cpu")
a.save(ref_a)
b.save(ref_b)
a.save(target)
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
print("ready", flush=True)
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:  # save B, A, B, ... until killed
        i = 0
        while True:
            (b, a)[i % 2].save(target)
            i += 1
    print(pid, flush=True)
"""


def _snapshot(directory: Path) -> tuple[str, bytes]:
    """(model.json with the weights path normalised, the weights it names)."""
    doc = json.loads((directory / "model.json").read_text())
    data = weights_file(directory)
    for group in doc["weightsManifest"]:
        group["paths"] = ["weights.bin"]
    return json.dumps(doc), data


def test_kill_9_at_random_moments_leaves_a_complete_model(tmp_path):
    target, ref_a, ref_b = tmp_path / "run", tmp_path / "a", tmp_path / "b"
    target.mkdir()
    history = target / "history.json"
    history.write_text('{"acc": [0.9]}')
    stamp = history.stat().st_mtime_ns
    worker = subprocess.Popen([sys.executable, "-c", CRASH_WORKER, target, ref_a, ref_b], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert worker.stdout.readline().strip() == "ready"
        valid = {_snapshot(ref_a), _snapshot(ref_b)}
        rng = random.Random(0)
        seen = set()
        for _ in range(24):
            worker.stdin.write("fork\n")
            worker.stdin.flush()
            pid = int(worker.stdout.readline())
            time.sleep(rng.uniform(0.0, 0.12))
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid)
            state = _snapshot(target)
            assert state in valid, "after kill -9 the folder holds neither the old nor the new model"
            seen.add(state)
            load(target)  # and it loads
            names = set(os.listdir(target)) - {"history.json", "model.json", "weights.bin"}
            assert all(commit.STAGED_WEIGHTS.match(n) or commit.OUR_TEMP.match(n) for n in names)
        assert len(seen) == 2, "the kills never landed after a completed save: timing too coarse"
    finally:
        worker.kill()
        worker.wait()
    assert history.read_text() == '{"acc": [0.9]}' and history.stat().st_mtime_ns == stamp


def test_loading_while_another_thread_saves_gets_a_complete_model(tmp_path):
    models = [small_model(1), small_model(2)]
    models[0].save(tmp_path)
    x = np.random.rand(1, 28, 28, 1).astype(np.float32)
    valid = [m.predict(x) for m in models]
    done = threading.Event()

    def keep_saving():
        for i in range(30):
            models[(i + 1) % 2].save(tmp_path)
            time.sleep(0.01)
        done.set()

    saver = threading.Thread(target=keep_saving)
    saver.start()
    loads = 0
    while not done.is_set() or loads == 0:
        p = load(tmp_path).predict(x)
        assert any(max_diff(p, v) == 0 for v in valid)
        loads += 1
    saver.join()


def test_a_weight_file_removed_during_the_checks_is_read_again_not_a_crash(tmp_path, monkeypatch):
    """Found in CI by the test above: a save removed the staged weights between the loader's exists()
    and stat(), and FileNotFoundError escaped."""
    small_model(1).save(tmp_path)
    real_stat, calls = os.stat, []

    def racing_stat(path, *args, **kwargs):  # the weights vanish right after exists() saw them, once
        if str(path).endswith(".bin"):
            calls.append(path)
            if len(calls) == 2:
                raise FileNotFoundError(2, "No such file or directory", str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", racing_stat)
    model = load(tmp_path)
    assert len(calls) == 2 and model.count_params() == small_model(1).count_params()  # the race was hit


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.005)
    raise AssertionError(f"process {pid} survived SIGKILL")


# ---------------------------------------------------------------------------
# Loading: paths, URLs, HTTP


def test_load_accepts_folder_model_json_and_file_urls(tmp_path):
    model = small_model()
    model.save(f"file://{tmp_path}")
    x = np.random.rand(2, 28, 28, 1).astype(np.float32)
    expected = model.predict(x)
    for source in (tmp_path, str(tmp_path / "model.json"), f"file://{tmp_path}", f"file://{tmp_path}/model.json"):
        assert max_diff(load(source).predict(x), expected) == 0


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        server = self.server
        server.requests.append((self.path, dict(self.headers)))
        route = self.path.split("?")[0]
        time.sleep(server.delays.get(route, 0))
        status = server.statuses.get(route)
        body = server.files.get(route)
        if status is None:
            status = 200 if body is not None else 404
        if status != 200:
            body = b"nope"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.requests, httpd.delays, httpd.statuses = {}, [], {}, {}
    httpd.url = lambda path: f"http://127.0.0.1:{httpd.server_address[1]}{path}"
    httpd.serve = lambda prefix, folder: httpd.files.update(
        {f"{prefix}/{p.name}": p.read_bytes() for p in Path(folder).iterdir()})
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_load_over_http_sends_the_extra_headers(server, tmp_path):
    model = small_model()
    shard_src = tmp_path / "plain"
    model.save(shard_src)
    shard(shard_src, tmp_path / "sharded", 2)
    server.serve("/models/digits", tmp_path / "sharded")
    url = server.url("/models/digits/model.json?v=3")
    loaded = load(url, request_options={"headers": {"Authorization": "Bearer s3cret"}, "timeout": 5})
    x = np.random.rand(2, 28, 28, 1).astype(np.float32)
    assert max_diff(loaded.predict(x), model.predict(x)) == 0
    paths = [p for p, _ in server.requests]
    assert paths == ["/models/digits/model.json?v=3", "/models/digits/group1-shard1of2.bin?v=3",
                     "/models/digits/group1-shard2of2.bin?v=3"]
    assert all(headers.get("Authorization") == "Bearer s3cret" for _, headers in server.requests)


def test_cli_summary_of_preset_folder_and_url(server, tmp_path, capsys):
    model = small_model()
    model.save(tmp_path)
    server.serve("/m", tmp_path)
    for argv in (["summary", "--model", "mnist-dense"], ["summary", str(tmp_path), "--device", "cpu"],
                 ["summary", server.url("/m/model.json"), "--header", "X-Token: abc", "--device", "cpu"]):
        assert cli_main(argv) == 0
        out = capsys.readouterr().out
        assert "Total params: 33400" in out and "(Dense)" in out
    assert server.requests[0][1]["X-Token"] == "abc"
    assert out.splitlines() == model.summary_lines()


@pytest.mark.parametrize("status", [404, 500])
def test_http_error_names_url_and_status(server, status):
    server.statuses["/m/model.json"] = status
    url = server.url("/m/model.json")
    with pytest.raises(ModelFormatError, match=rf"HTTP {status}.*{url}"):
        load(url)


def test_http_weight_error_names_the_weight_url(server, tmp_path):
    small_model().save(tmp_path)
    server.serve("/m", tmp_path)
    server.statuses["/m/weights.bin"] = 403
    with pytest.raises(ModelFormatError, match=r"HTTP 403 .*/m/weights\.bin"):
        load(server.url("/m/model.json"))


def test_http_timeout_names_url(server, tmp_path):
    small_model().save(tmp_path)
    server.serve("/m", tmp_path)
    server.delays["/m/model.json"] = 1.5
    url = server.url("/m/model.json")
    with pytest.raises(ModelFormatError, match=rf"timed out after 0.3 s fetching {url}"):
        load(url, request_options={"timeout": 0.3})


# ---------------------------------------------------------------------------
# Bad input


@pytest.fixture
def saved(tmp_path):
    folder = tmp_path / "model"
    small_model().save(folder)
    return folder


def edit_json(folder: Path, change) -> None:
    doc = json.loads((folder / "model.json").read_text())
    change(doc)
    (folder / "model.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("path, problem", [
    ("../outside.bin", "contains '..'"),
    ("sub/%2e%2e/%2e%2e/outside.bin", "contains '..'"),
    ("/etc/passwd", "is absolute"),
    ("http://127.0.0.2:9/weights.bin", "another host"),
    ("//evil.example/weights.bin", "another host"),
])
def test_unsafe_weight_paths_are_rejected_before_any_read(server, saved, path, problem):
    edit_json(saved, lambda doc: doc["weightsManifest"][0].update(paths=[path]))
    with pytest.raises(ModelFormatError, match=f"{re.escape(str(saved / 'model.json'))}.*{problem}"):
        load(saved)
    server.serve("/m", saved)
    with pytest.raises(ModelFormatError, match=problem):
        load(server.url("/m/model.json"))
    assert [p for p, _ in server.requests] == ["/m/model.json"]  # no weight request at all


@pytest.mark.parametrize("change, message", [
    (b"\0\0\0\0", "4 extra bytes"),
    (None, "8 bytes missing"),
])
def test_weight_byte_count_must_match_the_manifest(server, saved, change, message):
    data = (saved / "weights.bin").read_bytes()
    (saved / "weights.bin").write_bytes(data + change if change else data[:-8])
    with pytest.raises(ModelFormatError, match=message):
        load(saved)
    server.serve("/m", saved)
    with pytest.raises(ModelFormatError, match=message):
        load(server.url("/m/model.json"))


def test_missing_weight_is_named(saved):
    def drop_last(doc):
        weights = doc["weightsManifest"][0]["weights"]
        doc["weightsManifest"][0]["weights"] = weights[:-1]

    edit_json(saved, drop_last)
    with pytest.raises(ModelFormatError, match=r"weight dense_Dense\d+/bias \(shape \[10\]\) is missing"):
        load(saved)


def test_missing_weight_file_is_named(saved):
    (saved / "weights.bin").unlink()
    with pytest.raises(ModelFormatError, match="weight file 'weights.bin' is missing"):
        load(saved)


def test_wrong_weight_shape_is_named(saved):
    edit_json(saved, lambda doc: doc["weightsManifest"][0]["weights"][0].update(shape=[42, 784]))
    with pytest.raises(ModelFormatError, match=r"has shape \[42, 784\] in the manifest but the layer needs "
                                               r"\[784, 42\]"):
        load(saved)


def test_huge_shapes_are_refused_before_allocating(saved):
    edit_json(saved, lambda doc: doc["weightsManifest"][0]["weights"].append(
        {"name": "x/kernel", "shape": [10**6, 10**6], "dtype": "float32"}))
    with pytest.raises(ModelFormatError, match="limit"):
        load(saved)


@pytest.mark.parametrize("field, value, message", [
    ("class_name", "Conv3D", r"unknown layer class 'Conv3D'; supported: Conv2D, Dense"),
    ("activation", "gelu_new", r"unknown activation 'gelu_new'; supported: linear, relu"),
    ("kernel_initializer", {"class_name": "Orthogonal", "config": {}},
     r"unknown initializer 'Orthogonal'; supported: VarianceScaling"),
])
def test_unknown_layer_activation_initializer_are_named(saved, field, value, message):
    def change(doc):
        layer = doc["modelTopology"]["config"]["layers"][1]
        (layer if field == "class_name" else layer["config"])[field] = value

    edit_json(saved, change)
    with pytest.raises(ModelFormatError, match=f"{re.escape(str(saved / 'model.json'))}: .*{message}"):
        load(saved)


def test_malformed_json_names_file_and_position(saved):
    (saved / "model.json").write_text('{"format": "layers-model",\n  ]')
    with pytest.raises(ModelFormatError, match=re.escape(f"{saved / 'model.json'}: malformed JSON at line 2, "
                                                         f"column 3")):
        load(saved)


def test_unsupported_sources_and_topologies(saved, tmp_path):
    with pytest.raises(ModelFormatError, match="no TF.js model at"):
        load(tmp_path / "nothing-here")
    with pytest.raises(ModelFormatError, match="supported are a folder"):
        load("indexeddb://my-model")
    edit_json(saved, lambda doc: doc.update(format="graph-model"))
    with pytest.raises(ModelFormatError, match="not a TF.js Layers model"):
        load(saved)
    edit_json(saved, lambda doc: doc.update(format="layers-model", modelTopology={"class_name": "Bidirectional"}))
    with pytest.raises(ModelFormatError, match="'Bidirectional' is not supported"):
        load(saved)
    edit_json(saved, lambda doc: doc.update(modelTopology={"class_name": "Functional"}))
    with pytest.raises(ModelFormatError, match="the Functional config is missing"):
        load(saved)


def test_read_model_json_describes_a_model_without_building_it(saved):
    info = read_model_json(saved / "model.json", where="model/model.json")
    assert (info.input_shape, info.output_units, info.user_defined_metadata) == ([28, 28, 1], 10, {})
    assert info.doc["format"] == "layers-model"
    (saved / "model.json").write_text('{"modelTopology": [1]}')
    with pytest.raises(ModelFormatError, match=re.escape("model/model.json: modelTopology must be an object")):
        read_model_json(saved / "model.json", where="model/model.json")
    (saved / "model.json").write_text("{")
    with pytest.raises(ModelFormatError, match=r"^model/model.json: malformed JSON at line 1"):
        read_model_json(saved / "model.json", where="model/model.json")


def test_the_engine_does_not_import_the_format_package():
    """tfjs depends on the engine, never the reverse: no engine module imports it, and Sequential.save
    reaches it through the writer it registers (the package imports it first)."""
    for path in (Path(sightsound.__file__).parent / "engine").glob("*.py"):
        name = path.name
        tree = ast.parse(path.read_text())
        imported = [getattr(node, "module", None) or "" for node in ast.walk(tree)
                    if isinstance(node, (ast.Import, ast.ImportFrom))]
        imported += [alias.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                     for alias in node.names]
        assert not [m for m in imported if "tfjs" in m.split(".")], (name, imported)
    code = ("import tempfile; from sightsound.engine.sequential import Sequential; from sightsound import layers\n"
            "m = Sequential([layers.dense(units=2, input_shape=[3])], device='cpu')\n"
            "print(m.save(tempfile.mkdtemp())['weightDataBytes'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.split() == ["32"]


def test_js_number_formatting_matches_javascript():
    cases = {1.0: "1", 0.5: "0.5", 1e-7: "1e-7", 1.5e-7: "1.5e-7", 1e-6: "0.000001", 1e21: "1e+21",
             1e20: "100000000000000000000", 0.1 + 0.2: "0.30000000000000004", -2.5: "-2.5", 3: "3"}
    assert {k: js_number(k) for k in cases} == cases
    assert js_json({"a": [None, True, "ü\n"], "b": float("nan")}) == '{"a":[null,true,"ü\\n"],"b":null}'


def test_manifest_names_are_matched_like_tfjs(saved):
    """TF 2.2+ exports name weights layer/cell/kernel; TF.js (and sightsound) match them to layer/kernel."""
    expected = load(saved).predict(np.ones((1, 28, 28, 1), np.float32))

    def add_cell(doc):
        for w in doc["weightsManifest"][0]["weights"]:
            layer, suffix = w["name"].split("/")
            w["name"] = f"{layer}/cell/{suffix}"

    edit_json(saved, add_cell)
    assert max_diff(load(saved).predict(np.ones((1, 28, 28, 1), np.float32)), expected) == 0
    edit_json(saved, lambda doc: doc["weightsManifest"][0]["weights"].append(
        {"name": "stray/kernel", "shape": [], "dtype": "float32"}))
    with pytest.raises(ModelFormatError, match="the manifest has weights no layer uses: stray/kernel"):
        load(saved)
