"""The engine: a TF.js-faithful Layers API run by PyTorch.

- :mod:`.layers` (a package): the layers, their PyTorch blocks, ``from_json`` and ``conv2d(...)``-style factories.
- :mod:`.sequential`: ``Sequential``, the layer stack (add, shapes, build, config, save) and ``sequential()``.
- :mod:`.trainer`: the ``Trainer`` mixin ``Sequential`` inherits: compile, losses, ``fit`` (with DDP),
  ``evaluate``, ``predict``.
- :mod:`.summary`: the ``model.summary()`` table.
- :mod:`.activations`, :mod:`.initializers`, :mod:`.optimizers`, :mod:`.callbacks`, :mod:`.distributed`:
  what layers and the training loop are made of.
"""
