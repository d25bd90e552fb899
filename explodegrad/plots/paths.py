"""Figure of the path-length distribution: each lambda's share of the gradient (residual trick).

Draws :func:`explodegrad.measures.paths.path_contributions`'s result.
"""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from explodegrad.measures.paths import PathContributions
from explodegrad.plots._checks import check_result
from explodegrad.plots.theme import draw_finite, figure_and_axes, finish, integer_x, log_axis, mark_overflow


def plot_path_contributions(
    paths: PathContributions, *, ax: Axes | None = None, label: str | None = None, title: str | None = None
) -> Figure:
    """Each lambda's share of the gradient (paths through exactly lambda residual Jacobians),
    on a log axis, with the threshold and the effective depth it gives."""
    check_result("paths", paths, PathContributions, "explodegrad.measures.paths.path_contributions")
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
