"""The optimizer in model.json both ways: ``trainingConfig``, and its state as ``"group": "optimizer"`` weights."""

from __future__ import annotations

import numpy as np
import torch

from ..engine import optimizers
from ..errors import ModelFormatError, SightsoundError
from ..naming import camel_case, snake_case
from .manifest import Entry, decode
from .weights import Weight, trainable_count


def training_config(model) -> dict:
    """The compiled model's ``trainingConfig``, in TF.js's snake_case names (optimizer config camelCase)."""
    opt = model.optimizer
    config = dict(opt.get_config())
    if "learning_rate" in config:  # TF.js writes camelCase optimizer configs
        config = {("learningRate" if k == "learning_rate" else k): v for k, v in config.items()}
    return {"loss": snake_case(model.loss), "metrics": [snake_case(m) for m in model.metrics],
            "optimizer_config": {"class_name": opt.class_name, "config": config}}


def optimizer_weights(model, weights: list[Weight]) -> list[tuple[dict, bytes]]:
    """TF.js ``optimizer.getWeights()``: ``iter``, then each slot kind for every trainable weight.

    RMSProp: ``<weight>/rms`` for all weights, then ``<weight>/momentum``; Adam:
    ``/m`` then ``/v``; SGD: ``iter`` only. Like TF.js, an optimizer that has
    not stepped yet has no slots to write.
    """
    opt = model.optimizer
    entries = [({"name": "iter", "shape": [], "dtype": "int32", "group": "optimizer"},
                np.array(opt.iterations, dtype="<i4").tobytes())]
    if opt.iterations == 0:
        return entries
    index = {id(p): i for i, p in enumerate(opt.params)}
    for slot in opt.slot_names:
        for weight in weights[:trainable_count(model)]:
            i = index.get(id(weight.tensor))
            value = opt.slots[slot][i] if i is not None else torch.zeros_like(weight.tensor)
            entries.append(({"name": f"{weight.name}/{slot}", "shape": list(weight.shape), "dtype": "float32",
                             "group": "optimizer"}, weight.to_tfjs(value).tobytes()))
    return entries


def compile_training(model, training: dict, where: str) -> None:
    """``compile()`` from ``trainingConfig``, as TF.js's ``loadTrainingConfig``."""
    if not isinstance(training, dict):
        raise ModelFormatError(f"{where}: trainingConfig must be an object")
    for key in ("weighted_metrics", "loss_weights", "sample_weight_mode"):
        if training.get(key) is not None:
            raise ModelFormatError(f"{where}: trainingConfig.{key} is not supported")
    loss = training.get("loss")
    if isinstance(loss, list) and len(loss) == 1:
        loss = loss[0]
    if not isinstance(loss, str):
        raise ModelFormatError(f"{where}: trainingConfig.loss must be one loss name, got {loss!r:.100}")
    metrics = training.get("metrics") or []
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise ModelFormatError(f"{where}: trainingConfig.metrics must be a list of names, got {metrics!r:.100}")
    opt_config = training.get("optimizer_config")
    if not isinstance(opt_config, dict):
        raise ModelFormatError(f"{where}: trainingConfig.optimizer_config is missing")
    if (opt_config.get("config") or {}).get("centered"):
        raise ModelFormatError(f"{where}: centered RMSProp is not supported")
    try:
        optimizer = optimizers.make(opt_config)
        model.compile(optimizer=optimizer, loss=camel_case(loss), metrics=[camel_case(m) for m in metrics])
    except SightsoundError as err:
        raise ModelFormatError(f"{where}: trainingConfig: {err}") from None
    except (ValueError, TypeError) as err:
        raise ModelFormatError(f"{where}: trainingConfig: {err}") from None


def restore_optimizer(model, weights: list[Weight], entries: list[Entry], data: list[bytearray],
                       where: str) -> None:
    """``optimizer.setWeights()``: ``iter`` first, then slots named ``<weight>/<slot>``."""
    opt = model.optimizer
    first, rest = entries[0], entries[1:]
    if first.shape != () or first.size == 0:
        raise ModelFormatError(f"{where}: the first optimizer weight ({first.name}) must be the scalar 'iter'")
    opt.iterations = int(decode(first, data[first.manifest_group]))
    if not rest:
        return  # saved before the first step: slots start at zero
    by_name = {e.name: e for e in rest}
    index = {id(p): i for i, p in enumerate(opt.params)}
    expected = []
    for slot in opt.slot_names:
        for weight in weights[:trainable_count(model)]:
            expected.append(f"{weight.name}/{slot}")
            entry = by_name.get(f"{weight.name}/{slot}")
            if entry is None:
                raise ModelFormatError(f"{where}: optimizer weight {weight.name}/{slot} is missing "
                                       f"({opt.class_name} saves {', '.join(opt.slot_names)} for every weight)")
            if entry.shape != weight.shape:
                raise ModelFormatError(f"{where}: optimizer weight {entry.name} has shape {list(entry.shape)}, "
                                       f"expected {list(weight.shape)}")
            i = index.get(id(weight.tensor))
            if i is not None:
                with torch.no_grad():
                    opt.slots[slot][i].copy_(weight.from_tfjs(decode(entry, data[entry.manifest_group])))
    unused = sorted(set(by_name) - set(expected))
    if unused:
        raise ModelFormatError(f"{where}: optimizer weights {', '.join(unused[:5])} do not belong to a "
                               f"{opt.class_name} optimizer of this model")
