"""Figures of results: one consistent look, no computation.

Every plot function takes a result (an array or dataclass from a measure), an optional
matplotlib ``ax`` to draw into, and returns the Figure. It never computes what a measure
should: if a number is needed, a measure in the library computes it and is tested there.
Figures are made through pyplot, so in a notebook end the cell with ``;`` (or keep the
returned figure in a variable) to show it once.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

#: The palette every figure uses (readable for colour-blind learners).
PALETTE = "colorblind"
#: Default size of a single-panel figure, in inches.
FIGSIZE = (6.4, 3.8)
#: A y range wider than this factor is drawn on a log axis.
LOG_SCALE_RANGE = 10.0


def set_theme() -> None:
    """Apply the course's look: seaborn's white grid, colour-blind palette, readable fonts."""
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE,
                  rc={"figure.figsize": FIGSIZE, "figure.dpi": 100, "axes.titlesize": "medium",
                      "axes.spines.top": False, "axes.spines.right": False})


def _figure_and_axes(ax: Axes | None) -> tuple[Figure, Axes]:
    if ax is None:
        fig, ax = plt.subplots(figsize=FIGSIZE)
        return fig, ax
    if not isinstance(ax, Axes):
        raise ValueError(f"ax={ax!r} is not allowed: ax must be a matplotlib Axes or None")
    return ax.figure, ax


def plot_layer_rms(rms: np.ndarray, *, ax: Axes | None = None, label: str | None = None,
                   title: str | None = None) -> Figure:
    """Per-layer RMS of f_k (from :func:`explodegrad.trace.layer_rms`) against the layer k.

    The x axis uses the paper's numbering, counted from the output: k = 1 is the logits,
    k = L the first layer. The y axis is logarithmic when the values are positive and span
    more than a factor of ten, so that exponential growth or decay through depth shows as a
    straight line; otherwise it is linear from zero. Layers whose value
    overflowed (inf / NaN) are listed in the figure instead of drawn.

    Args:
        rms: ``rms[k - 1]`` is the RMS of f_k.
        ax: draw into these axes (default: a new figure).
        label: legend entry for this curve (no legend when None).
        title: axes title.
    """
    values = np.asarray(rms, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"rms: expected a non-empty 1-d array (one value per layer), got shape "
                         f"{values.shape}")
    fig, ax = _figure_and_axes(ax)
    layers = np.arange(1, values.size + 1)
    finite = np.isfinite(values)
    ax.plot(layers[finite], values[finite], marker="o", markersize=3, label=label)
    shown = values[finite]
    if shown.size and (shown > 0).all() and shown.max() > LOG_SCALE_RANGE * shown.min():
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=min(0.0, float(shown.min())) if shown.size else 0.0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if not finite.all():
        bad = ", ".join(str(k) for k in layers[~finite])
        ax.text(0.02, 0.95, f"overflow (inf/NaN) at k = {bad}", transform=ax.transAxes,
                va="top", color="crimson")
    ax.set_xlabel("layer k, counted from the output (k = 1: logits f_1, k = L: first layer)")
    ax.set_ylabel("RMS of f_k")
    if title:
        ax.set_title(title)
    if label:
        ax.legend()
    return fig
