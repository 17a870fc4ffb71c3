"""The engine: a TF.js-faithful Layers API run by PyTorch.

- :mod:`.layers` (a package): the layers, their PyTorch blocks, ``from_json`` and ``conv2d(...)``-style factories.
- :mod:`.functional`: the functional API's building blocks: symbolic tensors, nodes (layer calls),
  ``InputLayer`` and ``input()``, the ``Container`` base of models, each layer's one PyTorch module.
- :mod:`.sequential`: ``Sequential``, the layer stack (add, shapes, build, config, save) and ``sequential()``.
- :mod:`.model`: ``Model``, the functional model (``tf.model``) and ``model()``; :mod:`.model_config`
  reads its config (TF.js's, Keras 2's and Keras 3's forms).
- :mod:`.trainer`: the ``Trainer`` mixin both models inherit: compile, losses, ``fit`` (with DDP),
  ``evaluate``, ``predict``.
- :mod:`.summary`: the ``model.summary()`` table.
- :mod:`.activations`, :mod:`.initializers`, :mod:`.optimizers`, :mod:`.callbacks`, :mod:`.distributed`:
  what layers and the training loop are made of.
"""
