"""Dilution: the Pythagorean argument for a residual block, b(x) = x + r(x) with r(x) orthogonal
to x and ||x|| = k ||r(x)||, gives GSC_b^2 = (k^2 + GSC_r^2) / (k^2 + 1).
:func:`dilution_profile` measures block and branch GSC against that prediction.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from explodegrad.core.checks import check_choice, check_int, check_numbers, check_seed
from explodegrad.core.jacobian import METHODS, PROBES, jacobian_qm_norm
from explodegrad.core.nets import DeepMLP, ResidualBlock
from explodegrad.core.trace import batch_statistics, check_batch_statistics_batch, prepare_batch, trace
from explodegrad.measures.gsc import at_full_precision


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not results
class DilutionResult:
    """Dilution of every residual block, in network order (input to output).

    Attributes:
        layers: paper layer number k of each block (the block produces f_k from f_{k+1}).
        skip_to_residual: the paper's k, ``||x||_F / ||r||_F`` with x = f_{k+1} the block's
            input batch and r the scaled residual; inf when the residual is zero.
        block_gsc: measured ``||J_b||_qm * ||x|| / ||b(x)||``.
        residual_gsc: measured ``||J_r||_qm * ||x|| / ||r||`` of the residual branch.
        predicted_block_gsc: the Pythagorean prediction from ``skip_to_residual`` and
            ``residual_gsc`` (:func:`pythagorean_block_gsc`).
        cosine: cosine between x and r(x) over the whole batch; near 0 is where the prediction
            can be trusted.
        method: ``"exact"`` or ``"probe"`` (how Jacobian norms were obtained).
        label: the network's label.
    """

    layers: np.ndarray
    skip_to_residual: np.ndarray
    block_gsc: np.ndarray
    residual_gsc: np.ndarray
    predicted_block_gsc: np.ndarray
    cosine: np.ndarray
    method: str
    label: str


def pythagorean_block_gsc(
    skip_to_residual: float | np.ndarray, residual_gsc: float | np.ndarray
) -> float | np.ndarray:
    """The block GSC the Pythagorean argument predicts: ``sqrt((k^2 + g^2) / (k^2 + 1))``.

    Why: if r(x) is orthogonal to x then ``||b(x)||^2 = ||x||^2 + ||r||^2``, and if J_r is
    orthogonal to the identity (trace 0) then ``||J_b||_F^2 = ||I||_F^2 + ||J_r||_F^2``; the
    ratio of the two gives the formula. k = inf (no residual) gives 1, k = 0 gives g.

    Args:
        skip_to_residual: k = ||x|| / ||r(x)|| (>= 0, inf allowed); scalar or array.
        residual_gsc: g, the residual branch's GSC (>= 0); scalar or array.

    Returns:
        The predicted block GSC, a float for scalar input, else an array.
    """
    k = check_numbers("skip_to_residual", skip_to_residual)
    g = check_numbers("residual_gsc", residual_gsc)
    for name, value in (("skip_to_residual", k), ("residual_gsc", g)):
        if np.any(value < 0):
            raise ValueError(f"{name}={value.tolist()!r} is not allowed: {name} must be >= 0")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        small_k = (k**2 + g**2) / (k**2 + 1.0)
        large_k = (1.0 + (g / k) ** 2) / (1.0 + 1.0 / k**2)  # stable for huge or infinite k
        predicted = np.sqrt(np.where(k < 1.0, small_k, large_k))
    if predicted.ndim == 0:
        return float(predicted)
    return predicted


def _unscaled_branch(block: ResidualBlock) -> Callable[[Tensor], Tensor]:
    """r(x) without ``residual_scale``: GSC and cosine do not depend on a positive scale."""

    def branch(x: Tensor) -> Tensor:
        for layer in block.branch:
            x = layer(x)
        return x

    return branch


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator with IEEE results (inf, nan) instead of an exception."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(numerator) / np.float64(denominator))


@at_full_precision
def dilution_profile(
    net: DeepMLP,
    inputs: Tensor,
    *,
    method: str = "probe",
    num_probes: int = 32,
    probe: str = "rademacher",
    seed: int = 0,
) -> DilutionResult:
    """Measure dilution, block and branch GSCs and the Pythagorean prediction for every block.

    For block b at layer k with input batch x = f_{k+1} and scaled residual r = s * r(x) (s the
    ``residual_scale``): k_b = ||x|| / ||r||, GSC_b = ||J_b||_qm ||x|| / ||b(x)|| and
    GSC_r = ||J_r||_qm ||x|| / ||r||. GSC_r and the cosine are computed on the unscaled branch
    r(x): both are unchanged by any positive scale, and this keeps them defined at s = 0. Block
    and branch use the same probes, so their estimates share one random draw.

    Args:
        net: a residual network (``residual=True``).
        inputs: a (batch x in_features) batch. Batch norm uses the batch's statistics
            (batch-level Jacobians) whatever mode the network is in, as
            :func:`~explodegrad.measures.gsc.gsc_profile` does; running averages and modes are
            left untouched.
        method: ``"exact"`` (full Jacobians, small nets) or ``"probe"`` (random probes).
        num_probes: probes per Jacobian norm (``"probe"`` only).
        probe: ``"rademacher"`` or ``"gaussian"``.
        seed: seed of the probes.

    Returns:
        A :class:`DilutionResult`. ``residual_scale = 0`` gives inf dilution and a block GSC of
        1; a branch whose output is exactly zero gives inf/nan entries; a block whose input,
        branch or output overflowed (holds inf or NaN) gets NaN in every column; never an
        exception.
    """
    if not isinstance(net, DeepMLP):
        raise TypeError(f"net: expected a DeepMLP from explodegrad.build_mlp, got {type(net).__name__}")
    if not net.config.residual:
        raise ValueError(
            "net: dilution needs a residual network (residual=True), e.g. "
            "build_mlp(..., residual=True); a plain network has no skip connection to dilute"
        )
    method = check_choice("method", method, METHODS)
    probe = check_choice("probe", probe, PROBES)
    num_probes = check_int("num_probes", num_probes, 1)
    seed = check_seed("seed", seed)
    inputs, _ = prepare_batch(net, inputs)
    check_batch_statistics_batch(net, inputs, "dilution_profile")
    rows: list[tuple[float, ...]] = []
    layers: list[int] = []
    # batch norm with the batch's own statistics whatever the mode, as the GSC: on an
    # evaluation-mode network the block GSCs would otherwise describe another function
    with batch_statistics(net):
        recorded = trace(net, inputs).detached()
        for position, unit in enumerate(net.units):
            if not isinstance(unit, ResidualBlock):
                continue
            k = net.num_layers - position
            x, output = recorded.f(k + 1), recorded.f(k)
            branch = _unscaled_branch(unit)
            with torch.no_grad():
                branch_out = branch(x)
            if not all(bool(torch.isfinite(t).all()) for t in (x, branch_out, output)):
                # an overflowed block has no ratios to measure: NaN, not the 0 that
                # finite / inf would give (which reads as a perfectly contracting block)
                rows.append((math.nan,) * 4)
                layers.append(k)
                continue
            norm_x = float(torch.linalg.norm(x.double()))
            norm_branch = float(torch.linalg.norm(branch_out.double()))
            norm_out = float(torch.linalg.norm(output.double()))
            norm_r = abs(net.config.residual_scale) * norm_branch
            options = dict(method=method, num_probes=num_probes, probe=probe, seed=seed)
            block_qm = jacobian_qm_norm(unit, x, **options)
            branch_qm = jacobian_qm_norm(branch, x, **options)
            inner = float((x.double() * branch_out.double()).sum())
            rows.append(
                (
                    _ratio(norm_x, norm_r),
                    _ratio(block_qm * norm_x, norm_out),
                    _ratio(branch_qm * norm_x, norm_branch),
                    _ratio(inner, norm_x * norm_branch),
                )
            )
            layers.append(k)
    skip_to_residual, block_gsc, residual_gsc, cosine = (np.array(col, dtype=float) for col in zip(*rows))
    predicted = pythagorean_block_gsc(skip_to_residual, residual_gsc)
    return DilutionResult(
        layers=np.array(layers, dtype=int),
        skip_to_residual=skip_to_residual,
        block_gsc=block_gsc,
        residual_gsc=residual_gsc,
        predicted_block_gsc=np.asarray(predicted, dtype=float),
        cosine=cosine,
        method=method,
        label=net.config.label(),
    )


# The residual trick: path (lambda) contributions
