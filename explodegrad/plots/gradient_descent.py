"""Figure of gradient descent on a quadratic (chapter 01): a too-large step diverges.

Draws :func:`explodegrad.studies.gradient_descent.gradient_descent_path`'s result.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from explodegrad.plots._checks import check_result
from explodegrad.plots.theme import draw_finite, figure_and_panels, finish, integer_x, log_axis, mark_overflow
from explodegrad.studies.gradient_descent import PathResult, quadratic_loss


def plot_gradient_descent_path(
    result: PathResult, *, axes: Sequence[Axes] | None = None, title: str | None = None
) -> Figure:
    """Gradient descent on 0.5 sum c_i x_i^2: the path over the loss's contours (2-d problems,
    left) and the loss per step (right, log axis); the stability threshold 2 / max(c) in the title."""
    check_result("result", result, PathResult, "explodegrad.studies.gradient_descent.gradient_descent_path")
    two_d = result.points.shape[1] == 2
    fig, panels = figure_and_panels(axes, 2 if two_d else 1, suptitle=True)
    steps = np.arange(result.losses.size, dtype=float)
    finite_rows = np.isfinite(result.points).all(axis=1)
    if two_d:
        path_ax = panels[0]
        shown = result.points[finite_rows]
        # Each axis spans its own coordinate's range: a diverging steep coordinate would
        # otherwise squash the flat one's progress into a vertical line.
        spans = [max(1.0, float(np.abs(shown[:, i]).max())) * 1.1 if shown.size else 1.1 for i in (0, 1)]
        xx, yy = np.meshgrid(np.linspace(-spans[0], spans[0], 121), np.linspace(-spans[1], spans[1], 121))
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
