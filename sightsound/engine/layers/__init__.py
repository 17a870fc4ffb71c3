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

Every other tensor stays in TF.js order: features ``[n]``, sequences ``[steps, channels]`` (Conv1D,
the 1-D poolings), and anything of rank 4 or more. A layer that takes an axis (BatchNormalization,
Softmax, Concatenate, Dot, PReLU's shared axes, Permute) counts it as TF.js does, batch included, and
maps it with :func:`.base.engine_axis`; a channels-first ``[c, h, w]`` input is just an image whose
"channels" are its width, so ``batch_normalization(axis=1)`` normalises its first axis as TF.js's layer
defines it (TF.js 4.22's CPU kernel gets a batch norm over any axis but the last wrong; not copied here).

Merge layers (:mod:`.merging`: Add, Concatenate, Dot, ...) take a list of tensors: their class attribute
``multi_input`` is True, ``compute_output_shape``, ``weight_specs`` and ``build_module`` take a list of
input shapes, and the module's ``forward`` a list of engine-layout tensors. They belong in functional
models; a ``Sequential`` refuses them with a ShapeError.

The layers live in modules grouped as Keras groups them: :mod:`.base` (``Layer``, naming, shape
helpers, layout), :mod:`.conv` (Conv2D, Conv1D), :mod:`.conv_depthwise` (DepthwiseConv2D,
SeparableConv2D), :mod:`.core` (dense, activation), :mod:`.advanced_activations` (ReLU, LeakyReLU,
PReLU, ELU, ThresholdedReLU, Softmax), :mod:`.pooling` (1-D, 2-D and global), :mod:`.reshaping`
(flatten, reshape, permute), :mod:`.spatial` (zero padding, cropping, up-sampling),
:mod:`.regularization` (dropout), :mod:`.normalization`, :mod:`.input_layer`, :mod:`.merging`, and
:mod:`.factories` (``from_json`` and the ``conv2d(...)``-style functions, one for each
``tf.layers.*`` function: ``zero_padding2d`` for ``zeroPadding2d``, ``re_lu`` for ``reLU``).
Import them from here: ``from sightsound import layers``.

Where TF.js 4.22 differs from Keras, these layers follow TF.js: Softmax's default axis is 1 (and one
axis must be the last); UpSampling2D's bilinear mode has no half-pixel centres; DepthwiseConv2D refuses a
dilation_rate (TF.js ignores it), ELU an alpha other than 1, ReLU a negative_slope or threshold, and
Concatenate a negative axis other than -1 (TF.js joins along the last axis for all of them). Keras's
``keepdims`` on the global poolings, which TF.js lacks, is supported (and written only when true).
"""

from .advanced_activations import ELU, LeakyReLU, PReLU, ReLU, Softmax, ThresholdedReLU
from .base import Layer, Shape, WeightSpec, shape_text, unique_name
from .conv import Conv1D, Conv2D
from .conv_depthwise import DepthwiseConv2D, SeparableConv2D
from .core import Activation, Dense, pre_softmax
from .factories import (LAYER_CLASSES, activation, add, average, average_pooling1d, average_pooling2d,
                        batch_normalization, concatenate, conv1d, conv2d, cropping2d, dense, depthwise_conv2d, dot,
                        dropout, elu, flatten, from_json, global_average_pooling1d, global_average_pooling2d,
                        global_max_pooling1d, global_max_pooling2d, input_layer, leaky_re_lu, max_pooling1d,
                        max_pooling2d, maximum, minimum, multiply, permute, prelu, re_lu, reshape,
                        separable_conv2d, softmax, thresholded_re_lu, up_sampling2d, zero_padding2d)
from .input_layer import InputLayer
from .merging import Add, Average, Concatenate, Dot, Maximum, Merge, Minimum, Multiply
from .normalization import BatchNormalization
from .pooling import (AveragePooling1D, AveragePooling2D, GlobalAveragePooling1D, GlobalAveragePooling2D,
                      GlobalMaxPooling1D, GlobalMaxPooling2D, MaxPooling1D, MaxPooling2D)
from .regularization import Dropout
from .reshaping import Flatten, Permute, Reshape
from .spatial import Cropping2D, UpSampling2D, ZeroPadding2D

__all__ = ["Activation", "Add", "Average", "AveragePooling1D", "AveragePooling2D", "BatchNormalization",
           "Concatenate", "Conv1D", "Conv2D", "Cropping2D", "Dense", "DepthwiseConv2D", "Dot", "Dropout", "ELU",
           "Flatten", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D",
           "GlobalMaxPooling2D", "InputLayer", "LAYER_CLASSES", "Layer", "LeakyReLU", "MaxPooling1D",
           "MaxPooling2D", "Maximum", "Merge", "Minimum", "Multiply", "PReLU", "Permute", "ReLU", "Reshape",
           "SeparableConv2D", "Shape", "Softmax", "ThresholdedReLU", "UpSampling2D", "WeightSpec",
           "ZeroPadding2D", "activation", "add", "average", "average_pooling1d", "average_pooling2d",
           "batch_normalization", "concatenate", "conv1d", "conv2d", "cropping2d", "dense", "depthwise_conv2d",
           "dot", "dropout", "elu", "flatten", "from_json", "global_average_pooling1d",
           "global_average_pooling2d", "global_max_pooling1d", "global_max_pooling2d", "input_layer",
           "leaky_re_lu", "max_pooling1d", "max_pooling2d", "maximum", "minimum", "multiply", "permute",
           "pre_softmax", "prelu", "re_lu", "reshape", "separable_conv2d", "shape_text", "softmax",
           "thresholded_re_lu", "unique_name", "up_sampling2d", "zero_padding2d"]
