"""Figures of the collapsing domain: how much of its nonlinearity each hidden layer uses.

Draws :func:`explodegrad.measures.domain.domain_stats`'s result.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from explodegrad.measures.domain import DomainStats
from explodegrad.plots._checks import check_result
from explodegrad.plots.theme import draw_finite, figure_and_panels, finish, integer_x, mark_overflow

#: The panels of :func:`plot_domain_stats`: (field of DomainStats, y label, fixed y range or None).
DOMAIN_PANELS = (
    ("preact_std_relative", "pre-activation std / RMS", (0.0, 1.05)),
    ("sign_diversity", "sign diversity", (0.0, 0.52)),
    ("linear_fit_error", "linear fit error (1 - R^2)", None),
)


def plot_domain_stats(
    stats: DomainStats,
    *,
    axes: Sequence[Axes] | None = None,
    label: str | None = None,
    title: str | None = None,
) -> Figure:
    """Three panels against the hidden layer k: relative pre-activation spread, sign diversity
    (0.5: half the batch on each side of zero, 0: one sign only) and the linear fit error (0: the
    layer acts affinely on the data it sees). A collapsing domain shows as all three falling
    towards the input (large k) or the output.

    Pass the ``axes`` of an earlier call and a ``label`` to overlay several networks.
    """
    check_result("stats", stats, DomainStats, "explodegrad.measures.domain.domain_stats")
    fig, panels = figure_and_panels(axes, len(DOMAIN_PANELS), sharex=True, suptitle=True)
    if stats.layers.size == 0:
        for ax in panels:
            ax.text(0.5, 0.5, "no hidden layers", transform=ax.transAxes, ha="center", va="center")
        return fig
    layers = stats.layers.astype(float)
    for ax, (name, ylabel, ylim) in zip(panels, DOMAIN_PANELS):
        _, bad = draw_finite(
            ax, layers, getattr(stats, name), marker="o", markersize=3, label=label or stats.label
        )
        mark_overflow(ax, layers[bad], None, what=ylabel.split(" (")[0])
        if ylim is not None:
            ax.set_ylim(*ylim)
        else:
            ax.set_ylim(bottom=0.0)
        integer_x(ax)
        finish(
            ax,
            xlabel="hidden layer k, counted from the output\n(k = 2: next to the readout)",
            ylabel=ylabel,
            legend=label is not None,
        )
    if title is not None or axes is None:
        fig.suptitle(title if title is not None else stats.label, fontsize="medium")
    return fig
