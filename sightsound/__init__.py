"""sightsound: TF.js-style convnets for images and sound on a PyTorch engine.

>>> import sightsound
>>> from sightsound import layers
>>> model = sightsound.sequential()
>>> model.add(layers.dense(units=10, activation="softmax", input_shape=[784]))
"""

from . import callbacks, distributed, layers
from .errors import SightsoundError
from .model import Sequential, sequential
from .runtime import resolve_device, set_seed

__version__ = "0.1.0"


def load_layers_model(url_or_path, request_options=None, device="auto"):
    """Load a TF.js Layers model (directory, model.json path, file:// or http(s):// URL)."""
    from .tfjs import load_layers_model as _load

    return _load(url_or_path, request_options=request_options, device=device)


__all__ = ["layers", "sequential", "Sequential", "load_layers_model", "set_seed", "resolve_device",
           "SightsoundError", "__version__"]
