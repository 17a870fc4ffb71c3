"""The layer registry (:func:`from_json`) and the TF.js-style factory functions (``conv2d(...)``)."""

from __future__ import annotations

from ...errors import ModelFormatError
from ...naming import python_options
from .base import Layer
from .conv import Conv2D
from .core import Activation, Dense
from .normalization import BatchNormalization
from .pooling import AveragePooling2D, GlobalAveragePooling2D, MaxPooling2D
from .regularization import Dropout
from .reshaping import Flatten, Reshape

LAYER_CLASSES: dict[str, type[Layer]] = {cls.class_name: cls for cls in (
    Conv2D, Dense, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, Flatten, Reshape, Dropout,
    Activation, BatchNormalization)}


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
