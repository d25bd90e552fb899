"""Chapter 01's claims: the chain rule's product, overflow and overshooting."""

from __future__ import annotations

import math

import torch

from explodegrad.claims.registry import claim
from explodegrad.claims.verdict import Check, all_of, between, boolean, compare, exact


@claim(
    "01/scalar-chain-exact",
    "The gradient of the scalar chain y = w^L x is w^L to float64 rounding (relative error below 1e-12).",
    "scalar-chains",
)
def _scalar(chains) -> Check:
    errors = [abs(r.input_gradient - r.weight**r.depth) / abs(r.weight**r.depth) for r in chains.values()]
    depths = sorted({r.depth for r in chains.values()})
    weights = ", ".join(f"{r.weight:g}" for r in chains.values())
    label = f"largest relative error of dy/dx against w^L (L = {', '.join(map(str, depths))}; w = {weights})"
    return exact(label, max(errors), 1e-12)


@claim(
    "01/linear-grows-sigma",
    "Backpropagating through a deep linear network whose Gaussian layers have gain sigma multiplies the "
    "gradient's norm by sigma per layer: the fitted growth per layer lies within 0.05 of sigma in every seed "
    "(sigma = 0.8, 1 and 1.2; depth 30, width 100).",
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
    "With layers that multiply the signal by about 10, a network's forward or backward pass first overflows "
    "at most 4 layers before, and at most 1 after, the depth where 10^depth first passes the format's "
    "largest number: 5 in float16, 39 in float32, 309 in float64.",
    "overflow",
)
def _overflow(results) -> Check:
    checks = []
    for dtype, result in results.items():
        first = math.ceil(math.log10(torch.finfo(getattr(torch, dtype)).max))  # first 10^depth above it
        depth = math.nan if result.depth is None else float(result.depth)
        checks.append(
            between(
                f"{dtype} overflow depth (10^depth first passes its largest number at {first})",
                depth,
                first - 4.5,  # depths are whole numbers: half-way bounds leave no depth on an edge
                first + 1.5,
                0.0,
            )
        )
    return all_of(*checks)


@claim(
    "01/overshoot-threshold",
    "Gradient descent on the quadratic converges at lr = 0.09 and diverges at lr = 0.11 (its loss after 30 "
    "steps below, above its start), either side of 2 / (largest curvature) = 2 / 20 = 0.1.",
    "overshoot",
)
def _overshoot(paths) -> Check:
    below, above = paths[0.09], paths[0.11]
    return all_of(
        boolean("lr 0.09 converges", not below.diverged),
        boolean("lr 0.11 diverges", above.diverged),
        exact("threshold 2 / 20", abs(below.threshold - 0.1), 1e-12),
    )
