"""Chapter 04's first SGD steps: the first layer's weight norm and relative step, per depth.

Draws :func:`explodegrad.studies.weight_growth.sgd_weight_growth`'s result.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from explodegrad.plots._checks import check_result
from explodegrad.plots.theme import FIGSIZE, note_missing
from explodegrad.studies.weight_growth import WeightGrowth


def plot_weight_growth(growth: WeightGrowth, *, title: str | None = None) -> Figure:
    """Two panels against the SGD step, one colour per depth, one line per seed (the first seed
    boldest): the first layer's weight norm over its initial norm, and the first layer's relative
    step over layer k = 2's (dashed: 1, equal relative steps). Both axes are logarithmic.

    Non-finite values (an overflow) are left out and listed in a note.
    """
    check_result("growth", growth, WeightGrowth, "explodegrad.studies.weight_growth.sgd_weight_growth")
    fig, (left, right) = plt.subplots(1, 2, figsize=(2 * FIGSIZE[0], FIGSIZE[1]))
    missing = []
    for d, depth in enumerate(growth.depths):
        for s, _ in enumerate(growth.seeds):
            style = {"color": f"C{d}", "alpha": 1.0 if s == 0 else 0.45, "linewidth": 1.6 if s == 0 else 1.0}
            label = f"depth {depth}" if s == 0 else None
            norms = growth.first_layer_norm[d, s] / growth.first_layer_norm[d, s, 0]
            ratio = growth.step_ratio[d, s, 1:]
            for ax, steps, values in ((left, growth.steps, norms), (right, growth.steps[1:], ratio)):
                finite = np.isfinite(values) & (values > 0)
                ax.plot(steps[finite], values[finite], label=label, **style)
            if (
                not (np.isfinite(norms).all() and np.isfinite(ratio).all())
                and f"depth {depth}" not in missing
            ):
                missing.append(f"depth {depth}")
    right.axhline(1.0, color="0.3", linestyle="--", linewidth=1)
    left.set_ylabel("first layer's weight norm / at initialization")
    right.set_ylabel("relative step: first layer / layer k = 2")
    for ax in (left, right):
        ax.set_yscale("log")
        ax.set_xlabel("SGD step")
        ax.legend(fontsize="small")
    note_missing(left, missing, "overflow, not drawn")
    fig.suptitle(
        title or f"SGD's first steps, batch-normalized ReLU, width {growth.width}, {growth.data_name}"
    )
    fig.tight_layout()
    return fig
