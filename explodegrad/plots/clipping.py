"""Figures of gradient clipping (chapter 02): runs with and without clipping on a fixed loss
axis, and clipping on a network whose gradients explode with depth.

Draws the results of :mod:`explodegrad.studies.clipping`. The loss axis has a fixed range, so
that a run that leaves it (and then overflows) does not squeeze the runs that train into a line
at the bottom; where a run leaves the range or diverges, a red mark says so.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from explodegrad.claims.thresholds import EXPLODING_RATE
from explodegrad.plots._checks import check_result
from explodegrad.plots.theme import (
    LAYER_LABEL,
    OVERFLOW_COLOR,
    finish,
    integer_x,
    log_axis,
    mark_overflow,
    new_panels,
)
from explodegrad.studies.clipping import ClippedExplosion, ClippingResult

#: The loss axis of :func:`plot_clipping_comparison`: from a trained network's loss to well above
#: an untrained one's (ln 10 = 2.3 for ten classes).
LOSS_RANGE = (1e-3, 1e2)

#: The rate axis of :func:`plot_clipped_explosion`: 1 (no explosion) is always in view.
RATE_RANGE = (0.95, 1.30)


def _check_seed(result_seeds: tuple[int, ...], seed_index: int) -> int:
    if isinstance(seed_index, bool) or not isinstance(seed_index, int):
        raise TypeError(f"seed_index must be an int, got {type(seed_index).__name__}")
    if not 0 <= seed_index < len(result_seeds):
        raise ValueError(
            f"seed_index={seed_index!r} is not allowed: the result has {len(result_seeds)} seeds "
            f"(0 ... {len(result_seeds) - 1})"
        )
    return seed_index


def plot_clipping_comparison(
    result: ClippingResult,
    *,
    seed_index: int = 0,
    loss_range: tuple[float, float] = LOSS_RANGE,
    title: str | None = None,
) -> Figure:
    """Training loss (left, log axis over the fixed ``loss_range``) and training error (right)
    against the update step, one line per clipping setting, for one seed.

    A loss outside the range is drawn at its edge and named in a note, and a run that diverged
    is marked with a red 'x' at its step, so the runs that train keep their detail.
    """
    check_result("result", result, ClippingResult, "explodegrad.studies.clipping.clipping_comparison")
    index = _check_seed(result.seeds, seed_index)
    low, high = (float(v) for v in loss_range)
    if not 0 < low < high:
        raise ValueError(
            f"loss_range={loss_range!r} is not allowed: it must be (low, high) with 0 < low < high"
        )
    fig, (loss_ax, error_ax) = new_panels(2, sharex=True, suptitle=True)
    notes, diverged_steps = [], []
    for name, histories in result.items():
        history = histories[index]
        steps = history.steps.astype(float)
        loss = np.asarray(history.train_loss, dtype=float)
        finite = np.isfinite(loss)
        (line,) = loss_ax.plot(steps[finite], np.clip(loss[finite], low, high), label=name)
        error_ax.plot(steps, history.train_error, color=line.get_color(), label=name)
        above, below = finite & (loss > high), finite & (loss < low)
        if above.any():
            notes.append(f"{name}: loss above {high:g} from step {steps[above][0]:g}")
        if below.any():
            notes.append(f"{name}: loss below {low:g} at step {steps[below][0]:g} (drawn at the edge)")
        if history.diverged and history.diverged_step is not None:
            diverged_steps.append(history.diverged_step)
            notes.append(f"{name}: diverged at step {history.diverged_step}")
    loss_ax.set_ylim(low, high)
    log_axis(loss_ax)
    if notes:
        mark_overflow(loss_ax, diverged_steps, "; ".join(notes))
    for step in diverged_steps:
        loss_ax.axvline(step, color=OVERFLOW_COLOR, linestyle=":", label="_diverged")
    error_ax.set_ylim(-0.02, 1.02)
    for ax, ylabel in ((loss_ax, "training loss (cross-entropy)"), (error_ax, "training error")):
        integer_x(ax)
        finish(ax, xlabel="update step", ylabel=ylabel, legend=ax is error_ax)
    fig.suptitle(
        title
        or f"SGD (momentum 0.9), lr {result.lr:g}, with and without clipping (seed {result.seeds[index]})",
        fontsize="medium",
    )
    return fig


def plot_clipped_explosion(
    result: ClippedExplosion, *, seed_index: int = 0, title: str | None = None
) -> Figure:
    """Left: one seed's per-layer gradient norms at initialization before clipping (solid) and
    after (dashed): the same shape, shifted down by one factor. Right: the GSC's fitted rate r
    per seed at initialization and after training with and without clipping, on a fixed axis
    that always shows 1 (no explosion) and the exploding threshold."""
    check_result("result", result, ClippedExplosion, "explodegrad.studies.clipping.clipping_on_exploding")
    index = _check_seed(result.seeds, seed_index)
    fig, (norm_ax, rate_ax) = new_panels(2, suptitle=True)
    layers = result.layers.astype(float)
    (line,) = norm_ax.plot(
        layers, result.weight_grad_norms[index], marker="o", markersize=3, label="before clipping"
    )
    norm_ax.plot(
        layers,
        result.clipped_grad_norms[index],
        marker="o",
        markersize=3,
        linestyle="--",
        color=line.get_color(),
        alpha=0.7,
        label=f"after clipping to norm {result.clip_norm:g}",
    )
    log_axis(norm_ax)
    integer_x(norm_ax)
    finish(norm_ax, xlabel=LAYER_LABEL, ylabel="||d loss / d W_k|| at initialization", legend=True)
    columns = (
        ("at init", result.rate_init),
        ("trained,\nclipped", result.rate_clipped),
        ("trained,\nnot clipped", result.rate_unclipped),
    )
    for position, (_, rates) in enumerate(columns):
        for seed, rate in zip(result.seeds, rates):
            rate_ax.plot(
                position, rate, marker="o", linestyle="none", color=f"C{seed % 10}", label=f"seed {seed}"
            )
    handles, labels = rate_ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    rate_ax.axhline(1.0, color="grey", linewidth=0.8)
    rate_ax.axhline(EXPLODING_RATE, color=OVERFLOW_COLOR, linestyle=":", label="exploding threshold")
    rate_ax.set_xticks(range(len(columns)), [name for name, _ in columns])
    rate_ax.set_xlim(-0.5, len(columns) - 0.5)
    top = max(RATE_RANGE[1], float(np.nanmax(np.concatenate([r for _, r in columns]))) + 0.02)
    rate_ax.set_ylim(RATE_RANGE[0], top)
    finish(rate_ax, ylabel="GSC's fitted rate r per layer")
    rate_ax.legend(
        [*unique.values(), rate_ax.lines[-1]],
        [*unique, f"exploding threshold {EXPLODING_RATE:g}"],
        fontsize="small",
    )
    fig.suptitle(title or f"{result.label}: clipping scales the step, not the explosion", fontsize="medium")
    return fig
