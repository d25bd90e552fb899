"""The architecture survey: how much each architecture explodes at initialization (chapter 04),
and how far its domain collapses, with the tradeoff between the two (chapter 05).

Draws :func:`explodegrad.studies.survey.architecture_survey`'s result.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from explodegrad.claims.thresholds import EXPLODING_RATE, RATE_MARGIN
from explodegrad.core.checks import check_choice
from explodegrad.plots._checks import check_result
from explodegrad.plots.theme import (
    FIGSIZE,
    NORM_MARKERS,
    activation_color,
    figure_and_axes,
    log_axis,
    mark_overflow,
    norm_color,
)
from explodegrad.studies.survey import SurveyResult

#: Where a :class:`SurveyResult` comes from (named in type errors).
SURVEY_SOURCE = "explodegrad.studies.survey.architecture_survey"

#: What :func:`plot_survey` can show, and its axis label.
SURVEY_VALUES = {
    "gsc_input": "GSC(L + 1, 0): from the input to the loss",
    "gsc_first_layer": "GSC(L, 0): from the first layer to the loss",
    "rate": "fitted rate r per layer (per block for a ResNet)",
}
#: What :func:`plot_survey_domains` can show: DomainStats field -> axis label.
DOMAIN_STATISTICS = {
    "preact_std": "pre-activation std (absolute, log)",
    "preact_std_relative": "pre-activation std / RMS",
    "sign_diversity": "sign diversity",
    "linear_fit_error": "linear fit error 1 - R^2 (0: acts linearly)",
}
#: Statistics of :data:`DOMAIN_STATISTICS` drawn on a log axis (an absolute scale, not a fraction).
LOG_STATISTICS = ("preact_std",)
#: The domain columns of a survey table :func:`plot_domain_tradeoff` draws, and their labels.
TRADEOFF_COLUMNS = {
    "sign_diversity_last": "sign diversity at k = 2",
    "linear_fit_error_last": "linear fit error 1 - R^2 at k = 2",
}


def plot_survey(
    result: SurveyResult, *, value: str = "gsc_input", ax: Axes | None = None, title: str | None = None
) -> Figure:
    """Bars per architecture: activation on the x axis, one bar per normalization.

    The y axis is logarithmic for GSC values, with a dashed line at 1 (no explosion). Rates are
    drawn as bars up (or down) from 1 on a linear axis, with the exploding threshold as a red
    line and its inconclusive band shaded, so that 1.005 and 1.2 look as different as they are.
    Each
    normalization has the course's colour (:data:`explodegrad.plots.theme.NORM_COLORS`); a
    residual variant keeps it, hatched. An architecture whose value is not finite (an overflow)
    gets no bar and a note instead.

    Args:
        result: from :func:`explodegrad.studies.survey.architecture_survey`.
        value: a key of :data:`SURVEY_VALUES`.
        ax: draw into these axes (default: a new figure).
        title: axes title (default: the networks' depth and width).
    """
    check_result("result", result, SurveyResult, SURVEY_SOURCE)
    value = check_choice("value", value, SURVEY_VALUES)
    table = result.table.copy()
    table["normalization"] = table["norm"] + np.where(table["residual"], " + residual", "")
    fig, ax = figure_and_axes(ax)
    activations = list(dict.fromkeys(table["activation"]))
    groups = list(dict.fromkeys(table["normalization"]))
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
        norm = group.split(" ")[0]
        residual = group.endswith("residual")
        rate = value == "rate"
        ax.bar(
            positions,
            np.asarray(heights) - 1.0 if rate else heights,
            bottom=1.0 if rate else None,
            width=width,
            color=norm_color(norm),
            hatch="//" if residual else None,
            edgecolor="white" if residual else None,
            label=group,
        )
    ax.set_xticks(range(len(activations)), activations)
    ax.axhline(1.0, color="0.3", linestyle="--", linewidth=1)
    ax.set_xlabel("activation")
    ax.set_ylabel(SURVEY_VALUES[value])
    if value == "rate":
        tops = [float(p.get_y() + p.get_height()) for p in ax.patches]
        tops = [y for y in tops if np.isfinite(y)] or [1.0]
        ax.axhline(EXPLODING_RATE, color="crimson", linewidth=1, label=f"exploding above {EXPLODING_RATE:g}")
        ax.axhspan(EXPLODING_RATE - RATE_MARGIN, EXPLODING_RATE + RATE_MARGIN, color="crimson", alpha=0.1)
        low, high = min(min(tops), 0.99), max(max(tops), EXPLODING_RATE + RATE_MARGIN)
        ax.set_ylim(low - 0.01, high + 1.0 * (high - low + 0.02))  # headroom: the legend covers no bar
    else:
        ax.set_yscale("log")
        drawn = [h for h in (float(p.get_height()) for p in ax.patches) if np.isfinite(h) and h > 0]
        if drawn:  # headroom above the tallest bar for the legend, so that it covers no bar
            ax.set_ylim(top=max(drawn) * (max(drawn) / min(drawn)) ** 0.45)
    ax.legend(title="normalization", fontsize="small", loc="upper center", ncol=3)
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
    check_result("result", result, SurveyResult, SURVEY_SOURCE)
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
        activation, norm = label.split("/")[:2]
        ax.plot(
            profile.layers[finite],
            profile.gsc[finite],
            marker=NORM_MARKERS.get(norm, "o"),
            markersize=2,
            color=norm_color(norm),
            linestyle=_ACTIVATION_STYLES.get(activation, "-"),
            label=label,
        )
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


#: Line style per activation where lines are coloured by normalization.
_ACTIVATION_STYLES = {"relu": "-", "tanh": "--", "selu": ":"}


def _note(ax: plt.Axes, names: list[str], why: str) -> None:
    """List what was left out (``why: a, b``) as the panel's overflow note."""
    if names:
        mark_overflow(ax, [], f"{why}: " + ", ".join(names))


def plot_survey_domains(
    result: SurveyResult, statistic: str = "sign_diversity", *, title: str | None = None
) -> Figure:
    """One panel per activation: a domain statistic against the hidden layer k, one line per norm.

    Args:
        result: from :func:`explodegrad.studies.survey.architecture_survey` (its ``domains``).
        statistic: a key of :data:`DOMAIN_STATISTICS`.
        title: the figure's title.

    The x axes count layers from the output (k = 2 is the last hidden layer, next to the
    readout; k = L the first). Non-finite values (an overflow) are left out and listed.
    """
    check_result("result", result, SurveyResult, SURVEY_SOURCE)
    statistic = check_choice("statistic", statistic, DOMAIN_STATISTICS)
    table = result.table
    activations = list(dict.fromkeys(table["activation"]))
    fig, axes = plt.subplots(
        1,
        len(activations),
        figsize=(FIGSIZE[0] * len(activations) * 0.7, FIGSIZE[1]),
        sharey=True,
        squeeze=False,
    )
    for ax, activation in zip(axes[0], activations):
        missing = []
        for row in table[table["activation"] == activation].itertuples():
            stats = result.domains[row.label]
            values = np.asarray(getattr(stats, statistic), dtype=float)
            finite = np.isfinite(values)
            norm_name = row.label.split("/", 1)[1]
            ax.plot(
                stats.layers[finite],
                values[finite],
                marker="o",
                markersize=2,
                color=norm_color(row.norm),
                linestyle="--" if row.residual else "-",
                label=norm_name,
            )
            if not finite.all():
                missing.append(row.label)
        _note(ax, missing, "not finite (overflow)")
        if statistic in LOG_STATISTICS:
            log_axis(ax)
        else:
            ax.set_ylim(bottom=0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("hidden layer k, counted from the output")
        ax.set_title(activation)
        ax.legend(fontsize="small", title="norm")
    axes[0][0].set_ylabel(DOMAIN_STATISTICS[statistic])
    fig.suptitle(title or f"{DOMAIN_STATISTICS[statistic]} per layer at initialization")
    fig.tight_layout()
    return fig


def plot_domain_tradeoff(result: SurveyResult, *, title: str | None = None) -> Figure:
    """Exploding gradients against the collapsing domain: one point per surveyed architecture.

    Two panels share the x axis, the fitted explosion rate r per layer (the rate, not the level
    GSC(L + 1, 0), which also holds the loss's own factor), with the threshold of the one
    definition of exploding drawn and its inconclusive band shaded; the y axes are the last
    hidden layer's sign diversity and linear fit error. Colour is the activation, the marker the
    normalization (the course's palette), so no point needs a text label. Architectures whose
    rate or statistic is not finite are left out and listed.
    """
    check_result("result", result, SurveyResult, SURVEY_SOURCE)
    table = result.table
    fig, axes = plt.subplots(1, len(TRADEOFF_COLUMNS), figsize=(2 * FIGSIZE[0], FIGSIZE[1] + 0.4))
    rate = table["rate"].to_numpy(dtype=float)
    for ax, (column, ylabel) in zip(axes, TRADEOFF_COLUMNS.items()):
        values = table[column].to_numpy(dtype=float)
        shown = np.isfinite(rate) & np.isfinite(values)
        for i in np.flatnonzero(shown):
            row = table.iloc[i]
            ax.scatter(
                rate[i],
                values[i],
                color=activation_color(row["activation"]),
                marker=NORM_MARKERS.get(row["norm"], "o"),
                s=55,
                edgecolor="black" if row["residual"] else "none",
                zorder=3,
            )
        _note(ax, list(table["label"][~shown]), "not finite, left out")
        ax.axvspan(EXPLODING_RATE - RATE_MARGIN, EXPLODING_RATE + RATE_MARGIN, color="0.9", zorder=0)
        ax.axvline(EXPLODING_RATE, color="crimson", linestyle="--", linewidth=1)
        ax.axvline(1.0, color="0.3", linestyle=":", linewidth=1)
        ax.text(
            EXPLODING_RATE,
            1.01,
            f" exploding: r > {EXPLODING_RATE:g} →",
            transform=ax.get_xaxis_transform(),
            color="crimson",
            fontsize="x-small",
            va="bottom",
        )
        top = float(np.max(values[shown])) if shown.any() else 1.0
        ax.set_ylim(0, 1.12 * top if top > 0 else 1.0)
        ax.set_xlabel("fitted explosion rate r per layer (per block for a ResNet)")
        ax.set_ylabel(ylabel)
    activations = list(dict.fromkeys(table["activation"]))
    norms = list(dict.fromkeys(table["norm"]))
    handles = [
        Line2D([], [], linestyle="none", marker="o", color=activation_color(a), label=a) for a in activations
    ] + [
        Line2D([], [], linestyle="none", marker=NORM_MARKERS.get(n, "o"), color="0.4", label=f"norm: {n}")
        for n in norms
    ]
    axes[0].legend(handles=handles, fontsize="small", loc="lower right", ncol=2)
    fig.suptitle(
        title or "the tradeoff: exploding gradients (right of the red line) against a collapsing domain (low)"
    )
    fig.tight_layout()
    return fig
