"""Chapter 4's optimizer study: the GSC under each optimizer during training, and update sizes.

Draws :func:`explodegrad.studies.optimizers.optimizer_study`'s result.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from explodegrad.claims.thresholds import EXPLODING_RATE
from explodegrad.core.checks import check_choice
from explodegrad.plots._checks import check_result
from explodegrad.plots.theme import FIGSIZE, figure_and_axes, note_missing
from explodegrad.studies.optimizers import OptimizerStudy

#: What :func:`plot_optimizer_gsc` can show, and its axis label.
OPTIMIZER_VALUES = {
    "gsc_first_layer": "GSC(L, 0): first layer to the loss",
    "gsc_input": "GSC(L + 1, 0): input to the loss",
    "rate": "fitted explosion rate r per layer",
}


def plot_optimizer_gsc(
    study: OptimizerStudy, *, value: str = "gsc_first_layer", ax: Axes | None = None, title: str | None = None
) -> Figure:
    """The GSC (or the fitted rate) at each measurement during training: one colour per optimizer,
    one line per seed (the first seed drawn boldest); the dashed line is 1 (no growth), and for
    the rate a dotted line marks the exploding threshold.

    Non-finite measurements (an overflow) are left out and listed in a note.
    """
    check_result("study", study, OptimizerStudy, "explodegrad.studies.optimizers.optimizer_study")
    value = check_choice("value", value, OPTIMIZER_VALUES)
    fig, ax = figure_and_axes(ax)
    missing = []
    for index, (optimizer, runs) in enumerate(study.gsc.groupby("optimizer", sort=False)):
        color = f"C{index}"
        for number, (_, rows) in enumerate(runs.groupby("seed", sort=False)):
            values = rows[value].to_numpy(dtype=float)
            finite = np.isfinite(values)
            label = f"{optimizer} (lr {rows['lr'].iloc[0]:g})" if number == 0 else None
            ax.plot(
                rows["step"].to_numpy()[finite],
                values[finite],
                marker="o",
                markersize=3,
                color=color,
                alpha=1.0 if number == 0 else 0.45,
                linewidth=1.6 if number == 0 else 1.0,
                label=label,
            )
            if not finite.all() and optimizer not in missing:
                missing.append(optimizer)
    if value != "rate":
        ax.set_yscale("log")
    else:  # the rate: where the one definition of exploding draws its line
        ax.axhline(
            EXPLODING_RATE,
            color="0.3",
            linestyle=":",
            linewidth=1.2,
            label=f"exploding threshold {EXPLODING_RATE:g}",
        )
    ax.axhline(1.0, color="0.3", linestyle="--", linewidth=1)
    ax.set_xlabel("training step")
    ax.set_ylabel(OPTIMIZER_VALUES[value])
    ax.legend(fontsize="small")
    note_missing(ax, missing, "not finite (overflow) at some steps")
    ax.set_title(title or study.label)
    return fig


def plot_update_sizes(study: OptimizerStudy, *, title: str | None = None) -> Figure:
    """Two panels against the layer k: relative update size per optimizer, and GSC(k, 0) at the end.

    Left: the median ``||delta theta_k|| / ||theta_k||`` of each optimizer's updates. Right:
    GSC(k, 0) of each optimizer's final network (the dashed line: the first seed at
    initialization). One colour per optimizer, one line per seed. Both
    x axes count layers from the output (k = 1 the readout, k = L the first layer).
    """
    check_result("study", study, OptimizerStudy, "explodegrad.studies.optimizers.optimizer_study")
    fig, (left, right) = plt.subplots(1, 2, figsize=(2 * FIGSIZE[0], FIGSIZE[1]))
    start = None
    for index, (optimizer, runs) in enumerate(study.updates.groupby("optimizer", sort=False)):
        for number, (_, rows) in enumerate(runs.groupby("seed", sort=False)):
            style = {
                "color": f"C{index}",
                "alpha": 1.0 if number == 0 else 0.4,
                "marker": "o",
                "markersize": 2,
            }
            layers = rows["layer"].to_numpy()
            sizes = rows["update_size"].to_numpy(dtype=float)
            ok = np.isfinite(sizes) & (sizes > 0)
            left.plot(layers[ok], sizes[ok], label=optimizer if number == 0 else None, **style)
            end = rows["gsc_end"].to_numpy(dtype=float)
            ok = np.isfinite(end) & (end > 0)
            right.plot(layers[ok], end[ok], label=f"{optimizer}, end" if number == 0 else None, **style)
            if start is None:
                start = rows
    if start is not None:
        values = start["gsc_start"].to_numpy(dtype=float)
        ok = np.isfinite(values) & (values > 0)
        right.plot(
            start["layer"].to_numpy()[ok], values[ok], color="0.3", linestyle="--", label="at initialization"
        )
    for ax in (left, right):
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("layer k, counted from the output (k = 1: readout)")
        ax.legend(fontsize="small")
    left.set_ylabel("relative update size ||Δθ_k|| / ||θ_k||")
    right.set_ylabel("GSC(k, 0)")
    fig.suptitle(title or study.label)
    fig.tight_layout()
    return fig


#: What :func:`plot_layer_trace` can show, and its axis label.
LAYER_VALUES = {
    "update_size": "relative update size ||Δθ_k|| / ||θ_k||",
    "gsc": "GSC(k, 0)",
}


def plot_layer_trace(
    study: OptimizerStudy, *, value: str = "update_size", title: str | None = None
) -> Figure:
    """Per optimizer, one panel: ``value`` against the layer k at each measurement during
    training (the first seed; darker = later), so a learner sees how each layer's step size or
    GSC moves over training, not one number per layer.

    Needs the study's per-layer table (``study.layers``); non-finite or non-positive values
    (the GSC at and below its reference layer, the update size at step 0) are left out.
    """
    check_result("study", study, OptimizerStudy, "explodegrad.studies.optimizers.optimizer_study")
    value = check_choice("value", value, LAYER_VALUES)
    if study.layers is None or study.layers.empty:
        raise ValueError("study: it has no per-layer table (layers); run optimizer_study again")
    first = study.seeds[0]
    rows = study.layers[study.layers["seed"] == first]
    optimizers = list(dict.fromkeys(rows["optimizer"]))
    fig, axes = plt.subplots(
        1, len(optimizers), figsize=(FIGSIZE[0] * 0.8 * len(optimizers), FIGSIZE[1]), sharey=True
    )
    axes = np.atleast_1d(axes)
    steps = sorted(set(rows["step"]))
    colours = plt.get_cmap("viridis")(np.linspace(0.85, 0.0, len(steps)))  # darker = later
    lrs = dict(zip(study.runs["optimizer"], study.runs["lr"]))
    for ax, optimizer in zip(axes, optimizers):
        mine = rows[rows["optimizer"] == optimizer]
        for colour, step in zip(colours, steps):
            at = mine[mine["step"] == step]
            values = at[value].to_numpy(dtype=float)
            ok = np.isfinite(values) & (values > 0)
            if ok.any():
                ax.plot(at["layer"].to_numpy()[ok], values[ok], color=colour, label=f"step {step}")
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("layer k (k = 1: readout)")
        ax.set_title(f"{optimizer} (lr {lrs.get(optimizer, float('nan')):g})")
    axes[0].set_ylabel(LAYER_VALUES[value])
    axes[-1].legend(fontsize="x-small")
    fig.suptitle(title or f"{study.label}, seed {first}: {LAYER_VALUES[value]} per layer over training")
    fig.tight_layout()
    return fig
