"""Dilution, the residual trick, path (lambda) contributions and effective depth.

Two views of why skip connections help (Philipp, Song & Carbonell, 2018):

* **Dilution** (the Pythagorean argument). A residual block ``b(x) = x + r(x)`` whose residual
  ``r(x)`` is orthogonal to ``x``, with ``||x|| = k ||r(x)||``, has
  ``GSC_b^2 = (k^2 + GSC_r^2) / (k^2 + 1)``: a large skip-to-residual ratio k pulls the block's
  GSC towards 1, however explosive the branch is. :func:`dilution_profile` measures k, both
  GSCs and the prediction for every block, plus the cosine between x and r(x), which tells
  whether the orthogonality the argument needs holds.
* **The residual trick**. Any layer can be written ``f = s + r`` with s a chosen *linear* skip
  and ``r = f - s``. The network's Jacobian ``prod_l (S_l + R_l)`` then expands into paths; the
  lambda-contribution is the part made of exactly lambda residual Jacobians, the coefficient of
  ``t^lambda`` in ``prod_l (S_l + t R_l)``. :func:`path_contributions` computes every
  lambda-contribution of a vector-Jacobian product at once by propagating lambda-indexed vectors
  backwards, ``c'_lam = S_l^T c_lam + R_l^T c_(lam-1)``, and :func:`effective_depth` reads off
  the largest lambda that still matters.

Layers are numbered from the output as in the paper (f_1 the logits, f_{L+1} the input).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from explodegrad.core.checks import check_choice, check_fraction, check_int, check_numbers, check_seed
from explodegrad.core.jacobian import PROBES, make_probes
from explodegrad.core.nets import DeepMLP, ResidualBlock, per_example_loss
from explodegrad.core.trace import (
    all_finite,
    batch_statistics,
    check_batch_statistics_batch,
    first_overflow_layer,
    prepare_batch,
    trace,
)
from explodegrad.measures.gsc import at_full_precision

SKIPS = ("identity", "init", "linear_fit")


SOURCES = ("logits", "loss")


#: Default share of the summed contribution norms a lambda-contribution needs to count
#: towards the effective depth (see :func:`effective_depth` for why).
DEFAULT_THRESHOLD = 0.01


# Dilution


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not results
class PathContributions:
    """How a network's vector-Jacobian product splits into paths of lambda residual Jacobians.

    Attributes:
        lambdas: 0, 1, ..., L (L = the network's number of layers).
        contribution_norms: ``||c_lam||_F`` for every lambda (root mean square over probes; with
            one probe from the loss and no batch norm this is exactly the norm of the
            lambda-part of the input gradient).
        fraction: ``contribution_norms / contribution_norms.sum()``: each lambda's share of the
            summed norms (sums to 1; robust when contributions cancel in the total; nan when
            every norm is zero).
        total_norm: ``||sum_lam c_lam||_F``, the norm of the full vector-Jacobian product (root
            mean square over probes).
        effective_depth: the largest lambda whose ``fraction`` is at least ``threshold``; -1 when
            the contributions overflowed (inf/nan).
        threshold: the share used for ``effective_depth``.
        skip: the skip function: ``"identity"``, ``"init"`` or ``"linear_fit"``.
        source: where the backward pass started: ``"logits"`` (f_1) or ``"loss"`` (f_0).
        label: the network's label.
        overflow_layer: the layer nearest the input whose output is not finite (the network
            overflowed in the forward pass), or None.
        message: a plain sentence: the effective depth, or why there is none (overflow).
    """

    lambdas: np.ndarray
    contribution_norms: np.ndarray
    fraction: np.ndarray
    total_norm: float
    effective_depth: int
    threshold: float
    skip: str
    source: str
    label: str
    overflow_layer: int | None = None
    message: str = ""

    @property
    def overflowed(self) -> bool:
        """Whether the network's values or the contributions became inf/NaN (no depth then)."""
        return self.effective_depth < 0

    @property
    def longest_path(self) -> int:
        """The largest lambda whose contribution can be non-zero under this skip: a ResNet's
        number of blocks with ``"identity"`` (the input layer and the readout are pure skip),
        L - 1 with ``"linear_fit"`` (the readout is affine, its own exact fit, when its centred
        inputs have full rank: a batch larger than the width, as the course's), L with
        ``"init"`` (training changes every layer, the readout included)."""
        num_layers = len(self.lambdas) - 1
        return {"identity": num_layers - 2, "linear_fit": num_layers - 1, "init": num_layers}[self.skip]

    @property
    def mean_share(self) -> float:
        """The mean path length as a share of the longest possible path,
        ``sum(lambda * fraction) / longest_path``.

        It compares networks of different numbers of layers (a ResNet's lambda counts blocks,
        a plain network's single layers) on one scale from 0 (every path skips everything) to 1
        (every path takes every residual it can); dividing by L instead would put a ResNet's
        maximum at (L - 2) / L, 0.82 at depth 20, and favour it. NaN when the contributions
        overflowed.
        """
        return float(np.sum(self.lambdas * np.asarray(self.fraction))) / max(self.longest_path, 1)


def effective_depth(
    contributions: PathContributions | Sequence[float] | np.ndarray, threshold: float = DEFAULT_THRESHOLD
) -> int:
    """The largest lambda whose contribution is still at least ``threshold`` of the total.

    "Total" is the sum of the contribution norms over all lambda, so the shares add up to 1 and
    do not blow up when contributions of different lambda cancel in the full gradient. The
    default 0.01 (1 %) is our operational choice, not a number from the paper: a path length
    carrying under 1 % of the gradient mass barely changes the training signal, while a far
    smaller cut-off would count float round-off of the exact zeros (e.g. at initialization with
    ``skip="init"``) as depth. Lower it to ask "which lambda contribute at all?".

    Args:
        contributions: a :class:`PathContributions` or the norms indexed by lambda = 0, 1, ...
        threshold: share in (0, 1].

    Returns:
        The effective depth (0 when every norm is zero; -1 when a norm is inf or nan).
    """
    threshold = check_fraction("threshold", threshold)
    if isinstance(contributions, PathContributions):
        norms = contributions.contribution_norms
    else:
        norms = check_numbers("contributions", contributions)
    if norms.ndim != 1 or norms.size == 0:
        raise ValueError(
            f"contributions: expected a non-empty 1-d sequence of norms, got shape {norms.shape}"
        )
    if not np.all(np.isfinite(norms)):
        return -1
    if np.any(norms < 0):
        raise ValueError("contributions: norms must be >= 0")
    total = norms.sum()
    if total == 0:
        return 0
    kept = np.nonzero(norms / total >= threshold)[0]
    return int(kept.max()) if kept.size else 0


def _batched_vjp(unit: nn.Module, x: Tensor, vectors: Tensor) -> Tensor:
    """``J^T v`` of ``unit`` at ``x`` for every v stacked on dim 0 (one vmapped backward pass)."""
    with torch.enable_grad():
        xin = x.detach().requires_grad_(True)
        out = unit(xin)
        (grads,) = torch.autograd.grad(out, xin, grad_outputs=vectors, is_grads_batched=True)
    return grads


def _affine_fit_matrix(x: Tensor, y: Tensor) -> Tensor:
    """The (in x out) matrix A of the least-squares affine fit ``y ~ x A + b`` on the batch."""
    if not (all_finite(x) and all_finite(y)):  # an overflowed layer: no fit, NaN contributions
        return torch.full((x.shape[1], y.shape[1]), torch.nan, dtype=x.dtype, device=x.device)
    # solved in at least float32: torch's pinv has no half-precision kernels
    work = torch.promote_types(x.dtype, torch.float32)
    xc = (x - x.mean(0, keepdim=True)).to(work)
    yc = (y - y.mean(0, keepdim=True)).to(work)
    return (torch.linalg.pinv(xc) @ yc).to(x.dtype)


def _check_initial_net(net: DeepMLP, initial_net: DeepMLP | None) -> DeepMLP:
    if initial_net is None:
        raise ValueError(
            "initial_net: skip='init' needs the network at initialization, e.g. "
            "initial_net=copy.deepcopy(net) taken before training"
        )
    if not isinstance(initial_net, DeepMLP):
        raise TypeError(
            f"initial_net: expected a DeepMLP from explodegrad.build_mlp, got {type(initial_net).__name__}"
        )
    if initial_net.config.shape_key() != net.config.shape_key():
        got = initial_net.config.label()
        raise ValueError(
            f"initial_net: {got} does not match net ({net.config.label()}): it must have the same "
            "architecture (depth, width, activation, norm, residual layout, input and output sizes)"
        )
    held, initial = next(net.parameters()), next(initial_net.parameters())
    if (held.dtype, held.device) != (initial.dtype, initial.device):
        raise ValueError(
            f"initial_net: holds {initial.dtype} on {initial.device}, net {held.dtype} on {held.device}; "
            "move it with initial_net.to(...) first"
        )
    return initial_net


def _start_vectors(
    recorded_logits: Tensor, targets: Tensor | None, source: str, num_probes: int, probe: str, seed: int
) -> Tensor:
    """The probes v^T at f_1: probes of the logits, or probes of f_0 pulled back to the logits."""
    logits = recorded_logits
    if source == "logits":
        return make_probes(tuple(logits.shape), num_probes, probe, seed, logits.dtype, logits.device)
    probes = make_probes((logits.shape[0],), num_probes, probe, seed, logits.dtype, logits.device)
    return _batched_vjp(lambda z: per_example_loss(z, targets), logits, probes)


def path_vjp_terms(
    net: DeepMLP,
    inputs: Tensor,
    targets: Tensor | None = None,
    *,
    skip: str = "identity",
    initial_net: DeepMLP | None = None,
    source: str = "logits",
    num_probes: int = 8,
    probe: str = "rademacher",
    seed: int = 0,
) -> Tensor:
    """The lambda-contributions c_lam of ``v^T J`` themselves, for every probe v.

    J is the Jacobian of f_1 (or f_0) with respect to the input f_{L+1}. Every layer is split as
    ``J_l = S_l + R_l`` (see :func:`path_contributions` for the skips) and lambda-indexed
    vectors are propagated backwards, ``c'_lam = S_l^T c_lam + R_l^T c_(lam-1)`` with
    ``R_l^T c = J_l^T c - S_l^T c``. All lambdas, probes and examples go through each layer in
    one batched vector-Jacobian product.

    Returns:
        A (num_probes x (L + 1) x batch x in_features) tensor; summing over dim 1 gives the full
        ``v^T J`` (exactly, up to float round-off).
    """
    skip = check_choice("skip", skip, SKIPS)
    source = check_choice("source", source, SOURCES)
    probe = check_choice("probe", probe, PROBES)
    num_probes = check_int("num_probes", num_probes, 1)
    seed = check_seed("seed", seed)
    inputs, targets = prepare_batch(net, inputs, targets)
    if source == "loss" and targets is None:
        raise ValueError("targets: source='loss' needs the class labels (targets=...)")
    if skip == "identity" and not net.config.residual:
        raise ValueError(
            "skip='identity' is not allowed for a plain network: the identity skip is the natural "
            "view of residual blocks; use skip='linear_fit' or skip='init' for any network"
        )
    initial = _check_initial_net(net, initial_net) if skip == "init" else None
    check_batch_statistics_batch(net, inputs, "path_contributions")
    # batch norm with the batch's own statistics whatever the mode, as the GSC and the domain
    # statistics: on an evaluation-mode network they would otherwise describe another function
    initial_stats = batch_statistics(initial) if initial is not None else nullcontext()
    with batch_statistics(net), initial_stats:
        recorded = trace(net, inputs, targets).detached()
        unit_inputs = [recorded.inputs, *recorded.outputs[:-1]]
        num_layers = net.num_layers
        start = _start_vectors(recorded.f(1), targets, source, num_probes, probe, seed)
        terms = start.unsqueeze(1)  # (probes, lambdas so far, batch, width)
        for processed, position in enumerate(reversed(range(num_layers))):
            unit, x = net.units[position], unit_inputs[position]
            flat = terms.reshape(-1, *terms.shape[2:])
            through_layer = _batched_vjp(unit, x, flat)
            if skip == "identity":
                through_skip = flat if isinstance(unit, ResidualBlock) else through_layer
            elif skip == "init":
                through_skip = _batched_vjp(initial.units[position], x, flat)
            else:
                fit = _affine_fit_matrix(x, recorded.outputs[position])
                through_skip = flat @ fit.T
            through_residual = through_layer - through_skip
            shape = (num_probes, processed + 1, *through_layer.shape[1:])
            # c'_lam = S^T c_lam + R^T c_(lam-1): the skip's terms keep their lambda, the
            # residual's move up by one (written in place: no concatenated copies)
            terms = through_skip.new_zeros((num_probes, processed + 2, *through_layer.shape[1:]))
            terms[:, :-1] = through_skip.reshape(shape)
            terms[:, 1:] += through_residual.reshape(shape)
    return terms


@at_full_precision
def path_contributions(
    net: DeepMLP,
    inputs: Tensor,
    targets: Tensor | None = None,
    *,
    skip: str = "identity",
    initial_net: DeepMLP | None = None,
    source: str = "logits",
    threshold: float = DEFAULT_THRESHOLD,
    num_probes: int = 8,
    probe: str = "rademacher",
    seed: int = 0,
) -> PathContributions:
    """Split the network's vector-Jacobian product into lambda-contributions (residual trick).

    Each layer (unit) f is written ``f = s + r`` with a linear skip s:

    * ``"identity"``: residual blocks use s = identity and r = the scaled branch (the natural
      ResNet view); the input layer and the readout, which have no skip, count as pure skip
      (r = 0), so lambda counts residual branches on a path. Residual networks only.
    * ``"init"``: s = the layer's Jacobian at initialization (``initial_net``, e.g. a deepcopy
      taken before training) at the same recorded input; at initialization every R is 0.
    * ``"linear_fit"``: s = the least-squares *affine* fit ``y ~ x A + b`` from the layer's input
      batch to its output batch, one matrix A for all examples. Affine, because a layer's
      output mean (ReLU outputs are positive, biases) would otherwise bend the fitted slope;
      the offset b has no Jacobian, so the skip's Jacobian is A^T, linear as required. Use a
      batch larger than the width, or the fit just interpolates the batch.

    Batch norm uses the batch's own statistics whatever mode the network is in (as the GSC and
    the domain statistics do; running averages and modes are left untouched): a layer's
    Jacobian then couples the examples of the batch, and the expansion is of the batch-level
    Jacobian, which is still exact.

    Args:
        net: a network from :func:`explodegrad.core.nets.build_mlp`.
        inputs: a (batch x in_features) batch.
        targets: class labels; needed for ``source="loss"``.
        skip: ``"identity"``, ``"init"`` or ``"linear_fit"``.
        initial_net: the network at initialization (``skip="init"`` only; same architecture).
        source: ``"logits"`` (v a probe of f_1) or ``"loss"`` (v a probe of the per-example
            losses f_0; one Rademacher probe is then exact without batch norm).
        threshold: share for :func:`effective_depth`.
        num_probes, probe, seed: the random probes v.

    Returns:
        A :class:`PathContributions`.
    """
    threshold = check_fraction("threshold", threshold)
    terms = path_vjp_terms(
        net,
        inputs,
        targets,
        skip=skip,
        initial_net=initial_net,
        source=source,
        num_probes=num_probes,
        probe=probe,
        seed=seed,
    )
    squares = terms.double().pow(2).sum(dim=(2, 3))  # (probes, lambdas)
    norms = squares.mean(0).sqrt().cpu().numpy()
    total = float(terms.sum(1).double().pow(2).sum(dim=(1, 2)).mean().sqrt())
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = norms / norms.sum()
    depth = effective_depth(norms, threshold)
    overflow_layer = first_overflow_layer(net, inputs)
    if overflow_layer is not None:
        message = (
            f"the network overflowed: its output became inf or NaN at layer {overflow_layer} (counted "
            "from the output), so the contributions are not finite and there is no effective depth"
        )
    elif depth < 0:
        message = "the contributions overflowed to inf or NaN in the backward pass: no effective depth"
    else:
        message = f"effective depth {depth} (threshold {threshold:g})"
    return PathContributions(
        lambdas=np.arange(len(norms)),
        contribution_norms=norms,
        fraction=fraction,
        total_norm=total,
        effective_depth=depth,
        threshold=threshold,
        skip=check_choice("skip", skip, SKIPS),
        source=check_choice("source", source, SOURCES),
        label=net.config.label(),
        overflow_layer=overflow_layer,
        message=message,
    )
