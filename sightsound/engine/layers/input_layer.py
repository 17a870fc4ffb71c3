"""``InputLayer``: a model's input placeholder, as TF.js and Keras write it into model.json."""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from ...errors import ModelFormatError, ShapeError
from . import base
from .base import Layer, uid


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value


class InputLayer(Layer):
    """The input of a model (``tf.layers.inputLayer``; ``sightsound.input()`` makes one): the identity, with
    no weights, one node and one output tensor.

    Give ``input_shape`` (without the batch) or ``batch_input_shape``; Keras 3 writes the latter as
    ``batch_shape``. Its config is TF.js's: ``batch_input_shape``, ``dtype``, ``sparse``, ``name`` (no
    ``trainable``: an InputLayer never is). Its default name is TF.js's, ``input1``, ``input2``, ...
    The engine runs float32 dense inputs, so ``sparse`` and Keras's ``ragged`` must be false; a batch
    size is kept in the config, as TF.js does, but not enforced.
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
            raise ShapeError(f"{name}: give exactly one of shape (without the batch axis) and batch_shape")
        if batch_input_shape is None:
            batch_input_shape = [batch_size, *(input_shape if isinstance(input_shape, (list, tuple)) else [None])]
        elif batch_size is not None:
            raise ShapeError(f"{name}: give batch_size or batch_shape, not both")
        for field, value in (("sparse", sparse), ("ragged", ragged)):
            if value not in (False, None):
                raise ModelFormatError(f"{name}: {field}={value!r} is not supported (dense inputs only)")
        if isinstance(dtype, Mapping):  # Keras 3 writes a dtype policy object
            dtype = (dtype.get("config") or {}).get("name")
        super().__init__(name=name, trainable=False, dtype=dtype)
        dims = list(batch_input_shape)
        if len(dims) < 2 or any(not _positive_int(d) for d in dims[1:]) or not (dims[0] is None or
                                                                                 _positive_int(dims[0])):
            raise ShapeError(f"{name}: the input shape must be positive ints, with an optional batch size "
                             f"first, got {dims!r:.80}")
        self.batch_input_shape = dims
        base.FUNCTIONAL.placeholder(self)  # its node and symbolic tensor, as every graph input has

    def config(self):
        return {"batch_input_shape": list(self.batch_input_shape), "dtype": "float32", "sparse": False,
                "name": self.name}

    @classmethod
    def from_config(cls, c):
        """Reads TF.js and Keras 2 (``batch_input_shape``) and Keras 3 (``batch_shape``) configs."""
        shape = c.get("batch_input_shape", c.get("batch_shape"))
        if not isinstance(shape, list):
            raise ModelFormatError(f"InputLayer {c.get('name')!r}: batch_input_shape must be a list, "
                                   f"got {shape!r:.80}")
        if c.get("optional"):  # Keras 3.5+: an input that may be left out
            raise ModelFormatError(f"InputLayer {c.get('name')!r}: optional inputs are not supported")
        return cls(batch_input_shape=shape, dtype=c.get("dtype"), sparse=c.get("sparse", False),
                   ragged=c.get("ragged", False), name=c.get("name"))

    def apply(self, inputs, **kwargs):
        raise TypeError(f"an InputLayer takes no inputs ({self.name}); use its output, layer.output")

    __call__ = apply

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def build_module(self, input_shape):
        return nn.Identity()
