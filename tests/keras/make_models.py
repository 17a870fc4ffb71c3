"""Keras models converted by the real TF.js converter: the fixtures of tests/test_keras_converter.py.

Runs in the converter venv (``make converter``), never in sightsound's::

    .venv-converter/bin/python tests/keras/make_models.py OUTDIR

builds every model twice, in Keras 2 (tf_keras, saved as ``.h5``) and Keras 3 (keras, saved as
``.keras``): Sequential and functional models covering the layers TF.js has (several inputs and
outputs, a shared layer, nested models), and ``applications.MobileNet`` / ``MobileNetV2`` at two
alphas and two input sizes (96 and 128). Weights are seeded; batch-normalisation statistics are those of a
calibration batch, so that every layer matters to the outputs. Each model is converted in-process by
``tensorflowjs.converters.converter.convert`` (what ``tensorflowjs_converter`` runs) four ways:
float32, ``--quantize_float16``, ``--quantize_uint8`` and float32 in odd-sized shards. Keras's
predictions on fixed inputs are written as ``.npy``, and for the quantized encodings also Keras's
predictions with the weights read back from the converted files (``tensorflowjs.read_weights``):
what an exact loader of those files must predict.

``OUTDIR/index.json`` lists it all (paths relative to OUTDIR)::

    {"versions": {...}, "models": {"k2-image": {"keras": 2, "source": "k2-image/source/model.h5",
      "inputs": ["k2-image/x0.npy"], "outputs": ["k2-image/y0.npy"],
      "encodings": {"float32": {"dir": "k2-image/float32", "references": ["k2-image/y0.npy"]}, ...}}}}

Also ``make_models.py reverse MODEL.json OUT_PREFIX X0.npy [X1.npy ...]``: converts a TF.js Layers
model to Keras (``--input_format tfjs_layers_model --output_format keras``, written to
``OUT_PREFIX.h5``) and writes tf_keras's predictions on the ``.npy`` inputs, ``OUT_PREFIX<i>.npy`` per
output.

Nothing here is imported by sightsound or pytest (the third-party imports are inside the functions).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

ENCODINGS = {  # name -> converter flags (the shard size is added per model)
    "float32": [],
    "float16": ["--quantize_float16=*"],
    "uint8": ["--quantize_uint8=*"],
    "sharded": None,
}
BATCH = 2
SEED = 20240611


def _quiet():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


# --------------------------------------------------------------------------- the models

def leaky(K, slope):
    """LeakyReLU: Keras 2 says alpha, Keras 3 negative_slope."""
    if K.__name__ == "tf_keras":
        return K.layers.LeakyReLU(alpha=slope)
    return K.layers.LeakyReLU(negative_slope=slope)


def basic_sequential(K):
    """Only the layers sightsound loaded before Keras models (Conv2D, pooling, Dense, Reshape...): 16x16x3 -> 5."""
    L = K.layers
    return K.Sequential([
        K.Input((16, 16, 3)),
        L.Conv2D(8, 3, strides=2, padding="same", activation="relu"),
        L.MaxPooling2D(2, padding="same"),
        L.Conv2D(12, 2, use_bias=False, activation="tanh"),
        L.AveragePooling2D(2, strides=1),
        L.Dropout(0.25),
        L.Flatten(),
        L.Dense(12, activation="sigmoid"),
        L.Reshape((3, 4)),
        L.Flatten(),
        L.Dense(5),
        L.Activation("softmax"),
    ], name="basic_sequential")


def image_sequential(K):
    """Every image layer in one Sequential model (20x18x3 -> 5x2 softmax)."""
    L = K.layers
    bn_axis = [3] if K.__name__ == "tf_keras" else 3  # the spellings each Keras writes
    return K.Sequential([
        K.Input((20, 18, 3)),
        L.ZeroPadding2D(((1, 2), (0, 1))),
        L.Conv2D(6, 3, strides=2, padding="same", activation="relu"),
        L.BatchNormalization(axis=bn_axis),
        L.DepthwiseConv2D(3, depth_multiplier=2, padding="same"),
        L.ReLU(max_value=6.0),
        L.SeparableConv2D(8, 3, padding="valid", activation="tanh"),
        leaky(K, 0.2),
        L.Cropping2D(((1, 0), (2, 1))),
        L.UpSampling2D((2, 1)),
        L.MaxPooling2D(2, strides=2, padding="same"),
        L.PReLU(shared_axes=[1, 2]),
        L.Conv2D(8, 1, use_bias=False),
        L.BatchNormalization(axis=-1, center=False),
        L.ELU(),  # TF.js 4.22 refuses alpha != 1
        L.AveragePooling2D((3, 1)),
        L.Permute((2, 1, 3)),
        L.GlobalMaxPooling2D(),
        L.Dropout(0.3),
        L.Dense(10),
        L.Reshape((5, -1)),
        L.Softmax(axis=-1),
    ], name="image_sequential")


def keepdims(K):
    """Global pooling that keeps the spatial axes (TF.js 4.22 has no keepdims): 6x5x3 -> 3."""
    L = K.layers
    return K.Sequential([
        K.Input((6, 5, 3)),
        L.Conv2D(4, 3, padding="same", activation="relu"),
        L.GlobalMaxPooling2D(keepdims=True),
        L.Conv2D(6, 1, activation="tanh"),
        L.GlobalAveragePooling2D(keepdims=True),
        L.Flatten(),
        L.Dense(3),
    ], name="keepdims")


def sequence_sequential(K):
    """The 1-D layers: Conv1D, pooling, Permute, Reshape -1, Activation (24x4 -> 6)."""
    L = K.layers
    return K.Sequential([
        K.Input((24, 4)),
        L.Conv1D(6, 3, padding="same", activation="relu"),
        L.BatchNormalization(axis=2),
        L.MaxPooling1D(2),
        L.Conv1D(5, 3, strides=1, dilation_rate=2, activation="elu"),
        L.AveragePooling1D(2, padding="same"),
        L.Permute((2, 1)),
        L.Flatten(),
        L.Dense(8, activation="sigmoid"),
        L.Dense(6),
        L.Reshape((-1,)),  # last: TF.js 4.22 leaves a -1 unresolved, so a Dense after it fails there
        L.Activation("softmax"),
    ], name="sequence_sequential")


def multi_io(K):
    """Functional: two inputs, two outputs, a layer shared by two branches, every merge layer."""
    L = K.layers
    image = K.Input((12, 10, 3), name="image")
    vector = K.Input((6,), name="vector")
    x = L.Conv2D(4, 3, padding="same", activation="relu")(image)
    a = L.Conv2D(4, 1, name="branch_a")(x)
    b = L.SeparableConv2D(4, 3, padding="same", name="branch_b")(x)
    merged = L.Concatenate(axis=-1)([L.Add()([a, b]), L.Multiply()([a, b]), L.Average()([a, b]),
                                     L.Maximum()([a, b])])
    merged = L.BatchNormalization(axis=-1)(merged)
    pooled = L.GlobalAveragePooling2D()(merged)  # 16
    shared = L.Dense(8, activation="tanh", name="shared_dense")
    from_image = shared(pooled)
    from_vector = shared(L.Dense(16, activation="relu")(vector))
    both = L.Concatenate()([from_image, from_vector])
    label = L.Dense(3, activation="softmax", name="label")(both)
    value = L.Dense(2, name="value")(L.Add()([from_image, from_vector]))
    return K.Model([image, vector], [label, value], name="multi_io")


def nested(K):
    """Functional with a Sequential and a functional model inside, the functional one called twice."""
    L = K.layers
    inner_seq = K.Sequential([K.Input((8,)), L.Dense(8, activation="relu"), L.Dense(4)], name="inner_seq")
    inner_in = K.Input((4,))
    inner_fn = K.Model(inner_in, L.Add()([inner_in, L.Dense(4, activation="elu")(inner_in)]), name="inner_fn")
    x = K.Input((10,), name="features")
    h = inner_seq(L.Dense(8)(x))
    h = inner_fn(inner_fn(h))
    return K.Model(x, L.Softmax()(L.Dense(3)(h)), name="nested")


def mobilenet(version: int, alpha: float, size: int):
    def build(K):
        app = K.applications.MobileNet if version == 1 else K.applications.MobileNetV2
        return app(input_shape=(size, size, 3), alpha=alpha, weights=None, classifier_activation=None)
    return build


def model_plan():
    """(name, keras major, builder, input shapes without the batch axis); inputs are uniform in [-1, 1]."""
    plan = []
    for major in (2, 3):
        k = f"k{major}"
        plan += [(f"{k}-basic-sequential", major, basic_sequential, [(16, 16, 3)]),
                 (f"{k}-image-sequential", major, image_sequential, [(20, 18, 3)]),
                 (f"{k}-sequence-sequential", major, sequence_sequential, [(24, 4)]),
                 (f"{k}-keepdims", major, keepdims, [(6, 5, 3)]),
                 (f"{k}-multi-io", major, multi_io, [(12, 10, 3), (6,)]),
                 (f"{k}-nested", major, nested, [(10,)])]
        for version, (small, large) in ((1, (0.25, 0.5)), (2, (0.35, 0.5))):
            # both alphas and both sizes in each Keras, each pairing in one of them (four MobileNets per
            # architecture in all: the full grid in each Keras would double the generation time)
            for alpha, size in (((small, 96), (large, 128)) if major == 2 else ((large, 96), (small, 128))):
                plan.append((f"{k}-mobilenet-v{version}-a{alpha}-{size}", major, mobilenet(version, alpha, size),
                             [(size, size, 3)]))
    return plan


# --------------------------------------------------------------------------- weights

def randomize(K, model, rng, calibration):
    """Seeded values for every weight that is not a kernel, then batch-norm statistics of a calibration batch.

    Kernels keep Keras's seeded initialisation; biases, betas and PReLU alphas get small random values and
    gammas values around 1. Moving means and variances become those of ``calibration`` (one pass in
    training mode with momentum 0), so activations neither vanish nor explode through deep models.
    """
    import numpy as np

    values = []
    for weight in model.weights:
        name = weight.name if K.__name__ == "tf_keras" else weight.path
        value = np.asarray(weight.numpy())
        if "gamma" in name:
            value = rng.uniform(0.5, 1.5, value.shape)
        elif any(part in name for part in ("bias", "beta")):
            value = rng.uniform(-0.2, 0.2, value.shape)
        elif "alpha" in name:
            value = rng.uniform(0.05, 0.4, value.shape)
        values.append(value.astype("float32"))
    model.set_weights(values)
    norms = [layer for layer in _all_layers(model) if type(layer).__name__ == "BatchNormalization"]
    saved = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    model(calibration, training=True)
    for layer, momentum in zip(norms, saved):
        layer.momentum = momentum


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def predict(model, inputs):
    import numpy as np

    outputs = model(inputs if len(inputs) > 1 else inputs[0], training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [np.asarray(y) for y in outputs]


# --------------------------------------------------------------------------- conversion

def convert(args):
    from tensorflowjs.converters import converter

    converter.convert([str(a) for a in args])


def shard_size(source_weights_bytes: int) -> int:
    """An odd shard size: about three shards, split inside a float32 value."""
    return max(1001, source_weights_bytes // 3 | 1)


def read_back(model_json: Path):
    """The converted weights as TF.js decodes them: {manifest name: float32 array}."""
    from tensorflowjs import read_weights

    doc = json.loads(model_json.read_text())
    groups = read_weights.read_weights(doc["weightsManifest"], str(model_json.parent), flatten=True)
    return {entry["name"]: entry["data"] for entry in groups}


def predict_with(K, model, source: Path, weights: dict, inputs):
    """Keras's predictions with ``weights`` (manifest names) in place of the model's own, then restored."""
    original = model.get_weights()
    if K.__name__ == "tf_keras":
        variables = {w.name.split(":")[0]: w for w in model.weights}
        for name, value in weights.items():
            variables[name].assign(value.reshape(variables[name].shape))
    else:  # Keras 3: the manifest names are the paths in the .keras archive's model.weights.h5
        import h5py

        copy = source.parent / "dequantized.weights.h5"
        shutil.copyfile(source.parent / "model.weights.h5", copy)
        with h5py.File(copy, "r+") as h5:
            for name, value in weights.items():
                h5[name][...] = value.reshape(h5[name].shape)
        model.load_weights(copy)
        copy.unlink()
    try:
        return predict(model, inputs)
    finally:
        model.set_weights(original)


def make_model(out: Path, name: str, major: int, build, shapes, rng) -> dict:
    import numpy as np

    if major == 2:
        import tf_keras as K
    else:
        import keras as K
    K.utils.set_random_seed(SEED)
    model = build(K)
    folder = out / name
    (folder / "source").mkdir(parents=True)
    inputs = [rng.uniform(-1, 1, (BATCH, *shape)).astype("float32") for shape in shapes]
    calibration = [rng.uniform(-1, 1, (8, *shape)).astype("float32") for shape in shapes]
    randomize(K, model, rng, calibration if len(calibration) > 1 else calibration[0])
    outputs = predict(model, inputs)
    entry = {"keras": major, "inputs": [], "outputs": [], "encodings": {}}
    for i, x in enumerate(inputs):
        np.save(folder / f"x{i}.npy", x)
        entry["inputs"].append(f"{name}/x{i}.npy")
    for i, y in enumerate(outputs):
        np.save(folder / f"y{i}.npy", y)
        entry["outputs"].append(f"{name}/y{i}.npy")
    if major == 2:
        source = folder / "source" / "model.h5"
        model.save(source)
        fmt = ["--input_format=keras"]
    else:
        source = folder / "source" / "model.keras"
        model.save(source)
        fmt = ["--input_format=keras_keras", "--output_format=tfjs_layers_model"]  # unzips beside source
    entry["source"] = str(source.relative_to(out))
    weight_bytes = 4 * sum(int(np.prod(w.shape)) for w in model.weights)
    for encoding, flags in ENCODINGS.items():
        if flags is None:
            flags = [f"--weight_shard_size_bytes={shard_size(weight_bytes)}"]
        target = folder / encoding
        convert([*fmt, *flags, source, target])
        references = entry["outputs"]
        if encoding in ("float16", "uint8"):
            dequantized = predict_with(K, model, source, read_back(target / "model.json"), inputs)
            references = []
            for i, y in enumerate(dequantized):
                np.save(folder / f"{encoding}-y{i}.npy", y)
                references.append(f"{name}/{encoding}-y{i}.npy")
        entry["encodings"][encoding] = {"dir": f"{name}/{encoding}", "references": references}
    K.backend.clear_session()
    return entry


def make_all(out: Path) -> None:
    _quiet()
    import numpy as np
    import keras
    import tensorflow as tf
    import tensorflowjs
    import tf_keras

    out.mkdir(parents=True, exist_ok=False)
    index = {"versions": {"tensorflowjs": tensorflowjs.__version__, "tensorflow": tf.__version__,
                          "tf_keras": tf_keras.__version__, "keras": keras.__version__}, "models": {}}
    for number, (name, major, build, shapes) in enumerate(model_plan()):
        rng = np.random.default_rng(SEED + number)
        index["models"][name] = make_model(out, name, major, build, shapes, rng)
        print(f"made {name}", flush=True)
    (out / "index.json").write_text(json.dumps(index, indent=1))


def reverse(model_json: str, out_prefix: str, *input_files: str) -> None:
    """TF.js Layers model -> ``--input_format tfjs_layers_model --output_format keras`` -> tf_keras's predictions.

    Writes ``OUT_PREFIX.h5`` (the converter's Keras 2 model) and ``OUT_PREFIX<i>.npy`` per output.
    """
    _quiet()
    import numpy as np
    import tf_keras

    convert(["--input_format=tfjs_layers_model", "--output_format=keras", model_json, f"{out_prefix}.h5"])
    model = tf_keras.models.load_model(f"{out_prefix}.h5", compile=False)
    for i, y in enumerate(predict(model, [np.load(f) for f in input_files])):
        np.save(f"{out_prefix}{i}.npy", y)


def main(argv: list[str]) -> int:
    if len(argv) == 1:
        make_all(Path(argv[0]))
        return 0
    if len(argv) >= 4 and argv[0] == "reverse":
        reverse(*argv[1:])
        return 0
    print("usage: make_models.py OUTDIR | make_models.py reverse MODEL.json OUT_PREFIX X0.npy [X1.npy ...]",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
