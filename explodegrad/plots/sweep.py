"""Figures of sweep tables: a heatmap of a final number over two settings, faceted curves.

Both take a :class:`~explodegrad.training.sweep.SweepResult` (or one of its pandas tables) and draw what
the table holds: nothing is fitted or smoothed. Runs that diverged have no final numbers; the
heatmap marks their cells and the curves end with a red 'x' at the divergence step.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from explodegrad.plots.theme import (
    OVERFLOW_COLOR,
    OVERFLOW_MARKER_GID,
    OVERFLOW_NOTE_GID,
    figure_and_axes,
    finish,
    log_axis,
    new_panels,
)
from explodegrad.training.sweep import SweepResult


def _frame(result: SweepResult | pd.DataFrame, which: str) -> pd.DataFrame:
    if isinstance(result, SweepResult):
        return getattr(result, which)
    if isinstance(result, pd.DataFrame):
        return result
    raise TypeError(
        "result: expected a SweepResult from explodegrad.training.sweep.sweep or a pandas DataFrame, "
        f"got {type(result).__name__}"
    )


def _check_columns(frame: pd.DataFrame, **columns: str | None) -> None:
    for argument, name in columns.items():
        if name is not None and name not in frame.columns:
            raise ValueError(
                f"{argument}={name!r} is not a column of the table: columns are "
                f"{', '.join(map(str, frame.columns))}"
            )


def plot_sweep_heatmap(
    result: SweepResult | pd.DataFrame,
    *,
    x: str,
    y: str,
    value: str = "final_train_error",
    ax: Axes | None = None,
    fmt: str = ".2f",
    title: str | None = None,
) -> Figure:
    """A heatmap of ``value`` over two settings of the sweep (``x`` columns, ``y`` rows).

    Uses ``result.summary`` (one row per run). Runs that share a cell (e.g. several seeds) are
    averaged, and a cell where any run diverged is marked "diverged" instead of coloured.
    """
    frame = _frame(result, "summary")
    _check_columns(frame, x=x, y=y, value=value)
    if frame.empty:
        raise ValueError("result: the table is empty; there is nothing to draw")
    table = frame.pivot_table(index=y, columns=x, values=value, aggfunc="mean", dropna=False)
    diverged = (
        frame.pivot_table(index=y, columns=x, values="diverged", aggfunc="max", dropna=False)
        .reindex_like(table)
        .fillna(False)
        .astype(bool)
        if "diverged" in frame.columns
        else pd.DataFrame(False, index=table.index, columns=table.columns)
    )
    values = table.to_numpy(dtype=float)
    bad = ~np.isfinite(values) | diverged.to_numpy()
    fig, ax = figure_and_axes(ax, figsize=(1.1 * len(table.columns) + 2.8, 0.55 * len(table.index) + 1.8))
    sns.heatmap(
        table.where(~bad),
        ax=ax,
        annot=True,
        fmt=fmt,
        cmap="viridis_r",
        mask=bad,
        cbar_kws={"label": value.replace("_", " ")},
        linewidths=0.5,
        linecolor="white",
    )
    rows, cols = np.nonzero(bad)
    for row, col in zip(rows, cols):
        ax.text(
            col + 0.5,
            row + 0.5,
            "diverged" if diverged.to_numpy()[row, col] else "inf/NaN",
            ha="center",
            va="center",
            color=OVERFLOW_COLOR,
            fontsize="x-small",
            gid=OVERFLOW_MARKER_GID,
        )
    if rows.size:
        ax.set_title(
            f"{rows.size} cell(s) without a finite {value} (marked)",
            color=OVERFLOW_COLOR,
            fontsize="small",
            loc="right",
            gid=OVERFLOW_NOTE_GID,
        )
    finish(ax, xlabel=x, ylabel=y, title=title)
    return fig


def plot_sweep_lines(
    result: SweepResult | pd.DataFrame,
    *,
    y: str = "train_loss",
    x: str = "step",
    hue: str = "label",
    col: str | None = None,
    ax: Axes | None = None,
    log: bool | None = None,
    title: str | None = None,
) -> Figure:
    """One curve per run of ``y`` against ``x`` (default: the training loss per step), coloured
    by ``hue`` and faceted into side-by-side panels by ``col``.

    Uses ``result.table`` (one row per run and record). A run that diverged ends with a red 'x'
    at its last record. ``log`` (default: when the finite values span a factor of ten) puts y
    on a log axis.
    """
    frame = _frame(result, "table")
    _check_columns(frame, x=x, y=y, hue=hue, col=col)
    if frame.empty:
        raise ValueError("result: the table is empty; there is nothing to draw")
    run_column = "run" if "run" in frame.columns else None
    facets = list(pd.unique(frame[col])) if col is not None else [None]
    if ax is not None and len(facets) > 1:
        raise ValueError(
            f"ax={ax!r} is not allowed with col={col!r}: faceted plots make their own figure; pass ax=None"
        )
    if ax is None:
        fig, panels = new_panels(len(facets), suptitle=title is not None and col is not None)
        for panel in panels[1:]:
            panel.sharey(panels[0])
    else:
        fig, only = figure_and_axes(ax)
        panels = [only]
    hues = list(pd.unique(frame[hue]))
    colors = dict(zip(hues, sns.color_palette(n_colors=len(hues))))
    finite = frame[y].to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    if log is None:
        log = bool(finite.size and (finite > 0).all() and finite.max() > 10 * finite.min())
    diverged_runs = 0
    for panel, facet in zip(panels, facets):
        part = frame if facet is None else frame[frame[col] == facet]
        groups = part.groupby(run_column, sort=False) if run_column else [(None, part)]
        seen: set = set()
        for _, run in groups:
            key = run[hue].iloc[0]
            panel.plot(run[x], run[y], color=colors[key], label=str(key) if key not in seen else "_")
            seen.add(key)
            if "diverged" in run.columns and bool(run["diverged"].iloc[0]):
                diverged_runs += 1
                panel.plot(
                    [run[x].iloc[-1]],
                    [run[y].iloc[-1]],
                    marker="x",
                    color=OVERFLOW_COLOR,
                    markersize=8,
                    linestyle="none",
                    gid=OVERFLOW_MARKER_GID,
                    label="_diverged",
                )
        if log:
            log_axis(panel)
        finish(
            panel,
            xlabel=x,
            ylabel=y.replace("_", " "),
            title=f"{col} = {facet}" if facet is not None else title,
            legend=panel is panels[-1],
        )
    if diverged_runs:
        panels[0].text(
            0.02,
            0.02,
            f"{diverged_runs} run(s) diverged (x: last finite record)",
            transform=panels[0].transAxes,
            color=OVERFLOW_COLOR,
            fontsize="small",
            gid=OVERFLOW_NOTE_GID,
        )
    if title is not None and col is not None:
        fig.suptitle(title, fontsize="medium")
    return fig
