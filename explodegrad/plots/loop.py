"""Figures of one training run: loss and error curves, and per-layer gradient norms.

Draws the :class:`~explodegrad.training.loop.TrainHistory` of :func:`explodegrad.training.loop.train`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from explodegrad.plots._checks import check_result
from explodegrad.plots.theme import (
    LAYER_LABEL,
    OVERFLOW_COLOR,
    draw_finite,
    figure_and_axes,
    figure_and_panels,
    finish,
    integer_x,
    log_axis,
    mark_overflow,
)
from explodegrad.training.loop import TrainHistory


def _mark_divergence(ax: Axes, history: TrainHistory) -> None:
    if history.diverged and history.diverged_step is not None:
        ax.axvline(history.diverged_step, color=OVERFLOW_COLOR, linestyle=":", label="_diverged")
        mark_overflow(ax, [history.diverged_step], history.message)


def plot_training_history(
    history: TrainHistory,
    *,
    axes: Sequence[Axes] | None = None,
    label: str | None = None,
    title: str | None = None,
) -> Figure:
    """Loss (left, log axis when it spans a factor of ten) and error rate (right) against the
    update step, train solid and test dashed. A run that diverged is marked at its step with
    the history's sentence ("diverged at step 12: the gradient of layer 3 is not finite").

    Pass the ``axes`` of an earlier call and a ``label`` to overlay several runs (the legend
    then names each run; the figure title names the first).
    """
    check_result("history", history, TrainHistory, "explodegrad.training.loop.train")
    fig, (loss_ax, error_ax) = figure_and_panels(axes, 2, sharex=True, suptitle=True)
    steps = history.steps.astype(float)
    prefix = f"{label}: " if label else ""
    dots = {"marker": "o", "markersize": 3} if steps.size <= 30 else {}
    for ax, (train, test, ylabel) in zip(
        (loss_ax, error_ax),
        (
            (history.train_loss, history.test_loss, "loss (cross-entropy)"),
            (history.train_error, history.test_error, "error rate"),
        ),
    ):
        line, bad_train = draw_finite(
            ax, steps, train, log=ylabel.startswith("loss"), label=f"{prefix}train", **dots
        )
        _, bad_test = draw_finite(
            ax,
            steps,
            test,
            log=ylabel.startswith("loss"),
            linestyle="--",
            color=line.get_color(),
            label=f"{prefix}test",
            **dots,
        )
        if history.diverged:
            _mark_divergence(ax, history)
        else:
            mark_overflow(ax, steps[bad_train | bad_test], None, what=ylabel.split()[0], where="step")
        integer_x(ax)
        finish(ax, xlabel="update step", ylabel=ylabel, legend=True)
    finite_loss = np.concatenate([history.train_loss, history.test_loss])
    finite_loss = finite_loss[np.isfinite(finite_loss) & (finite_loss > 0)]
    if finite_loss.size and finite_loss.max() > 10 * finite_loss.min():
        log_axis(loss_ax)
    error_ax.set_ylim(-0.02, 1.02)
    if title is not None or axes is None:
        fig.suptitle(
            title
            if title is not None
            else f"{history.label} · {history.settings.optimizer}, "
            f"lr {history.settings.lr:g}, clipping: {history.settings.clip_kind}",
            fontsize="medium",
        )
    return fig


def plot_gradient_norms(
    history: TrainHistory,
    *,
    ax: Axes | None = None,
    steps: Sequence[int] | None = None,
    title: str | None = None,
) -> Figure:
    """Per-layer gradient norm ||d loss / d theta_k|| against the layer k, one curve per
    recorded step (default: the first update, the middle and the last record), log axis."""
    check_result("history", history, TrainHistory, "explodegrad.training.loop.train")
    fig, ax = figure_and_axes(ax)
    records = np.flatnonzero(history.steps > 0)
    if records.size == 0:
        ax.text(0.5, 0.5, "no update was recorded", transform=ax.transAxes, ha="center")
        return fig
    if steps is None:
        chosen = sorted({int(records[0]), int(records[records.size // 2]), int(records[-1])})
    else:
        recorded = {int(s): i for i, s in enumerate(history.steps)}
        missing = [s for s in steps if int(s) not in recorded or int(s) == 0]
        if missing:
            raise ValueError(
                f"steps={list(steps)!r} is not allowed: step(s) {missing} were not "
                f"recorded after an update; recorded: {history.steps[records].tolist()}"
            )
        chosen = [recorded[int(s)] for s in steps]
    layers = history.layers.astype(float)
    bad = np.zeros(layers.size, dtype=bool)
    for i in chosen:
        bad |= draw_finite(
            ax,
            layers,
            history.grad_norms[i],
            log=True,
            marker="o",
            markersize=3,
            label=f"step {int(history.steps[i])}",
        )[1]
    log_axis(ax)
    mark_overflow(ax, layers[bad], None, what="gradient")
    integer_x(ax)
    finish(
        ax,
        xlabel=LAYER_LABEL,
        ylabel="||d loss / d theta_k||",
        title=title if title is not None else f"{history.label}: gradient per layer",
        legend=True,
    )
    return fig
