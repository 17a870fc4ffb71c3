"""sightsound: TF.js-style convnets for images and sound on a PyTorch engine.

>>> import sightsound
>>> from sightsound import layers
>>> model = sightsound.sequential()
>>> model.add(layers.dense(units=10, activation="softmax", input_shape=[784]))
"""

from .engine import callbacks, distributed, layers
from .engine.sequential import Sequential, sequential
from .errors import SightsoundError
from .runtime import resolve_device, set_seed
from .tfjs import load_layers_model
from .version import __version__

__all__ = ["layers", "sequential", "Sequential", "load_layers_model", "set_seed", "resolve_device",
           "SightsoundError", "__version__"]
