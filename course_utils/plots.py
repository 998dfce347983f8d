"""Pictures of lessons 5 and 6: loss curves, learning curves, confusion matrix, word-by-word predictions.

Each function draws on a matplotlib ``Axes`` (a new figure when none is given) and returns it, so
a notebook can combine them or save the figure.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator


def _axes(ax=None, figsize=(6, 4)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_loss_curves(losses: Mapping[str, Sequence[float]], title: str = "Training loss", ax=None, smooth: int = 1):
    """One line per model: the training loss after each batch (a running mean over ``smooth`` batches)."""
    ax = _axes(ax)
    for name, values in losses.items():
        values = np.asarray(values, dtype=float)
        if smooth > 1 and len(values) >= smooth:
            values = np.convolve(values, np.ones(smooth) / smooth, mode="valid")
        ax.plot(np.arange(1, len(values) + 1), values, label=name)
    ax.axhline(np.log(2), color="grey", linestyle="--", linewidth=1, label="chance (log 2)")
    ax.set(xlabel="batch", ylabel="binary cross-entropy", title=title)
    ax.legend()
    return ax


def plot_history(history, title: str = "Learning curves", axes=None):
    """Train vs validation loss (left) and accuracy (right), one point per epoch.

    ``history`` is a ``training.History`` or a dict with the same keys; the best epoch is marked.
    """
    h = history.to_dict() if hasattr(history, "to_dict") else dict(history)
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    epochs = np.arange(1, len(h["train_loss"]) + 1)
    for ax, key, label in ((axes[0], "loss", "loss"), (axes[1], "acc", "accuracy")):
        ax.plot(epochs, h[f"train_{key}"], "o-", label=f"train {label}")
        ax.plot(epochs, h[f"val_{key}"], "s-", label=f"validation {label}")
        if h.get("best_epoch"):
            ax.axvline(h["best_epoch"], color="grey", linestyle=":", label="best epoch (kept)")
        ax.set(xlabel="epoch", ylabel=label, xticks=epochs)
        ax.legend()
    axes[0].set_title(f"{title}: loss")
    axes[1].set_title(f"{title}: accuracy")
    return axes


def plot_histories(histories: Mapping[str, object], key: str = "val_acc", ax=None):
    """One line per model for one quantity of their histories (default: validation accuracy)."""
    ax = _axes(ax)
    for name, history in histories.items():
        h = history.to_dict() if hasattr(history, "to_dict") else dict(history)
        ax.plot(np.arange(1, len(h[key]) + 1), h[key], "o-", label=name)
    label = {"val_acc": "validation accuracy", "val_loss": "validation loss", "train_acc": "training accuracy",
             "train_loss": "training loss"}.get(key, key.replace("_", " "))
    ax.set(xlabel="epoch", ylabel=label, title=f"{label} per epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    return ax


def plot_confusion_matrix(matrix, labels: Sequence[str] = ("negative", "positive"), title: str = "Confusion matrix", ax=None):
    """A 2x2 (or n x n) matrix of counts: rows are the true classes, columns the predicted ones."""
    matrix = np.asarray(matrix)
    ax = _axes(ax, figsize=(4.2, 3.8))
    image = ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        color = "white" if count > matrix.max() / 2 else "black"
        ax.text(j, i, f"{count:,}", ha="center", va="center", color=color, fontsize=12)
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xticklabels=labels, yticklabels=labels,
           xlabel="predicted", ylabel="true", title=title)
    ax.figure.colorbar(image, ax=ax, fraction=0.046)
    return ax


def plot_accuracy_by_length(lengths: Sequence[int], correct: Sequence[bool], bins: Sequence[int], ax=None):
    """Accuracy of the reviews whose length (in tokens) falls in each bin, with the bin's size."""
    lengths, correct = np.asarray(lengths), np.asarray(correct, dtype=float)
    ax = _axes(ax, figsize=(7, 3.8))
    names, accuracies, counts = [], [], []
    for low, high in zip(bins[:-1], bins[1:]):
        inside = (lengths >= low) & (lengths < high)
        if inside.any():
            names.append(f"{low}-{high - 1}")
            accuracies.append(correct[inside].mean())
            counts.append(int(inside.sum()))
    bars = ax.bar(names, accuracies, color="tab:blue")
    for bar, n in zip(bars, counts):
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), f"n={n:,}", ha="center", va="bottom", fontsize=8)
    ax.set(xlabel="review length (tokens)", ylabel="accuracy", title="Test accuracy by review length",
           ylim=(min(accuracies) - 0.05, 1.0))
    ax.tick_params(axis="x", rotation=30)
    return ax


def plot_prediction_by_word(words: Sequence[str], probabilities: Sequence[float], title: Optional[str] = None,
                            ax=None, label_every: Optional[int] = None):
    """How P(positive) moves as the model reads the text, one point per word.

    The x-axis is labelled with the words themselves (every ``label_every``-th one for long texts).
    """
    ax = _axes(ax, figsize=(max(6, min(16, len(words) * 0.25)), 3.8))
    steps = np.arange(len(words))
    ax.plot(steps, probabilities, "o-", markersize=3)
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.fill_between(steps, 0.5, probabilities, alpha=0.15)
    label_every = label_every or max(1, len(words) // 60)
    ax.set_xticks(steps[::label_every])
    ax.set_xticklabels(words[::label_every], rotation=90, fontsize=8)
    ax.set(ylim=(0, 1), ylabel='P("positive")', title=title or "Prediction after each word")
    return ax
