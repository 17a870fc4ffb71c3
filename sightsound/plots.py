"""Figures: training curves (the chapter's figure 4.8) and test-result grids (figure 4.10).

All functions write a PNG with matplotlib's Agg backend (no screen needed) and
return the path.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .fileio import atomic_write  # noqa: E402


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # disk full, read-only...: no temp file left, the previous figure stays
        with atomic_write(path) as handle:
            fig.savefig(handle, dpi=110, bbox_inches="tight", format="png")
    finally:
        plt.close(fig)
    return path


def plot_curves(history: dict, path, title: str | None = None) -> Path:
    """Loss and accuracy curves: training per batch, validation per epoch.

    ``history`` is the ``history.json`` layout (``History.to_json()``):
    ``{"epochs": [{"epoch", "loss", "acc", "val_loss", "val_acc"}...],
    "batches": [{"batch", "loss", "acc"}...]}``. Validation points sit at the
    batch count where their epoch ended, as in the chapter's figure 4.8.
    """
    batches, epochs = history.get("batches", []), history.get("epochs", [])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    per_epoch = len(batches) / max(len(epochs), 1)
    for ax, key, label in ((axes[0], "loss", "Loss"), (axes[1], "acc", "Accuracy")):
        if batches:
            ax.plot([b["batch"] for b in batches], [b[key] for b in batches], color="tab:blue",
                    linewidth=1, label="train")
        val = [(round((i + 1) * per_epoch), e[f"val_{key}"]) for i, e in enumerate(epochs) if f"val_{key}" in e]
        if val:
            ax.plot(*zip(*val), color="tab:orange", linewidth=2.5, marker="o", label="validation")
        ax.set_xlabel("# of batches")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_test_results(images: np.ndarray, labels, predictions, path, columns: int = 10,
                      title: str | None = None) -> Path:
    """A grid of images with predicted and true labels; wrong ones in red (figure 4.10)."""
    images = np.asarray(images)
    n = len(images)
    rows = max(1, int(np.ceil(n / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.35))
    axes = np.atleast_1d(axes).ravel()
    for ax in axes:
        ax.axis("off")
    for i in range(n):
        ax = axes[i]
        ax.imshow(images[i].squeeze(), cmap="gray")
        ok = int(predictions[i]) == int(labels[i])
        ax.set_title(f"pred: {int(predictions[i])}" + ("" if ok else f"\ntrue: {int(labels[i])}"),
                     fontsize=8, color="black" if ok else "red")
        if not ok:
            for side in ax.spines.values():
                side.set_edgecolor("red")
                side.set_linewidth(2)
            ax.axis("on")
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_validation_curves(curves: dict[str, list[list[float]]], path, title: str | None = None) -> Path:
    """Overlay validation accuracy per epoch of several variants (mean over runs, band = min..max)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, runs in curves.items():
        runs = np.asarray(runs, dtype=float)
        epochs = np.arange(1, runs.shape[1] + 1)
        ax.plot(epochs, runs.mean(axis=0), marker="o", label=label)
        if len(runs) > 1:
            ax.fill_between(epochs, runs.min(axis=0), runs.max(axis=0), alpha=0.15)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, path)
