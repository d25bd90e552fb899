"""The architecture survey (chapter 3): how much each architecture explodes at initialization."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from explodegrad.plots.theme import PALETTE, figure_and_axes
from explodegrad.studies.survey import SurveyResult

#: What :func:`plot_survey` can show, and its axis label.
SURVEY_VALUES = {
    "gsc_input": "GSC(L + 1, 0): from the input to the loss",
    "gsc_first_layer": "GSC(L, 0): from the first layer to the loss",
    "rate": "fitted explosion rate r per layer",
}


def _check_survey(result: SurveyResult) -> None:
    if not isinstance(result, SurveyResult):
        raise ValueError(
            f"result: expected a SurveyResult from explodegrad.studies.survey, got {type(result).__name__}"
        )


def plot_survey(
    result: SurveyResult, *, value: str = "gsc_input", ax: Axes | None = None, title: str | None = None
) -> Figure:
    """Bars per architecture: activation on the x axis, one bar per normalization.

    The y axis is logarithmic for GSC values, with a dashed line at 1 (no explosion). An
    architecture whose value is not finite (an overflow) gets no bar and a note instead.

    Args:
        result: from :func:`explodegrad.studies.survey.architecture_survey`.
        value: a key of :data:`SURVEY_VALUES`.
        ax: draw into these axes (default: a new figure).
        title: axes title (default: the networks' depth and width).
    """
    _check_survey(result)
    if value not in SURVEY_VALUES:
        raise ValueError(
            f"value={value!r} is not supported: value must be one of "
            f"{', '.join(repr(v) for v in SURVEY_VALUES)}"
        )
    table = result.table.copy()
    table["normalization"] = table["norm"] + np.where(table["residual"], " + residual", "")
    fig, ax = figure_and_axes(ax)
    activations = list(dict.fromkeys(table["activation"]))
    groups = list(dict.fromkeys(table["normalization"]))
    colors = sns.color_palette(PALETTE, len(groups))
    width = 0.8 / len(groups)
    missing = []
    for j, group in enumerate(groups):
        rows = table[table["normalization"] == group].set_index("activation")
        positions, heights = [], []
        for i, activation in enumerate(activations):
            if activation not in rows.index:
                continue
            height = float(rows.loc[activation, value])
            x = i - 0.4 + width * (j + 0.5)
            if np.isfinite(height) and height > 0:
                positions.append(x)
                heights.append(height)
            else:
                missing.append(f"{activation}/{group}")
        ax.bar(positions, heights, width=width, color=colors[j], label=group)
    ax.set_xticks(range(len(activations)), activations)
    ax.set_yscale("log")
    ax.axhline(1.0, color="0.3", linestyle="--", linewidth=1)
    ax.set_xlabel("activation")
    ax.set_ylabel(SURVEY_VALUES[value])
    ax.legend(title="normalization", fontsize="small")
    if missing:
        ax.text(
            0.02,
            0.95,
            "overflow (inf/NaN): " + ", ".join(missing),
            transform=ax.transAxes,
            va="top",
            color="crimson",
        )
    depth, width_ = int(table["depth"].iloc[0]), int(table["width"].iloc[0])
    ax.set_title(title or f"at initialization, depth {depth}, width {width_} ({result.data_name})")
    return fig


def plot_survey_profiles(
    result: SurveyResult,
    *,
    labels: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """GSC(k, 0) against k for each architecture of a survey, on a log axis.

    Args:
        result: from :func:`explodegrad.studies.survey.architecture_survey`.
        labels: the architectures to draw (default: all), e.g. ``["relu/batch", "relu/none"]``.
        ax: draw into these axes (default: a new figure).
        title: axes title.
    """
    _check_survey(result)
    chosen = list(result.profiles) if labels is None else list(labels)
    unknown = [label for label in chosen if label not in result.profiles]
    if unknown or not chosen:
        raise ValueError(
            f"labels={labels!r} is not allowed: choose from "
            f"{', '.join(repr(label) for label in result.profiles)}"
        )
    fig, ax = figure_and_axes(ax)
    overflowed = []
    for label in chosen:
        profile = result.profiles[label]
        finite = np.isfinite(profile.gsc) & (profile.gsc > 0)
        ax.plot(profile.layers[finite], profile.gsc[finite], marker="o", markersize=2, label=label)
        if not finite.all():
            overflowed.append(label)
    ax.set_yscale("log")
    ax.axhline(1.0, color="0.3", linestyle="--", linewidth=1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("layer k, counted from the output (k = L + 1: the input)")
    ax.set_ylabel("GSC(k, 0)")
    ax.legend(fontsize="small", ncol=3 if len(chosen) > 4 else 1)
    if overflowed:
        ax.text(
            0.02,
            0.95,
            "overflow (inf/NaN) in: " + ", ".join(overflowed),
            transform=ax.transAxes,
            va="top",
            color="crimson",
        )
    if title:
        ax.set_title(title)
    return fig
