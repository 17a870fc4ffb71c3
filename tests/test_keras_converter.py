"""Keras models through the real TF.js converter load in sightsound and predict like Keras; sightsound's
models go back through the converter to Keras and predict the same.

tests/keras/make_models.py, run by the converter's own venv (``make converter``: tensorflowjs 4.22.0,
TensorFlow 2.19, tf_keras, Keras 3), builds Keras 2 and Keras 3 models (every layer TF.js has that
sightsound loads, Sequential and functional, MobileNet and MobileNetV2), converts each as float32,
float16, uint8 and in odd-sized shards, and writes Keras's predictions, also with the weights as read
back from the converted files (the exact target for the quantized encodings). Its output is cached in
``$SIGHTSOUND_CACHE/keras-fixtures/<hash of the script and of requirements/converter.txt>/``: the first
run takes about a minute or two, later runs reuse it.

Real TF.js 4.22 in Node (tests/js/keras_models.js) runs the same files: what it cannot load is recorded
below (:data:`TFJS_CANNOT_READ`), and for the quantized encodings sightsound must be no worse than TF.js.
TF.js also runs the files as :mod:`sightsound.tfjs.dialects` rewrites them, which checks the dialect
layer against real TF.js.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, require, require_node
import sightsound
from sightsound import layers, paths
from sightsound.tfjs.dialects import tfjs_document

CONVERTER_VENV = REPO / ".venv-converter"
CONVERTER_FIX = ("run `make converter` (creates .venv-converter with the pins of requirements/converter.txt; "
                 "`make test` does it first)")
MAKE_MODELS = REPO / "tests" / "keras" / "make_models.py"
NODE_SCRIPT = REPO / "tests" / "js" / "keras_models.js"
NODE_FILES = (NODE_SCRIPT, REPO / "tests" / "js" / "tfjs_io.js", REPO / "package-lock.json")

FLOAT32_TOL = 1e-4  # sightsound vs Keras, float32 weights
EXACT_TOL = 1e-4  # sightsound vs Keras running the weights decoded from the converted files
TFJS_FACTOR, TFJS_SLACK = 2.0, 1e-5  # quantized: sightsound's error <= 2 x TF.js's + this

pytestmark = pytest.mark.timeout(900)  # the first run generates the fixtures


def _load_plan():
    spec = importlib.util.spec_from_file_location("make_models", MAKE_MODELS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # stdlib only at import: Keras is imported inside its functions
    return module


make_models = _load_plan()
MODELS = [name for name, *_ in make_models.model_plan()]
ENCODINGS = list(make_models.ENCODINGS)

# What TF.js 4.22 says about the converter's own files (the model names are fnmatch patterns).
TFJS_CANNOT_READ = {
    # tf_keras writes SeparableConv2D's unused kernel_initializer/_regularizer/_constraint; TF.js refuses them
    "k2-image-sequential": "are invalid for SeparableConv2D",
    "k2-multi-io": "are invalid for SeparableConv2D",
    # global pooling with keepdims=True (also MobileNet's top): TF.js's global pooling has no keepdims
    "k2-keepdims": "found ndim=2",
    "k2-mobilenet-v1-*": "found ndim=2",
    # Keras 3's InputLayer says batch_shape, not batch_input_shape
    "k3-*": "An InputLayer should be passed either a `batchInputShape` or an `inputShape`",
}
# What TF.js 4.22 says about those files once sightsound.tfjs.dialects has rewritten them.
TFJS_CANNOT_READ_DIALECT = {
    "k2-keepdims": "found ndim=2",  # keepdims, as above
    "k3-keepdims": "found ndim=2",
    "k2-mobilenet-v1-*": "found ndim=2",
    # Keras 3's inbound_nodes dict form, left to the functional loader (sightsound.tfjs.dialects says so)
    "k3-multi-io": "expected array for nodeData",
    "k3-nested": "expected array for nodeData",
    "k3-mobilenet-*": "expected array for nodeData",
}
# Every layer class the fixtures must contain, in both Keras versions.
LAYER_CLASSES = {"InputLayer", "ZeroPadding2D", "Cropping2D", "UpSampling2D", "DepthwiseConv2D", "SeparableConv2D",
                 "Conv1D", "MaxPooling1D", "AveragePooling1D", "GlobalMaxPooling2D", "GlobalAveragePooling2D",
                 "Add", "Concatenate", "Multiply", "Average", "Maximum", "ReLU", "LeakyReLU", "PReLU", "ELU",
                 "Softmax", "Permute", "Reshape", "BatchNormalization", "Conv2D", "Dense", "MaxPooling2D",
                 "AveragePooling2D", "Flatten", "Dropout", "Activation",
                 "GlobalMaxPooling2D(keepdims)", "GlobalAveragePooling2D(keepdims)", "ReLU(max_value)", "Reshape(-1)"}


def expected_error(table: dict, name: str) -> str | None:
    return next((message for pattern, message in table.items() if fnmatch.fnmatchcase(name, pattern)), None)


# --------------------------------------------------------------------------- fixtures

def converter_python() -> Path:
    python = CONVERTER_VENV / "bin" / "python"
    require((CONVERTER_VENV / ".installed").is_file() and python.is_file(),
            "the TF.js converter's venv (.venv-converter: tensorflowjs 4.22.0, TensorFlow, tf_keras, Keras 3)",
            CONVERTER_FIX)
    return python


def run_converter_python(*args, timeout: int = 900) -> None:
    proc = subprocess.run([str(converter_python()), str(MAKE_MODELS), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)
    if proc.returncode != 0:
        pytest.fail(f"{MAKE_MODELS.name} {args[0]} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")


def digest(*files: Path) -> str:
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]


@pytest.fixture(scope="module")
def fixtures():
    """(folder, index.json) of the generated models: from the cache, or made now (and the older ones removed)."""
    converter_python()
    root = paths.cache_dir() / "keras-fixtures"
    target = root / digest(MAKE_MODELS, REPO / "requirements" / "converter.txt")
    if not (target / "index.json").is_file():
        root.mkdir(parents=True, exist_ok=True)
        for old in root.iterdir():  # one generation is kept (each is about 200 MB), and no interrupted one
            if (old / "index.json").is_file() or not _pid_alive(old.name.rpartition(".partial-")[2]):
                shutil.rmtree(old, ignore_errors=True)
        partial = root / f"{target.name}.partial-{os.getpid()}"
        run_converter_python(partial)
        try:
            partial.rename(target)
        except OSError:  # another run made it meanwhile
            shutil.rmtree(partial, ignore_errors=True)
    return target, json.loads((target / "index.json").read_text())


def _pid_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def run_node(spec: dict, out: Path) -> dict:
    node = require_node()
    spec_path = out.with_suffix(".spec.json")
    spec_path.write_text(json.dumps(spec))
    proc = subprocess.run([node, str(NODE_SCRIPT), str(spec_path), str(out)], capture_output=True, text=True,
                          cwd=REPO, timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"node {NODE_SCRIPT.name} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(out.read_text())["models"]


def node_item(root: Path, name: str, entry: dict, encoding: str, folder: Path) -> dict:
    return {"key": f"{name}/{encoding}", "dir": str(folder), "inputs": [str(root / f) for f in entry["inputs"]]}


@pytest.fixture(scope="module")
def tfjs_files(fixtures):
    """TF.js's results on the converter's files, by "model/encoding" (cached beside the fixtures)."""
    root, index = fixtures
    cached = root / f"tfjs-{digest(*NODE_FILES)}.json"
    if cached.is_file():
        return json.loads(cached.read_text())["models"]
    items = [node_item(root, name, entry, encoding, root / spec["dir"])
             for name, entry in index["models"].items() for encoding, spec in entry["encodings"].items()]
    return run_node({"models": items}, cached)


@pytest.fixture(scope="module")
def tfjs_dialect(fixtures, tfjs_files, tmp_path_factory):
    """TF.js's results on the files TF.js cannot read, as sightsound.tfjs.dialects rewrites them
    (the same weight files), by "model/encoding"."""
    root, index = fixtures
    work = tmp_path_factory.mktemp("dialect")
    items = []
    for name, entry in index["models"].items():
        for encoding, spec in entry["encodings"].items():
            if "error" not in tfjs_files[f"{name}/{encoding}"]:
                continue
            source = root / spec["dir"]
            folder = work / name / encoding
            folder.mkdir(parents=True)
            doc = tfjs_document(json.loads((source / "model.json").read_text()), str(source / "model.json"))
            (folder / "model.json").write_text(json.dumps(doc))
            for group in doc["weightsManifest"]:
                for path in group["paths"]:
                    os.symlink(source / path, folder / path)
            items.append(node_item(root, name, entry, encoding, folder))
    return run_node({"models": items}, work / "out.json")


def arrays(root: Path, files: list[str]) -> list[np.ndarray]:
    return [np.load(root / f) for f in files]


def max_diff(outputs, references) -> float:
    """The largest absolute difference over all outputs (flattened, in order)."""
    assert len(outputs) == len(references), f"{len(outputs)} outputs, expected {len(references)}"
    return max(float(np.abs(np.asarray(o, np.float64).ravel() - np.asarray(r, np.float64).ravel()).max())
               for o, r in zip(outputs, references))


def tfjs_outputs(result: dict | None):
    return None if result is None or "error" in result else result["outputs"]


# --------------------------------------------------------------------------- the fixtures and TF.js

def test_the_fixtures_hold_every_layer_and_functional_feature(fixtures):
    root, index = fixtures
    for major in (2, 3):
        classes, features = set(), set()
        for name, entry in index["models"].items():
            if entry["keras"] != major:
                continue
            model = json.loads((root / entry["encodings"]["float32"]["dir"] / "model.json").read_text())
            topology = model["modelTopology"]["model_config"]
            classes |= _classes(topology)
            features |= _features(topology)
        assert LAYER_CLASSES <= classes, f"Keras {major} fixtures lack {sorted(LAYER_CLASSES - classes)}"
        assert {"several inputs", "several outputs", "shared layer", "nested Sequential",
                "nested functional", "Sequential", "functional"} <= features, (major, features)


def _classes(topology: dict) -> set[str]:
    found = set()
    for layer in topology["config"]["layers"]:
        class_name, config = layer["class_name"], layer["config"]
        found.add(class_name)
        if config.get("keepdims"):
            found.add(f"{class_name}(keepdims)")
        if class_name == "ReLU" and config.get("max_value") is not None:
            found.add("ReLU(max_value)")
        if class_name == "Reshape" and -1 in config["target_shape"]:
            found.add("Reshape(-1)")
        if class_name in ("Sequential", "Functional", "Model"):
            found |= _classes(layer)
    return found


def _features(topology: dict) -> set[str]:
    config = topology["config"]
    if topology["class_name"] == "Sequential":
        return {"Sequential"}
    found = {"functional"}
    found |= {"several inputs"} if len(config["input_layers"]) > 1 and isinstance(config["input_layers"][0], list) \
        else set()
    found |= {"several outputs"} if len(config["output_layers"]) > 1 and \
        isinstance(config["output_layers"][0], list) else set()
    for layer in config["layers"]:
        if len(layer.get("inbound_nodes", [])) > 1:
            found.add("shared layer")
        if layer["class_name"] == "Sequential":
            found.add("nested Sequential")
        if layer["class_name"] in ("Functional", "Model"):
            found.add("nested functional")
    return found


def test_tfjs_reads_the_converters_files_as_recorded(fixtures, tfjs_files):
    """Real TF.js 4.22 on the converter's files: the loads predict like Keras, the failures are the known ones."""
    root, index = fixtures
    for name, entry in index["models"].items():
        expected = expected_error(TFJS_CANNOT_READ, name)
        for encoding, spec in entry["encodings"].items():
            result = tfjs_files[f"{name}/{encoding}"]
            if expected is not None:
                assert expected in result.get("error", ""), (name, encoding, result.get("error", "it loaded"))
            else:
                assert "error" not in result, (name, encoding, result["error"])
                assert max_diff(result["outputs"], arrays(root, spec["references"])) <= EXACT_TOL, (name, encoding)


def test_tfjs_reads_the_dialect_rewrite_of_the_files_it_cannot(fixtures, tfjs_files, tfjs_dialect):
    """TF.js on what sightsound.tfjs.dialects makes of the files TF.js cannot read: the same predictions."""
    root, index = fixtures
    assert tfjs_dialect, "TF.js could read every file: update TFJS_CANNOT_READ"
    for key, result in tfjs_dialect.items():
        name, encoding = key.split("/")
        expected = expected_error(TFJS_CANNOT_READ_DIALECT, name)
        if expected is not None:
            assert expected in result.get("error", ""), (key, result.get("error", "it loaded"))
            continue
        assert "error" not in result, (key, result["error"])
        references = arrays(root, index["models"][name]["encodings"][encoding]["references"])
        assert max_diff(result["outputs"], references) <= EXACT_TOL, key


# --------------------------------------------------------------------------- sightsound on the files

@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("name", MODELS)
def test_sightsound_loads_the_converted_model_and_predicts_like_keras(fixtures, tfjs_files, tfjs_dialect, name,
                                                                     encoding):
    root, index = fixtures
    entry = index["models"][name]
    spec = entry["encodings"][encoding]
    model = sightsound.load_layers_model(root / spec["dir"], device="cpu")
    assert model.generated_by == f"keras v{index['versions']['keras' if entry['keras'] == 3 else 'tf_keras']}"
    assert model.converted_by == f"TensorFlow.js Converter v{index['versions']['tensorflowjs']}"
    inputs = arrays(root, entry["inputs"])
    outputs = model.predict(inputs if len(inputs) > 1 else inputs[0])
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    keras = arrays(root, entry["outputs"])
    # exactly what the converted weights compute: Keras running them
    assert max_diff(outputs, arrays(root, spec["references"])) <= EXACT_TOL
    ours = max_diff(outputs, keras)
    if encoding in ("float32", "sharded"):
        assert ours <= FLOAT32_TOL
        return
    tfjs = tfjs_outputs(tfjs_files.get(f"{name}/{encoding}")) or tfjs_outputs(tfjs_dialect.get(f"{name}/{encoding}"))
    if tfjs is not None:  # no worse than TF.js on the same files
        assert ours <= TFJS_FACTOR * max_diff(tfjs, keras) + TFJS_SLACK


# --------------------------------------------------------------------------- and back to Keras

def reverse_check(model, inputs: list[np.ndarray], tmp_path: Path) -> None:
    """sightsound saves ``model``; the converter makes a Keras .h5 of it; Keras predicts what sightsound does."""
    model.save(tmp_path / "tfjs")
    files = []
    for i, x in enumerate(inputs):
        np.save(tmp_path / f"x{i}.npy", x)
        files.append(tmp_path / f"x{i}.npy")
    run_converter_python("reverse", tmp_path / "tfjs" / "model.json", tmp_path / "keras", *files, timeout=300)
    ours = model.predict(inputs if len(inputs) > 1 else inputs[0])
    ours = list(ours) if isinstance(ours, (list, tuple)) else [ours]
    keras = [np.load(tmp_path / f"keras{i}.npy") for i in range(len(ours))]
    assert (tmp_path / "keras.h5").is_file()
    assert max_diff(keras, ours) <= 1e-5


def test_a_sightsound_sequential_model_converts_back_to_keras(tmp_path):
    converter_python()
    sightsound.set_seed(3)
    model = sightsound.sequential([
        layers.conv2d(input_shape=[12, 10, 3], filters=4, kernel_size=3, strides=2, padding="same",
                      activation="elu"),
        layers.batch_normalization(),
        layers.max_pooling2d(pool_size=2, padding="same"),
        layers.flatten(),
        layers.dense(units=6, activation="tanh"),
        layers.dense(units=3, activation="softmax")], device="cpu")
    x = np.random.default_rng(4).uniform(-1, 1, (3, 12, 10, 3)).astype(np.float32)
    reverse_check(model, [x], tmp_path)


def test_a_sightsound_functional_model_converts_back_to_keras(tmp_path):
    """Two inputs, a shared layer, two outputs (sightsound.input / sightsound.model, as tf.input / tf.model)."""
    converter_python()
    sightsound.set_seed(5)
    image = sightsound.input(shape=[8, 8, 2], name="image")
    vector = sightsound.input(shape=[5], name="vector")
    features = layers.flatten().apply(layers.conv2d(filters=3, kernel_size=3, activation="relu").apply(image))
    shared = layers.dense(units=6, activation="tanh", name="shared")
    a = shared.apply(layers.dense(units=4).apply(features))
    b = shared.apply(layers.dense(units=4).apply(vector))
    label = layers.dense(units=3, activation="softmax", name="label").apply(layers.concatenate().apply([a, b]))
    value = layers.dense(units=1, name="value").apply(layers.add().apply([a, b]))
    model = sightsound.model(inputs=[image, vector], outputs=[label, value], device="cpu")
    rng = np.random.default_rng(6)
    inputs = [rng.uniform(-1, 1, (3, 8, 8, 2)).astype(np.float32), rng.uniform(-1, 1, (3, 5)).astype(np.float32)]
    reverse_check(model, inputs, tmp_path)
