"""Optimizers with TF.js names, defaults and update rules.

TF.js and PyTorch disagree on details that change results: TF.js ``rmsprop``
uses decay 0.9 and puts epsilon *inside* the square root
(``g / sqrt(ms + eps)``), ``torch.optim.RMSprop`` uses alpha 0.99 and adds eps
outside. The classes here follow TF.js and update all parameters at once with
``torch._foreach_*`` kernels.

>>> import torch
>>> opt = make("rmsprop")
>>> opt.learning_rate, opt.decay, opt.epsilon
(0.001, 0.9, 1e-07)
"""

from __future__ import annotations

import torch

from ..errors import ModelFormatError

EPSILON = 1e-7  # TF.js backend epsilon


class Optimizer:
    """Base: holds parameters and per-parameter slots; ``step()`` applies one update."""

    class_name = "Optimizer"
    slot_names: tuple[str, ...] = ()

    def __init__(self, learning_rate: float):
        if not isinstance(learning_rate, (int, float)) or learning_rate <= 0:
            raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}")
        self.learning_rate = float(learning_rate)
        self.params: list[torch.Tensor] = []
        self.slots: dict[str, list[torch.Tensor]] = {}
        self.iterations = 0

    def bind(self, params: list[torch.Tensor]) -> "Optimizer":
        self.params = [p for p in params if p.requires_grad]
        self.slots = {name: [torch.zeros_like(p) for p in self.params] for name in self.slot_names}
        return self

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def get_config(self) -> dict:
        return {"learningRate": self.learning_rate}

    def to_json(self) -> dict:
        return {"class_name": self.class_name, "config": self.get_config()}

    # TF.js saves optimizer weights as a flat list: iterations first, then slots.
    def state(self) -> list[tuple[str, torch.Tensor]]:
        return []

    @torch.no_grad()
    def step(self) -> None:
        params, grads = self._with_grads()
        if params:
            self._apply(params, grads)
        self.iterations += 1

    def _with_grads(self):
        pairs = [(i, p, p.grad) for i, p in enumerate(self.params) if p.grad is not None]
        self._indices = [i for i, _, _ in pairs]
        return [p for _, p, _ in pairs], [g for _, _, g in pairs]

    def _slot(self, name):
        return [self.slots[name][i] for i in self._indices]

    def _apply(self, params, grads):
        raise NotImplementedError


class SGD(Optimizer):
    """``tf.train.sgd(learningRate)``: w -= lr * g (TF.js default lr 0.01)."""

    class_name = "SGD"

    def __init__(self, learning_rate: float = 0.01):
        super().__init__(learning_rate)

    def _apply(self, params, grads):
        torch._foreach_add_(params, grads, alpha=-self.learning_rate)


class RMSProp(Optimizer):
    """``tf.train.rmsprop(lr, decay=0.9, momentum=0, epsilon=1e-7)`` with TF.js numerics."""

    class_name = "RMSProp"
    slot_names = ("rms", "momentum")

    def __init__(self, learning_rate: float = 0.001, decay: float = 0.9, momentum: float = 0.0,
                 epsilon: float = EPSILON, centered: bool = False):
        super().__init__(learning_rate)
        if centered:
            raise ValueError("centered RMSProp is not supported")
        self.decay, self.momentum, self.epsilon, self.centered = float(decay), float(momentum), float(epsilon), False

    def get_config(self):
        return {"learningRate": self.learning_rate, "decay": self.decay, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}

    def _apply(self, params, grads):
        ms = self._slot("rms")
        torch._foreach_mul_(ms, self.decay)
        torch._foreach_addcmul_(ms, grads, grads, value=1.0 - self.decay)
        denom = torch._foreach_add(ms, self.epsilon)
        torch._foreach_sqrt_(denom)
        if self.momentum:
            mom = self._slot("momentum")
            torch._foreach_mul_(mom, self.momentum)
            torch._foreach_addcdiv_(mom, grads, denom, value=self.learning_rate)
            torch._foreach_sub_(params, mom)
        else:
            torch._foreach_addcdiv_(params, grads, denom, value=-self.learning_rate)


class Adam(Optimizer):
    """``tf.train.adam(lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-7)``."""

    class_name = "Adam"
    slot_names = ("m", "v")

    def __init__(self, learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = EPSILON):
        super().__init__(learning_rate)
        self.beta1, self.beta2, self.epsilon = float(beta1), float(beta2), float(epsilon)

    def get_config(self):
        return {"learningRate": self.learning_rate, "beta1": self.beta1, "beta2": self.beta2,
                "epsilon": self.epsilon}

    def _apply(self, params, grads):
        t = self.iterations + 1
        m, v = self._slot("m"), self._slot("v")
        torch._foreach_lerp_(m, grads, 1.0 - self.beta1)
        torch._foreach_mul_(v, self.beta2)
        torch._foreach_addcmul_(v, grads, grads, value=1.0 - self.beta2)
        step = self.learning_rate / (1.0 - self.beta1 ** t)
        denom = torch._foreach_div(v, 1.0 - self.beta2 ** t)
        torch._foreach_sqrt_(denom)
        torch._foreach_add_(denom, self.epsilon)
        torch._foreach_addcdiv_(params, m, denom, value=-step)


OPTIMIZERS = {"sgd": SGD, "rmsprop": RMSProp, "adam": Adam}
_BY_CLASS = {cls.class_name: cls for cls in OPTIMIZERS.values()}


def make(spec, learning_rate: float | None = None) -> Optimizer:
    """An optimizer from a TF.js name (``"rmsprop"``), an Optimizer, or ``{"class_name", "config"}``."""
    if isinstance(spec, Optimizer):
        return spec
    if isinstance(spec, dict):
        cls = _BY_CLASS.get(spec.get("class_name"))
        if cls is None:
            raise ModelFormatError(f"unknown optimizer class {spec.get('class_name')!r}; "
                                   f"supported: {', '.join(_BY_CLASS)}")
        cfg = dict(spec.get("config") or {})
        kwargs = {"learning_rate": cfg.pop("learningRate", cfg.pop("learning_rate", None))}
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        for key in ("decay", "momentum", "epsilon", "beta1", "beta2"):
            if cfg.get(key) is not None:
                kwargs[key] = cfg[key]
        return cls(**kwargs)
    cls = OPTIMIZERS.get(str(spec).lower())
    if cls is None:
        raise ValueError(f"unknown optimizer {spec!r}; supported: {', '.join(OPTIMIZERS)}")
    return cls() if learning_rate is None else cls(learning_rate)
