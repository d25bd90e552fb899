"""Jacobian norms of any function, exactly or from random probes.

The GSC and the dilution measures need the quadratic-mean norm of a Jacobian,
``||J||_qm = ||J||_F / sqrt(n)`` with n the number of input entries (J's columns): the
root-mean-square gain of J on a random direction. Two ways to get ``||J||_F``:

* exact: build the full Jacobian (small problems and tests);
* probes: for v with E[v v^T] = I (Rademacher or Gaussian), E||J^T v||^2 = ||J||_F^2, so the
  mean of ``||J^T v||^2`` over probes is an unbiased estimate; all probes go through ONE
  batched vector-Jacobian product (``torch.autograd.grad(..., is_grads_batched=True)``,
  which vmaps over the probes).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from explodegrad.core.checks import (
    check_callable,
    check_choice,
    check_float_dtype,
    check_int,
    check_memory,
    check_seed,
    check_tensor,
)

PROBES = ("rademacher", "gaussian")
METHODS = ("exact", "probe")


def qm_norm(matrix: Tensor) -> float:
    """Quadratic-mean norm ``||A||_F / sqrt(columns)`` of a matrix."""
    if not isinstance(matrix, Tensor):
        raise TypeError(f"matrix: expected a torch.Tensor, got {type(matrix).__name__}")
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise ValueError(f"matrix: expected a 2-d matrix with columns, got shape {tuple(matrix.shape)}")
    return float(torch.linalg.matrix_norm(matrix.double()) / math.sqrt(matrix.shape[1]))


def make_probes(
    shape: tuple[int, ...],
    num_probes: int,
    probe: str = "rademacher",
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """``num_probes`` random vectors of ``shape`` with identity second moment, stacked on dim 0."""
    probe = check_choice("probe", probe, PROBES)
    num_probes = check_int("num_probes", num_probes, 1)
    if isinstance(shape, torch.Size):
        shape = tuple(shape)
    if not isinstance(shape, tuple):
        raise TypeError(f"shape={shape!r} is not allowed: shape must be a tuple of sizes, e.g. (64, 10)")
    shape = tuple(check_int("shape", size, 1) for size in shape)
    seed = check_seed("seed", seed)
    dtype = check_float_dtype(dtype)
    check_memory(
        f"num_probes={num_probes}",
        f"{num_probes} probes of shape {shape}",
        3 * 8 * num_probes * math.prod(shape),
    )
    generator = torch.Generator().manual_seed(seed)
    draw = torch.randn((num_probes, *shape), generator=generator, dtype=torch.float64)
    if probe == "rademacher":
        draw = torch.where(draw >= 0, 1.0, -1.0).to(torch.float64)
    return draw.to(dtype=dtype, device=device)


def jacobian_matrix(function: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """The full Jacobian of ``function`` at ``x`` as an (outputs x inputs) matrix."""
    check_callable("function", function)
    check_tensor("x", x)
    if x.numel() == 0:
        raise ValueError("x: the input is empty; a Jacobian needs at least one entry")
    jac = torch.autograd.functional.jacobian(function, x.detach())
    out_numel = jac.numel() // x.numel()
    return jac.reshape(out_numel, x.numel())


def frobenius_sq_from_probes(
    output: Tensor, inputs: list[Tensor], probes: Tensor, retain_graph: bool = False
) -> list[Tensor]:
    """Estimate ``||d output / d input||_F^2`` for several inputs from one batched backward pass.

    Args:
        output: a tensor in the autograd graph.
        inputs: tensors ``output`` depends on (leaves or intermediates).
        probes: (num_probes, *output.shape) probe vectors with identity second moment.
        retain_graph: keep the graph for more passes.

    Returns:
        One scalar tensor per input: the mean over probes of ``||J^T v||^2``. Inputs the output
        does not depend on get 0.
    """
    check_tensor("output", output)
    check_tensor("probes", probes)
    if isinstance(inputs, Tensor) or not all(isinstance(t, Tensor) for t in inputs):
        raise TypeError(f"inputs: expected a list of torch.Tensors, got {type(inputs).__name__}")
    if probes.shape[1:] != output.shape:
        raise ValueError(f"probes: shape {tuple(probes.shape)} does not match output {tuple(output.shape)}")
    grads = torch.autograd.grad(
        output,
        inputs,
        grad_outputs=probes,
        retain_graph=retain_graph,
        is_grads_batched=True,
        allow_unused=True,
    )
    results = []
    for grad, inp in zip(grads, inputs):
        if grad is None:
            results.append(torch.zeros((), dtype=inp.dtype, device=inp.device))
        else:
            results.append(grad.reshape(grad.shape[0], -1).double().pow(2).sum(1).mean())
    return results


def jacobian_qm_norm(
    function: Callable[[Tensor], Tensor],
    x: Tensor,
    method: str = "probe",
    num_probes: int = 16,
    probe: str = "rademacher",
    seed: int = 0,
) -> float:
    """``||J||_qm`` of ``function`` at ``x``, exactly or estimated from ``num_probes`` probes."""
    method = check_choice("method", method, METHODS)
    check_callable("function", function)
    check_tensor("x", x)
    if x.numel() == 0:
        raise ValueError("x: the input is empty; a Jacobian needs at least one entry")
    if method == "exact":
        return qm_norm(jacobian_matrix(function, x))
    with torch.enable_grad():
        xin = x.detach().clone().requires_grad_(True)
        out = function(xin)
        probes = make_probes(tuple(out.shape), num_probes, probe, seed, out.dtype, out.device)
        (fro_sq,) = frobenius_sq_from_probes(out, [xin], probes)
    return math.sqrt(float(fro_sq) / x.numel())
