"""``InputLayer``: a model's input placeholder, as TF.js and Keras write it into model.json."""

from __future__ import annotations

from torch import nn

from ...errors import ModelFormatError
from .base import Layer, uid


class InputLayer(Layer):
    """The input of a model (``tf.layers.inputLayer``): the identity, with no weights.

    Give ``input_shape`` (without the batch) or ``batch_input_shape``; Keras 3 writes the latter as
    ``batch_shape``. Its config is TF.js's: ``batch_input_shape``, ``dtype``, ``sparse``, ``name`` (no
    ``trainable``: an InputLayer never is). Its default name is TF.js's, ``input1``, ``input2``, ...
    The engine runs float32 dense inputs with any batch size, so ``sparse`` and Keras's ``ragged``
    must be false, and a fixed batch size is saved as null.
    """

    class_name = "InputLayer"

    def __init__(self, input_shape=None, batch_input_shape=None, batch_size=None, dtype=None, sparse=False,
                 name=None, batch_shape=None, ragged=False):
        name = name or uid("input")
        if batch_shape is not None:
            if batch_input_shape is not None and list(batch_input_shape) != list(batch_shape):
                raise ModelFormatError(f"{name}: batch_shape {batch_shape!r} and batch_input_shape "
                                       f"{batch_input_shape!r} differ")
            batch_input_shape = batch_shape
        if (input_shape is None) == (batch_input_shape is None):
            raise ModelFormatError(f"{name}: an InputLayer needs exactly one of input_shape and batch_input_shape")
        if input_shape is not None:
            batch_input_shape = [batch_size, *input_shape]
        for field, value in (("sparse", sparse), ("ragged", ragged)):
            if value not in (False, None):
                raise ModelFormatError(f"{name}: {field}={value!r} is not supported (dense inputs only)")
        super().__init__(name=name, batch_input_shape=batch_input_shape, trainable=False, dtype=dtype)

    def config(self):
        return {"batch_input_shape": list(self.batch_input_shape), "dtype": "float32", "sparse": False,
                "name": self.name}

    @classmethod
    def from_config(cls, c):
        if c.get("optional"):  # Keras 3.5+: an input that may be left out
            raise ModelFormatError(f"InputLayer {c.get('name')!r}: optional inputs are not supported")
        return cls(batch_input_shape=c.get("batch_input_shape"), batch_shape=c.get("batch_shape"),
                   dtype=c.get("dtype"), sparse=c.get("sparse", False), ragged=c.get("ragged", False),
                   name=c.get("name"))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def build_module(self, input_shape):
        return nn.Identity()
