"""Chapter 3's depth limit: training error against depth, one line per architecture.

Draws :func:`explodegrad.studies.depth_limit.depth_study`'s result.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from explodegrad.core.checks import check_choice
from explodegrad.plots._checks import check_result
from explodegrad.plots.theme import figure_and_axes, note_missing
from explodegrad.studies.depth_limit import DepthStudy


def plot_depth_study(
    study: DepthStudy, *, value: str = "final_train_error", ax: Axes | None = None, title: str | None = None
) -> Figure:
    """Training (or test) error against depth, one line per architecture, at each run's best rate:
    the median over the seeds, with a bar from the smallest to the largest.

    A depth where every learning rate diverged has no point and is listed in a note.
    """
    check_result("study", study, DepthStudy, "explodegrad.studies.depth_limit.depth_study")
    value = check_choice("value", value, ("final_train_error", "final_test_error"))
    fig, ax = figure_and_axes(ax)
    missing = []
    for architecture, rows in study.table.groupby("architecture", sort=False):
        grouped = rows.groupby("depth")[value]
        depths = np.asarray(sorted(grouped.groups))
        median, low, high = (
            grouped.agg(how).reindex(depths).to_numpy(dtype=float) for how in ("median", "min", "max")
        )
        finite = np.isfinite(median)
        rate = float(rows.loc[rows["depth"] == depths[-1], "rate_init"].median())
        label = f"{architecture} (r = {rate:.2f} at init)"
        (line,) = ax.plot(depths[finite], median[finite], marker="o", label=label)
        ax.vlines(depths[finite], low[finite], high[finite], color=line.get_color(), linewidth=3, alpha=0.35)
        missing += [f"{architecture} d{d}" for d in depths[~finite]]
    ax.set_ylim(bottom=0)
    ax.set_xlabel("depth (weight layers)")
    kind = "training" if value == "final_train_error" else "test"
    ax.set_ylabel(f"{kind} error after {study.steps} steps")
    ax.legend(fontsize="small")
    note_missing(ax, missing, "every learning rate diverged")
    ax.set_title(title or f"{kind} error against depth ({study.optimizer}, best learning rate per depth)")
    return fig
