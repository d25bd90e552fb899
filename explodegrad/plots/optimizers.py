"""The impact studies of chapter 3: GSC under each optimizer, error against depth, update sizes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from explodegrad.plots.theme import FIGSIZE, figure_and_axes
from explodegrad.studies.depth_limit import DepthStudy
from explodegrad.studies.optimizers import OptimizerStudy

#: What :func:`plot_optimizer_gsc` can show, and its axis label.
OPTIMIZER_VALUES = {
    "gsc_first_layer": "GSC(L, 0): first layer to the loss",
    "gsc_input": "GSC(L + 1, 0): input to the loss",
    "rate": "fitted explosion rate r per layer",
}


def _check(result: object, kind: type, where: str) -> None:
    if not isinstance(result, kind):
        raise ValueError(f"result: expected a {kind.__name__} from {where}, got {type(result).__name__}")


def _note_missing(ax: Axes, what: list[str], why: str) -> None:
    if what:
        ax.text(0.02, 0.95, f"{why}: " + ", ".join(what), transform=ax.transAxes, va="top", color="crimson")


def plot_optimizer_gsc(
    study: OptimizerStudy, *, value: str = "gsc_first_layer", ax: Axes | None = None, title: str | None = None
) -> Figure:
    """The GSC (or the fitted rate) at each measurement during training: one colour per optimizer,
    one line per seed (the first seed drawn boldest).

    Non-finite measurements (an overflow) are left out and listed in a note.
    """
    _check(study, OptimizerStudy, "explodegrad.studies.optimizers.optimizer_study")
    if value not in OPTIMIZER_VALUES:
        raise ValueError(
            f"value={value!r} is not supported: value must be one of "
            f"{', '.join(repr(v) for v in OPTIMIZER_VALUES)}"
        )
    fig, ax = figure_and_axes(ax)
    missing = []
    for index, (optimizer, runs) in enumerate(study.gsc.groupby("optimizer", sort=False)):
        color = f"C{index}"
        for number, (_, rows) in enumerate(runs.groupby("seed", sort=False)):
            values = rows[value].to_numpy(dtype=float)
            finite = np.isfinite(values)
            label = f"{optimizer} (lr {rows['lr'].iloc[0]:g})" if number == 0 else None
            ax.plot(
                rows["step"].to_numpy()[finite],
                values[finite],
                marker="o",
                markersize=3,
                color=color,
                alpha=1.0 if number == 0 else 0.45,
                linewidth=1.6 if number == 0 else 1.0,
                label=label,
            )
            if not finite.all() and optimizer not in missing:
                missing.append(optimizer)
    if value != "rate":
        ax.set_yscale("log")
    ax.axhline(1.0, color="0.3", linestyle="--", linewidth=1)
    ax.set_xlabel("training step")
    ax.set_ylabel(OPTIMIZER_VALUES[value])
    ax.legend(fontsize="small")
    _note_missing(ax, missing, "not finite (overflow) at some steps")
    ax.set_title(title or study.label)
    return fig


def plot_update_sizes(study: OptimizerStudy, *, title: str | None = None) -> Figure:
    """Two panels against the layer k: relative update size per optimizer, and GSC(k, 0) at the end.

    Left: the median ``||delta theta_k|| / ||theta_k||`` of each optimizer's updates. Right:
    GSC(k, 0) of each optimizer's final network (the dashed line: the first seed at
    initialization). One colour per optimizer, one line per seed. Both
    x axes count layers from the output (k = 1 the readout, k = L the first layer).
    """
    _check(study, OptimizerStudy, "explodegrad.studies.optimizers.optimizer_study")
    fig, (left, right) = plt.subplots(1, 2, figsize=(2 * FIGSIZE[0], FIGSIZE[1]))
    start = None
    for index, (optimizer, runs) in enumerate(study.updates.groupby("optimizer", sort=False)):
        for number, (_, rows) in enumerate(runs.groupby("seed", sort=False)):
            style = {
                "color": f"C{index}",
                "alpha": 1.0 if number == 0 else 0.4,
                "marker": "o",
                "markersize": 2,
            }
            layers = rows["layer"].to_numpy()
            sizes = rows["update_size"].to_numpy(dtype=float)
            ok = np.isfinite(sizes) & (sizes > 0)
            left.plot(layers[ok], sizes[ok], label=optimizer if number == 0 else None, **style)
            end = rows["gsc_end"].to_numpy(dtype=float)
            ok = np.isfinite(end) & (end > 0)
            right.plot(layers[ok], end[ok], label=f"{optimizer}, end" if number == 0 else None, **style)
            if start is None:
                start = rows
    if start is not None:
        values = start["gsc_start"].to_numpy(dtype=float)
        ok = np.isfinite(values) & (values > 0)
        right.plot(
            start["layer"].to_numpy()[ok], values[ok], color="0.3", linestyle="--", label="at initialization"
        )
    for ax in (left, right):
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("layer k, counted from the output (k = 1: readout)")
        ax.legend(fontsize="small")
    left.set_ylabel("relative update size ||Δθ_k|| / ||θ_k||")
    right.set_ylabel("GSC(k, 0)")
    fig.suptitle(title or study.label)
    fig.tight_layout()
    return fig


def plot_depth_study(
    study: DepthStudy, *, value: str = "final_train_error", ax: Axes | None = None, title: str | None = None
) -> Figure:
    """Training (or test) error against depth, one line per architecture, at each run's best rate:
    the median over the seeds, with a bar from the smallest to the largest.

    A depth where every learning rate diverged has no point and is listed in a note.
    """
    _check(study, DepthStudy, "explodegrad.studies.depth_limit.depth_study")
    if value not in ("final_train_error", "final_test_error"):
        raise ValueError(
            f"value={value!r} is not supported: value must be 'final_train_error' or 'final_test_error'"
        )
    fig, ax = figure_and_axes(ax)
    missing = []
    for architecture, rows in study.table.groupby("architecture", sort=False):
        grouped = rows.groupby("depth")[value]
        depths = np.asarray(sorted(grouped.groups))
        median, low, high = (
            grouped.agg(how).reindex(depths).to_numpy(dtype=float) for how in ("median", "min", "max")
        )
        finite = np.isfinite(median)
        rate = float(rows.loc[rows["depth"] == depths[-1], "rate_init"].median())
        label = f"{architecture} (r = {rate:.2f} at init)"
        (line,) = ax.plot(depths[finite], median[finite], marker="o", label=label)
        ax.vlines(depths[finite], low[finite], high[finite], color=line.get_color(), linewidth=3, alpha=0.35)
        missing += [f"{architecture} d{d}" for d in depths[~finite]]
    ax.set_ylim(bottom=0)
    ax.set_xlabel("depth (weight layers)")
    kind = "training" if value == "final_train_error" else "test"
    ax.set_ylabel(f"{kind} error after {study.steps} steps")
    ax.legend(fontsize="small")
    _note_missing(ax, missing, "every learning rate diverged")
    ax.set_title(title or f"{kind} error against depth ({study.optimizer}, best learning rate per depth)")
    return fig
