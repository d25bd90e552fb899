"""Figures of the gradient scale coefficient: a GSC profile and the whole GSC(k, l) table.

Draws the results of :mod:`explodegrad.measures.gsc` (``gsc_profile``, ``gsc_matrix``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from explodegrad.claims.explosion import EXPLOSION_WORDS, explosion_verdict
from explodegrad.claims.thresholds import EXPLODING_R_SQUARED, EXPLODING_RATE
from explodegrad.measures.gsc import GSCMatrix, GSCProfile
from explodegrad.plots._checks import check_result
from explodegrad.plots.theme import (
    LAYER_LABEL_WITH_INPUT,
    MIN_GSC_DECADES,
    OVERFLOW_COLOR,
    OVERFLOW_MARKER_GID,
    OVERFLOW_NOTE_GID,
    UNIT_LABEL_WITH_INPUT,
    draw_finite,
    figure_and_axes,
    figure_and_panels,
    finish,
    honest_log_span,
    integer_x,
    log_axis,
    mark_overflow,
)

#: ``gid`` of the rate printed large in a GSC panel (tests find it by it).
RATE_NOTE_GID = "rate-note"


def rate_note(profile: GSCProfile) -> str:
    """The rate and the verdict of the one definition of exploding, e.g.
    ``r = 1.216 per layer: explodes (R² 1.00)`` (per block for a ResNet)."""
    if not profile.fit.ok:
        return "no rate fitted"
    verdict = EXPLOSION_WORDS[explosion_verdict(profile).verdict]
    word = {"explodes": "explodes", "no": "does not explode", "borderline": "borderline"}[verdict]
    return f"r = {profile.rate:.3f} per {profile.unit}: {word} (R² {profile.fit.r_squared:.2f})"


def _draw_rate_note(ax: Axes, profile: GSCProfile) -> None:
    """The rate large in the lower right corner, the verdict and the thresholds under it."""
    head, _, tail = rate_note(profile).partition(": ")
    style = {"transform": ax.transAxes, "ha": "right", "gid": RATE_NOTE_GID}
    ax.text(0.98, 0.11, head, va="bottom", fontsize="large", fontweight="bold", **style)
    if tail:
        ax.text(
            0.98,
            0.10,
            f"{tail}; exploding: r > {EXPLODING_RATE:g}, R² > {EXPLODING_R_SQUARED:g}",
            va="top",
            fontsize="x-small",
            **style,
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
    line (dashed) covers the fit window and its legend entry gives r. The y axis spans at least
    :data:`~explodegrad.plots.theme.MIN_GSC_DECADES` decades, so that a flat profile looks flat
    (a zoomed axis would stretch noise of a few percent into a climb), and the rate is printed
    large with the verdict of the one definition of exploding. With ``raw=True`` a
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
            label=f"fit: r = {profile.rate:.3f} per {profile.unit}",
        )
    mark_overflow(gsc_ax, layers[bad], _overflow_note(profile) if profile.overflowed else None, what="GSC")
    drawn = [profile.gsc]
    if fit and profile.fit.ok and profile.fit.fit_range is not None:
        drawn.append(np.asarray(profile.fit.predict(ks, l), dtype=float))
    honest_log_span(gsc_ax, np.concatenate(drawn), MIN_GSC_DECADES)
    if fit:
        _draw_rate_note(gsc_ax, profile)
    integer_x(gsc_ax)
    finish(
        gsc_ax,
        xlabel=UNIT_LABEL_WITH_INPUT if profile.residual else LAYER_LABEL_WITH_INPUT,
        ylabel=f"GSC(k, {l})",
        title=title if title is not None else profile.label,
    )
    if any(not h.get_label().startswith("_") for h in gsc_ax.get_legend_handles_labels()[0]):
        gsc_ax.legend(loc="upper left")
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
            honest_log_span(raw_ax, grads, MIN_GSC_DECADES)
            mark_overflow(raw_ax, layers[raw_bad], None, what="gradient")
        integer_x(raw_ax)
        finish(
            raw_ax,
            xlabel=UNIT_LABEL_WITH_INPUT if profile.residual else LAYER_LABEL_WITH_INPUT,
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
