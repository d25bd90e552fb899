"""Figures of recurrent networks (chapter 02): the gradient over time, RNN against LSTM and GRU.

Draws the results of :mod:`explodegrad.studies.recurrent`. Measured values are solid with
markers, the chain rule's predictions dashed.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from explodegrad.plots._checks import check_result
from explodegrad.plots.theme import draw_finite, figure_and_axes, finish, integer_x, log_axis, mark_overflow
from explodegrad.studies.recurrent import RecurrentGradients, RNNTimeGradients


def plot_rnn_time_gradients(
    result: RNNTimeGradients, *, ax: Axes | None = None, label: str | None = None, title: str | None = None
) -> Figure:
    """||d h_T / d h_(T-t)|| against the distance t, with the prediction radius^t (dashed)."""
    check_result("result", result, RNNTimeGradients, "explodegrad.studies.recurrent.rnn_gradient_vs_time")
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
        check_result("results", item, RecurrentGradients, "explodegrad.studies.recurrent.recurrent_gradients")
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
