"""Chapter 07's remedies: the orthogonal initial state in training, and width against depth."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from explodegrad.plots.theme import FIGSIZE, figure_and_axes, mark_overflow
from explodegrad.studies.orthogonal import OrthogonalStateResult
from explodegrad.studies.width_depth import WidthDepthResult


def plot_orthogonal_state(result: OrthogonalStateResult, *, title: str | None = None) -> Figure:
    """Two panels against the training step: GSC(L, 2) between the hidden layers, training error.

    GSC values that are not finite (an overflow) are left out and listed in a note.
    """
    if not isinstance(result, OrthogonalStateResult):
        raise ValueError(
            f"result: expected an OrthogonalStateResult from "
            f"explodegrad.studies.orthogonal.orthogonal_initial_state, got {type(result).__name__}"
        )
    fig, (left, right) = plt.subplots(1, 2, figsize=(2 * FIGSIZE[0], FIGSIZE[1]))
    missing, where = [], []
    for name in result.names:
        steps, gsc = result.steps[name], result.hidden_gsc[name]
        finite = np.isfinite(gsc)
        left.plot(steps[finite], gsc[finite], marker="o", markersize=3, label=name)
        right.plot(steps, result.train_error[name], marker="o", markersize=3, label=name)
        if not finite.all():
            missing.append(name)
            where.extend(steps[~finite].tolist())
    left.axhline(1.0, color="0.3", linestyle="--", linewidth=1)
    left.set_ylabel("GSC(L, 2): first layer to last hidden layer")
    right.set_ylabel("training error")
    right.set_ylim(0, 1)
    for ax in (left, right):
        ax.set_xlabel("training step")
        ax.legend(fontsize="small")
    if missing:
        mark_overflow(
            left, sorted(set(where)), "GSC not finite (overflow) at some steps: " + ", ".join(missing)
        )
    seeds = f" (seed {result.seeds[0]} of {len(result.seeds)})" if len(result.seeds) > 1 else ""
    fig.suptitle(title or f"the orthogonal initial state during training{seeds}")
    fig.tight_layout()
    return fig


def plot_width_vs_depth(
    result: WidthDepthResult, *, ax: Axes | None = None, title: str | None = None
) -> Figure:
    """Final training and test error against depth at one parameter budget (widths annotated):
    the median over the seeds, with a bar from the smallest to the largest.

    A depth where every learning rate diverged has no point and is listed in a note.
    """
    if not isinstance(result, WidthDepthResult):
        raise ValueError(
            f"result: expected a WidthDepthResult from explodegrad.studies.width_depth.width_vs_depth, "
            f"got {type(result).__name__}"
        )
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
