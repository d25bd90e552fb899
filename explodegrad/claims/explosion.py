"""The one definition of "exploding" that every chapter's claims use."""

from __future__ import annotations

import math

from explodegrad.claims.thresholds import (
    EXPLODING_R_SQUARED,
    EXPLODING_RATE,
    R_SQUARED_MARGIN,
    RATE_MARGIN,
)
from explodegrad.claims.verdict import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, Check


def explodes(label: str, rate: float, r_squared: float) -> Check:
    """Does a GSC profile explode? Holds when r > EXPLODING_RATE and R^2 > EXPLODING_R_SQUARED, each
    by its margin; does not hold when either is clearly below; inconclusive in between."""
    line = f"{label}: r = {rate:.3f}, R^2 = {r_squared:.2f}"
    if not (math.isfinite(rate) and math.isfinite(r_squared)):
        return Check(INCONCLUSIVE, line + " (not finite: the profile overflowed)", {label: (rate, r_squared)})
    steep = rate > EXPLODING_RATE + RATE_MARGIN
    straight = r_squared > EXPLODING_R_SQUARED + R_SQUARED_MARGIN
    flat = rate < EXPLODING_RATE - RATE_MARGIN
    noisy = r_squared < EXPLODING_R_SQUARED - R_SQUARED_MARGIN
    verdict = HOLDS if steep and straight else DOES_NOT_HOLD if flat or noisy else INCONCLUSIVE
    return Check(verdict, line, {label: (rate, r_squared)})


def explodes_in_every_seed(label: str, rates, r_squared) -> Check:
    """:func:`explodes` for each seed's (rate, R^2): holds when every seed explodes, does not hold
    when no seed does, inconclusive otherwise."""
    checks = [
        explodes(f"{label} seed {i}", float(r), float(q)) for i, (r, q) in enumerate(zip(rates, r_squared))
    ]
    verdicts = {c.verdict for c in checks}
    verdict = HOLDS if verdicts == {HOLDS} else DOES_NOT_HOLD if verdicts == {DOES_NOT_HOLD} else INCONCLUSIVE
    return Check(
        verdict,
        "; ".join(c.line for c in checks),
        {label: [(float(r), float(q)) for r, q in zip(rates, r_squared)]},
    )


def definition() -> str:
    """The definition in words, with the numbers."""
    return (
        f"exploding: GSC(k, 0) grows like c * r^k with r > {EXPLODING_RATE:g} per layer and the "
        f"exponential fits (R^2 > {EXPLODING_R_SQUARED:g}); margins {RATE_MARGIN:g} and {R_SQUARED_MARGIN:g}"
    )
