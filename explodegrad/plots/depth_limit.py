"""Chapter 4's depth limit: training error against depth, one line per architecture.

Draws :func:`explodegrad.studies.depth_limit.depth_study`'s result.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from explodegrad.core.checks import check_choice
from explodegrad.plots._checks import check_result
from explodegrad.plots.theme import figure_and_axes, note_missing
from explodegrad.studies.depth_limit import DepthStudy, RateCurves


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


def plot_rate_curves(curves: RateCurves, *, ax: Axes | None = None, title: str | None = None) -> Figure:
    """Training error against learning rate for one (architecture, depth): one line per seed of
    the stored study (its chosen rate ringed, diverged rates as crosses at the top), and the
    learner's quick rerun dashed when there is one."""
    check_result("curves", curves, RateCurves, "explodegrad.studies.depth_limit.rate_curves")
    fig, ax = figure_and_axes(ax)
    for seed, rows in curves.stored.groupby("seed", sort=True):
        rows = rows.sort_values("lr")
        diverged = rows["diverged"].astype(bool).to_numpy()
        lrs, errors = rows["lr"].to_numpy(dtype=float), rows["final_train_error"].to_numpy(dtype=float)
        (line,) = ax.plot(lrs[~diverged], errors[~diverged], marker="o", label=f"stored, seed {seed}")
        if diverged.any():
            ax.plot(lrs[diverged], np.ones(diverged.sum()), "x", color=line.get_color(), markersize=8)
        chosen = curves.chosen.loc[curves.chosen["seed"] == seed, "best_lr"]
        if len(chosen) and np.isfinite(chosen.iloc[0]):
            at = np.isclose(lrs, float(chosen.iloc[0]))
            ax.plot(lrs[at], errors[at], "o", markersize=12, markerfacecolor="none", color=line.get_color())
    if curves.rerun is not None:
        rows = curves.rerun.sort_values("lr")
        ok = ~rows["diverged"].astype(bool).to_numpy()
        ax.plot(
            rows["lr"].to_numpy(dtype=float)[ok],
            rows["final_train_error"].to_numpy(dtype=float)[ok],
            "k--",
            marker="s",
            label=f"your rerun ({curves.rerun_label})",
        )
    ax.set_xscale("log")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("learning rate (SGD, momentum 0.9)")
    ax.set_ylabel("final training error")
    ax.legend(fontsize="small")
    ax.set_title(
        title or f"{curves.architecture} at depth {curves.depth}: error against rate (ringed: chosen)"
    )
    return fig
