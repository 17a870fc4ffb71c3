"""The training loop of a model: compile, losses, ``fit`` (with DDP), ``evaluate``, ``predict``, device moves.

:class:`Trainer` is a mixin, as Keras' ``Model`` inherits its ``Trainer``:
:class:`sightsound.engine.sequential.Sequential` (the layer stack) and
:class:`sightsound.engine.model.Model` (the functional model) inherit
these methods, so ``model.fit`` and its documentation stay where users look. The mixin
uses only what the models provide: ``net`` (the PyTorch module, made by ``build()``, with
``fused_softmax`` and ``image_input`` attributes), ``input_shape``, ``output_shape``, and the attributes
:meth:`Trainer._init_training` sets (``device``, ``optimizer``, ``loss``, ``metrics``, ``stop_training``,
``dtype_policy``, ``user_defined_metadata``).
"""

from __future__ import annotations

import contextlib
import math
import weakref

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ShapeError, TrainingError
from ..naming import accepts_tfjs_options
from ..runtime import cpu_heap, resolve_device
from . import distributed, optimizers
from .callbacks import CallbackList, History

LOSSES = ("categoricalCrossentropy", "sparseCategoricalCrossentropy", "meanSquaredError")
#: Keras' names: ``float32`` (TF.js's numerics, the default) or ``mixed_bfloat16`` (layers compute in
#: bfloat16 where PyTorch's autocast allows, weights, optimizer and loss stay float32).
DTYPE_POLICIES = ("float32", "mixed_bfloat16")
_LOSS_ALIASES = {"categorical_crossentropy": "categoricalCrossentropy",
                 "sparse_categorical_crossentropy": "sparseCategoricalCrossentropy",
                 "mean_squared_error": "meanSquaredError", "mse": "meanSquaredError"}
_CLIP = 1e-7  # TF.js epsilon, used to clip probabilities in cross-entropy
#: Batch size of inference passes when the caller names none: it changes only the speed, never the results.
DEFAULT_INFERENCE_BATCH = 1024


def bfloat16_is_fast(device: torch.device) -> bool:
    """True where bfloat16 has hardware support: AVX512-BF16/AMX CPUs (oneDNN) or bf16-capable GPUs."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class Trainer:
    """compile, fit, evaluate and predict for a model that builds ``self.net`` (see the module docstring)."""

    def _init_training(self, device) -> None:
        self.device = resolve_device(device)
        self.optimizer: optimizers.Optimizer | None = None
        self.loss: str | None = None
        self.metrics: list[str] = []
        self.stop_training = False
        self.user_defined_metadata: dict | None = None  # saved as userDefinedMetadata, as TF.js does
        self.dtype_policy = "float32"

    def _place(self) -> None:
        self.net.to(self.device)
        if self.net.image_input:
            self.net.to(memory_format=torch.channels_last)
        if self.optimizer is not None:
            self.optimizer.bind(list(self.net.parameters()))

    def to(self, device: str | torch.device):
        """Move the model to ``"cpu"``, ``"cuda"`` or ``"auto"``."""
        self.device = resolve_device(device)
        if self.net is not None:
            slots = self.optimizer.slots if self.optimizer is not None else None
            self._place()
            if slots and self.optimizer is not None:  # keep optimizer state across devices
                self.optimizer.slots = {k: [t.to(self.device) for t in v] for k, v in slots.items()}
        return self

    # -- training --------------------------------------------------------------
    @accepts_tfjs_options(data_args=0)
    def compile(self, optimizer="rmsprop", loss="categoricalCrossentropy", metrics=None,
                learning_rate: float | None = None, dtype_policy: str | None = None) -> None:
        """Choose optimizer (TF.js name or object), loss and metrics (``["accuracy"]``).

        TF.js's style works too: ``compile({"optimizer": "rmsprop", "loss": "categoricalCrossentropy"})``.

        ``dtype_policy="mixed_bfloat16"`` (as Keras' mixed-precision policy) runs
        the layers in bfloat16 under PyTorch's autocast in fit, evaluate and
        predict, with float32 weights, optimizer and loss: on CPUs with
        AVX512-BF16 or AMX and on recent GPUs convolutions run up to twice as
        fast. Saved models are float32 as always. The default ``float32`` keeps
        TF.js's numerics.
        """
        if dtype_policy is not None:
            self.set_dtype_policy(dtype_policy)
        loss = _LOSS_ALIASES.get(loss, loss)
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; supported: {', '.join(LOSSES)}")
        metrics = list(metrics or [])
        for m in metrics:
            if m not in ("accuracy", "acc"):
                raise ValueError(f"unknown metric {m!r}; supported: accuracy")
        self.loss, self.metrics = loss, metrics
        self.optimizer = optimizers.make(optimizer, learning_rate)
        self.build()
        self.optimizer.bind(list(self.net.parameters()))

    def set_dtype_policy(self, policy: str) -> None:
        """``float32`` or ``mixed_bfloat16`` (see :meth:`compile`); warns where bfloat16 has no hardware."""
        if policy not in DTYPE_POLICIES:
            raise ValueError(f"unknown dtype policy {policy!r}; choose one of {', '.join(DTYPE_POLICIES)}")
        if policy == "mixed_bfloat16" and not bfloat16_is_fast(self.device):
            import warnings

            warnings.warn(f"mixed_bfloat16 on {self.device}: this device has no fast bfloat16 kernels, so "
                          f"training will be slower than float32, not faster", RuntimeWarning, stacklevel=3)
        self.dtype_policy = policy

    def _autocast(self):
        """The mixed-precision context of the dtype policy (a no-op for float32).

        For float32 with no autocast on around the call, no context at all: entering and leaving a disabled
        ``torch.autocast`` costs a noticeable share of a one-image prediction; an autocast the caller turned
        on is still turned off.
        """
        if self.dtype_policy != "mixed_bfloat16" and not torch.is_autocast_enabled(self.device.type):
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16,
                              enabled=self.dtype_policy == "mixed_bfloat16")

    def _loss_and_correct(self, x: torch.Tensor, y: torch.Tensor):
        fused = self.loss != "meanSquaredError" and self.net.fused_softmax
        with self._autocast():
            out = self.net(x, logits=True) if fused else self.net(x)
        return self._output_loss(out.float(), y, logits=fused)

    def _output_loss(self, out: torch.Tensor, y: torch.Tensor, logits: bool):
        """Loss and correct count of one output ``out`` for targets ``y``; ``logits``: ``out`` holds the logits
        of a final softmax, for numerically stable cross-entropy."""
        sparse = self.loss == "sparseCategoricalCrossentropy"
        if self.loss == "meanSquaredError":
            loss = F.mse_loss(out, y)
        elif logits:
            logp = F.log_softmax(out, dim=-1)
            loss = F.nll_loss(logp, y) if sparse else -(y * logp).sum(dim=-1).mean()
        else:
            logp = torch.log(out.clamp(_CLIP, 1 - _CLIP))
            loss = F.nll_loss(logp.reshape(len(out), -1), y) if sparse \
                else -(y * logp).reshape(len(out), -1).sum(dim=-1).mean()
        with torch.no_grad():
            correct = self._correct(out, y)
        return loss, correct

    def _correct(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.loss == "sparseCategoricalCrossentropy":
            return (out.argmax(dim=-1) == y).sum()
        if out.shape[-1] == 1:  # binary accuracy
            return ((out > 0.5) == (y > 0.5)).sum() / out[0].numel()
        return (out.argmax(dim=-1) == y.argmax(dim=-1)).sum()

    @accepts_tfjs_options(data_args=2)
    def fit(self, x, y, batch_size: int = 32, epochs: int = 1, *, validation_split: float = 0.0,
            validation_data=None, shuffle: bool = True, callbacks=None, initial_epoch: int = 0,
            verbose: int = 0, generator: torch.Generator | None = None, tune_heap: bool = True) -> History:
        """Train like TF.js ``model.fit``; returns a :class:`History`.

        ``validation_split`` takes the *last* fraction of ``x``/``y`` before any
        shuffling, as TF.js does (:func:`training_count` examples train). Logs hold
        ``loss`` and ``acc`` per batch and per epoch, plus ``val_loss``/``val_acc``
        per epoch when validating. The chapter's call style works too:
        ``fit(xs, ys, {"epochs": 10, "batchSize": 320, "validationSplit": 0.15, "callbacks": ...})``
        or ``batchSize=320``.

        On the CPU the first ``fit`` tunes glibc's heap so that training steps do not
        page-fault (:func:`sightsound.runtime.tune_cpu_heap`; ``tune_heap=False`` or
        ``SIGHTSOUND_TUNE_HEAP=0`` leave it alone); freed memory goes back to the
        system once ``fit``, ``evaluate`` and ``predict`` have been idle for a second.
        """
        if self.optimizer is None:
            raise RuntimeError("call model.compile(...) before model.fit(...)")
        _check_batch_size(batch_size)
        if not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
        with cpu_heap(self.device, tune=tune_heap):
            return self._fit(x, y, batch_size, epochs, validation_split, validation_data, shuffle, callbacks,
                             initial_epoch, generator)

    def _fit(self, x, y, batch_size, epochs, validation_split, validation_data, shuffle, callbacks,
             initial_epoch, generator) -> History:
        xs, ys = self._as_tensors(x, y, "x", "y")
        val = None
        if validation_data is not None:
            val = self._as_tensors(validation_data[0], validation_data[1], "validation x", "validation y")
        elif validation_split:
            split_at = training_count(len(xs), validation_split)
            xs, ys, val = xs[:split_at], ys[:split_at], (xs[split_at:], ys[split_at:])
        history = History()
        cbs = CallbackList([history] + _as_list(callbacks), self)
        n, steps = len(xs), math.ceil(len(xs) / batch_size)
        ddp = distributed.context()
        if ddp.enabled:  # same start weights and the same shuffling on every process
            generator = self._sync_processes(ddp)
        self.stop_training = False
        train_logs = {}
        cbs.call("on_train_begin", {})
        for epoch in range(initial_epoch, epochs):
            cbs.call("on_epoch_begin", epoch, {})
            self.net.train()
            order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
            order = order.to(self.device)
            loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
            correct_sum = torch.zeros((), dtype=torch.float64, device=self.device)
            for step in range(steps):
                idx = order[step * batch_size:(step + 1) * batch_size]
                size = len(idx)
                cbs.call("on_batch_begin", step, {"batch": step, "size": size})
                if ddp.enabled:
                    loss, correct = self._distributed_step(xs, ys, idx, ddp)
                else:
                    xb, yb = xs.index_select(0, idx), ys.index_select(0, idx)
                    self.optimizer.zero_grad()
                    loss, correct = self._loss_and_correct(xb, yb)
                    loss.backward()
                    self.optimizer.step()
                loss_value = loss.item()
                if not math.isfinite(loss_value):
                    raise TrainingError(f"the loss became {loss_value} at epoch {epoch + 1}, batch {step + 1}; "
                                        f"lower the learning rate or check the inputs for NaN/inf")
                loss_sum += loss.detach() * size
                correct_sum += correct
                cbs.call("on_batch_end", step, {"batch": step, "size": size, "loss": loss_value,
                                                "acc": correct.item() / size})
                if self.stop_training:
                    break
            seen = min(n, (step + 1) * batch_size) if steps else 0
            train_logs = {"loss": (loss_sum / max(seen, 1)).item(), "acc": (correct_sum / max(seen, 1)).item()}
            if val is not None:
                train_logs["val_loss"], train_logs["val_acc"] = self._evaluate_tensors(*val)
            cbs.call("on_epoch_end", epoch, dict(train_logs))
            if self.stop_training:
                break
        cbs.call("on_train_end", dict(train_logs))
        return history

    def _sync_processes(self, ddp) -> torch.Generator:
        """Process 0's weights on every process, and a shuffling generator seeded alike everywhere."""
        for tensor in self.net.state_dict().values():
            buffer = tensor.contiguous()
            torch.distributed.broadcast(buffer, src=0)
            tensor.copy_(buffer)
        seed = torch.randint(0, 2**62, (1,)) if ddp.is_main else torch.zeros(1, dtype=torch.int64)
        torch.distributed.broadcast(seed, src=0)
        return torch.Generator().manual_seed(int(seed))

    def _distributed_step(self, xs, ys, idx, ddp):
        """One global batch split over processes; gradients summed so the update equals one process's."""
        local = idx[ddp.rank::ddp.world_size]
        self.optimizer.zero_grad()
        if len(local):
            loss, correct = self._loss_and_correct(xs.index_select(0, local), ys.index_select(0, local))
            (loss * (len(local) / len(idx))).backward()
        else:
            loss, correct = torch.zeros((), device=self.device), torch.zeros((), device=self.device)
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.optimizer.params]
        for p, g in zip(self.optimizer.params, grads):
            p.grad = g
        flat = torch.cat([g.reshape(-1) for g in grads] +
                         [(loss.detach() * len(local)).reshape(1), correct.reshape(1).to(loss.dtype)])
        torch.distributed.all_reduce(flat)
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()
        self.optimizer.step()
        return flat[-2] / len(idx), flat[-1]

    @torch.inference_mode()
    def _evaluate_tensors(self, xs: torch.Tensor, ys: torch.Tensor, batch_size: int | None = None):
        step = batch_size or DEFAULT_INFERENCE_BATCH
        loss_sum = correct = 0.0
        with self._inference():
            for start in range(0, len(xs), step):
                xb, yb = xs[start:start + step], ys[start:start + step]
                loss, c = self._loss_and_correct(xb, yb)
                loss_sum += loss.item() * len(xb)
                correct += c.item()
        return loss_sum / len(xs), correct / len(xs)

    @contextlib.contextmanager
    def _inference(self):
        """Dropout off and BatchNorm on running statistics, then back to the mode before: a callback
        that predicts in the middle of ``fit`` must not switch training off for the batches after it.

        Only the modules whose results depend on the mode are switched: switching every module of the
        net costs more than the forward pass of a small batch, and the others compute the same either way.
        """
        was_training = self.net.training
        switched = self._mode_dependent_modules()
        for module in switched:
            module.training = False
        try:
            yield
        finally:
            for module in switched:
                module.training = was_training

    def _mode_dependent_modules(self) -> list:
        """The modules of ``self.net`` that compute differently in training (looked up once per net)."""
        net = self.net
        modules = _MODE_DEPENDENT.get(net)
        if modules is None:
            modules = [m for m in net.modules() if m is not net and reads_training_mode(m)]
            _MODE_DEPENDENT[net] = modules
        return modules

    @accepts_tfjs_options(data_args=2)
    def evaluate(self, x, y, batch_size: int | None = None, verbose: int = 0) -> tuple[float, float]:
        """Loss and accuracy on ``x``/``y`` (dropout off), as TF.js ``model.evaluate``.

        ``batch_size`` changes only the speed (default :data:`DEFAULT_INFERENCE_BATCH`).
        """
        if self.loss is None:
            raise RuntimeError("call model.compile(...) before model.evaluate(...)")
        _check_batch_size(batch_size, optional=True)
        with cpu_heap(self.device, tune=False):
            xs, ys = self._as_tensors(x, y, "x", "y")
            if len(xs) == 0:
                raise ShapeError("evaluate() got no examples")
            return self._evaluate_tensors(xs, ys, batch_size)

    @accepts_tfjs_options(data_args=1)
    def predict(self, x, batch_size: int | None = None, verbose: int = 0) -> np.ndarray:
        """Outputs for a batch ``x`` shaped ``[N, *input_shape]`` (probabilities for softmax models).

        ``batch_size`` changes only the speed and peak memory (default :data:`DEFAULT_INFERENCE_BATCH`).
        """
        _check_batch_size(batch_size, optional=True)
        with cpu_heap(self.device, tune=False):
            return self._predict(self._as_inputs(x, "x"), batch_size or DEFAULT_INFERENCE_BATCH)

    def _predict(self, xs: torch.Tensor, step: int) -> np.ndarray:
        if len(xs) == 0:
            return np.zeros((0, *self.output_shape), dtype=np.float32)
        with torch.inference_mode(), self._inference(), self._autocast():
            if len(xs) <= step:  # one pass: no slices to join
                return own_output(self.net(xs), [xs]).float().cpu().numpy()
            outs = [self.net(xs[i:i + step]) for i in range(0, len(xs), step)]
            return torch.cat(outs).float().cpu().numpy()

    # -- inputs ----------------------------------------------------------------
    def _as_inputs(self, x, what: str, expected: tuple | None = None) -> torch.Tensor:
        """``x`` checked against ``expected`` (default: the model's input shape), as a float32 device tensor."""
        self.build()
        t = torch.as_tensor(x) if not isinstance(x, torch.Tensor) else x
        expected = self.input_shape if expected is None else expected
        if t.dim() == len(expected) and tuple(t.shape) == expected:
            raise ShapeError(f"{what}: expected a batch [N,{','.join(map(str, expected))}], got a single example "
                             f"{list(t.shape)}; add the batch axis (image.expand_dims or x[None])")
        if t.dim() != len(expected) + 1 or tuple(t.shape[1:]) != expected:
            raise ShapeError(f"{what}: expected shape [N,{','.join(map(str, expected))}], got {list(t.shape)}")
        if not (t.is_floating_point() or t.dtype in (torch.uint8, torch.int32, torch.int64)):
            raise ShapeError(f"{what}: expected numbers, got dtype {t.dtype}")
        floating = t.is_floating_point()  # integers are finite once they are float32
        t = t.to(self.device, torch.float32)
        if floating and not _all_finite(t):
            raise ShapeError(f"{what}: contains NaN or infinite values")
        return t

    def _as_tensors(self, x, y, x_what: str, y_what: str):
        xs = self._as_inputs(x, x_what)
        return xs, self._as_targets(y, len(xs), x_what, y_what, self.output_shape)

    def _as_targets(self, y, n: int, x_what: str, y_what: str, out: tuple) -> torch.Tensor:
        """``y`` checked against the loss and the output shape ``out`` (``n`` examples), as a device tensor."""
        if self.loss is None:
            raise RuntimeError("call model.compile(...) first")
        yt = torch.as_tensor(y) if not isinstance(y, torch.Tensor) else y
        if len(yt) != n:
            raise ShapeError(f"{x_what} has {n} examples but {y_what} has {len(yt)}")
        if self.loss == "sparseCategoricalCrossentropy":
            if yt.dim() != 1 or yt.is_floating_point() and not torch.equal(yt, yt.round()):
                raise ShapeError(f"{y_what}: sparseCategoricalCrossentropy expects integer class ids [N], "
                                 f"got {list(yt.shape)} {yt.dtype}")
            yt = yt.to(self.device, torch.int64)
            if len(yt) and (int(yt.min()) < 0 or int(yt.max()) >= out[-1]):
                raise ShapeError(f"{y_what}: class ids must be in 0..{out[-1] - 1}, got {int(yt.min())}..{int(yt.max())}")
            return yt
        if tuple(yt.shape[1:]) != tuple(out):
            hint = " (one-hot encode the labels, e.g. data.mnist.one_hot, or use sparseCategoricalCrossentropy)" \
                if yt.dim() == 1 else ""
            raise ShapeError(f"{y_what}: expected shape [N,{','.join(map(str, out))}], got {list(yt.shape)}{hint}")
        yt = yt.to(self.device, torch.float32)
        if not torch.isfinite(yt).all():
            raise ShapeError(f"{y_what}: contains NaN or infinite values")
        if self.loss == "categoricalCrossentropy" and len(yt) and (yt.min() < 0 or yt.max() > 1):
            raise ShapeError(f"{y_what}: categoricalCrossentropy expects one-hot or probability rows in [0, 1], "
                             f"got values in {float(yt.min()):g}..{float(yt.max()):g}")
        return yt


def training_count(n: int, validation_split: float) -> int:
    """How many of ``n`` examples train when the last ``validation_split`` of them validate.

    TF.js's rule, ``Math.floor(n * (1 - validationSplit))``, in the same float arithmetic; every
    caller that needs the count (schedules, progress bars, the web app) asks here.

    >>> training_count(90, 0.3), training_count(60000, 0.15)
    (62, 51000)
    """
    if not 0 < validation_split < 1:
        raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
    count = math.floor(n * (1 - validation_split))
    if count < 1 or count >= n:
        raise ValueError(f"validation_split {validation_split} leaves no training or no validation "
                         f"examples out of {n}")
    return count


#: For each net, its modules that read the training mode (the net itself never does: it is the engine's).
_MODE_DEPENDENT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: PyTorch modules the engine's blocks are made of that compute the same in training and inference mode.
_MODE_FREE_TORCH_MODULES = (nn.Conv1d, nn.Conv2d, nn.Linear, nn.ReLU, nn.Identity, nn.ModuleList, nn.ModuleDict)


def reads_training_mode(module: nn.Module) -> bool:
    """Whether ``module`` may compute differently in training mode: the engine's modules that do say so
    (``reads_training_mode = True``: dropout, batch normalization); a module from elsewhere is assumed to,
    unless it is one of the plain PyTorch modules in :data:`_MODE_FREE_TORCH_MODULES`."""
    if getattr(module, "reads_training_mode", False):
        return True
    kind = type(module)
    return not (kind.__module__.startswith("sightsound.") or kind in _MODE_FREE_TORCH_MODULES)


def own_output(out: torch.Tensor, others) -> torch.Tensor:
    """``out`` as ``torch.cat([out])`` would give it: a tensor of its own, sharing memory with none of the
    tensors ``others`` (the inputs, which may be the caller's arrays, and the outputs before it), in the layout
    ``cat`` picks; without the copy when ``out`` already is such a tensor."""
    storage = out.untyped_storage().data_ptr()
    if out.is_contiguous() and all(t.untyped_storage().data_ptr() != storage for t in others):
        return out
    return torch.cat([out])


def _all_finite(t: torch.Tensor) -> bool:
    """No NaN or infinity in the float32 tensor ``t``. A NaN or an infinity makes the sum NaN or infinite, so
    a finite sum answers in one reduction with no mask the size of ``t`` (whose fresh pages cost more than the
    check); only a non-finite sum, which finite values may also give by overflowing, looks at every value."""
    if t.numel() == 0:
        return True
    if bool(torch.isfinite(t.detach().sum())):
        return True
    return bool(torch.isfinite(t).all())


def _check_batch_size(batch_size, optional: bool = False) -> None:
    if optional and batch_size is None:
        return
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")


def _as_list(callbacks) -> list:
    if callbacks is None:
        return []
    if isinstance(callbacks, (list, tuple)):
        return list(callbacks)
    return [callbacks]
