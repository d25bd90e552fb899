"""The course's one look, and the helpers every plot file shares.

Every plot function of :mod:`explodegrad.plots` takes a result (an array or a dataclass from a
measure), an optional matplotlib ``ax`` (or ``axes``) to draw into, and returns the Figure. It
never computes what a measure should. Non-finite values (an overflow) are never dropped
silently: :func:`draw_finite` draws the finite part and :func:`mark_overflow` puts a marker at
each non-finite position plus a note ("gradient overflowed at layer 37") into the axes.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import Formatter, LogLocator, MaxNLocator

#: The palette every figure uses (readable for colour-blind learners).
PALETTE = "colorblind"
#: One colour per normalization in every chapter (seaborn's colour-blind palette: blue, orange,
#: green). A residual variant keeps its normalization's colour and is drawn hatched or dashed.
NORM_COLORS = {"none": "#0173b2", "batch": "#de8f05", "layer": "#029e73"}
#: One colour per activation in every chapter, none shared with a normalization (vermilion,
#: purple, brown, pink, grey, yellow, light blue, ...: the rest of the colour-blind palette).
ACTIVATION_COLORS = {
    "relu": "#d55e00",
    "tanh": "#cc78bc",
    "selu": "#ca9161",
    "sigmoid": "#fbafe4",
    "linear": "#949494",
    "gelu": "#ece133",
    "leaky_relu": "#56b4e9",
    "softplus": "#000000",
}
#: One marker per normalization, for figures that colour by activation.
NORM_MARKERS = {"none": "o", "batch": "s", "layer": "^"}
#: The smallest span, in decades, of a GSC axis (see :func:`honest_log_span`): a flat profile
#: then looks flat, whatever its noise.
MIN_GSC_DECADES = 2.0
#: Default size of a single-panel figure, in inches.
FIGSIZE = (6.4, 3.8)
#: Size of one panel when a figure has several side by side, in inches.
PANEL_SIZE = (4.6, 3.6)
#: A y range wider than this factor is drawn on a log axis.
LOG_SCALE_RANGE = 10.0
#: The colour of overflow markers and notes.
OVERFLOW_COLOR = "crimson"
#: ``gid`` of the marker line and of the note :func:`mark_overflow` draws (tests find them by it).
OVERFLOW_MARKER_GID = "overflow-marker"
OVERFLOW_NOTE_GID = "overflow-note"
#: The x label of every per-layer plot: the paper's numbering, from the output.
LAYER_LABEL = "layer k, counted from the output\n(k = 1: logits, k = L: first layer)"
#: The same, for plots whose last point is the input, k = L + 1.
LAYER_LABEL_WITH_INPUT = "layer k, counted from the output\n(k = 1: logits, k = L + 1: input)"
#: The same for a ResNet, whose addressable layers between the readout and the input layer are blocks.
UNIT_LABEL_WITH_INPUT = "unit k, counted from the output\n(k = 1: logits, 2 to L - 1: blocks, L + 1: input)"


def set_theme() -> None:
    """Apply the course's look: seaborn's white grid, colour-blind palette, readable fonts."""
    sns.set_theme(
        context="notebook",
        style="whitegrid",
        palette=PALETTE,
        rc={
            "figure.figsize": FIGSIZE,
            "figure.dpi": 100,
            "axes.titlesize": "medium",
            "axes.titley": 1.0,
            "axes.labelsize": "small",
            "legend.fontsize": "small",
            "axes.spines.top": False,
            "axes.spines.right": False,
        },
    )


#: Fixed margins, in inches: left (y ticks and label), right, bottom (x ticks and label), top
#: (a panel title), top with a figure title above the panels, and the gap between panels.
MARGINS_IN = {"left": 0.75, "right": 0.15, "bottom": 0.75, "top": 0.35, "top_with_title": 0.65, "gap": 0.85}


def _fix_margins(fig: Figure, count: int, suptitle: bool) -> None:
    """Place the panels with fixed margins.

    Cheaper than ``layout="constrained"`` (which lays every text out twice and nearly doubles
    the time to render a figure; explorers redraw on every change), and the same for every
    figure of the course.
    """
    width, height = fig.get_size_inches()
    top = MARGINS_IN["top_with_title" if suptitle else "top"]
    fig.subplots_adjust(
        left=MARGINS_IN["left"] / width,
        right=1 - MARGINS_IN["right"] / width,
        bottom=MARGINS_IN["bottom"] / height,
        top=1 - top / height,
        wspace=MARGINS_IN["gap"] * count / max(width - MARGINS_IN["left"], 1.0) if count > 1 else 0.2,
    )


def new_panels(
    count: int, *, suptitle: bool = False, sharex: bool = False, panel_size: tuple[float, float] | None = None
) -> tuple[Figure, list[Axes]]:
    """A new figure of ``count`` panels side by side, with the course's fixed margins.

    Args:
        count: number of panels.
        suptitle: leave room for a figure title above the panels.
        sharex: the panels share their x axis.
        panel_size: inches per panel (default :data:`FIGSIZE` for one, :data:`PANEL_SIZE` for more).
    """
    size = panel_size or (FIGSIZE if count == 1 else PANEL_SIZE)
    extra = MARGINS_IN["top_with_title"] - MARGINS_IN["top"] if suptitle else 0.0
    fig, made = plt.subplots(
        1, count, figsize=(size[0] * count, size[1] + extra), sharex=sharex, squeeze=False
    )
    _fix_margins(fig, count, suptitle)
    return fig, list(made[0])


def figure_and_axes(ax: Axes | None, figsize: tuple[float, float] = FIGSIZE) -> tuple[Figure, Axes]:
    """The figure and axes to draw into: ``ax`` itself, or a new single-panel figure."""
    if ax is None:
        fig, (ax,) = new_panels(1, panel_size=figsize)
        return fig, ax
    if not isinstance(ax, Axes):
        raise TypeError(f"ax={ax!r} is not allowed: ax must be a matplotlib Axes or None")
    return ax.figure, ax


def figure_and_panels(
    axes: Sequence[Axes] | None, count: int, *, sharex: bool = False, suptitle: bool = False
) -> tuple[Figure, list[Axes]]:
    """``count`` side-by-side panels: the given ``axes``, or a new figure (see :func:`new_panels`).

    Raises:
        TypeError: when ``axes`` is not a sequence of matplotlib Axes.
        ValueError: when it is one, but not of exactly ``count`` Axes.
    """
    if axes is None:
        return new_panels(count, sharex=sharex, suptitle=suptitle)
    given = list(axes) if isinstance(axes, (Sequence, np.ndarray)) else None
    allowed = f"axes must be None or a sequence of {count} matplotlib Axes"
    if given is None or not all(isinstance(a, Axes) for a in given):
        raise TypeError(f"axes={axes!r} is not allowed: {allowed}")
    if len(given) != count:
        raise ValueError(f"axes={axes!r} is not allowed: {allowed}")
    return given[0].figure, given


def as_values(argument: str, values: object, length: int | None = None) -> np.ndarray:
    """A 1-d float array (one value per layer or step), checked."""
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{argument}: expected a non-empty 1-d array, got shape {array.shape}")
    if length is not None and array.size != length:
        raise ValueError(f"{argument}: expected {length} values (one per x position), got {array.size}")
    return array


def draw_finite(
    ax: Axes, x: np.ndarray, y: np.ndarray, *, log: bool = False, **style: object
) -> tuple[Line2D, np.ndarray]:
    """Draw the finite points of y(x) (positive ones only on a log axis); return the line and
    a mask of the non-finite positions (for :func:`mark_overflow`)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    drawable = np.isfinite(y) & ((y > 0) if log else True)
    (line,) = ax.plot(x[drawable], y[drawable], **style)
    return line, ~np.isfinite(y)


def mark_overflow(
    ax: Axes,
    positions: np.ndarray | Sequence[float],
    note: str | None = None,
    *,
    what: str = "value",
    where: str = "layer",
) -> Line2D | None:
    """Mark non-finite values: a red 'x' at the top edge at each x position, plus a note.

    Args:
        ax: the axes.
        positions: x positions whose value is inf/NaN.
        note: the sentence to show; default "{what} overflowed (inf/NaN) at {where} 3, 4". A
            note given explicitly is shown even when no position is marked (e.g. an overflow
            the result reports elsewhere than in the drawn values).
        what, where: words for the default note.

    Returns:
        The marker line (``gid`` :data:`OVERFLOW_MARKER_GID`), or None when no position was marked.
    """
    xs = np.asarray(positions, dtype=float).ravel()
    if xs.size == 0 and note is None:
        return None
    if note is None:
        shown = ", ".join(f"{v:g}" for v in xs[:6]) + (", ..." if xs.size > 6 else "")
        note = f"{what} overflowed (inf/NaN) at {where} {shown}"
    marker = None
    if xs.size:
        (marker,) = ax.plot(
            xs,
            np.full(xs.size, 0.97),
            linestyle="none",
            marker="x",
            markersize=7,
            color=OVERFLOW_COLOR,
            transform=ax.get_xaxis_transform(),
            clip_on=False,
            label="_overflow",
            gid=OVERFLOW_MARKER_GID,
        )
    ax.text(
        0.02,
        0.90,
        _wrap_to_axes(ax, note),
        transform=ax.transAxes,
        va="top",
        ha="left",
        color=OVERFLOW_COLOR,
        fontsize="small",
        gid=OVERFLOW_NOTE_GID,
        bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1.5},
    )
    return marker


def _wrap_to_axes(ax: Axes, text: str) -> str:
    """Break ``text`` into lines that fit the axes' width (about 14 characters per inch)."""
    width_in = ax.get_position().width * ax.figure.get_size_inches()[0]
    return textwrap.fill(text, width=max(20, int(width_in * 14)))


def overflow_notes(ax: Axes) -> list[str]:
    """The overflow notes drawn into ``ax``, each on one line (for tests and explorers)."""
    return [" ".join(t.get_text().split()) for t in ax.texts if t.get_gid() == OVERFLOW_NOTE_GID]


def note_missing(ax: Axes, what: list[str], why: str) -> None:
    """Write ``why: a, b, c`` in red at the top left of ``ax`` when something could not be drawn."""
    if what:
        ax.text(
            0.02, 0.95, f"{why}: " + ", ".join(what), transform=ax.transAxes, va="top", color=OVERFLOW_COLOR
        )


def auto_log_scale(ax: Axes, *values: np.ndarray) -> bool:
    """Use a log y axis when the finite values are positive and span more than a factor of
    :data:`LOG_SCALE_RANGE` (exponential growth then shows as a straight line); return whether."""
    finite = np.concatenate([np.asarray(v, dtype=float).ravel() for v in values]) if values else np.zeros(0)
    finite = finite[np.isfinite(finite)]
    if finite.size and (finite > 0).all() and finite.max() > LOG_SCALE_RANGE * finite.min():
        log_axis(ax)
        return True
    return False


_SUPERSCRIPTS = str.maketrans(
    "-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079"
)


def _spans_a_decade(axis: object) -> bool:
    """Whether a log axis' view covers at least a factor of ten (so it has two major ticks)."""
    low, high = axis.get_view_interval() if axis is not None else (1.0, 100.0)
    low, high = min(low, high), max(low, high)
    return not (low > 0 and np.isfinite(high) and high / low < 10.0)


class PowerOfTenFormatter(Formatter):
    """Major ticks of a log axis as 10 with a superscript exponent, in plain text.

    Matplotlib's default writes them as mathtext, whose parsing is a large share of the time
    it takes to render a figure; explorers redraw on every change, so plain text pays off.
    When the view spans less than a decade the ticks are written plainly (0.5, 1, 2).
    """

    def __call__(self, x: float, pos: int | None = None) -> str:
        if not np.isfinite(x) or x <= 0:
            return ""
        exponent = np.log10(x)
        if not _spans_a_decade(self.axis) or abs(exponent - round(exponent)) > 1e-9:
            return f"{x:.2g}"
        return "10" + str(int(round(exponent))).translate(_SUPERSCRIPTS)


class MinorLogFormatter(Formatter):
    """Minor ticks of a log axis: labelled (plainly) only when the view spans under a decade;
    every one under a factor of three, else those at 2, 3 and 5 times a power of ten."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        if _spans_a_decade(self.axis) or not np.isfinite(x) or x <= 0:
            return ""
        low, high = sorted(self.axis.get_view_interval())
        mantissa = x / 10 ** np.floor(np.log10(x))
        return f"{x:.2g}" if high / low < 3.0 or round(mantissa) in (1, 2, 3, 5) else ""


class MinorLogLocator(LogLocator):
    """Minor ticks of a log axis only where they get labels (a view under a decade): the
    course's style draws no minor ticks, and each one costs time at every redraw."""

    def __init__(self) -> None:
        super().__init__(subs="auto")

    def __call__(self) -> list[float]:
        if _spans_a_decade(self.axis):
            return []
        low, high = sorted(self.axis.get_view_interval())
        if high / low >= 3.0:
            return super().__call__()
        # under a factor of three a log axis has hardly any ticks: use evenly spaced ones
        ticks = MaxNLocator(nbins=4).tick_values(low, high)
        ticks = ticks[(ticks > 0) & (ticks >= low) & (ticks <= high)]
        return [t for t in ticks if abs(np.log10(t) - round(np.log10(t))) > 1e-9]


def norm_color(norm: str) -> str:
    """The course's colour of a normalization (:data:`NORM_COLORS`); grey for an unknown name."""
    return NORM_COLORS.get(norm, "0.4")


def activation_color(activation: str) -> str:
    """The course's colour of an activation (:data:`ACTIVATION_COLORS`); grey for an unknown name."""
    return ACTIVATION_COLORS.get(activation, "0.4")


def honest_log_span(ax: Axes, values: np.ndarray, decades: float = MIN_GSC_DECADES) -> tuple[float, float]:
    """Widen a log y axis to at least ``decades`` decades around the finite positive ``values``
    (centred on their geometric middle), so that a nearly flat curve is drawn nearly flat
    instead of filling the panel; return the limits set (or the axis' own when nothing is finite)."""
    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array) & (array > 0)]
    if array.size == 0:
        return ax.get_ylim()
    low, high = np.log10(array.min()), np.log10(array.max())
    pad = 0.08 * (high - low)
    low, high = low - pad, high + pad
    if high - low < decades:
        middle = (low + high) / 2.0
        low, high = middle - decades / 2.0, middle + decades / 2.0
    limits = (10.0**low, 10.0**high)
    ax.set_ylim(*limits)
    return limits


def log_axis(ax: Axes, which: str = "y") -> None:
    """Put one axis on a log scale, with plain-text tick labels (see :class:`PowerOfTenFormatter`)."""
    axis = ax.yaxis if which == "y" else ax.xaxis
    (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    axis.set_major_formatter(PowerOfTenFormatter())
    axis.set_minor_locator(MinorLogLocator())
    axis.set_minor_formatter(MinorLogFormatter())


def integer_x(ax: Axes) -> None:
    """Whole-number ticks on the x axis (layers, steps); at most seven, each costs a redraw."""
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))


def finish(
    ax: Axes,
    *,
    xlabel: str | None = None,
    ylabel: str | None = None,
    title: str | None = None,
    legend: bool = False,
) -> None:
    """Labels, title and (when asked and there is something to show) the legend."""
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, y=1.0)  # a fixed position: automatic placement lays ticks out twice
    if legend and any(not h.get_label().startswith("_") for h in ax.get_legend_handles_labels()[0]):
        ax.legend()
