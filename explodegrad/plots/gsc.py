"""Figures of the gradient scale coefficient: a GSC profile and the whole GSC(k, l) table.

Draws the results of :mod:`explodegrad.measures.gsc` (``gsc_profile``, ``gsc_matrix``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from explodegrad.measures.gsc import GSCMatrix, GSCProfile
from explodegrad.plots._checks import check_result
from explodegrad.plots.theme import (
    LAYER_LABEL_WITH_INPUT,
    OVERFLOW_COLOR,
    OVERFLOW_MARKER_GID,
    OVERFLOW_NOTE_GID,
    draw_finite,
    figure_and_axes,
    figure_and_panels,
    finish,
    integer_x,
    log_axis,
    mark_overflow,
)


def _overflow_note(profile: GSCProfile) -> str | None:
    """The first clause of the profile's own message, e.g. 'gradient overflowed to inf at layer 37 ...'."""
    if not profile.overflowed:
        return None
    return profile.message.split(";")[0]


def plot_gsc_profile(
    profile: GSCProfile,
    *,
    ax: Axes | Sequence[Axes] | None = None,
    raw: bool = False,
    label: str | None = None,
    title: str | None = None,
    fit: bool = True,
) -> Figure:
    """GSC(k, l) against the layer k on a log axis, with the fitted explosion rate in the legend.

    Exploding gradients show as a straight rising line: GSC(k, l) ~ c r^(k - l). The fitted
    line (dashed) covers the fit window and its legend entry gives r. With ``raw=True`` a
    second panel shows the raw gradient norms ||d mean-loss / d f_k|| of the same network,
    which also change when a layer's output is merely rescaled. Non-finite values are
    marked at the top of the panel with the profile's own overflow sentence.

    Args:
        profile: a :class:`~explodegrad.measures.gsc.GSCProfile`.
        ax: axes to draw into; with ``raw=True`` a pair of axes (GSC, raw gradients).
        raw: add the raw gradient norms panel.
        label: legend name of the GSC curve (default: the network's label).
        title: title of the GSC panel (default: the network's label).
        fit: draw the fitted line (when a fit could be made).
    """
    check_result("profile", profile, GSCProfile, "explodegrad.measures.gsc.gsc_profile")
    if raw:
        fig, (gsc_ax, raw_ax) = figure_and_panels(ax, 2)
    else:
        fig, gsc_ax = figure_and_axes(ax)
        raw_ax = None
    layers = profile.layers.astype(float)
    l = profile.reference  # noqa: E741 - the paper's name
    _, bad = draw_finite(
        gsc_ax, layers, profile.gsc, log=True, marker="o", markersize=3, label=label or f"GSC(k, {l})"
    )
    log_axis(gsc_ax)
    if fit and profile.fit.ok and profile.fit.fit_range is not None:
        first, last = profile.fit.fit_range
        ks = np.arange(first, last + 1, dtype=float)
        gsc_ax.plot(
            ks,
            profile.fit.predict(ks, l),
            linestyle="--",
            color="0.35",
            label=f"fit: r = {profile.rate:.3g} per layer",
        )
    mark_overflow(gsc_ax, layers[bad], _overflow_note(profile) if profile.overflowed else None, what="GSC")
    integer_x(gsc_ax)
    finish(
        gsc_ax,
        xlabel=LAYER_LABEL_WITH_INPUT,
        ylabel=f"GSC(k, {l})",
        title=title if title is not None else profile.label,
        legend=True,
    )
    if raw_ax is not None:
        grads = profile.output_grad_norms
        if np.isnan(grads).all() and not profile.overflowed:
            raw_ax.text(
                0.5,
                0.5,
                "no raw gradients:\nthe profile was measured without targets",
                transform=raw_ax.transAxes,
                ha="center",
                va="center",
                fontsize="small",
            )
        else:
            _, raw_bad = draw_finite(
                raw_ax,
                layers,
                grads,
                log=True,
                marker="o",
                markersize=3,
                color="C1",
                label="||d loss / d f_k||",
            )
            log_axis(raw_ax)
            mark_overflow(raw_ax, layers[raw_bad], None, what="gradient")
        integer_x(raw_ax)
        finish(
            raw_ax,
            xlabel=LAYER_LABEL_WITH_INPUT,
            ylabel="raw gradient norm",
            title="raw gradient norms (scale-dependent)",
        )
    return fig


def plot_gsc_matrix(matrix: GSCMatrix, *, ax: Axes | None = None, title: str | None = None) -> Figure:
    """The table log10 GSC(k, l) as a heatmap (k rows, l columns; only k > l is defined).

    Entries that overflowed (k > l but not finite) are marked with a red 'x'.
    """
    check_result("matrix", matrix, GSCMatrix, "explodegrad.measures.gsc.gsc_matrix")
    fig, ax = figure_and_axes(ax, figsize=(5.6, 4.6))
    layers = matrix.layers
    with np.errstate(divide="ignore", invalid="ignore"):
        shown = np.log10(matrix.gsc)
    finite = np.isfinite(shown)
    image = ax.imshow(
        np.where(finite, shown, np.nan),
        origin="lower",
        cmap="viridis",
        extent=(layers[0] - 0.5, layers[-1] + 0.5, layers[0] - 0.5, layers[-1] + 0.5),
    )
    fig.colorbar(image, ax=ax, label="log10 GSC(k, l)")
    defined = layers[:, None] > layers[None, :]
    rows, cols = np.nonzero(defined & ~finite)
    if rows.size:
        ax.plot(
            layers[cols],
            layers[rows],
            linestyle="none",
            marker="x",
            color=OVERFLOW_COLOR,
            gid=OVERFLOW_MARKER_GID,
            label="_overflow",
        )
        ax.text(
            0.02,
            0.98,
            matrix.message.split(";")[0],
            transform=ax.transAxes,
            va="top",
            color=OVERFLOW_COLOR,
            fontsize="small",
            gid=OVERFLOW_NOTE_GID,
        )
    finish(
        ax,
        xlabel="l: the layer the gradient flows to\n(counted from the output)",
        ylabel="k: the layer perturbed",
        title=title or matrix.label,
    )
    ax.grid(False)
    return fig
