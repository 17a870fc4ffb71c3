"""The chapter's models, by name, written as the listings write them.

>>> build("mnist-conv").count_params()
56714
"""

from __future__ import annotations

from .engine import layers as L
from .engine.sequential import Sequential

IMAGE_SHAPE = [28, 28, 1]
SPEECH_SHAPE = [43, 232, 1]  # 43 frames x 232 frequency bins, one channel


def mnist_conv() -> list:
    """Listing 4.1: the browser MNIST convnet (56,714 parameters)."""
    return [
        L.conv2d(input_shape=IMAGE_SHAPE, kernel_size=3, filters=16, activation="relu"),
        L.max_pooling2d(pool_size=2, strides=2),
        L.conv2d(kernel_size=3, filters=32, activation="relu"),
        L.max_pooling2d(pool_size=2, strides=2),
        L.flatten(),
        L.dense(units=64, activation="relu"),
        L.dense(units=10, activation="softmax"),
    ]


def mnist_dense() -> list:
    """Listing 4.3: the dense-only baseline (33,400 parameters)."""
    return [
        L.flatten(input_shape=IMAGE_SHAPE),
        L.dense(units=42, activation="relu"),
        L.dense(units=10, activation="softmax"),
    ]


def mnist_enhanced() -> list:
    """Listing 4.5: the enhanced convnet trained in Node.js (594,922 parameters)."""
    return [
        L.conv2d(input_shape=IMAGE_SHAPE, filters=32, kernel_size=3, activation="relu"),
        L.conv2d(filters=32, kernel_size=3, activation="relu"),
        L.max_pooling2d(pool_size=[2, 2]),
        L.conv2d(filters=64, kernel_size=3, activation="relu"),
        L.conv2d(filters=64, kernel_size=3, activation="relu"),
        L.max_pooling2d(pool_size=[2, 2]),
        L.flatten(),
        L.dropout(rate=0.25),
        L.dense(units=512, activation="relu"),
        L.dropout(rate=0.5),
        L.dense(units=10, activation="softmax"),
    ]


def mnist_bn() -> list:
    """A batch-normalised convnet for MNIST (225,834 parameters), the model of the ``fast-99.5`` recipe: a 5x5
    convolution with stride 2 (32 filters), batch norm and relu, a 3x3 convolution (64 filters), max pooling,
    batch norm and relu, a hidden dense layer and the softmax. The stride and the pooling before the second
    batch norm keep the full-resolution work small."""
    return [
        L.conv2d(filters=32, kernel_size=5, strides=2, use_bias=False, input_shape=IMAGE_SHAPE),
        L.batch_normalization(),
        L.activation(activation="relu"),
        L.conv2d(filters=64, kernel_size=3, use_bias=False),
        L.max_pooling2d(pool_size=2, strides=2),
        L.batch_normalization(),
        L.activation(activation="relu"),
        L.flatten(),
        L.dense(units=128, activation="relu"),
        L.dense(units=10, activation="softmax"),
    ]


def mnist_strided() -> list:
    """A small batch-normalised convnet for MNIST (109,018 parameters), the model of the ``fast-99`` recipe:
    two convolutions that downsample by their strides instead of pooling (5x5 with 16 filters, then 3x3 with
    32), each with batch norm and relu, a hidden dense layer and the softmax. About a third of Listing 4.1's
    training time per image."""

    def block(filters, kernel, **first):
        return [L.conv2d(filters=filters, kernel_size=kernel, strides=2, use_bias=False, **first),
                L.batch_normalization(), L.activation(activation="relu")]

    return [
        *block(16, 5, input_shape=IMAGE_SHAPE),
        *block(32, 3),
        L.flatten(),
        L.dense(units=128, activation="relu"),
        L.dense(units=10, activation="softmax"),
    ]


def speech_conv(num_classes: int = 20, input_shape=SPEECH_SHAPE) -> list:
    """Listing 4.8: the speech-command convnet (1,468,684 parameters for 20 classes)."""
    return [
        L.conv2d(filters=8, kernel_size=[2, 8], activation="relu", input_shape=list(input_shape)),
        L.max_pooling2d(pool_size=[2, 2], strides=[2, 2]),
        L.conv2d(filters=32, kernel_size=[2, 4], activation="relu"),
        L.max_pooling2d(pool_size=[2, 2], strides=[2, 2]),
        L.conv2d(filters=32, kernel_size=[2, 4], activation="relu"),
        L.max_pooling2d(pool_size=[2, 2], strides=[2, 2]),
        L.conv2d(filters=32, kernel_size=[2, 4], activation="relu"),
        L.max_pooling2d(pool_size=[2, 2], strides=[1, 2]),
        L.flatten(),
        L.dropout(rate=0.25),
        L.dense(units=2000, activation="relu"),
        L.dropout(rate=0.5),
        L.dense(units=num_classes, activation="softmax"),
    ]


def speech_bn(num_classes: int = 20, input_shape=SPEECH_SHAPE) -> list:
    """A batch-normalised convnet for speech from many voices (the shipped model's architecture): four
    conv blocks (conv, batch norm, relu, pooling; the first strided along frequency), then a hidden
    dense layer (the one transfer learning builds its new head on) and the softmax."""

    def block(filters, kernel, pool, **first):
        return [L.conv2d(filters=filters, kernel_size=kernel, use_bias=False, **first),
                L.batch_normalization(), L.activation(activation="relu"),
                L.max_pooling2d(pool_size=pool, strides=pool)]

    return [
        *block(16, [3, 5], [2, 2], strides=[1, 2], input_shape=list(input_shape)),
        *block(32, [3, 3], [2, 2]),
        *block(64, [3, 3], [1, 2]),
        *block(64, [3, 3], [2, 2]),
        L.flatten(),
        L.dropout(rate=0.3),
        L.dense(units=256, activation="relu"),
        L.dropout(rate=0.5),
        L.dense(units=num_classes, activation="softmax"),
    ]


PRESETS = {
    "mnist-conv": mnist_conv,
    "mnist-dense": mnist_dense,
    "mnist-enhanced": mnist_enhanced,
    "mnist-bn": mnist_bn,
    "mnist-strided": mnist_strided,
    "speech-conv": speech_conv,
    "speech-bn": speech_bn,
}

# The chapter's training settings for each preset (Listings 4.2, 4.6, 4.8 and their example code).
TRAINING_DEFAULTS = {
    "mnist-conv": {"optimizer": "rmsprop", "batch_size": 320, "validation_split": 0.15, "epochs": 10},
    "mnist-dense": {"optimizer": "rmsprop", "batch_size": 320, "validation_split": 0.15, "epochs": 10},
    "mnist-enhanced": {"optimizer": "rmsprop", "batch_size": 128, "validation_split": 0.15, "epochs": 20},
    "speech-conv": {"optimizer": "sgd", "learning_rate": 0.01, "batch_size": 64, "epochs": 25},
}

# Recipes beside the chapter's, which stay the default. ``fast``: Listing 4.1 to high accuracy in few
# epochs (measured by benchmarks/time_to_accuracy.py): Adam at a high peak rate under a one-cycle
# schedule, label smoothing, all 60,000 images (no validation split).
RECIPES = {
    "chapter": TRAINING_DEFAULTS,
    "fast": {
        "mnist-conv": {"optimizer": "adam", "learning_rate": 0.01, "batch_size": 256, "validation_split": 0.0,
                       "epochs": 4, "schedule": {"class_name": "OneCycle", "warmup": 0.2},
                       "label_smoothing": 0.1},
    },
    # ``fast-99``: 99.0 % MNIST test accuracy in as little time as possible (benchmarks/time_to_accuracy.py):
    # the strided ``mnist-strided`` for two epochs under the fast recipe's schedule at batch 192 and peak rate 0.015
    # (chosen on the last 10,000 training images, never the test set).
    "fast-99": {
        "mnist-conv": {"model": "mnist-strided", "optimizer": "adam", "learning_rate": 0.015, "batch_size": 192,
                       "validation_split": 0.0, "epochs": 2, "schedule": {"class_name": "OneCycle", "warmup": 0.2},
                       "label_smoothing": 0.1},
    },
    # ``fast-99.5``: 99.5 % MNIST test accuracy in as little time as possible (benchmarks/time_to_accuracy.py):
    # the batch-normalised ``mnist-bn`` under the fast recipe's schedule, on images shifted by up to two
    # pixels each epoch (sightsound.data.mnist.random_shift), for six epochs (chosen on the last 10,000 training
    # images, never the test set).
    "fast-99.5": {
        "mnist-conv": {"model": "mnist-bn", "optimizer": "adam", "learning_rate": 0.01, "batch_size": 256,
                       "validation_split": 0.0, "epochs": 6, "schedule": {"class_name": "OneCycle", "warmup": 0.2},
                       "label_smoothing": 0.1, "augmentation": {"shift": 2}},
    },
    # ``robust``: Listing 4.8 for a recognizer that listens in noisy rooms (measured by
    # benchmarks/streaming.py): Adam under a one-cycle schedule, louder noise mixed into most clips,
    # four times the chapter's share of _unknown_ words and twice its noise-only examples, and windows
    # that cut words at an edge (slivers labelled _unknown_, most-of-a-word keeping its label).
    "robust": {
        "speech-conv": {"optimizer": "adam", "learning_rate": 0.002, "batch_size": 64, "epochs": 40,
                        "schedule": {"class_name": "OneCycle", "warmup": 0.1},
                        "unknown_share": 0.2, "noise_share": 0.1,
                        "augmentation": {"noise_probability": 0.85, "snr_db": [-5.0, 30.0],
                                         "fragment_probability": 0.1, "partial_probability": 0.15}},
    },
    # ``people``: the shipped speech model (measured on voices it never heard by
    # benchmarks/speech_generalization.py): the batch-normalised ``speech-bn`` on a multi-engine corpus,
    # with every voice, room and microphone change of sightsound.data.acoustics, SpecAugment masks, the
    # robust recipe's noise, _unknown_ share and cut words; every Kokoro clip is heard twelve times an
    # epoch, since its voices are the more natural ones and far fewer than espeak-ng's.
    "people": {
        "speech-conv": {"model": "speech-bn", "optimizer": "adam", "learning_rate": 0.003, "batch_size": 64,
                        "epochs": 30, "schedule": {"class_name": "OneCycle", "warmup": 0.15},
                        "unknown_share": 0.2, "noise_share": 0.1, "engine_repeats": {"kokoro": 12},
                        "augmentation": {"noise_probability": 0.8, "snr_db": [0.0, 30.0],
                                         "fragment_probability": 0.1, "partial_probability": 0.15,
                                         "tempo_probability": 0.5, "warp_probability": 0.6,
                                         "reverb_probability": 0.4, "microphone_probability": 0.6,
                                         "time_masks": 2, "freq_masks": 2}},
    },
}


#: The MNIST models by the short names that the command line, the web app and its Train page use.
MNIST_MODELS = {
    "conv": {"preset": "mnist-conv", "title": "Listing 4.1 convnet"},
    "dense": {"preset": "mnist-dense", "title": "Listing 4.3 dense-only"},
    "enhanced": {"preset": "mnist-enhanced", "title": "Listing 4.5 convnet"},
}


def mnist_preset(model: str) -> str:
    """The preset of an MNIST model: ``conv`` -> ``mnist-conv``; full preset names pass through.

    >>> mnist_preset("enhanced"), mnist_preset("mnist-dense")
    ('mnist-enhanced', 'mnist-dense')
    """
    if model in MNIST_MODELS:
        return MNIST_MODELS[model]["preset"]
    if model in (entry["preset"] for entry in MNIST_MODELS.values()):
        return model
    raise ValueError(f"unknown MNIST model {model!r}; choose {', '.join(MNIST_MODELS)}")


def training_defaults(preset: str, recipe: str = "chapter") -> dict:
    """The training settings of ``recipe`` (``chapter``, ``fast``, ``robust``...) for ``preset``'s job; a
    ``model`` key names another preset the recipe trains instead."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    if preset not in RECIPES[recipe]:
        have = ", ".join(sorted(RECIPES[recipe]))
        raise ValueError(f"recipe {recipe!r} is defined for {have}, not {preset}")
    return dict(RECIPES[recipe][preset])


def build(name: str, device: str = "auto", **options) -> Sequential:
    """A fresh model of preset ``name`` (``mnist-conv``, ``mnist-dense``, ``mnist-enhanced``, ``mnist-bn``, ``mnist-strided``,
    ``speech-conv``, ``speech-bn``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return Sequential(PRESETS[name](**options), device=device)
