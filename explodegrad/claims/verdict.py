"""Verdicts: how a claim is judged on measured numbers, with an explicit margin.

A claim's predicate never compares one number with a threshold and stops there. It compares
every seed's value with the threshold *and a margin*: the claim **holds** when every seed
clears the threshold by more than the margin, **does not hold** when every seed misses it by
more than the margin, and is **inconclusive** otherwise (the seeds disagree, or a value lies
within the margin, or a value is not finite because a run overflowed or diverged).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explodegrad.core.checks import check_choice, check_numbers, check_positive
from explodegrad.core.seeds import median_range

HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
INCONCLUSIVE = "inconclusive"
VERDICTS = (HOLDS, DOES_NOT_HOLD, INCONCLUSIVE)
#: How a verdict is marked where it is printed.
MARKS = {HOLDS: "✅", DOES_NOT_HOLD: "❌", INCONCLUSIVE: "❔"}


@dataclass(frozen=True)
class Check:
    """One predicate's outcome: a verdict and the plain line that quotes its numbers."""

    verdict: str
    line: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict={self.verdict!r} is not allowed: verdict must be one of {VERDICTS}")


def spread(values: Iterable[float], digits: int = 3) -> str:
    """``median [min, max]`` of per-seed values, e.g. ``1.16 [1.15, 1.17]``; one value alone."""
    array = np.asarray(list(values), dtype=float)
    if array.size == 0:
        return "no values"
    if not np.isfinite(array).all():
        return "not finite (" + ", ".join(f"{v:.{digits}g}" for v in array) + ")"
    return median_range(array, f".{digits}g")


def rank_correlation(x: Iterable[float], y: Iterable[float]) -> float:
    """Spearman's rank correlation of ``x`` and ``y``: the Pearson correlation of their ranks.

    Tied values get the average of the ranks they share (``[1, 2, 2, 4]`` ranks as
    ``[1, 2.5, 2.5, 4]``); infinities rank as the largest or smallest values. The result is
    1 for a perfectly increasing relation, -1 for a perfectly decreasing one, and NaN when
    every value of ``x`` or of ``y`` is the same (no order to correlate).

    Raises:
        TypeError: ``x`` or ``y`` holds something other than real numbers.
        ValueError: different lengths, fewer than two points, or a NaN (a diverged run has
            no rank).
    """
    xs = check_numbers("x", list(x))
    ys = check_numbers("y", list(y))
    if xs.ndim != 1 or ys.ndim != 1 or xs.size != ys.size:
        raise ValueError(
            f"x, y: lengths {xs.size} and {ys.size} (shapes {xs.shape} and {ys.shape}) are not allowed: "
            "give two flat sequences of the same length"
        )
    if xs.size < 2:
        raise ValueError(f"x={xs.tolist()!r} is not allowed: a rank correlation needs at least 2 points")
    for argument, values in (("x", xs), ("y", ys)):
        if np.isnan(values).any():
            raise ValueError(
                f"{argument}={values.tolist()!r} is not allowed: a NaN has no rank (drop it, or judge "
                "the claim inconclusive)"
            )
    x_ranks, y_ranks = _average_ranks(xs), _average_ranks(ys)
    if np.ptp(x_ranks) == 0 or np.ptp(y_ranks) == 0:
        return math.nan
    return float(np.corrcoef(x_ranks, y_ranks)[0, 1])


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values``, tied values sharing the average of their ranks."""
    _, where, counts = np.unique(values, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)
    return ((last - counts + 1 + last) / 2.0)[where]


def _as_array(values: float | Iterable[float]) -> np.ndarray:
    if isinstance(values, (int, float, np.floating, np.integer)):
        return np.asarray([float(values)])
    return np.asarray(list(values), dtype=float)


def _why_not_judged(array: np.ndarray) -> str:
    """Why a check cannot judge its values: none are left, or one is not finite."""
    if array.size == 0:
        return "no seed left to judge"
    return "a value is not finite (the run overflowed or diverged)"


def compare(
    name: str, values: float | Iterable[float], op: str, threshold: float, margin: float, *, digits: int = 3
) -> Check:
    """Judge ``value op threshold`` for every seed's value, with a margin.

    Args:
        name: what the values are, in words (quoted in the line).
        values: one value per seed (or a single value: an exact, deterministic quantity).
        op: ``">"`` or ``"<"``.
        threshold: the threshold of the predicate.
        margin: how far beyond the threshold every value must lie for a clear verdict (>= 0).

    Returns:
        *holds* when every value clears ``threshold`` by more than ``margin``; *does not hold*
        when every value misses it by more than ``margin``; *inconclusive* otherwise, when no
        value is given (every seed left out) and whenever a value is not finite.
    """
    op = check_choice("op", op, (">", "<"))
    margin = check_positive("margin", margin, allow_zero=True)
    array = _as_array(values)
    sign = 1.0 if op == ">" else -1.0
    seeds = f" over {array.size} seeds" if array.size > 1 else ""
    line = f"{name} {spread(array, digits)}{seeds} (needs {op} {threshold:.4g}, margin {margin:.3g})"
    if array.size == 0 or not np.isfinite(array).all():
        return Check(INCONCLUSIVE, line + ": " + _why_not_judged(array), {name: array.tolist()})
    excess = sign * (array - threshold)
    if (excess > margin).all():
        verdict = HOLDS
    elif (excess < -margin).all():
        verdict = DOES_NOT_HOLD
    else:
        verdict = INCONCLUSIVE
    return Check(verdict, line, {name: array.tolist()})


def between(
    name: str, values: float | Iterable[float], low: float, high: float, margin: float, *, digits: int = 3
) -> Check:
    """Judge ``low < value < high`` for every seed's value, with a margin at both ends."""
    array = _as_array(values)
    seeds = f" over {array.size} seeds" if array.size > 1 else ""
    line = (
        f"{name} {spread(array, digits)}{seeds} (needs between {low:.4g} and {high:.4g}, margin {margin:.3g})"
    )
    if array.size == 0 or not np.isfinite(array).all():
        return Check(INCONCLUSIVE, line + ": " + _why_not_judged(array), {name: array.tolist()})
    inside = (array > low + margin) & (array < high - margin)
    outside = (array < low - margin) | (array > high + margin)
    verdict = HOLDS if inside.all() else DOES_NOT_HOLD if outside.all() else INCONCLUSIVE
    return Check(verdict, line, {name: array.tolist()})


def exact(name: str, error: float, tolerance: float) -> Check:
    """Judge an identity: holds when ``error <= tolerance``, does not hold otherwise."""
    error = float(error)
    line = f"{name}: error {error:.2g} (tolerance {tolerance:g})"
    if not math.isfinite(error):
        return Check(INCONCLUSIVE, line + ": not finite", {name: error})
    return Check(HOLDS if error <= tolerance else DOES_NOT_HOLD, line, {name: error})


def boolean(name: str, outcomes: bool | Sequence[bool], description: str = "") -> Check:
    """Judge a yes/no outcome per seed: holds when all are yes, does not hold when all are no."""
    flags = [bool(outcomes)] if isinstance(outcomes, (bool, np.bool_)) else [bool(o) for o in outcomes]
    yes = sum(flags)
    seeds = f" in {yes} of {len(flags)} seeds" if len(flags) > 1 else ("" if yes else ": no")
    line = f"{name}{seeds}" + (f" ({description})" if description else "")
    if not flags:
        return Check(INCONCLUSIVE, line + ": nothing measured")
    verdict = HOLDS if yes == len(flags) else DOES_NOT_HOLD if yes == 0 else INCONCLUSIVE
    return Check(verdict, line, {name: flags})


def all_of(*checks: Check) -> Check:
    """Several conditions together: holds when all hold, does not hold when any does not."""
    if not checks:
        raise ValueError("all_of() needs at least one check")
    verdicts = [check.verdict for check in checks]
    verdict = (
        DOES_NOT_HOLD if DOES_NOT_HOLD in verdicts else INCONCLUSIVE if INCONCLUSIVE in verdicts else HOLDS
    )
    values: dict[str, Any] = {}
    for check in checks:
        values.update(check.values)
    return Check(verdict, "; ".join(check.line for check in checks), values)


def note(check: Check, text: str) -> Check:
    """The same check with a reason appended to its line (e.g. why it is inconclusive)."""
    return Check(check.verdict, f"{check.line}; {text}", check.values)


def negate(check: Check, line: str | None = None) -> Check:
    """The opposite claim: holds <-> does not hold; inconclusive stays inconclusive."""
    flipped = {HOLDS: DOES_NOT_HOLD, DOES_NOT_HOLD: HOLDS, INCONCLUSIVE: INCONCLUSIVE}[check.verdict]
    return Check(flipped, check.line if line is None else line, check.values)


def count(checks: Sequence[Check], at_least: int, what: str) -> Check:
    """Holds when at least ``at_least`` checks hold; does not hold when so many cannot any more
    (too many clearly do not hold); inconclusive otherwise."""
    holding = sum(check.verdict == HOLDS for check in checks)
    failing = sum(check.verdict == DOES_NOT_HOLD for check in checks)
    line = f"{holding} of {len(checks)} {what} (needs at least {at_least}): " + "; ".join(
        c.line for c in checks
    )
    if holding >= at_least:
        verdict = HOLDS
    elif len(checks) - failing < at_least:
        verdict = DOES_NOT_HOLD
    else:
        verdict = INCONCLUSIVE
    values: dict[str, Any] = {}
    for check in checks:
        values.update(check.values)
    return Check(verdict, line, values)
