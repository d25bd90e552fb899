"""Per-layer size of f_k at initialization (notebook 00's first figure).

Draws the ``rms`` of :func:`explodegrad.studies.signal_scale.measure_layer_rms` (or any array from
:func:`explodegrad.core.trace.layer_rms`).
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from explodegrad.plots.theme import LOG_SCALE_RANGE, figure_and_axes, log_axis, mark_overflow


def plot_layer_rms(
    rms: np.ndarray, *, ax: Axes | None = None, label: str | None = None, title: str | None = None
) -> Figure:
    """Per-layer RMS of f_k (from :func:`explodegrad.core.trace.layer_rms`) against the layer k.

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
        raise ValueError(
            f"rms: expected a non-empty 1-d array (one value per layer), got shape {values.shape}"
        )
    fig, ax = figure_and_axes(ax)
    layers = np.arange(1, values.size + 1)
    finite = np.isfinite(values)
    ax.plot(layers[finite], values[finite], marker="o", markersize=3, label=label)
    shown = values[finite]
    if shown.size and (shown > 0).all() and shown.max() > LOG_SCALE_RANGE * shown.min():
        log_axis(ax)
    else:
        ax.set_ylim(bottom=min(0.0, float(shown.min())) if shown.size else 0.0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if not finite.all():
        bad = ", ".join(str(k) for k in layers[~finite])
        mark_overflow(ax, layers[~finite], f"overflow (inf/NaN) at k = {bad}")
    ax.set_xlabel("layer k, counted from the output (k = 1: logits f_1, k = L: first layer)")
    ax.set_ylabel("RMS of f_k")
    if title:
        ax.set_title(title)
    if label:
        ax.legend()
    return fig
