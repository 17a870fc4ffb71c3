"""The layer registry (:func:`from_json`) and the TF.js-style factory functions (``conv2d(...)``)."""

from __future__ import annotations

from ...errors import ModelFormatError
from ...naming import python_options
from .advanced_activations import ELU, LeakyReLU, PReLU, ReLU, Softmax, ThresholdedReLU
from .base import Layer
from .conv import Conv1D, Conv2D
from .conv_depthwise import DepthwiseConv2D, SeparableConv2D
from .core import Activation, Dense
from .input_layer import InputLayer
from .merging import Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply
from .normalization import BatchNormalization
from .pooling import (AveragePooling1D, AveragePooling2D, GlobalAveragePooling1D, GlobalAveragePooling2D,
                      GlobalMaxPooling1D, GlobalMaxPooling2D, MaxPooling1D, MaxPooling2D)
from .regularization import Dropout
from .reshaping import Flatten, Permute, Reshape
from .spatial import Cropping2D, UpSampling2D, ZeroPadding2D

LAYER_CLASSES: dict[str, type[Layer]] = {cls.class_name: cls for cls in (
    Conv2D, Dense, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, Flatten, Reshape, Dropout,
    Activation, BatchNormalization,
    Conv1D, DepthwiseConv2D, SeparableConv2D, MaxPooling1D, AveragePooling1D, GlobalMaxPooling2D,
    GlobalAveragePooling1D, GlobalMaxPooling1D, ZeroPadding2D, Cropping2D, UpSampling2D, Permute,
    ReLU, LeakyReLU, PReLU, ELU, ThresholdedReLU, Softmax, InputLayer,
    Add, Multiply, Average, Maximum, Minimum, Concatenate, Dot)}


def from_json(layer_json: dict) -> Layer:
    """Build a layer from its ``{"class_name", "config"}`` entry in model.json."""
    if not isinstance(layer_json, dict) or not isinstance(layer_json.get("config"), dict):
        raise ModelFormatError(f"a layer entry must be an object with class_name and config, got {layer_json!r:.200}")
    class_name = layer_json.get("class_name")
    cls = LAYER_CLASSES.get(class_name)
    if cls is None:
        raise ModelFormatError(f"unknown layer class {class_name!r}; supported: {', '.join(LAYER_CLASSES)}")
    try:
        return cls.from_config(layer_json["config"])
    except KeyError as missing:
        raise ModelFormatError(f"{class_name} config lacks the field {missing}") from None
    except (TypeError, ValueError, AttributeError, ArithmeticError) as err:
        # a config field of the wrong type or value that no specific check caught
        raise ModelFormatError(f"{class_name} config is invalid: {err}") from None


def _kwargs(kwargs: dict) -> dict:
    """Accept TF.js camelCase option names too (``kernelSize`` -> ``kernel_size``)."""
    return python_options(kwargs)


def conv2d(**kwargs) -> Conv2D:
    """``tf.layers.conv2d``: ``conv2d(filters=16, kernel_size=3, activation="relu", input_shape=[28, 28, 1])``."""
    return Conv2D(**_kwargs(kwargs))


def dense(**kwargs) -> Dense:
    """``tf.layers.dense``: ``dense(units=10, activation="softmax")``."""
    return Dense(**_kwargs(kwargs))


def max_pooling2d(**kwargs) -> MaxPooling2D:
    """``tf.layers.maxPooling2d``: ``max_pooling2d(pool_size=2, strides=2)``."""
    return MaxPooling2D(**_kwargs(kwargs))


def average_pooling2d(**kwargs) -> AveragePooling2D:
    """``tf.layers.averagePooling2d``."""
    return AveragePooling2D(**_kwargs(kwargs))


def global_average_pooling2d(**kwargs) -> GlobalAveragePooling2D:
    """``tf.layers.globalAveragePooling2d``."""
    return GlobalAveragePooling2D(**_kwargs(kwargs))


def flatten(**kwargs) -> Flatten:
    """``tf.layers.flatten``."""
    return Flatten(**_kwargs(kwargs))


def reshape(**kwargs) -> Reshape:
    """``tf.layers.reshape``: ``reshape(target_shape=[28, 28, 1])``."""
    return Reshape(**_kwargs(kwargs))


def dropout(**kwargs) -> Dropout:
    """``tf.layers.dropout``: ``dropout(rate=0.25)``."""
    return Dropout(**_kwargs(kwargs))


def activation(**kwargs) -> Activation:
    """``tf.layers.activation``: ``activation(activation="relu")``."""
    return Activation(**_kwargs(kwargs))


def batch_normalization(**kwargs) -> BatchNormalization:
    """``tf.layers.batchNormalization``."""
    return BatchNormalization(**_kwargs(kwargs))


def conv1d(**kwargs) -> Conv1D:
    """``tf.layers.conv1d``: ``conv1d(filters=8, kernel_size=3, input_shape=[100, 1])`` over [steps, channels]."""
    return Conv1D(**_kwargs(kwargs))


def depthwise_conv2d(**kwargs) -> DepthwiseConv2D:
    """``tf.layers.depthwiseConv2d``: ``depthwise_conv2d(kernel_size=3, depth_multiplier=2)``."""
    return DepthwiseConv2D(**_kwargs(kwargs))


def separable_conv2d(**kwargs) -> SeparableConv2D:
    """``tf.layers.separableConv2d``: ``separable_conv2d(filters=16, kernel_size=3)``."""
    return SeparableConv2D(**_kwargs(kwargs))


def max_pooling1d(**kwargs) -> MaxPooling1D:
    """``tf.layers.maxPooling1d``: ``max_pooling1d(pool_size=2)``."""
    return MaxPooling1D(**_kwargs(kwargs))


def average_pooling1d(**kwargs) -> AveragePooling1D:
    """``tf.layers.averagePooling1d``."""
    return AveragePooling1D(**_kwargs(kwargs))


def global_max_pooling2d(**kwargs) -> GlobalMaxPooling2D:
    """``tf.layers.globalMaxPooling2d``."""
    return GlobalMaxPooling2D(**_kwargs(kwargs))


def global_average_pooling1d(**kwargs) -> GlobalAveragePooling1D:
    """``tf.layers.globalAveragePooling1d``."""
    return GlobalAveragePooling1D(**_kwargs(kwargs))


def global_max_pooling1d(**kwargs) -> GlobalMaxPooling1D:
    """``tf.layers.globalMaxPooling1d``."""
    return GlobalMaxPooling1D(**_kwargs(kwargs))


def zero_padding2d(**kwargs) -> ZeroPadding2D:
    """``tf.layers.zeroPadding2d``: ``zero_padding2d(padding=[[1, 0], [2, 2]])``."""
    return ZeroPadding2D(**_kwargs(kwargs))


def cropping2d(**kwargs) -> Cropping2D:
    """``tf.layers.cropping2D``: ``cropping2d(cropping=[[1, 0], [2, 2]])``."""
    return Cropping2D(**_kwargs(kwargs))


def up_sampling2d(**kwargs) -> UpSampling2D:
    """``tf.layers.upSampling2d``: ``up_sampling2d(size=[2, 2], interpolation="bilinear")``."""
    return UpSampling2D(**_kwargs(kwargs))


def permute(**kwargs) -> Permute:
    """``tf.layers.permute``: ``permute(dims=[2, 1])``."""
    return Permute(**_kwargs(kwargs))


def re_lu(**kwargs) -> ReLU:
    """``tf.layers.reLU``: ``re_lu(max_value=6)``."""
    return ReLU(**_kwargs(kwargs))


def leaky_re_lu(**kwargs) -> LeakyReLU:
    """``tf.layers.leakyReLU``: ``leaky_re_lu(alpha=0.1)``."""
    return LeakyReLU(**_kwargs(kwargs))


def prelu(**kwargs) -> PReLU:
    """``tf.layers.prelu``: ``prelu(shared_axes=[1, 2])``."""
    return PReLU(**_kwargs(kwargs))


def elu(**kwargs) -> ELU:
    """``tf.layers.elu``."""
    return ELU(**_kwargs(kwargs))


def thresholded_re_lu(**kwargs) -> ThresholdedReLU:
    """``tf.layers.thresholdedReLU``: ``thresholded_re_lu(theta=0.5)``."""
    return ThresholdedReLU(**_kwargs(kwargs))


def softmax(**kwargs) -> Softmax:
    """``tf.layers.softmax``: ``softmax(axis=-1)`` (TF.js's default axis is 1)."""
    return Softmax(**_kwargs(kwargs))


def input_layer(**kwargs) -> InputLayer:
    """``tf.layers.inputLayer``: ``input_layer(input_shape=[28, 28, 1])``."""
    return InputLayer(**_kwargs(kwargs))


def add(**kwargs) -> Add:
    """``tf.layers.add``: a merge layer, for functional models."""
    return Add(**_kwargs(kwargs))


def multiply(**kwargs) -> Multiply:
    """``tf.layers.multiply``: a merge layer, for functional models."""
    return Multiply(**_kwargs(kwargs))


def average(**kwargs) -> Average:
    """``tf.layers.average``: a merge layer, for functional models."""
    return Average(**_kwargs(kwargs))


def maximum(**kwargs) -> Maximum:
    """``tf.layers.maximum``: a merge layer, for functional models."""
    return Maximum(**_kwargs(kwargs))


def minimum(**kwargs) -> Minimum:
    """``tf.layers.minimum``: a merge layer, for functional models."""
    return Minimum(**_kwargs(kwargs))


def concatenate(**kwargs) -> Concatenate:
    """``tf.layers.concatenate``: ``concatenate(axis=-1)``, a merge layer for functional models."""
    return Concatenate(**_kwargs(kwargs))


def dot(**kwargs) -> Dot:
    """``tf.layers.dot``: ``dot(axes=-1, normalize=True)``, a merge layer for functional models."""
    return Dot(**_kwargs(kwargs))
