"""Figures of chapter 1's toy models: why gradients multiply.

One function per result of :mod:`explodegrad.studies.chain_rule`: the scalar chain w^L, the deep
linear network and initialization scales. Measured values are solid with markers, the chain
rule's predictions dashed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from explodegrad.plots._checks import check_result
from explodegrad.plots.theme import (
    LAYER_LABEL,
    LAYER_LABEL_WITH_INPUT,
    draw_finite,
    figure_and_axes,
    figure_and_panels,
    finish,
    integer_x,
    log_axis,
    mark_overflow,
)
from explodegrad.studies.chain_rule import ChainResult, InitScales, LinearGradients


def plot_scalar_chain(result: ChainResult, *, ax: Axes | None = None, title: str | None = None) -> Figure:
    """|dy/dh| after l multiplications by w (measured by autograd) against the prediction |w|^l."""
    check_result("result", result, ChainResult, "explodegrad.studies.chain_rule.scalar_chain")
    fig, ax = figure_and_axes(ax)
    depths = result.depths.astype(float)
    _, bad = draw_finite(
        ax,
        depths,
        np.abs(result.gradients),
        log=True,
        marker="o",
        markersize=3,
        label="measured |dy/dh| (autograd)",
    )
    draw_finite(
        ax,
        depths,
        np.abs(result.predicted),
        log=True,
        linestyle="--",
        color="0.3",
        label=f"chain rule: |w|^l, w = {result.weight:g}",
    )
    log_axis(ax)
    mark_overflow(ax, depths[bad], None, what="gradient", where="l =")
    integer_x(ax)
    finish(
        ax,
        xlabel="l: multiplications the gradient\nflowed back through",
        ylabel="|gradient|",
        title=title
        if title is not None
        else f"y = w^{result.depth} x: the gradient is a product of {result.depth} factors",
        legend=True,
    )
    return fig


def plot_linear_gradients(
    result: LinearGradients, *, ax: Axes | None = None, label: str | None = None, title: str | None = None
) -> Figure:
    """||d loss / d f_k|| of a deep linear network against k, with the fitted growth per layer
    next to the chain rule's prediction (sigma) in the legend."""
    check_result("result", result, LinearGradients, "explodegrad.studies.chain_rule.deep_linear_gradients")
    fig, ax = figure_and_axes(ax)
    layers = result.layers.astype(float)
    _, bad = draw_finite(
        ax,
        layers,
        result.gradient_norms,
        log=True,
        marker="o",
        markersize=3,
        label=label
        or (
            f"sigma = {result.sigma:g}: x{result.growth_factor:.3g} per layer "
            f"(predicted x{result.predicted_growth:g})"
        ),
    )
    log_axis(ax)
    mark_overflow(ax, layers[bad], None, what="gradient")
    integer_x(ax)
    finish(
        ax,
        xlabel=LAYER_LABEL_WITH_INPUT,
        ylabel="||d loss / d f_k||",
        title=title
        if title is not None
        else f"deep linear network, depth {result.depth}, width {result.width}",
        legend=True,
    )
    return fig


def plot_init_scales(
    result: InitScales, *, axes: Sequence[Axes] | None = None, title: str | None = None
) -> Figure:
    """Per-layer activation RMS (left) and gradient RMS (right) for each initializer, log axes."""
    check_result("result", result, InitScales, "explodegrad.studies.chain_rule.init_scales")
    fig, (act_ax, grad_ax) = figure_and_panels(axes, 2, sharex=True, suptitle=True)
    layers = result.layers.astype(float)
    for ax, values, ylabel in (
        (act_ax, result.activation_rms, "RMS of f_k"),
        (grad_ax, result.gradient_rms, "RMS of d loss / d f_k"),
    ):
        bad = np.zeros(layers.size, dtype=bool)
        for name, scale, row in zip(result.inits, result.init_scales, values):
            shown = f"{name} (std {scale:g})" if name == "gaussian" else name
            bad |= draw_finite(ax, layers, row, log=True, marker="o", markersize=3, label=shown)[1]
        log_axis(ax)
        mark_overflow(ax, layers[bad], None, what=ylabel.split(" of ")[-1])
        integer_x(ax)
        finish(ax, xlabel=LAYER_LABEL, ylabel=ylabel, legend=ax is act_ax)
    fig.suptitle(
        title
        if title is not None
        else f"{result.activation} network, depth {result.depth}, width {result.width}",
        fontsize="medium",
    )
    return fig
