"""Figures of dilution (measured vs Pythagorean prediction) and of path (lambda) contributions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from explodegrad.measures.dilution import DilutionResult
from explodegrad.measures.paths import PathContributions
from explodegrad.plots.theme import (
    draw_finite,
    figure_and_axes,
    figure_and_panels,
    finish,
    integer_x,
    log_axis,
    mark_overflow,
)

BLOCK_LABEL = "residual block k: the layer it produces,\ncounted from the output (k = 1: logits)"


def plot_dilution(
    result: DilutionResult, *, axes: Sequence[Axes] | None = None, title: str | None = None
) -> Figure:
    """Per residual block: measured block GSC against the Pythagorean prediction, and the
    residual branch's own GSC (left); the skip-to-residual ratio ||x|| / ||r(x)|| (right).

    The prediction sqrt((k^2 + g^2) / (k^2 + 1)) pulls an explosive branch (g >> 1) towards 1
    when the skip dominates (large k); where the measured and predicted points agree, the
    orthogonality the argument assumes holds.
    """
    if not isinstance(result, DilutionResult):
        raise ValueError(
            f"result: expected a DilutionResult from explodegrad.measures.dilution.dilution_profile, "
            f"got {type(result).__name__}"
        )
    fig, (gsc_ax, ratio_ax) = figure_and_panels(axes, 2)
    if result.layers.size == 0:
        gsc_ax.text(0.5, 0.5, "no residual blocks", transform=gsc_ax.transAxes, ha="center")
        return fig
    blocks = result.layers.astype(float)
    curves = [
        (result.block_gsc, dict(marker="o", markersize=4, linestyle="none", label="block GSC (measured)")),
        (result.predicted_block_gsc, dict(linestyle="--", color="0.3", label="block GSC (predicted)")),
        (result.residual_gsc, dict(marker=".", alpha=0.7, label="branch GSC (measured)")),
    ]
    bad = np.zeros(blocks.size, dtype=bool)
    for values, style in curves:
        bad |= draw_finite(gsc_ax, blocks, values, log=True, **style)[1]
    log_axis(gsc_ax)
    mark_overflow(gsc_ax, blocks[bad], None, what="GSC", where="block")
    integer_x(gsc_ax)
    finish(
        gsc_ax,
        xlabel=BLOCK_LABEL,
        ylabel="GSC of one block / branch",
        title=title if title is not None else result.label,
        legend=True,
    )
    _, ratio_bad = draw_finite(
        ratio_ax, blocks, result.skip_to_residual, log=True, marker="o", markersize=3, color="C2"
    )
    log_axis(ratio_ax)
    infinite = blocks[np.isposinf(result.skip_to_residual)]
    if infinite.size and infinite.size == ratio_bad.sum():
        mark_overflow(ratio_ax, infinite, "the residual is exactly zero: ||x|| / ||r(x)|| = inf")
    else:
        mark_overflow(ratio_ax, blocks[ratio_bad], None, what="||x|| / ||r(x)||", where="block")
    integer_x(ratio_ax)
    finish(
        ratio_ax,
        xlabel=BLOCK_LABEL,
        ylabel="skip-to-residual ratio ||x|| / ||r(x)||",
        title="dilution: skip vs. branch size",
    )
    return fig


def plot_path_contributions(
    paths: PathContributions, *, ax: Axes | None = None, label: str | None = None, title: str | None = None
) -> Figure:
    """Each lambda's share of the gradient (paths through exactly lambda residual Jacobians),
    on a log axis, with the threshold and the effective depth it gives."""
    if not isinstance(paths, PathContributions):
        raise ValueError(
            f"paths: expected a PathContributions from "
            f"explodegrad.measures.paths.path_contributions, got {type(paths).__name__}"
        )
    fig, ax = figure_and_axes(ax)
    lambdas = paths.lambdas.astype(float)
    _, bad = draw_finite(
        ax,
        lambdas,
        paths.fraction,
        log=True,
        marker="o",
        markersize=3,
        label=label or "share of the gradient",
    )
    log_axis(ax)
    ax.axhline(paths.threshold, color="0.5", linestyle=":", label=f"threshold {paths.threshold:g}")
    if paths.effective_depth >= 0:
        ax.axvline(
            paths.effective_depth,
            color="C3",
            linestyle="--",
            label=f"effective depth {paths.effective_depth}",
        )
    mark_overflow(ax, lambdas[bad], None, what="contribution", where="lambda")
    integer_x(ax)
    finish(
        ax,
        xlabel="lambda: residual Jacobians on the path",
        ylabel="share of summed norms",
        title=title if title is not None else f"{paths.label} (skip: {paths.skip})",
        legend=True,
    )
    return fig
