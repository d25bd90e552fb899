"""Figure of dilution: a residual block's GSC measured against the Pythagorean prediction.

Draws :func:`explodegrad.measures.dilution.dilution_profile`'s result.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from explodegrad.measures.dilution import DilutionResult
from explodegrad.plots._checks import check_result
from explodegrad.plots.theme import (
    draw_finite,
    figure_and_panels,
    finish,
    integer_x,
    log_axis,
    mark_overflow,
)

BLOCK_LABEL = "residual block, named by the layer f_k it produces\n(counted from the output; not the ratio k)"


def plot_dilution(
    result: DilutionResult, *, axes: Sequence[Axes] | None = None, title: str | None = None
) -> Figure:
    """Per residual block: measured block GSC against the Pythagorean prediction, and the
    residual branch's own GSC (left); the skip-to-residual ratio ||x|| / ||r(x)|| (right).

    The prediction sqrt((k^2 + g^2) / (k^2 + 1)) pulls an explosive branch (g >> 1) towards 1
    when the skip dominates (large k); where the measured and predicted points agree, the
    orthogonality the argument assumes holds.
    """
    check_result("result", result, DilutionResult, "explodegrad.measures.dilution.dilution_profile")
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
