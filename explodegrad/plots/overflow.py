"""Figure of the overflow search (chapter 01): where the float type runs out as depth grows.

Draws :func:`explodegrad.studies.overflow.find_overflow`'s result.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from explodegrad.plots._checks import check_result
from explodegrad.plots.theme import draw_finite, figure_and_axes, finish, integer_x, mark_overflow
from explodegrad.studies.overflow import OverflowResult


def plot_overflow(result: OverflowResult, *, ax: Axes | None = None, title: str | None = None) -> Figure:
    """The SGD losses of the network at the overflow depth, step by step, with the first
    non-finite step marked and the search's sentence as the note."""
    check_result("result", result, OverflowResult, "explodegrad.studies.overflow.find_overflow")
    fig, ax = figure_and_axes(ax)
    steps = np.arange(result.train_losses.size, dtype=float)
    _, bad = draw_finite(
        ax,
        steps,
        result.train_losses,
        marker="o",
        markersize=3,
        label=f"depth {result.train_depth}, {result.dtype}",
    )
    if bad.any() or result.overflowed:
        mark_overflow(ax, steps[bad], result.message)
    integer_x(ax)
    finish(
        ax,
        xlabel="SGD step",
        ylabel="mean loss",
        title=title
        if title is not None
        else f"where {result.dtype} overflows (sigma = {result.sigma:g} per layer)",
        legend=True,
    )
    return fig
