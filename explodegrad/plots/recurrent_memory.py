"""Figure of the remember-the-first-token task (chapter 02): accuracy against sequence length.

Draws the results of :mod:`explodegrad.studies.recurrent_memory`: one colour per cell, every
seed as a point, the median over seeds as a line, and chance accuracy as a dotted line.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from explodegrad.plots._checks import check_result
from explodegrad.plots.theme import figure_and_axes, finish
from explodegrad.studies.recurrent_memory import FirstTokenMemory

#: Marker per cell, so the cells differ without colour too.
CELL_MARKERS = {"rnn": "o", "lstm": "s", "gru": "^"}


def plot_first_token_memory(
    result: FirstTokenMemory, *, ax: Axes | None = None, title: str | None = None
) -> Figure:
    """Held-out accuracy against the sequence length T per cell: seeds as points, the median as a line."""
    check_result(
        "result", result, FirstTokenMemory, "explodegrad.studies.recurrent_memory.first_token_memory"
    )
    fig, ax = figure_and_axes(ax)
    lengths = np.asarray(result.lengths, dtype=float)
    count = len(result.cells)
    # Cells side by side around each T (a small horizontal offset, on the log axis a factor).
    offsets = 1.0 + 0.04 * (np.arange(count) - (count - 1) / 2)
    for offset, cell in zip(offsets, result.cells):
        accuracy = np.stack([result.accuracies(cell, length) for length in result.lengths])
        (line,) = ax.plot(
            lengths * offset,
            np.median(accuracy, axis=1),
            marker=CELL_MARKERS.get(cell, "o"),
            markersize=6,
            label=f"{cell}: median of {len(result.seeds)} seeds",
        )
        x = np.repeat(lengths * offset, accuracy.shape[1])
        ax.scatter(
            x, accuracy.ravel(), s=18, color=line.get_color(), alpha=0.5, marker=CELL_MARKERS.get(cell, "o")
        )
    ax.axhline(result.chance, color="0.4", linestyle=":", label=f"chance (1/{result.num_classes})")
    ax.set_xscale("log")
    ax.set_xticks(lengths, [str(length) for length in result.lengths])
    ax.minorticks_off()
    ax.set_ylim(0.0, 1.05)
    finish(
        ax,
        xlabel=f"sequence length T (the label is the first token; {result.filler} steps after it)",
        ylabel=f"held-out accuracy after {result.steps_trained} Adam steps",
        title=title,
        legend=True,
    )
    return fig
