"""Figure of Taylor compression: error after linearizing the top k layers.

Draws :func:`explodegrad.measures.taylor.taylor_compression`'s result.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from explodegrad.core.checks import check_choice
from explodegrad.measures.taylor import TaylorCurve
from explodegrad.plots._checks import check_result
from explodegrad.plots.theme import draw_finite, figure_and_axes, finish, integer_x, mark_overflow

METRICS = {"error": ("train_error", "training error"), "loss": ("train_loss", "training loss")}


def plot_taylor_curve(
    curve: TaylorCurve,
    *,
    ax: Axes | None = None,
    metric: str = "error",
    label: str | None = None,
    title: str | None = None,
) -> Figure:
    """Training error (or loss) against k, the number of top layers replaced by their
    first-order Taylor expansion (k = 0: the network itself). A flat curve up to large k means
    the top layers act almost linearly on the data: the network is effectively shallower."""
    check_result("curve", curve, TaylorCurve, "explodegrad.measures.taylor.taylor_compression")
    metric = check_choice("metric", metric, METRICS)
    field, ylabel = METRICS[metric]
    fig, ax = figure_and_axes(ax)
    ks = curve.ks.astype(float)
    values = getattr(curve, field)
    _, bad = draw_finite(ax, ks, values, marker="o", markersize=4, label=label or curve.label)
    mark_overflow(ax, ks[bad], None, what=ylabel.split()[-1], where="k =")
    if metric == "error":
        ax.set_ylim(-0.02, 1.02)
    else:
        finite = np.asarray(values)[np.isfinite(values)]
        ax.set_ylim(bottom=0.0, top=max(1.0, float(finite.max()) * 1.05) if finite.size else 1.0)
    integer_x(ax)
    finish(
        ax,
        xlabel="k: top layers replaced by their linearization\n(k = 0: the network itself)",
        ylabel=ylabel,
        title=title if title is not None else curve.label,
        legend=label is not None,
    )
    return fig
