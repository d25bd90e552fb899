"""Figures of chapter 1's toy models: why gradients multiply.

One function per result of :mod:`explodegrad.studies.chain_rule`: the scalar chain w^L, the deep linear
network, the overflow search, gradient descent on a quadratic, the RNN's gradient over time,
RNN vs LSTM vs GRU, and initialization scales. Measured values are solid with markers, the
chain rule's predictions dashed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

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
from explodegrad.studies.gradient_descent import PathResult, quadratic_loss
from explodegrad.studies.overflow import OverflowResult
from explodegrad.studies.recurrent import RecurrentGradients, RNNTimeGradients


def _check(argument: str, value: object, kind: type) -> None:
    if not isinstance(value, kind):
        raise ValueError(
            f"{argument}: expected a {kind.__name__} from explodegrad.studies.chain_rule, got "
            f"{type(value).__name__}"
        )


def plot_scalar_chain(result: ChainResult, *, ax: Axes | None = None, title: str | None = None) -> Figure:
    """|dy/dh| after l multiplications by w (measured by autograd) against the prediction |w|^l."""
    _check("result", result, ChainResult)
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
    _check("result", result, LinearGradients)
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


def plot_overflow(result: OverflowResult, *, ax: Axes | None = None, title: str | None = None) -> Figure:
    """The SGD losses of the network at the overflow depth, step by step, with the first
    non-finite step marked and the search's sentence as the note."""
    _check("result", result, OverflowResult)
    fig, ax = figure_and_axes(ax)
    steps = np.arange(result.train_losses.size, dtype=float)
    _, bad = draw_finite(
        ax,
        steps,
        result.train_losses,
        marker="o",
        markersize=3,
        label=f"depth {result.train_depth}, {result.dtype}",
    )
    if bad.any() or result.overflowed:
        mark_overflow(ax, steps[bad], result.message)
    integer_x(ax)
    finish(
        ax,
        xlabel="SGD step",
        ylabel="mean loss",
        title=title
        if title is not None
        else f"where {result.dtype} overflows (sigma = {result.sigma:g} per layer)",
        legend=True,
    )
    return fig


def plot_gradient_descent_path(
    result: PathResult, *, axes: Sequence[Axes] | None = None, title: str | None = None
) -> Figure:
    """Gradient descent on 0.5 sum c_i x_i^2: the path over the loss's contours (2-d problems,
    left) and the loss per step (right, log axis); the stability threshold 2 / max(c) in the title."""
    _check("result", result, PathResult)
    two_d = result.points.shape[1] == 2
    fig, panels = figure_and_panels(axes, 2 if two_d else 1, suptitle=True)
    steps = np.arange(result.losses.size, dtype=float)
    finite_rows = np.isfinite(result.points).all(axis=1)
    if two_d:
        path_ax = panels[0]
        shown = result.points[finite_rows]
        span = max(1.0, float(np.abs(shown).max())) * 1.1 if shown.size else 1.0
        grid = np.linspace(-span, span, 121)
        xx, yy = np.meshgrid(grid, grid)
        levels = quadratic_loss(np.stack([xx, yy], axis=-1), result.curvature)
        path_ax.contour(xx, yy, levels, levels=12, colors="0.75", linewidths=0.7)
        path_ax.plot(shown[:, 0], shown[:, 1], marker="o", markersize=3, label=f"lr = {result.lr:g}")
        finish(
            path_ax,
            xlabel=f"x_1 (curvature {result.curvature[0]:g})",
            ylabel=f"x_2 (curvature {result.curvature[1]:g})",
            legend=True,
        )
    loss_ax = panels[-1]
    _, bad = draw_finite(loss_ax, steps, result.losses, log=True, marker="o", markersize=3, label="loss")
    log_axis(loss_ax)
    mark_overflow(loss_ax, steps[bad], None, what="loss", where="step")
    integer_x(loss_ax)
    verdict = "diverges" if result.diverged else "converges"
    finish(loss_ax, xlabel="step", ylabel="loss")
    fig.suptitle(
        title
        if title is not None
        else f"lr = {result.lr:g} {verdict} (threshold 2 / max c = {result.threshold:.3g})",
        fontsize="medium",
    )
    return fig


def plot_rnn_time_gradients(
    result: RNNTimeGradients, *, ax: Axes | None = None, label: str | None = None, title: str | None = None
) -> Figure:
    """||d h_T / d h_(T-t)|| against the distance t, with the prediction radius^t (dashed)."""
    _check("result", result, RNNTimeGradients)
    fig, ax = figure_and_axes(ax)
    t = result.steps_back.astype(float)
    line, bad = draw_finite(
        ax,
        t,
        result.gradient_norms,
        log=True,
        marker="o",
        markersize=3,
        label=label or f"{result.activation} RNN, radius {result.spectral_radius:g}",
    )
    draw_finite(
        ax,
        t,
        result.predicted,
        log=True,
        linestyle="--",
        color=line.get_color(),
        alpha=0.6,
        label=f"radius^t = {result.spectral_radius:g}^t",
    )
    log_axis(ax)
    mark_overflow(ax, t[bad], None, what="gradient", where="t =")
    integer_x(ax)
    finish(
        ax,
        xlabel="t: time steps back from the last",
        ylabel="||d h_T / d h_(T-t)||_qm",
        title=title,
        legend=True,
    )
    return fig


def plot_recurrent_gradients(
    results: RecurrentGradients | Sequence[RecurrentGradients],
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """||d loss / d x_t|| against the time step t for each cell, at initialization (dashed)
    and after training (solid): the gradient reaching early rows fades in a plain RNN."""
    items = [results] if isinstance(results, RecurrentGradients) else list(results)
    if not items:
        raise ValueError("results: give at least one RecurrentGradients")
    for item in items:
        _check("results", item, RecurrentGradients)
    fig, ax = figure_and_axes(ax)
    bad_steps: set[float] = set()
    for item in items:
        t = item.time_steps.astype(float)
        line, bad = draw_finite(
            ax,
            t,
            item.gradient_trained,
            log=True,
            marker="o",
            markersize=3,
            label=f"{item.cell}: trained ({item.steps_trained} steps)",
        )
        bad_init = draw_finite(
            ax,
            t,
            item.gradient_init,
            log=True,
            linestyle="--",
            color=line.get_color(),
            label=f"{item.cell}: at initialization",
        )[1]
        bad_steps.update(t[bad | bad_init].tolist())
    log_axis(ax)
    mark_overflow(ax, sorted(bad_steps), None, what="gradient", where="t =")
    integer_x(ax)
    finish(
        ax,
        xlabel="time step t\n(t = 1 is read first, furthest from the readout)",
        ylabel="||d loss / d x_t||",
        title=title,
        legend=True,
    )
    return fig


def plot_init_scales(
    result: InitScales, *, axes: Sequence[Axes] | None = None, title: str | None = None
) -> Figure:
    """Per-layer activation RMS (left) and gradient RMS (right) for each initializer, log axes."""
    _check("result", result, InitScales)
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
