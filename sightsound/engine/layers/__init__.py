"""Layers with TF.js names, configs and defaults, run by PyTorch modules.

A layer is plain data first: its ``config()`` holds exactly the fields TF.js
writes into ``model.json`` (snake_case keys, in TF.js's order), and its
``weight_specs()`` list the weights TF.js would create, with their TF.js
shapes. ``build_module()`` turns that data into a PyTorch module.

Inside the engine, image tensors (TF.js rank 3 without the batch: H, W, C) are
NCHW, the layout PyTorch's convolutions want; every other tensor keeps the TF.js
axis order. ``flatten`` and ``reshape`` translate between the two so that a
flattened image is in TF.js's H, W, C order, and dense kernels need no row
permutation when a model is saved or loaded.

Example (Listing 4.1's first layers)::

    >>> from sightsound import layers
    >>> conv = layers.conv2d(filters=16, kernel_size=3, activation="relu", input_shape=[28, 28, 1])
    >>> conv.compute_output_shape((28, 28, 1))
    (26, 26, 16)
    >>> layers.max_pooling2d(pool_size=2).config()["strides"]
    [2, 2]

The layers live in modules grouped as Keras groups them: :mod:`.base` (``Layer``, naming, shape
helpers), :mod:`.conv`, :mod:`.core` (dense, activation), :mod:`.pooling`, :mod:`.reshaping`,
:mod:`.regularization` (dropout), :mod:`.normalization`, and :mod:`.factories` (``from_json``
and the ``conv2d(...)``-style functions). Import them from here: ``from sightsound import layers``.
"""

from .base import Layer, Shape, WeightSpec, shape_text, unique_name
from .conv import Conv2D
from .core import Activation, Dense, pre_softmax
from .factories import (LAYER_CLASSES, activation, average_pooling2d, batch_normalization, conv2d, dense, dropout,
                        flatten, from_json, global_average_pooling2d, max_pooling2d, reshape)
from .normalization import BatchNormalization
from .pooling import AveragePooling2D, GlobalAveragePooling2D, MaxPooling2D
from .regularization import Dropout
from .reshaping import Flatten, Reshape

__all__ = ["Activation", "AveragePooling2D", "BatchNormalization", "Conv2D", "Dense", "Dropout", "Flatten",
           "GlobalAveragePooling2D", "LAYER_CLASSES", "Layer", "MaxPooling2D", "Reshape", "Shape", "WeightSpec",
           "activation", "average_pooling2d", "batch_normalization", "conv2d", "dense", "dropout", "flatten",
           "from_json", "global_average_pooling2d", "max_pooling2d", "pre_softmax", "reshape", "shape_text",
           "unique_name"]
