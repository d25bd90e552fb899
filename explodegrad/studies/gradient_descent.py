"""Chapter 1: gradient descent on an ill-conditioned quadratic; a step above 2 / (largest
curvature) overshoots and diverges (:func:`gradient_descent_path`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from explodegrad.core.checks import check_finite, check_int, check_positive
from explodegrad.studies.common import StudyResult

#: The claims judged on this module's results (ids of :mod:`explodegrad.claims`).
CLAIMS = ("01/overshoot-threshold",)


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not results
class PathResult(StudyResult):
    """Gradient descent on the quadratic loss 0.5 * sum_i c_i x_i^2.

    Attributes:
        lr: the step size.
        curvature: c_i, the loss's second derivatives along each axis.
        points: (steps + 1) x dims, the iterates from the start.
        losses: the loss at each point.
        diverged: the measured verdict: the loss ended above where it started (or overflowed).
        threshold: 2 / max(c), the largest step size that does not diverge.
    """

    lr: float
    curvature: np.ndarray
    points: np.ndarray
    losses: np.ndarray
    diverged: bool
    threshold: float

    @property
    def factors(self) -> np.ndarray:
        """|1 - lr * c_i|: the factor each coordinate is multiplied by at every step."""
        return np.abs(1.0 - self.lr * self.curvature)

    @property
    def predicted_diverges(self) -> bool:
        """The closed-form verdict: some coordinate grows, i.e. lr > 2 / max(c)."""
        return bool(self.factors.max() > 1.0)

    def summary(self) -> str:
        """One line: the step size against the threshold 2 / max(c), and what happened."""
        verdict = "diverged" if self.diverged else "converged"
        return (
            f"lr = {self.lr:g} (threshold 2 / max(c) = {self.threshold:.4g}): {verdict}, loss "
            f"{self.losses[0]:.4g} -> {self.losses[-1]:.4g} in {len(self.losses) - 1} steps"
        )


def quadratic_loss(points: np.ndarray, curvature: Sequence[float]) -> np.ndarray:
    """0.5 * sum_i c_i x_i^2 for points stacked on the last axis (also on a plotting grid)."""
    points = np.asarray(points, dtype=float)
    curvature = np.asarray(curvature, dtype=float)
    if points.shape[-1] != curvature.shape[0]:
        raise ValueError(
            f"points: the last axis has {points.shape[-1]} coordinates but there are "
            f"{curvature.shape[0]} curvatures"
        )
    with np.errstate(over="ignore", invalid="ignore"):
        return 0.5 * (curvature * points**2).sum(axis=-1)


def gradient_descent_path(
    lr: float = 0.05,
    steps: int = 30,
    curvature: Sequence[float] = (1.0, 20.0),
    start: Sequence[float] | None = None,
) -> PathResult:
    """Run gradient descent x <- x - lr * c * x on an ill-conditioned quadratic (float64).

    Each coordinate is multiplied by (1 - lr c_i) per step: the flat direction crawls while
    the steep one overshoots, and for lr > 2 / max(c) it overshoots further every step.

    Args:
        lr: step size (> 0).
        steps: number of steps.
        curvature: positive curvatures c_i, one per coordinate.
        start: the starting point (default: all ones).
    """
    lr = check_positive("lr", lr)
    steps = check_int("steps", steps, 1)
    if isinstance(curvature, (str, bytes)) or not isinstance(curvature, Sequence | np.ndarray):
        raise TypeError(
            f"curvature={curvature!r} is not allowed: curvature must be a sequence of "
            "positive numbers, one per coordinate"
        )
    curv = np.array([check_positive("curvature", c) for c in curvature])
    if curv.size == 0:
        raise ValueError("curvature=() is not allowed: give at least one positive curvature")
    if start is None:
        start = np.ones(curv.size)
    begin = np.array([check_finite("start", s) for s in start])
    if begin.shape != curv.shape:
        raise ValueError(
            f"start={tuple(start)!r} is not allowed: start must have one coordinate per "
            f"curvature ({curv.size})"
        )
    points = np.empty((steps + 1, curv.size))
    points[0] = begin
    with np.errstate(over="ignore", invalid="ignore"):
        for step in range(steps):
            points[step + 1] = points[step] - lr * curv * points[step]
    losses = quadratic_loss(points, curv)
    diverged = bool(not np.isfinite(losses[-1]) or losses[-1] > losses[0])
    return PathResult(
        lr=lr,
        curvature=curv,
        points=points,
        losses=losses,
        diverged=diverged,
        threshold=2.0 / float(curv.max()),
    )
