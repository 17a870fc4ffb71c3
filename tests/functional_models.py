"""Functional models the tests share (test_functional.py, test_onnx_export.py), and a private merge layer.

The real merge layers (Add, Concatenate, ...) are another branch's work; :class:`WeightedSum` is just enough of
one (several inputs, one trainable weight per input) to prove that models call multi-input layers with a list of
engine-layout tensors, and save, load and train them.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import sightsound
from sightsound import layers
from sightsound.engine import initializers
from sightsound.engine.layers.base import Layer, WeightSpec, base_kwargs, init_params
from sightsound.errors import ShapeError


class WeightedSum(Layer):
    """``sum_i w_i * x_i`` over two or more inputs of one shape; ``w`` starts at ones."""

    class_name = "TestWeightedSum"
    multi_input = True

    @classmethod
    def from_config(cls, config):
        return cls(**base_kwargs(config))

    def compute_output_shape(self, input_shapes):
        if len(input_shapes) < 2 or len({tuple(s) for s in input_shapes}) != 1:
            raise ShapeError(f"{self.name}: needs two or more inputs of one shape, got {input_shapes}")
        return tuple(input_shapes[0])

    def weight_specs(self, input_shapes):
        return [WeightSpec("scales", (len(input_shapes),), True, initializers.normalize("ones"))]

    def build_module(self, input_shapes):
        module = _WeightedSum(len(input_shapes))
        init_params(self.weight_specs(input_shapes), self.tfjs_weights(module))
        return module

    def tfjs_weights(self, module):
        return {"scales": module.scales}


class _WeightedSum(nn.Module):
    def __init__(self, count: int):
        super().__init__()
        self.scales = nn.Parameter(torch.empty(count))

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return sum(scale * x for scale, x in zip(self.scales, inputs))


def two_branch_model(merge: bool = True):
    """An image and a feature vector in; a shared dense layer on both branches (merged by :class:`WeightedSum`
    when ``merge``); out: class probabilities and a nested Sequential head's (with batch normalisation)."""
    image = sightsound.input(shape=[8, 6, 1], name="image")
    features = sightsound.input(shape=[5], name="features")
    conv = layers.conv2d(filters=3, kernel_size=3, activation="relu", name="conv").apply(image)
    flat = layers.flatten(name="flat").apply(layers.max_pooling2d(pool_size=2, name="pool").apply(conv))
    shared = layers.dense(units=4, activation="tanh", name="shared")
    left = shared.apply(layers.dense(units=5, name="project").apply(flat))
    right = shared.apply(features)
    joined = WeightedSum(name="merge").apply([left, right]) if merge else left
    classes = layers.dense(units=3, activation="softmax", name="classes").apply(joined)
    head = sightsound.sequential([layers.dense(units=3, activation="relu", input_shape=[4], name="head_hidden"),
                                  layers.batch_normalization(name="head_bn"),
                                  layers.dense(units=2, activation="softmax", name="head_out")], name="head")
    return sightsound.model(inputs=[image, features], outputs=[classes, head.apply(right)], name="two_branch",
                            device="cpu")


def two_branch_data(n: int, seed: int = 0):
    """Inputs and one-hot targets the two-branch model can learn: the class of the image's mean brightness
    (3 bins) and the sign of the first feature."""
    rng = np.random.default_rng(seed)
    image = rng.random((n, 8, 6, 1), dtype=np.float32)
    features = rng.standard_normal((n, 5), dtype=np.float32)
    brightness = np.digitize(image.mean(axis=(1, 2, 3)), np.quantile(image.mean(axis=(1, 2, 3)), [1 / 3, 2 / 3]))
    classes = np.eye(3, dtype=np.float32)[brightness]
    signs = np.eye(2, dtype=np.float32)[(features[:, 0] > 0).astype(int)]
    return [image, features], [classes, signs]


def transfer_model(base_trainable: bool = False):
    """speech-commands' transfer model: a new softmax head (a one-layer Sequential) on a Sequential convnet's
    second-last dense layer, ``model(inputs=base.inputs, outputs=head.apply(base.layers[k].output))``.

    Returns ``(base, head, transfer)``; the base's conv2d(relu) -> maxPooling2d runs fused in the base.
    """
    base = sightsound.sequential([
        layers.conv2d(filters=4, kernel_size=3, activation="relu", input_shape=[12, 10, 1]),
        layers.max_pooling2d(pool_size=2),
        layers.conv2d(filters=6, kernel_size=[2, 3], padding="same", activation="relu"),
        layers.batch_normalization(),
        layers.flatten(),
        layers.dense(units=8, activation="relu"),
        layers.dense(units=5, activation="softmax")], device="cpu")
    base.build()
    for layer in base.layers:
        layer.trainable = base_trainable
    truncated = base.layers[-2].output
    head = sightsound.sequential([layers.dense(units=3, activation="softmax", input_shape=list(truncated.shape[1:]),
                                               name="NewHeadDense")], device="cpu")
    return base, head, sightsound.model(inputs=base.inputs, outputs=head.apply(truncated), device="cpu")
