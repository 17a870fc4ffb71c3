"""The chapter's exercises as reproducible experiments on real MNIST.

Each experiment trains a few model variants ``repeats`` times with different
seeds and reports, per variant: parameters, seconds per epoch, final training,
validation and test accuracy (mean ± std) and the train–validation gap (the
overfitting signal). The answer to the exercise's question is derived from
those numbers, never canned.

    >>> from sightsound.training.experiments import EXPERIMENTS
    >>> sorted(EXPERIMENTS)
    ['conv-blocks', 'conv-vs-dense', 'dense-layers', 'dropout']
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .. import plots, presets
from ..data import mnist
from ..engine import layers as L
from ..engine.sequential import Sequential
from .mnist import train_mnist

IMAGE = presets.IMAGE_SHAPE


def _conv_one_block() -> list:
    """Listing 4.1 with only its first conv2d(16)-maxPooling2d block (173,930 params)."""
    return [L.conv2d(input_shape=IMAGE, kernel_size=3, filters=16, activation="relu"),
            L.max_pooling2d(pool_size=2, strides=2), L.flatten(),
            L.dense(units=64, activation="relu"), L.dense(units=10, activation="softmax")]


def _conv_no_hidden_dense() -> list:
    """Listing 4.1 without its hidden dense(64) layer."""
    return [layer for layer in presets.mnist_conv() if not (isinstance(layer, L.Dense) and layer.units == 64)]


def _enhanced_no_dropout() -> list:
    """Listing 4.5 without its two dropout layers."""
    return [layer for layer in presets.mnist_enhanced() if not isinstance(layer, L.Dropout)]


def _dense(width: int) -> Callable[[], list]:
    def build() -> list:
        return [L.flatten(input_shape=IMAGE), L.dense(units=width, activation="relu"),
                L.dense(units=10, activation="softmax")]
    build.__doc__ = f"flatten -> dense({width}, relu) -> dense(10, softmax)"
    return build


@dataclass(frozen=True)
class Variant:
    label: str
    layers: Callable[[], list]
    defaults_from: str = "mnist-conv"  # whose chapter training settings to use


@dataclass(frozen=True)
class Experiment:
    name: str
    question: str
    variants: tuple[Variant, ...]


EXPERIMENTS = {
    "conv-blocks": Experiment("conv-blocks", "What changes when one conv2d-maxPooling2d block is removed?", (
        Variant("two conv-pool blocks (Listing 4.1)", presets.mnist_conv),
        Variant("one conv-pool block", _conv_one_block))),
    "dense-layers": Experiment("dense-layers", "What changes when the hidden dense layer is removed?", (
        Variant("with dense(64) (Listing 4.1)", presets.mnist_conv),
        Variant("without the hidden dense layer", _conv_no_hidden_dense))),
    "dropout": Experiment("dropout", "What changes when dropout is removed from the enhanced convnet?", (
        Variant("with dropout (Listing 4.5)", presets.mnist_enhanced, "mnist-enhanced"),
        Variant("without dropout", _enhanced_no_dropout, "mnist-enhanced"))),
    "conv-vs-dense": Experiment("conv-vs-dense", "Does a dense model of similar or larger size reach the convnet?", (
        Variant("convnet (Listing 4.1)", presets.mnist_conv),
        Variant("dense(42) (Listing 4.3)", presets.mnist_dense, "mnist-dense"),
        Variant("dense(100)", _dense(100), "mnist-dense"),
        Variant("dense(200)", _dense(200), "mnist-dense"),
        Variant("dense(400)", _dense(400), "mnist-dense"))),
}


@dataclass
class VariantResult:
    label: str
    params: int
    seconds_per_epoch: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    val_curves: list[list[float]] = field(default_factory=list)

    @property
    def gap(self) -> list[float]:
        return [t - v for t, v in zip(self.train_acc, self.val_acc)]

    def summary(self) -> dict:
        def stats(values):
            return {"mean": statistics.mean(values), "std": statistics.pstdev(values) if len(values) > 1 else 0.0}
        return {"label": self.label, "params": self.params,
                "seconds_per_epoch": statistics.mean(self.seconds_per_epoch),
                "train_acc": stats(self.train_acc), "val_acc": stats(self.val_acc),
                "test_acc": stats(self.test_acc), "gap": stats(self.gap), "runs": len(self.test_acc)}


def run(name: str, *, epochs: int | None = None, repeats: int = 3, data: mnist.MnistData | None = None,
        data_dir=None, device: str = "auto", train_limit: int | None = None, test_limit: int | None = None,
        progress: bool = False) -> list[VariantResult]:
    """Train every variant of experiment ``name`` ``repeats`` times (seeds 0..repeats-1)."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)} or all")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    data = data or mnist.load_mnist(data_dir)
    results = []
    for variant in EXPERIMENTS[name].variants:
        out = None
        for seed in range(repeats):
            trained = train_mnist(lambda: Sequential(variant.layers()), data=data, epochs=epochs, seed=seed,
                                  device=device, train_limit=train_limit, test_limit=test_limit,
                                  defaults_from=variant.defaults_from, progress=progress)
            if out is None:
                out = VariantResult(variant.label, trained.params)
            last = trained.history["epochs"][-1]
            out.seconds_per_epoch.append(trained.seconds / max(trained.epochs, 1))
            out.train_acc.append(last["acc"])
            out.val_acc.append(last["val_acc"])
            out.test_acc.append(trained.test_accuracy)
            out.val_curves.append([e["val_acc"] for e in trained.history["epochs"]])
        results.append(out)
    return results


def answer(name: str, results: list[VariantResult]) -> str:
    """One sentence answering the exercise, derived from the measured numbers."""
    rows = [r.summary() for r in results]
    base, others = rows[0], rows[1:]
    best_test = max(rows, key=lambda r: r["test_acc"]["mean"])
    most_overfit = max(rows, key=lambda r: r["gap"]["mean"])
    parts = []
    for other in others:
        delta = 100 * (other["test_acc"]["mean"] - base["test_acc"]["mean"])
        parts.append(f"{other['label']} ({other['params']:,} params) scores {abs(delta):.2f} points "
                     f"{'higher' if delta > 0 else 'lower'} on test than {base['label']} ({base['params']:,} params)")
    sentence = "; ".join(parts) + "."
    sentence += (f" The largest train-validation gap, i.e. the most overfitting, is {most_overfit['label']} "
                 f"({100 * most_overfit['gap']['mean']:+.2f} points); the best test accuracy is "
                 f"{best_test['label']} ({100 * best_test['test_acc']['mean']:.2f} %).")
    if name == "conv-vs-dense":
        dense_best = max(others, key=lambda r: r["test_acc"]["mean"])
        reached = dense_best["test_acc"]["mean"] >= base["test_acc"]["mean"]
        sentence += (f" Width alone {'does' if reached else 'does not'} reach the convnet: the best dense model, "
                     f"{dense_best['label']} with {dense_best['params']:,} params, gets "
                     f"{100 * dense_best['test_acc']['mean']:.2f} % against "
                     f"{100 * base['test_acc']['mean']:.2f} %.")
    return sentence


def report(name: str, results: list[VariantResult], out_dir) -> tuple[str, Path]:
    """Write ``report.md``, ``report.json`` and ``curves.png`` into ``out_dir/<name>/``; return the Markdown."""
    out = Path(out_dir) / name
    out.mkdir(parents=True, exist_ok=True)
    experiment = EXPERIMENTS[name]
    rows = [r.summary() for r in results]

    def pm(stat):
        return f"{100 * stat['mean']:.2f} ± {100 * stat['std']:.2f}"

    lines = [f"## {name}: {experiment.question}", "",
             "| variant | params | s/epoch | train acc % | val acc % | test acc % | train-val gap (points) | runs |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['params']:,} | {r['seconds_per_epoch']:.1f} | {pm(r['train_acc'])} | "
                     f"{pm(r['val_acc'])} | {pm(r['test_acc'])} | {pm(r['gap'])} | {r['runs']} |")
    text_answer = answer(name, results)
    lines += ["", f"**Answer.** {text_answer}", ""]
    markdown = "\n".join(lines)
    (out / "report.md").write_text(markdown)
    (out / "report.json").write_text(json.dumps({"experiment": name, "question": experiment.question,
                                                  "variants": rows, "answer": text_answer}, indent=1))
    curves = plots.plot_validation_curves({r.label: r.val_curves for r in results}, out / "curves.png",
                                          title=experiment.question)
    return markdown, curves
