"""Chapter 07's study: effective depth during training, path lengths, and the Taylor experiment.

Draws :func:`explodegrad.studies.effective_depth.effective_depth_study`'s result.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from explodegrad.core.checks import check_choice
from explodegrad.plots._checks import check_result
from explodegrad.plots.theme import FIGSIZE, figure_and_axes
from explodegrad.studies.effective_depth import (
    EffectiveDepthStudy,
    EffectiveDepthTrajectory,
    TrainedDepthStudy,
)

#: Where an :class:`EffectiveDepthStudy` comes from (named in type errors).
STUDY_SOURCE = "explodegrad.studies.effective_depth.effective_depth_study"

#: Dashes and markers that keep coinciding lines apart.
LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D")

#: The skips a trajectory records, and how plots name them.
SKIP_NAMES = {
    "since_init": "skip = the layer at initialization",
    "natural": "natural skip (identity for ResNets, best affine fit for plain layers)",
}


def plot_effective_depth(
    study: EffectiveDepthStudy, *, skip: str = "since_init", ax: Axes | None = None, title: str | None = None
) -> Figure:
    """Effective depth at every training checkpoint, one line per architecture.

    Args:
        study: from :func:`explodegrad.studies.effective_depth.effective_depth_study`.
        skip: ``"since_init"`` or ``"natural"`` (see :data:`SKIP_NAMES`).
        ax: draw into these axes (default: a new figure).
        title: axes title.
    """
    check_result("study", study, EffectiveDepthStudy, STUDY_SOURCE)
    skip = check_choice("skip", skip, SKIP_NAMES)
    fig, ax = figure_and_axes(ax)
    for index, label in enumerate(study.labels):
        trajectory = study.trajectories[label]
        depths = trajectory.depth_since_init if skip == "since_init" else trajectory.depth_natural
        # Lines often coincide (equal integer depths): each gets its own dash and marker, drawn
        # thinner the later it comes, so that none hides another.
        ax.plot(
            trajectory.steps,
            depths,
            linestyle=LINESTYLES[index % len(LINESTYLES)],
            marker=MARKERS[index % len(MARKERS)],
            markersize=7 - index % len(MARKERS),
            markerfacecolor="none",
            linewidth=2.4 - 0.4 * (index % len(LINESTYLES)),
            label=f"{label} (L = {trajectory.num_layers})",
        )
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("training step")
    threshold = study.trajectories[study.labels[0]].threshold
    ax.set_ylabel(f"effective depth (share >= {threshold:g})")
    ax.legend(fontsize="small")
    ax.set_title(title or SKIP_NAMES[skip])
    return fig


def plot_path_fractions(
    trajectory: EffectiveDepthTrajectory,
    *,
    skip: str = "since_init",
    checkpoints: Sequence[int] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """The path-length distribution: each lambda's share of the contributions, per checkpoint.

    Args:
        trajectory: one architecture of an :class:`~explodegrad.studies.effective_depth.EffectiveDepthStudy`.
        skip: ``"since_init"`` or ``"natural"``.
        checkpoints: indices into ``trajectory.steps`` to draw (default: every one; the
            ``since_init`` skip leaves out step 0, where every share sits at lambda = 0).
        ax: draw into these axes (default: a new figure).
        title: axes title (default: the architecture and the skip).
    """
    check_result(
        "trajectory",
        trajectory,
        EffectiveDepthTrajectory,
        "explodegrad.studies.effective_depth.track_effective_depth (or a study's trajectories)",
    )
    skip = check_choice("skip", skip, SKIP_NAMES)
    fractions = trajectory.fractions_since_init if skip == "since_init" else trajectory.fractions_natural
    if checkpoints is None:
        start = 1 if skip == "since_init" and len(trajectory.steps) > 1 else 0
        checkpoints = range(start, len(trajectory.steps))
    chosen = list(checkpoints)
    for index in chosen:
        if not 0 <= index < len(trajectory.steps):
            raise ValueError(
                f"checkpoints: index {index} is not allowed: the trajectory has "
                f"{len(trajectory.steps)} checkpoints (0 ... {len(trajectory.steps) - 1})"
            )
    fig, ax = figure_and_axes(ax)
    lambdas = np.arange(fractions.shape[1])
    colors = plt.get_cmap("viridis")(np.linspace(0.1, 0.9, max(len(chosen), 1)))
    for color, index in zip(colors, chosen):
        ax.plot(
            lambdas,
            fractions[index],
            marker="o",
            markersize=3,
            color=color,
            label=f"step {trajectory.steps[index]}",
        )
    ax.axhline(
        trajectory.threshold,
        color="0.3",
        linestyle="--",
        linewidth=1,
        label=f"threshold {trajectory.threshold:g}",
    )
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_ylim(0, 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("λ: residual Jacobians on a path (path length)")
    ax.set_ylabel("share of the λ-contribution")
    ax.legend(fontsize="small")
    ax.set_title(title or f"{trajectory.label}: {SKIP_NAMES[skip]}", fontsize="small")
    return fig


def plot_taylor_study(
    study: EffectiveDepthStudy, *, x: str = "linear_layers", ax: Axes | None = None, title: str | None = None
) -> Figure:
    """Training error when the top layers are replaced by their Taylor expansion, per architecture.

    Args:
        study: from :func:`explodegrad.studies.effective_depth.effective_depth_study`.
        x: ``"linear_layers"`` (weight layers replaced; comparable between plain and residual
            networks) or ``"k"`` (addressable layers replaced, counted from the output).
        ax: draw into these axes (default: a new figure).
        title: axes title.

    The curves are the first seed's trained networks. Where a curve first rises more than the
    study's tolerance above its start (the network
    "breaks", :func:`explodegrad.studies.effective_depth.taylor_break`), a larger marker is drawn.
    Non-finite errors cannot occur (errors are fractions), so nothing is left out.
    """
    check_result("study", study, EffectiveDepthStudy, STUDY_SOURCE)
    x = check_choice("x", x, ("linear_layers", "k"))
    fig, ax = figure_and_axes(ax)
    first = study.seeds[0]  # the curves are the first seed's runs; take that seed's row of the table
    table = study.table[study.table["seed"] == first].set_index("label")
    for label in study.labels:
        curve = study.taylor[label]
        positions = study.taylor_linear_layers[label] if x == "linear_layers" else curve.ks
        depth = int(table.loc[label, "depth_since_init_final"])
        (line,) = ax.plot(
            positions, curve.train_error, marker="o", markersize=3, label=f"{label} (effective depth {depth})"
        )
        broke = table.loc[label, "taylor_break_k"]
        if not pd.isna(broke):
            where = int(np.flatnonzero(curve.ks == int(broke))[0])
            ax.plot(
                positions[where],
                curve.train_error[where],
                marker="o",
                markersize=9,
                markerfacecolor="none",
                color=line.get_color(),
            )
    ax.set_ylim(0, 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(
        "weight layers replaced, counted from the output"
        if x == "linear_layers"
        else "k: top layers replaced, counted from the output"
    )
    ax.set_ylabel("training error (eval mode)")
    ax.legend(
        fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0)
    )  # beside the curves, not on them
    ax.set_title(title or "Taylor experiment: top layers replaced by their linearization")
    return fig


def plot_effective_depth_study(study: EffectiveDepthStudy, *, title: str | None = None) -> Figure:
    """Two panels: effective depth during training (skip = initial layer) and the Taylor curves."""
    check_result("study", study, EffectiveDepthStudy, STUDY_SOURCE)
    fig, (left, right) = plt.subplots(1, 2, figsize=(2 * FIGSIZE[0], FIGSIZE[1]))
    plot_effective_depth(study, ax=left)
    plot_taylor_study(study, ax=right)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_trained_depth(study: TrainedDepthStudy, *, title: str | None = None) -> Figure:
    """Two panels of a trained-depth study, both in weight layers.

    Left: effective depth after training (skip = the layer at initialization) against the
    weight layers replaced when the Taylor experiment first breaks the network; one colour per
    architecture, a small dot per seed and a large one at the medians. A network that never
    broke is drawn at its depth plus one. Right: the first seed's Taylor curves.
    """
    check_result("study", study, TrainedDepthStudy, "explodegrad.studies.effective_depth.trained_depth_study")
    fig, (left, right) = plt.subplots(1, 2, figsize=(2 * FIGSIZE[0], FIGSIZE[1]))
    first = study.seeds[0]
    for index, label in enumerate(study.labels):
        colour = f"C{index}"
        depths = study.values(label, "depth_since_init_layers")
        breaks = study.values(label, "taylor_break_linear_layers")
        breaks = np.where(np.isnan(breaks), study.depth + 1, breaks)
        left.plot(depths, breaks, "o", color=colour, alpha=0.4, markersize=4)
        left.plot(np.median(depths), np.median(breaks), "o", color=colour, markersize=9, label=label)
        curve = study.taylor[(study.taylor["label"] == label) & (study.taylor["seed"] == first)]
        right.plot(
            curve["linear_layers"], curve["train_error"], marker="o", markersize=2, color=colour, label=label
        )
    left.set_xlabel("effective depth after training (weight layers)")
    left.set_ylabel("weight layers replaced when it breaks")
    left.legend(fontsize="x-small")
    left.set_title("deeper in effect, breaks sooner?")
    right.set_ylim(0, 1)
    right.set_xlabel("weight layers replaced, counted from the output")
    right.set_ylabel("training error (eval mode)")
    right.set_title(f"Taylor experiment, seed {first}")
    fig.suptitle(title or f"trained depth-{study.depth} networks on {study.data_name}")
    fig.tight_layout()
    return fig
