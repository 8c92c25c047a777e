"""Figures the course draws: training curves, image grids, heatmaps."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np


def _plt():
    import matplotlib

    if not os.environ.get("DISPLAY") and "inline" not in matplotlib.get_backend().lower():
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_history(
    history: dict[str, list],
    path: str | os.PathLike | None = None,
    keys: Sequence[str] | None = None,
    logy: bool = False,
):
    """Train/val curves per epoch (the book's ``ProgressBoard``): losses left, the rest right.

    Saves a PNG when ``path`` is given; returns the figure (shown inline in notebooks).
    ``logy`` puts the losses on a log scale (the book's weight-decay plots).
    """
    plt = _plt()
    epochs = history.get("epoch") or list(range(1, len(next(iter(history.values()))) + 1))
    keys = keys or [
        k for k, v in history.items() if k not in ("epoch", "epoch_time") and isinstance(v, list)
    ]
    losses = [k for k in keys if k.endswith("loss") or "perplexity" in k]
    others = [k for k in keys if k not in losses]
    ncols = 2 if others and losses else 1
    fig, axes = plt.subplots(1, ncols, figsize=(4.5 * ncols, 3.2), squeeze=False)
    for ax, group in zip(axes[0], [g for g in (losses, others) if g], strict=False):
        for k in group:
            ax.plot(
                epochs,
                history[k],
                marker="o",
                ms=3,
                ls="-" if k.startswith("train") else "--",
                label=k,
            )
        ax.set_xlabel("epoch")
        if logy and group is losses:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
        plt.close(fig)
    return fig


def show_images(
    images: np.ndarray,
    num_rows: int,
    num_cols: int,
    titles: Sequence[str] | None = None,
    scale: float = 1.5,
    path: str | os.PathLike | None = None,
):
    """A grid of images with optional titles (the book's ``show_images``)."""
    plt = _plt()
    images = np.asarray(images)
    fig, axes = plt.subplots(
        num_rows, num_cols, figsize=(num_cols * scale, num_rows * scale), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= len(images):
            continue
        img = images[i]
        if img.ndim == 3 and img.shape[-1] == 1:
            img = img[..., 0]
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
        if titles is not None and i < len(titles):
            ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
        plt.close(fig)
    return fig


def plot_lines(
    xs,
    ys: dict[str, Sequence[float]] | Sequence[float],
    *,
    xlabel: str = "",
    ylabel: str = "",
    logy: bool = False,
    title: str = "",
    path: str | os.PathLike | None = None,
):
    """Several named curves over the same x values (the book's ``d2l.plot``)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    series = ys if isinstance(ys, dict) else {"": ys}
    for name, y in series.items():
        ax.plot(xs, y, label=name or None)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if isinstance(ys, dict):
        ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
        plt.close(fig)
    return fig


def heatmap(
    matrix,
    *,
    xlabel: str = "",
    ylabel: str = "",
    title: str = "",
    path: str | os.PathLike | None = None,
):
    """One matrix as an image with a colour bar (attention weights, confusion matrices)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(3.5, 3.5))
    im = ax.imshow(np.asarray(matrix), cmap="Reds")
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
        plt.close(fig)
    return fig
