"""sightsound: TF.js-style convnets for images and sound on a PyTorch engine.

>>> import sightsound
>>> from sightsound import layers
>>> model = sightsound.sequential()
>>> model.add(layers.dense(units=10, activation="softmax", input_shape=[784]))

Functional models (``tf.model``) take layers called on symbolic inputs:

>>> x = sightsound.input(shape=[784])
>>> functional = sightsound.model(inputs=x, outputs=layers.dense(units=10, activation="softmax").apply(x))
"""

from .engine import callbacks, distributed, layers
from .engine.functional import InputLayer, SymbolicTensor, input  # noqa: A004  (TF.js's name: tf.input)
from .engine.model import Model, model
from .engine.sequential import Sequential, sequential
from .errors import SightsoundError
from .runtime import resolve_device, set_seed
from .tfjs import load_layers_model
from .version import __version__

__all__ = ["layers", "sequential", "Sequential", "input", "model", "Model", "InputLayer", "SymbolicTensor",
           "load_layers_model", "set_seed", "resolve_device", "SightsoundError", "__version__"]
