"""Chapter 08's width against depth: final errors against depth at one parameter budget.

Draws :func:`explodegrad.studies.width_depth.width_vs_depth`'s result.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from explodegrad.plots._checks import check_result
from explodegrad.plots.theme import figure_and_axes, mark_overflow
from explodegrad.studies.width_depth import WidthDepthResult


def plot_width_vs_depth(
    result: WidthDepthResult, *, ax: Axes | None = None, title: str | None = None
) -> Figure:
    """Final training and test error against depth at one parameter budget (widths annotated):
    the median over the seeds, with a bar from the smallest to the largest.

    A depth where every learning rate diverged has no point and is listed in a note.
    """
    check_result("result", result, WidthDepthResult, "explodegrad.studies.width_depth.width_vs_depth")
    fig, ax = figure_and_axes(ax)
    grouped = result.table.groupby("depth")
    table = grouped.median(numeric_only=True).reset_index()
    depths = table["depth"].to_numpy()
    for column, name in (("final_train_error", "training error"), ("final_test_error", "test error")):
        values = table[column].to_numpy(dtype=float)
        low = grouped[column].min().to_numpy(dtype=float)
        high = grouped[column].max().to_numpy(dtype=float)
        finite = np.isfinite(values)
        (line,) = ax.plot(depths[finite], values[finite], marker="o", label=name)
        ax.vlines(depths[finite], low[finite], high[finite], color=line.get_color(), linewidth=3, alpha=0.35)
    train = table["final_train_error"].to_numpy(dtype=float)
    for depth, width, value in zip(depths, table["width"].astype(int), train):
        if np.isfinite(value):
            ax.annotate(
                f"width {width}",
                (depth, value),
                textcoords="offset points",
                xytext=(4, 6),
                fontsize="x-small",
            )
    bad = [int(d) for d, v in zip(depths, train) if not np.isfinite(v)]
    if bad:
        mark_overflow(ax, bad, "every learning rate diverged at depth " + ", ".join(map(str, bad)))
    ax.set_xscale("log", base=2)
    ax.set_xticks(depths, [str(d) for d in depths])
    ax.set_ylim(0, 1)
    ax.set_xlabel("depth (weight layers)")
    ax.set_ylabel("final error (best learning rate per depth)")
    ax.legend(fontsize="small")
    ax.set_title(title or f"{result.architecture}, at most {result.budget:,} parameters each")
    return fig
