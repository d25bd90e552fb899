"""Chapter 08's orthogonal initial state: GSC and training error during training, per initial state.

Draws :func:`explodegrad.studies.orthogonal.orthogonal_initial_state`'s result.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from explodegrad.plots._checks import check_result
from explodegrad.plots.theme import FIGSIZE, mark_overflow
from explodegrad.studies.orthogonal import OrthogonalStateResult


def plot_orthogonal_state(result: OrthogonalStateResult, *, title: str | None = None) -> Figure:
    """Two panels against the training step: GSC(L, 2) between the hidden layers, training error.

    GSC values that are not finite (an overflow) are left out and listed in a note.
    """
    check_result(
        "result", result, OrthogonalStateResult, "explodegrad.studies.orthogonal.orthogonal_initial_state"
    )
    fig, (left, right) = plt.subplots(1, 2, figsize=(2 * FIGSIZE[0], FIGSIZE[1]))
    missing, where = [], []
    for name in result.names:
        steps, gsc = result.steps[name], result.hidden_gsc[name]
        finite = np.isfinite(gsc)
        left.plot(steps[finite], gsc[finite], marker="o", markersize=3, label=name)
        right.plot(steps, result.train_error[name], marker="o", markersize=3, label=name)
        if not finite.all():
            missing.append(name)
            where.extend(steps[~finite].tolist())
    left.axhline(1.0, color="0.3", linestyle="--", linewidth=1)
    left.set_ylabel("GSC(L, 2): first layer to last hidden layer")
    right.set_ylabel("training error")
    right.set_ylim(0, 1)
    for ax in (left, right):
        ax.set_xlabel("training step")
        ax.legend(fontsize="small")
    if missing:
        mark_overflow(
            left, sorted(set(where)), "GSC not finite (overflow) at some steps: " + ", ".join(missing)
        )
    seeds = f" (seed {result.seeds[0]} of {len(result.seeds)})" if len(result.seeds) > 1 else ""
    fig.suptitle(title or f"the orthogonal initial state during training{seeds}")
    fig.tight_layout()
    return fig
