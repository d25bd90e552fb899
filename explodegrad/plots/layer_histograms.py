"""Figures of per-layer histograms at initialization (chapter 02): one row per network, the
layer outputs on the left and their gradients on the right, one curve per layer.

Draws :class:`~explodegrad.studies.layer_histograms.LayerHistograms`. The x axis is log10 |value|,
so a curve that moves one unit to the left holds values ten times smaller; a colour bar says
which layer each curve is (dark: near the output, light: near the input).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from explodegrad.plots._checks import check_result
from explodegrad.plots.theme import PANEL_SIZE, finish
from explodegrad.studies.layer_histograms import LayerHistograms

#: The colour map of the layers (sequential: depth reads as lightness).
LAYER_COLORMAP = "viridis"


def shown_layers(num_layers: int, count: int) -> np.ndarray:
    """``count`` hidden layers spread evenly from 2 (the last hidden layer) to ``num_layers`` (the
    first layer); the logits (k = 1), whose gradient is softmax minus one-hot, are left out."""
    if count >= num_layers - 1:
        return np.arange(2, num_layers + 1)
    return np.unique(np.round(np.linspace(2, num_layers, count)).astype(int))


def plot_layer_histograms(
    results: LayerHistograms | Sequence[LayerHistograms], *, count: int = 6, title: str | None = None
) -> Figure:
    """One row per result: the histogram of log10 |f_k| (left) and of log10 |d loss / d f_k|
    (right) for ``count`` hidden layers spread over the depth. The rows share their x axes, so two
    initializers compare at a glance."""
    items = [results] if isinstance(results, LayerHistograms) else results
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence) or not items:
        check_result(
            "results", results, LayerHistograms, "explodegrad.studies.layer_histograms.layer_histograms"
        )
    for item in items:
        check_result(
            "results", item, LayerHistograms, "explodegrad.studies.layer_histograms.layer_histograms"
        )
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count={count!r} is not allowed: count must be a whole number >= 1")
    fig, axes = plt.subplots(
        len(items),
        2,
        figsize=(PANEL_SIZE[0] * 2 + 0.8, PANEL_SIZE[1] * len(items) + 0.4),
        squeeze=False,
        sharex="col",
    )
    depth = max(len(item.layers) for item in items)
    norm = Normalize(2, max(depth, 3))
    cmap = plt.get_cmap(LAYER_COLORMAP)
    for index, (row, item) in enumerate(zip(axes, items)):
        for ax, edges, shares, what in (
            (row[0], item.activation_edges, item.activation_share, "log10 |f_k|  (layer outputs)"),
            (row[1], item.gradient_edges, item.gradient_share, "log10 |d loss / d f_k|  (gradients)"),
        ):
            centres = (edges[:-1] + edges[1:]) / 2
            for k in shown_layers(len(item.layers), count):
                ax.plot(centres, shares[k - 1], color=cmap(norm(k)), linewidth=1.4)
            finish(
                ax,
                xlabel=what if index == len(items) - 1 else None,
                ylabel="share of values",
                title=item.label,
            )
        zero = float(np.max(item.zero_share))
        if zero > 0:
            row[0].text(
                0.02,
                0.95,
                f"exact zeros left out\n(up to {zero:.0%} per layer)",
                transform=row[0].transAxes,
                va="top",
                fontsize="small",
            )
    fig.tight_layout(rect=(0, 0, 0.9, 0.95 if title else 1.0))
    bar_ax = fig.add_axes((0.91, 0.15, 0.015, 0.7))
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=bar_ax, label="layer k (2: last hidden, L: first)")
    if title:
        fig.suptitle(title, fontsize="medium")
    return fig
