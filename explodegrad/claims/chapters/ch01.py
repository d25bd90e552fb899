"""Chapter 01's claims: the chain rule's product, overflow and overshooting."""

from __future__ import annotations

import math

import torch

from explodegrad.claims.registry import claim
from explodegrad.claims.verdict import Check, all_of, between, boolean, compare, exact


@claim("01/scalar-chain-exact", "The gradient of the scalar chain y = w^L x is exactly w^L.", "scalar-chains")
def _scalar(chains) -> Check:
    errors = [abs(r.input_gradient - r.weight**r.depth) / abs(r.weight**r.depth) for r in chains.values()]
    return exact("largest relative error of dy/dx against w^30 for w in 0.9, 1, 1.1", max(errors), 1e-12)


@claim(
    "01/linear-grows-sigma",
    "Backpropagating through a deep linear network whose layers have gain sigma multiplies the "
    "gradient by about sigma per layer.",
    "deep-linear",
)
def _linear(networks) -> Check:
    return all_of(
        *(
            compare(
                f"|growth - sigma| at sigma = {sigma:g}",
                [abs(run.growth_factor - sigma) for run in runs],
                "<",
                0.05,
                0.01,
            )
            for sigma, runs in networks.items()
        )
    )


@claim(
    "01/overflow-depth",
    "With layers that multiply the signal by 10, a network overflows at about the depth where 10^depth "
    "passes the format's largest number: a few layers in float16, about 38 in float32, about 308 in float64.",
    "overflow",
)
def _overflow(results) -> Check:
    checks = []
    for dtype, result in results.items():
        limit = math.log10(torch.finfo(getattr(torch, dtype)).max)
        depth = math.nan if result.depth is None else float(result.depth)
        checks.append(
            between(
                f"{dtype} overflow depth (log10 of its largest number {limit:.1f})",
                depth,
                limit - 4,
                limit + 1.5,
                0.0,
            )
        )
    return all_of(*checks)


@claim(
    "01/overshoot-threshold",
    "Gradient descent on the quadratic converges below lr = 2 / (largest curvature) = 0.1 and diverges "
    "above it.",
    "overshoot",
)
def _overshoot(paths) -> Check:
    below, above = paths[0.09], paths[0.11]
    return all_of(
        boolean("lr 0.09 converges", not below.diverged),
        boolean("lr 0.11 diverges", above.diverged),
        exact("threshold 2 / 20", abs(below.threshold - 0.1), 1e-12),
    )
