"""What the GSC means (chapter 3): rescaling invariance and the perturbation check.

Draws the results of :mod:`explodegrad.studies.gsc_meaning`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from explodegrad.plots._checks import check_result
from explodegrad.plots.theme import FIGSIZE, figure_and_axes
from explodegrad.studies.gsc_meaning import PerturbationCheck, RescalingComparison


def _positive(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(y) & (y > 0)
    return x[keep], y[keep]


def plot_rescaling(comparison: RescalingComparison, *, title: str | None = None) -> Figure:
    """Two panels against the layer k: raw gradient norms and GSC(k, 0), before and after rescaling.

    The two networks compute the same function: the raw gradient jumps at the rescaled
    layer, the GSC lies on top of itself.
    """
    check_result(
        "comparison", comparison, RescalingComparison, "explodegrad.studies.gsc_meaning.rescaling_comparison"
    )
    fig, (left, right) = plt.subplots(1, 2, figsize=(2 * FIGSIZE[0], FIGSIZE[1]))
    panels = (
        (left, comparison.raw_before, comparison.raw_after, "raw gradient ||d loss / d f_k||"),
        (right, comparison.gsc_before, comparison.gsc_after, "GSC(k, 0)"),
    )
    for ax, before, after, ylabel in panels:
        ax.plot(*_positive(comparison.layers, before), marker="o", markersize=4, label="original")
        ax.plot(
            *_positive(comparison.layers, after),
            marker="x",
            markersize=6,
            linestyle="--",
            label=f"f_{comparison.layer} × {comparison.factor:g} (same function)",
        )
        ax.axvline(comparison.layer, color="0.6", linewidth=1)
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("layer k, counted from the output (k = 1: logits)")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize="small")
    fig.suptitle(title or comparison.label)
    fig.tight_layout()
    return fig


def plot_perturbation_check(
    check: PerturbationCheck, *, ax: Axes | None = None, title: str | None = None
) -> Figure:
    """The relative-perturbation gain against GSC(k, 0): each direction faint, their RMS bold.

    Points on the dashed diagonal mean: nudging f_k by a relative amount moves the loss
    GSC(k, 0) times as much, relatively.
    """
    check_result("check", check, PerturbationCheck, "explodegrad.studies.gsc_meaning.perturbation_check")
    fig, ax = figure_and_axes(ax)
    directions = check.gains.shape[1]
    xs = np.repeat(check.gsc, directions)
    ax.scatter(
        xs,
        check.gains.ravel(),
        s=8,
        alpha=0.25,
        color="0.5",
        label=f"one random direction ({directions} per layer)",
    )
    ax.scatter(check.gsc, check.rms_gain, s=30, zorder=3, label="root mean square over directions")
    finite = np.concatenate([check.gsc, check.rms_gain])
    finite = finite[np.isfinite(finite) & (finite > 0)]
    if finite.size:
        low, high = finite.min() / 1.5, finite.max() * 1.5
        ax.plot([low, high], [low, high], color="0.3", linestyle="--", linewidth=1, label="gain = GSC")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("GSC(k, 0)")
    ax.set_ylabel("relative change of the losses / relative nudge of f_k")
    ax.legend(fontsize="small")
    ax.set_title(title or check.label)
    return fig
