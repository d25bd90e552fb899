"""The one definition of "exploding" that every chapter's claims and texts use.

A GSC profile *explodes* when its fitted rate r (see
:func:`explodegrad.measures.gsc.fit_explosion_rate`) clears
:data:`~explodegrad.claims.thresholds.EXPLODING_RATE` per addressable layer and the exponential
describes it (R^2 above :data:`~explodegrad.claims.thresholds.EXPLODING_R_SQUARED`), each by its
margin. The level GSC(L + 1, 0) never enters: it also holds the fit's constant c (the loss and
the readout), which says nothing about depth.

* :func:`explodes` judges a rate and an R^2 (what the claims call);
* :func:`explosion_verdict` judges whatever holds them: a GSC profile, its fit, or a row of a
  survey table (what the notebooks call);
* :func:`explosion_word` turns a verdict into the word a table prints.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from explodegrad.claims.thresholds import (
    EXPLODING_R_SQUARED,
    EXPLODING_RATE,
    R_SQUARED_MARGIN,
    RATE_MARGIN,
)
from explodegrad.claims.verdict import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, Check


def explodes(label: str, rate: float, r_squared: float, why_no_fit: str | None = None) -> Check:
    """Does a GSC profile explode? Holds when r > EXPLODING_RATE and R^2 > EXPLODING_R_SQUARED, each
    by its margin; does not hold when either is clearly below; inconclusive in between.
    ``why_no_fit``: the fit's own reason when it could not be made (else an overflow is assumed)."""
    line = f"{label}: r = {rate:.3f}, R^2 = {r_squared:.2f}"
    if not (math.isfinite(rate) and math.isfinite(r_squared)):
        reason = why_no_fit or "the profile overflowed"
        return Check(INCONCLUSIVE, f"{line} (not finite: {reason})", {label: (rate, r_squared)})
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


def _rate_and_fit(measured: Any) -> tuple[float, float, str | None]:
    """(rate, R^2, label or None) of a GSCProfile, an ExplosionFit or a mapping with both."""
    fit = getattr(measured, "fit", measured)  # a GSCProfile holds its ExplosionFit
    if hasattr(fit, "rate") and hasattr(fit, "r_squared") and not isinstance(fit, Mapping):
        return float(fit.rate), float(fit.r_squared), getattr(measured, "label", None)
    if isinstance(measured, Mapping) and "rate" in measured and "r_squared" in measured:
        return float(measured["rate"]), float(measured["r_squared"]), measured.get("label")
    raise TypeError(
        f"measured={measured!r} is not allowed: give a GSCProfile, an ExplosionFit, or a mapping "
        "with 'rate' and 'r_squared' (a survey row)"
    )


def explosion_verdict(measured: Any, label: str | None = None) -> Check:
    """The one definition of exploding, applied to a measured profile.

    Args:
        measured: a :class:`~explodegrad.measures.gsc.GSCProfile`, its
            :class:`~explodegrad.measures.gsc.ExplosionFit`, or a mapping with ``rate`` and
            ``r_squared`` (e.g. ``survey.row("relu", "batch")`` or a survey table's row as a dict).
        label: the name quoted in the verdict's line (default: the profile's or row's label).

    Returns:
        A :class:`~explodegrad.claims.verdict.Check`: *holds* (explodes), *does not hold*, or
        *inconclusive* (within a margin of a threshold, or the profile overflowed).

    Raises:
        TypeError: ``measured`` holds no rate and R^2.
    """
    rate, r_squared, own_label = _rate_and_fit(measured)
    fit = getattr(measured, "fit", measured)
    why_no_fit = fit.message if getattr(fit, "ok", True) is False else None  # e.g. too few layers
    return explodes(label or own_label or "profile", rate, r_squared, why_no_fit)


#: The word a table prints for each verdict of :func:`explosion_verdict`.
EXPLOSION_WORDS = {HOLDS: "explodes", DOES_NOT_HOLD: "no", INCONCLUSIVE: "borderline"}


def explosion_word(measured: Any) -> str:
    """``"explodes"``, ``"no"`` or ``"borderline"``: :func:`explosion_verdict` as a table entry."""
    return EXPLOSION_WORDS[explosion_verdict(measured).verdict]


def definition() -> str:
    """The definition in words, with the numbers."""
    return (
        f"exploding: GSC(k, 0) grows like c * r^k with r > {EXPLODING_RATE:g} per layer and the "
        f"exponential fits (R^2 > {EXPLODING_R_SQUARED:g}); margins {RATE_MARGIN:g} and {R_SQUARED_MARGIN:g}"
    )


def justification() -> str:
    """Why these thresholds, in a few plain sentences (printed by chapter 03)."""
    over_50 = EXPLODING_RATE**50
    return (
        f"r = {EXPLODING_RATE:g} per layer compounds to a factor {over_50:.1f} (about e) over the paper's "
        f"50 layers, no more than the loss and the readout alone can move the level (the constant c): "
        f"below it, depth is not what makes the GSC large. A profile that is flat in theory (He-initialized "
        f"ReLU) still has a fitted r off 1 at finite width and depth, at times by more than 0.02 "
        f"(chapter 03's depth-10 network: 1.049), so a threshold nearer 1 would call noise an explosion, "
        f"and the rate alone cannot decide. R^2 > {EXPLODING_R_SQUARED:g} asks that the exponential "
        f"describe the profile: a flat, noisy profile has some fitted slope but no straight line on a "
        f"log axis. Within {RATE_MARGIN:g} of the rate threshold (or {R_SQUARED_MARGIN:g} of the R^2 one) "
        f"the call is 'inconclusive'. For a ResNet the rate is per residual block (the unit the paper "
        f"measures a ResNet's GSC between)."
    )
