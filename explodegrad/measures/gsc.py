"""The gradient scale coefficient (GSC): exploding gradients measured without being fooled by scale.

Layers are numbered from the output (Philipp, Song & Carbonell, 2018): f_0 is the vector of
per-example losses, f_1 the logits, f_L the first layer's output and f_{L+1} the input. On a
batch, f_k is the whole (batch x width) matrix and

    GSC(k, l) = ||J_l^k||_qm * ||f_k||_F / ||f_l||_F,   J_l^k = d f_l / d f_k  (k > l),

with ``||A||_qm = ||A||_F / sqrt(#columns)`` and #columns = numel(f_k). It is the ratio of
relative changes: nudge f_k by a small random relative amount and f_l moves GSC(k, l) times as
much, relatively (:func:`relative_perturbation_gain` checks this by brute force). Unlike a raw
gradient norm it does not change when a layer's output is rescaled. Gradients explode when
GSC(k, l) grows like c * r^(k - l) with r > 1; :func:`fit_explosion_rate` fits r.

Two ways to get ``||J_l^k||_F``:

* ``method="probe"``: for random v with E[v v^T] = I, E||J^T v||^2 = ||J||_F^2; ONE backward
  pass from f_l (all probes batched by vmap, plus one row for the raw mean-loss gradient)
  reaches every f_k at once.
* ``method="exact"``: the full Jacobian of each map f_k -> f_l, rebuilt from the network's own
  sub-functions (``net.forward_from``); for small networks and tests.

Batch norm is always measured the way the network trains: with the batch's statistics
(training mode), running averages left untouched and the modules' modes restored afterwards.

The GSC is always measured in the network's own dtype (float32 or float64) at full precision:
:func:`gsc_profile`, :func:`gsc_matrix` and :func:`relative_perturbation_gain` run inside
:func:`full_precision_matmuls`, so a TF32 setting chosen for a sweep (or anywhere else) never
reaches them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from explodegrad.core.checks import (
    check_choice,
    check_int,
    check_memory,
    check_numbers,
    check_positive,
    check_seed,
)
from explodegrad.core.jacobian import METHODS, PROBES, frobenius_sq_from_probes, jacobian_matrix, make_probes
from explodegrad.core.jsonable import to_jsonable
from explodegrad.core.nets import DeepMLP, per_example_loss
from explodegrad.core.trace import Trace, batch_statistics, check_batch_statistics_batch, prepare_batch, trace

#: Probes used when one probe is not exact (batch norm, a reference above the losses, Gaussian
#: probes). Measured with ``python benchmarks/bench_gsc.py --accuracy`` (relu, batch norm,
#: depth 50, width 100, batch 256; rms relative error of GSC(k, l) over all k): reference 0:
#: 1.2 % with 1 probe, 0.5 % with 4, 0.4 % with 16; reference 1 (logits): 3.6 %, 2.0 %, 1.3 %.
#: Each probe costs about one more backward pass: a profile with 4 probes takes ~2.6-2.9x a
#: training step's forward + backward on a CPU (16 probes: ~8.5x), so 4 is the default.
DEFAULT_NUM_PROBES = 4
#: Fewest points a rate fit uses (two points always fit a line exactly, so R^2 would say nothing).
MIN_FIT_POINTS = 3


@dataclass(frozen=True)
class ExplosionFit:
    """Least-squares fit of ``log GSC(k, l) = log c + (k - l) log r``.

    Attributes:
        rate: r, the growth of the GSC per layer (1 = no explosion); NaN when ``ok`` is False.
        intercept: c, the GSC extrapolated to k = l; NaN when ``ok`` is False.
        r_squared: coefficient of determination of the log-linear fit (1 for a perfect line).
        num_points: layers that entered the fit.
        ok: whether a fit could be made.
        message: a plain sentence: the result, or why there is none.
        fit_range: the first and last layer k of the fit window (inclusive).
    """

    rate: float
    intercept: float
    r_squared: float
    num_points: int
    ok: bool
    message: str
    fit_range: tuple[int, int] | None = None

    def predict(self, k: int | np.ndarray, reference: int = 0) -> float | np.ndarray:
        """The fitted GSC(k, reference), ``c * r^(k - reference)``."""
        return self.intercept * self.rate ** (np.asarray(k) - reference)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-safe dict (non-finite numbers become None)."""
        return {
            "rate": to_jsonable(float(self.rate)),
            "intercept": to_jsonable(float(self.intercept)),
            "r_squared": to_jsonable(float(self.r_squared)),
            "num_points": self.num_points,
            "ok": self.ok,
            "message": self.message,
            "fit_range": None if self.fit_range is None else list(self.fit_range),
        }


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not results
class GSCProfile:
    """GSC(k, reference) for every layer k above the reference, input included.

    Attributes:
        layers: k = reference + 1 ... L + 1 (L + 1 is the input), ascending.
        gsc: GSC(k, reference) for each k.
        reference: l, the layer the gradient flows to (0 = per-example losses, 1 = logits).
        method: ``"probe"`` or ``"exact"``.
        num_probes: probes per backward pass (None for the exact method).
        output_grad_norms: ||d mean-loss / d f_k||_F, the raw gradient a training step sees
            at each layer's output (NaN when no targets were given).
        weight_grad_norms: ||d mean-loss / d W||_F of the linear layer(s) producing f_k (all
            weights of a residual branch together; NaN for the input and without targets).
        fit: the fitted explosion rate (see :func:`fit_explosion_rate`).
        overflow_layer: where values or gradients first became inf/NaN (see
            :func:`gsc_profile`), or None.
        message: a plain sentence summarizing the result or the overflow.
        label: the network's label, e.g. ``relu/batch/he d50 w100``.
        value_norms: ||f_k||_F for each k.
        jacobian_qm_norms: ||J_reference^k||_qm for each k.
        reference_norm: ||f_reference||_F.
        probe: the probe distribution (``"rademacher"`` or ``"gaussian"``).
        probe_is_exact: True when the probe estimate equals the exact value (one Rademacher
            probe, reference 0, no batch coupling) or the exact method was used.
        batch_size: examples in the measured batch.
        residual: whether the network is a ResNet, whose addressable layers k between the
            readout and the input layer are its blocks: its rate is then per block (see
            :attr:`unit`).
    """

    layers: np.ndarray
    gsc: np.ndarray
    reference: int
    method: str
    num_probes: int | None
    output_grad_norms: np.ndarray
    weight_grad_norms: np.ndarray
    fit: ExplosionFit
    overflow_layer: int | None
    message: str
    label: str
    value_norms: np.ndarray
    jacobian_qm_norms: np.ndarray
    reference_norm: float
    probe: str
    probe_is_exact: bool
    batch_size: int
    residual: bool = False

    @property
    def unit(self) -> str:
        """What one step of k counts, and so what the rate is per: ``"block"`` in a ResNet,
        ``"layer"`` otherwise."""
        return "block" if self.residual else "layer"

    @property
    def num_layers(self) -> int:
        """L, the network's number of addressable layers."""
        return int(self.layers[-1]) - 1

    @property
    def rate(self) -> float:
        """The fitted explosion rate r per layer, per block in a ResNet (NaN when no fit could
        be made)."""
        return self.fit.rate

    @property
    def overflowed(self) -> bool:
        """Whether values or gradients became inf/NaN."""
        return self.overflow_layer is not None

    @property
    def input_gsc(self) -> float:
        """GSC(L + 1, reference): from the input to the reference."""
        return float(self.gsc[-1])

    @property
    def first_layer_gsc(self) -> float:
        """GSC(L, reference): from the first layer's output (the paper's headline number)."""
        return self.gsc_at(self.num_layers) if self.num_layers > self.reference else float("nan")

    def gsc_at(self, k: int) -> float:
        """GSC(k, reference) for one layer k."""
        k = check_int("k", k, int(self.layers[0]), int(self.layers[-1]))
        return float(self.gsc[k - int(self.layers[0])])

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-safe dict: arrays become lists, non-finite numbers None."""
        return {
            "label": self.label,
            "reference": self.reference,
            "method": self.method,
            "num_probes": self.num_probes,
            "probe": self.probe,
            "probe_is_exact": self.probe_is_exact,
            "batch_size": self.batch_size,
            "layers": [int(k) for k in self.layers],
            "gsc": to_jsonable(np.asarray(self.gsc, dtype=float)),
            "output_grad_norms": to_jsonable(np.asarray(self.output_grad_norms, dtype=float)),
            "weight_grad_norms": to_jsonable(np.asarray(self.weight_grad_norms, dtype=float)),
            "value_norms": to_jsonable(np.asarray(self.value_norms, dtype=float)),
            "jacobian_qm_norms": to_jsonable(np.asarray(self.jacobian_qm_norms, dtype=float)),
            "reference_norm": to_jsonable(float(self.reference_norm)),
            "fit": self.fit.to_dict(),
            "overflow_layer": self.overflow_layer,
            "message": self.message,
        }


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not results
class GSCMatrix:
    """GSC(k, l) for every pair of layers.

    Attributes:
        layers: the layers, ascending: 0 (when targets were given) or 1, up to L + 1 (input).
        gsc: ``gsc[i, j] = GSC(layers[i], layers[j])``; NaN where ``layers[i] <= layers[j]``.
        method: ``"probe"`` or ``"exact"``.
        num_probes: probes per backward pass (None for the exact method); when defaulted, the
            column l = 0 uses 1 where one probe is exact (see :func:`default_num_probes`).
        overflow_layer: where values or gradients first became inf/NaN (the first column
            that overflowed, as in :func:`gsc_profile`), or None.
        message: a plain sentence summarizing the result or the overflow.
        label: the network's label.
    """

    layers: np.ndarray
    gsc: np.ndarray
    method: str
    num_probes: int | None
    overflow_layer: int | None
    message: str
    label: str

    def at(self, k: int, l: int) -> float:  # noqa: E741 - the paper's name for the lower layer
        """GSC(k, l)."""
        low, high = int(self.layers[0]), int(self.layers[-1])
        k = check_int("k", k, low + 1, high)
        l = check_int("l", l, low, k - 1)  # noqa: E741
        return float(self.gsc[k - low, l - low])

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-safe dict: the table as nested lists, non-finite numbers None."""
        return {
            "label": self.label,
            "method": self.method,
            "num_probes": self.num_probes,
            "layers": [int(k) for k in self.layers],
            "gsc": to_jsonable(np.asarray(self.gsc, dtype=float)),
            "overflow_layer": self.overflow_layer,
            "message": self.message,
        }


# --------------------------------------------------------------------------- input checks


def _matmul_switches() -> dict[str, Any]:
    """torch's global matmul-precision switches that this module sets, as they are now.

    Recent torch (>= 2.9) keeps a per-backend string (``fp32_precision``: "none", "ieee",
    "tf32", "bf16"), which is restored exactly; older torch only the CUDA boolean.
    """
    cuda = torch.backends.cuda.matmul
    switches: dict[str, Any] = {}
    # readable when set through the generic API ("highest", "high", "medium"); after per-backend
    # settings through the new API the generic getter refuses, and only those are restored
    with suppress(RuntimeError):
        switches["generic"] = torch.get_float32_matmul_precision()
    if not hasattr(cuda, "fp32_precision"):
        switches["cuda.allow_tf32"] = cuda.allow_tf32
        return switches
    switches["cuda.fp32_precision"] = cuda.fp32_precision
    mkldnn = getattr(getattr(torch.backends, "mkldnn", None), "matmul", None)
    if mkldnn is not None and hasattr(mkldnn, "fp32_precision"):
        switches["mkldnn.fp32_precision"] = mkldnn.fp32_precision
    return switches


def _restore_matmul_switches(switches: dict[str, Any]) -> None:
    _restore_backend_switches(switches)
    generic = switches.get("generic")
    if generic is None:
        return
    try:
        readable = torch.get_float32_matmul_precision() == generic
    except RuntimeError:
        readable = False
    if not readable:
        # e.g. "medium" (CUDA in TF32, the CPU's oneDNN in bf16): written back per backend, it
        # leaves the generic getter raising ("a mix of the legacy and new APIs"); one generic
        # call puts every backend back and keeps it readable
        torch.set_float32_matmul_precision(generic)


def _restore_backend_switches(switches: dict[str, Any]) -> None:
    cuda = torch.backends.cuda.matmul
    if "cuda.allow_tf32" in switches:
        cuda.allow_tf32 = switches["cuda.allow_tf32"]
    if "cuda.fp32_precision" in switches:
        # through the legacy switch where it says the same: writing the string "tf32" back would
        # leave torch's legacy and generic getters raising ("a mix of the legacy and new APIs")
        before = switches["cuda.fp32_precision"]
        cuda.allow_tf32 = before == "tf32"
        if before not in ("tf32", "ieee"):
            cuda.fp32_precision = before
    mkldnn = switches.get("mkldnn.fp32_precision")
    if mkldnn is not None and torch.backends.mkldnn.matmul.fp32_precision != mkldnn:
        torch.backends.mkldnn.matmul.fp32_precision = mkldnn


@contextmanager
def tf32_matmuls(enabled: bool) -> Iterator[None]:
    """Run a block with CUDA's float32 matrix products in TF32 (``enabled``) or in full float32.

    Sets ``torch.backends.cuda.matmul.allow_tf32`` (which ``torch.get_float32_matmul_precision()``
    then reports as "high" or "highest") and restores torch's previous switches afterwards, also
    when the block raises. Only CUDA's switch changes: CPU matrix products are untouched (and so
    is cuDNN's switch, which only convolutions and recurrent layers read).
    """
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled={enabled!r} is not allowed: enabled must be True or False")
    previous = _matmul_switches()
    try:
        torch.backends.cuda.matmul.allow_tf32 = enabled
        yield
    finally:
        _restore_matmul_switches(previous)


@contextmanager
def full_precision_matmuls() -> Iterator[None]:
    """Run a block with every float32 matrix product at full precision (no TF32, no bf16).

    CUDA's TF32 switch off, and on torch versions that have it, the CPU (oneDNN) matmul
    precision at "ieee"; torch's previous switches come back afterwards, also on error. The
    GSC measurements run inside it.
    """
    previous = _matmul_switches()
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        if "mkldnn.fp32_precision" in previous:
            torch.backends.mkldnn.matmul.fp32_precision = "ieee"
        yield
    finally:
        _restore_matmul_switches(previous)


def at_full_precision(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` run inside :func:`full_precision_matmuls`: the GSC and every measure of the
    network's function (domain, paths, dilution, Taylor) are never taken in TF32 or bf16."""

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        with full_precision_matmuls():
            return function(*args, **kwargs)

    return guarded


def _prepare(net: Any, inputs: Any, targets: Any) -> tuple[Tensor, Tensor | None]:
    """Validate the network, the batch and the labels; put the batch on the network's device/dtype."""
    x, y = prepare_batch(net, inputs, targets)
    check_batch_statistics_batch(net, x, "the GSC")
    return x, y


def _check_reference(
    reference: Any, num_layers: int, targets: Tensor | None, argument: str = "reference"
) -> int:
    reference = check_int(argument, reference, 0, num_layers)
    if reference == 0 and targets is None:
        raise ValueError(
            f"targets: {argument}=0 (the per-example losses f_0) needs targets; pass the class "
            f"labels, or use {argument}=1 (the logits)"
        )
    return reference


def has_batch_coupling(net: nn.Module) -> bool:
    """Whether one example's output depends on the others' (batch norm measured on the batch)."""
    if not isinstance(net, nn.Module):
        raise TypeError(f"net: expected a torch module (e.g. from build_mlp), got {type(net).__name__}")
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


def default_num_probes(net: nn.Module, reference: int, probe: str = "rademacher") -> int:
    """Probes :func:`gsc_profile` uses when not told: 1 where one probe is exact, else a few.

    One Rademacher probe is exact for reference 0 without batch coupling: the Jacobian of the
    per-example losses is block diagonal with one-row blocks g_i (example i's loss only sees
    example i), so ``||J^T v||^2 = sum_i v_i^2 ||g_i||^2 = ||J||_F^2`` whenever every v_i = +-1.
    Otherwise :data:`DEFAULT_NUM_PROBES`.
    """
    reference = check_int("reference", reference, 0)
    probe = check_choice("probe", probe, PROBES)
    exact = reference == 0 and probe == "rademacher" and not has_batch_coupling(net)
    return 1 if exact else DEFAULT_NUM_PROBES


# --------------------------------------------------------------------------- the measurements


def _layer_map(net: DeepMLP, k: int, l: int, targets: Tensor | None) -> Callable[[Tensor], Tensor]:  # noqa: E741
    """The map f_k -> f_l made of the network's own layers (plus the loss for l = 0)."""

    def forward(f_k: Tensor) -> Tensor:
        h = f_k if k == 1 else net.forward_from(k, f_k, to=max(l, 1))
        return per_example_loss(h, targets) if l == 0 else h

    return forward


def _norms(tensors: Sequence[Tensor]) -> np.ndarray:
    """Frobenius norms as float64 numbers, with one device sync.

    Computed in the tensors' own precision first (fast); any norm outside [1e-18, 1e18], where
    float32 squares could overflow or underflow, is recomputed in float64.
    """
    if not tensors:
        return np.zeros(0)
    # .double() before .numpy(): numpy has no bfloat16 (a half-precision norm that overflowed
    # is inf, outside the range, so recomputed below)
    norms = torch.stack([torch.linalg.vector_norm(t.detach()) for t in tensors]).double().cpu().numpy()
    for i in np.flatnonzero(~((norms > 1e-18) & (norms < 1e18))):
        norms[i] = float(torch.linalg.vector_norm(tensors[i].detach(), dtype=torch.float64))
    return norms


@contextmanager
def _record_linear_maps(net: nn.Module) -> Iterator[dict[nn.Module, tuple[Tensor, Tensor]]]:
    """Record every linear map's input and output (in the graph) while the block runs."""
    records: dict[nn.Module, tuple[Tensor, Tensor]] = {}

    def hook(module: nn.Module, args: tuple[Tensor, ...], output: Tensor) -> None:
        records[module] = (args[0], output)

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Linear)]
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()


@dataclass(frozen=True)
class _Backward:
    """What the backward pass of a profile found: squared Jacobian norms and raw gradient norms."""

    frobenius_sq: np.ndarray
    output_grad_norms: np.ndarray
    weight_grad_norms: np.ndarray


def _profile_backward(
    net: DeepMLP,
    forward_trace: Trace,
    records: dict[nn.Module, tuple[Tensor, Tensor]],
    reference: int,
    layers: Sequence[int],
    probes: Tensor | None,
    probes_exact: bool,
) -> _Backward:
    """ONE batched backward pass from f_reference for the probes and the mean-loss gradient.

    The rows sent back are the probes and, when targets were given, d mean-loss / d f_reference,
    so the raw gradients come from the same pass. When one Rademacher probe v is exact
    (``probes_exact``: reference 0, no batch coupling) the mean-loss row is not even needed:
    row i of J^T v is v_i times example i's own loss gradient, so the mean-loss gradient is
    ``v_i * (J^T v)_i / batch``. Weight gradients follow from the recorded linear maps as
    ``grad(output)^T @ input``.
    """
    f_ref = forward_trace.f(reference)
    batch = f_ref.shape[0]
    num_probes = 0 if probes is None else probes.shape[0]
    want_raw = forward_trace.losses is not None
    outputs = [forward_trace.f(k) for k in layers]
    groups = [
        [m for m in net.layer(k).modules() if isinstance(m, nn.Linear)] if k <= net.num_layers else []
        for k in layers
    ]
    linears = [m for group in groups for m in group] if want_raw else []
    rows = [] if probes is None else [probes]
    recover = want_raw and probes_exact and num_probes == 1
    if want_raw and not recover:
        if reference == 0:
            mean_row = torch.full_like(f_ref, 1.0 / batch)
        else:
            (mean_row,) = torch.autograd.grad(forward_trace.losses.mean(), f_ref, retain_graph=True)
        rows.append(mean_row.unsqueeze(0))
    nan = np.full(len(layers), np.nan)
    if not rows:  # the exact method without targets: nothing to send back
        return _Backward(np.zeros(0), nan, nan.copy())
    grad_outputs = torch.cat(rows)
    wanted = outputs + [records[m][1] for m in linears]
    if len(grad_outputs) == 1:  # a plain backward pass is cheaper than a vmapped one of one row
        grads = torch.autograd.grad(f_ref, wanted, grad_outputs=grad_outputs[0], allow_unused=True)
        grads = [None if g is None else g.unsqueeze(0) for g in grads]
    else:
        grads = torch.autograd.grad(
            f_ref, wanted, grad_outputs=grad_outputs, is_grads_batched=True, allow_unused=True
        )
    grads = [
        torch.zeros((len(grad_outputs), *t.shape), dtype=t.dtype, device=t.device) if g is None else g
        for g, t in zip(grads, wanted)
    ]
    to_measure = [g[i] for g in grads[: len(outputs)] for i in range(num_probes)]
    if want_raw and not recover:
        to_measure += [g[num_probes] for g in grads[: len(outputs)]]
    scale = 1.0 / batch if recover else 1.0
    for module, grad in zip(linears, grads[len(outputs) :]):
        grad_out = grad[0] * probes[0].reshape(-1, *([1] * (grad.ndim - 2))) if recover else grad[num_probes]
        inp = records[module][0].detach()
        to_measure.append(grad_out.reshape(-1, grad_out.shape[-1]).T @ inp.reshape(-1, inp.shape[-1]))
    norms = _norms(to_measure)
    count = len(outputs) * num_probes
    frobenius_sq = (norms[:count].reshape(len(outputs), num_probes) ** 2).mean(1) if num_probes else norms[:0]
    if not want_raw:
        return _Backward(frobenius_sq, nan, nan.copy())
    if recover:  # the sign flips of the rows leave the norm alone
        output_norms = np.sqrt(frobenius_sq) * scale
    else:
        output_norms, count = norms[count : count + len(outputs)], count + len(outputs)
    linear_norms = iter(norms[count:] * scale)
    weight_norms = nan.copy()
    for i, group in enumerate(groups):
        if group:
            weight_norms[i] = math.sqrt(sum(float(next(linear_norms)) ** 2 for _ in group))
    return _Backward(frobenius_sq, output_norms, weight_norms)


def _probe_frobenius_sq(
    forward_trace: Trace,
    reference: int,
    layers: Sequence[int],
    num_probes: int,
    probe: str,
    seed: int,
    retain_graph: bool = False,
) -> np.ndarray:
    """||J_reference^k||_F^2 for every k in ``layers`` from ONE batched backward pass."""
    f_ref = forward_trace.f(reference)
    probes = make_probes(tuple(f_ref.shape), num_probes, probe, seed, f_ref.dtype, f_ref.device)
    squares = frobenius_sq_from_probes(
        f_ref, [forward_trace.f(k) for k in layers], probes, retain_graph=retain_graph
    )
    return torch.stack(squares).cpu().numpy()


def _exact_frobenius_sq(
    net: DeepMLP, forward_trace: Trace, reference: int, layers: Sequence[int], targets: Tensor | None
) -> np.ndarray:
    """||J_reference^k||_F^2 from full Jacobians of the sub-networks (small problems only; one
    that would not fit in the machine's memory is refused before it is built)."""
    values = forward_trace.detached()
    rows = values.f(reference).numel()
    columns = max(values.f(k).numel() for k in layers)
    check_memory(
        "method='exact'",
        f"the largest full Jacobian ({rows:,} x {columns:,} entries; method='probe' needs none)",
        rows * columns * (values.f(reference).element_size() + 8),  # the Jacobian and its float64 copy
    )
    squares = []
    for k in layers:
        jac = jacobian_matrix(_layer_map(net, k, reference, targets), values.f(k))
        squares.append(float(jac.double().pow(2).sum()))
    return np.array(squares)


def _overflow(
    layers: Sequence[int],
    value_layers: Sequence[int],
    value_norms: np.ndarray,
    gradient_squares: np.ndarray,
    output_grad_norms: np.ndarray,
) -> tuple[int | None, str]:
    """Where the computation first went non-finite, in the order it was computed, and a sentence.

    Forward values overflow from the input side: the layer reported is the one nearest the input
    whose output is not finite. Gradients overflow from the output side: the layer reported is
    the one nearest the output whose gradient is not finite.
    """
    bad_values = [(k, n) for k, n in zip(value_layers, value_norms) if not np.isfinite(n)]
    if bad_values:
        k, norm = max(bad_values)
        how = "overflowed to inf" if np.isinf(norm) else "became NaN"
        return int(k), (
            f"the forward values {how} at layer {k} (counted from the output); the "
            "GSC values that depend on them are not finite"
        )
    raw = output_grad_norms if len(output_grad_norms) else np.zeros(len(layers))
    for k, square, raw_norm in zip(layers, gradient_squares, raw):
        if not (np.isfinite(square) and np.isfinite(raw_norm)):
            bad = square if not np.isfinite(square) else raw_norm
            how = "overflowed to inf" if np.isinf(bad) else "became NaN"
            return int(k), (
                f"gradient {how} at layer {k} (counted from the output); the GSC is "
                f"not available from layer {k} down to the input"
            )
    return None, ""


@at_full_precision
def gsc_profile(
    net: DeepMLP,
    inputs: Tensor,
    targets: Tensor | None = None,
    *,
    reference: int = 0,
    method: str = "probe",
    num_probes: int | None = None,
    probe: str = "rademacher",
    seed: int = 0,
    fit_range: tuple[int, int] | None = None,
) -> GSCProfile:
    """GSC(k, reference) for every k = reference + 1 ... L + 1, input included, on one batch.

    The last entry, k = L + 1, is the input (GSC from the raw features). Beside the GSC the
    profile holds the raw gradient norms of the mean loss at every layer, which grow or shrink
    with the scale of the layers' outputs and so mislead on their own.

    Args:
        net: a network from :func:`explodegrad.build_mlp`; measured with batch statistics,
            left unchanged.
        inputs: a (batch x in_features) batch.
        targets: class labels; needed for reference 0 and for the raw gradient norms.
        reference: l, where the gradient flows to: 0 = per-example losses, 1 = logits, up to L.
        method: ``"probe"`` (one batched backward pass for all layers) or ``"exact"`` (full
            Jacobians; small networks only).
        num_probes: probes for ``"probe"``; default :func:`default_num_probes`: 1 (exact) for
            reference 0 without batch norm, :data:`DEFAULT_NUM_PROBES` otherwise.
        probe: ``"rademacher"`` (+-1 entries) or ``"gaussian"``.
        seed: seed of the probes.
        fit_range: layers (first, last) for the rate fit; default see :func:`fit_explosion_rate`.

    Returns:
        A :class:`GSCProfile`. Overflow is a result, not an error: when values or gradients
        become inf/NaN, ``overflow_layer`` is the layer where it happened first in the order
        of computation (forward values: the one nearest the input; gradients: the one nearest
        the output), ``message`` says so and the fit reports that it could not be made.

    Raises:
        ValueError: for a bad network, batch, labels, reference, method, probe or num_probes.
    """
    method = check_choice("method", method, METHODS)
    probe = check_choice("probe", probe, PROBES)
    seed = check_seed("seed", seed)
    x, y = _prepare(net, inputs, targets)
    num_layers = net.num_layers
    reference = _check_reference(reference, num_layers, y)
    if fit_range is not None:  # refused before measuring, not after
        _check_fit_range(fit_range, reference, num_layers)
    if method == "exact":
        _refuse_probes_for_exact(num_probes)
        probes_used = None
    else:
        probes_used = (
            default_num_probes(net, reference, probe)
            if num_probes is None
            else check_int("num_probes", num_probes, 1)
        )
    layers = list(range(reference + 1, num_layers + 2))
    is_exact = method == "exact" or (
        probes_used == 1 and probe == "rademacher" and reference == 0 and not has_batch_coupling(net)
    )
    with batch_statistics(net):
        with _record_linear_maps(net) as records:
            forward_trace = trace(net, x, y, keep_graph=True)
        value_norms = _norms([forward_trace.f(k) for k in range(reference, num_layers + 2)])
        probes = None
        if method == "probe":
            f_ref = forward_trace.f(reference)
            probes = make_probes(tuple(f_ref.shape), probes_used, probe, seed, f_ref.dtype, f_ref.device)
        backward = _profile_backward(net, forward_trace, records, reference, layers, probes, is_exact)
        squares = (
            backward.frobenius_sq
            if method == "probe"
            else _exact_frobenius_sq(net, forward_trace, reference, layers, y)
        )
    output_grads, weight_grads = backward.output_grad_norms, backward.weight_grad_norms
    numels = np.array([forward_trace.f(k).numel() for k in layers], dtype=float)
    with np.errstate(all="ignore"):
        jacobian_qm = np.sqrt(squares / numels)
        gsc = jacobian_qm * value_norms[1:] / value_norms[0]
    overflow_layer, overflow_message = _overflow(
        layers,
        list(range(reference, num_layers + 2)),
        value_norms,
        squares,
        output_grads if y is not None else np.zeros(0),
    )
    fit = fit_explosion_rate(
        layers,
        gsc,
        reference,
        fit_range=fit_range,
        num_layers=num_layers,
        unit="block" if net.config.residual else "layer",
    )
    message = overflow_message + ("; " if overflow_message else "") + fit.message
    return GSCProfile(
        layers=np.array(layers),
        gsc=gsc,
        reference=reference,
        method=method,
        num_probes=probes_used,
        output_grad_norms=output_grads,
        weight_grad_norms=weight_grads,
        fit=fit,
        overflow_layer=overflow_layer,
        message=message,
        label=net.config.label(),
        value_norms=value_norms[1:],
        jacobian_qm_norms=jacobian_qm,
        reference_norm=float(value_norms[0]),
        probe=probe,
        probe_is_exact=is_exact,
        batch_size=int(x.shape[0]),
        residual=bool(net.config.residual),
    )


@at_full_precision
def gsc_matrix(
    net: DeepMLP,
    inputs: Tensor,
    targets: Tensor | None = None,
    *,
    method: str = "exact",
    num_probes: int | None = None,
    probe: str = "rademacher",
    seed: int = 0,
) -> GSCMatrix:
    """The whole table GSC(k, l) for all layers k > l, from 0 (with targets) or 1 up to L + 1.

    With ``method="probe"`` each column l costs one batched backward pass from f_l (the graph
    of one forward pass is reused). Arguments as in :func:`gsc_profile`; ``num_probes``
    defaults per column (:func:`default_num_probes`).
    """
    method = check_choice("method", method, METHODS)
    if method == "exact":
        _refuse_probes_for_exact(num_probes)
    probe = check_choice("probe", probe, PROBES)
    seed = check_seed("seed", seed)
    if num_probes is not None:
        num_probes = check_int("num_probes", num_probes, 1)
    x, y = _prepare(net, inputs, targets)
    num_layers = net.num_layers
    lowest = 0 if y is not None else 1
    all_layers = list(range(lowest, num_layers + 2))
    table = np.full((len(all_layers), len(all_layers)), np.nan)
    overflow_layer, overflow_message = None, ""
    with batch_statistics(net):
        forward_trace = trace(net, x, y, keep_graph=True)
        value_norms = _norms([forward_trace.f(k) for k in all_layers])
        for j, l in enumerate(all_layers[:-1]):  # noqa: E741
            above = all_layers[j + 1 :]
            if method == "probe":
                count = default_num_probes(net, l, probe) if num_probes is None else num_probes
                squares = _probe_frobenius_sq(forward_trace, l, above, count, probe, seed, retain_graph=True)
            else:
                squares = _exact_frobenius_sq(net, forward_trace, l, above, y)
            numels = np.array([forward_trace.f(k).numel() for k in above], dtype=float)
            with np.errstate(all="ignore"):
                table[j + 1 :, j] = np.sqrt(squares / numels) * value_norms[j + 1 :] / value_norms[j]
            if overflow_layer is None:
                overflow_layer, overflow_message = _overflow(
                    above, all_layers[j:], value_norms[j:], squares, np.zeros(0)
                )
    probes_reported = (
        None if method == "exact" else (num_probes if num_probes is not None else DEFAULT_NUM_PROBES)
    )
    finite = int(np.isfinite(table).sum())
    pairs = len(all_layers) * (len(all_layers) - 1) // 2
    message = overflow_message or f"GSC(k, l) for {pairs} pairs of layers {lowest}..{num_layers + 1}"
    if finite < pairs:
        message += f" ({pairs - finite} of {pairs} entries are not finite)"
    return GSCMatrix(
        layers=np.array(all_layers),
        gsc=table,
        method=method,
        num_probes=probes_reported,
        overflow_layer=overflow_layer,
        message=message,
        label=net.config.label(),
    )


# --------------------------------------------------------------------------- the rate fit


def log_linear_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """The one log-linear least-squares fit: ``log y = log c + slope * x``.

    Args:
        x: positions (layers, time steps), at least two distinct ones.
        y: finite positive values, one per position.

    Returns:
        ``(slope, log_c, r_squared)``; R^2 is 1 when the values are all equal.
    """
    x = check_numbers("x", x)
    y = check_numbers("y", y)
    if x.ndim != 1 or x.shape != y.shape or np.unique(x).size < 2:
        raise ValueError(
            f"x, y: expected two 1-d sequences of equal length with at least two distinct x, got "
            f"shapes {x.shape} and {y.shape}"
        )
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.all(y > 0)):
        raise ValueError("y: a log-linear fit needs finite x and finite positive y")
    log_y = np.log(y)
    slope, log_c = np.polyfit(x, log_y, 1)
    residual = log_y - (log_c + slope * x)
    total = float(((log_y - log_y.mean()) ** 2).sum())
    r_squared = 1.0 if total <= 1e-24 else 1.0 - float((residual**2).sum()) / total
    return float(slope), float(log_c), r_squared


def growth_factor(steps: np.ndarray, values: np.ndarray) -> float:
    """Fitted factor per step: exp of the slope of :func:`log_linear_fit` of values against steps.

    Only finite positive values enter the fit (overflowed or vanished entries are skipped);
    NaN when fewer than two remain.
    """
    steps = check_numbers("steps", steps)
    values = check_numbers("values", values)
    if steps.ndim != 1 or steps.shape != values.shape:
        raise ValueError(
            f"steps, values: expected two 1-d sequences of equal length, got shapes {steps.shape} "
            f"and {values.shape}"
        )
    usable = np.isfinite(values) & (values > 0)
    if usable.sum() < 2:
        return float("nan")
    slope, _, _ = log_linear_fit(steps[usable], values[usable])
    return float(np.exp(slope))


def _refuse_probes_for_exact(num_probes: Any) -> None:
    """A probe count given with the exact method would be ignored: say so instead."""
    if num_probes is not None:
        raise ValueError(
            f"num_probes={num_probes!r} is not allowed with method='exact': the exact method builds "
            "the full Jacobians and uses no probes (leave num_probes out, or use method='probe')"
        )


def _check_fit_range(fit_range: Any, reference: int, num_layers: int | None = None) -> tuple[int, int]:
    """(first, last) if ``fit_range`` is a pair of layers with reference < first <= last
    (<= L + 1, the input, when ``num_layers`` = L is given)."""
    if not isinstance(fit_range, (tuple, list)) or len(fit_range) != 2:
        raise TypeError(
            f"fit_range={fit_range!r} is not allowed: fit_range must be a pair (first, last) of layers"
        )
    first = check_int("fit_range", fit_range[0], reference + 1)
    last = check_int("fit_range", fit_range[1], 0)
    if last < first:
        raise ValueError(
            f"fit_range={tuple(fit_range)!r} is not allowed: the last layer must not lie below the first"
        )
    if num_layers is not None and last > num_layers + 1:
        raise ValueError(
            f"fit_range={tuple(fit_range)!r} is not allowed: the network's layers k run up to "
            f"L + 1 = {num_layers + 1} (the input)"
        )
    return first, last


def fit_explosion_rate(
    layers: Sequence[int] | np.ndarray,
    gsc: Sequence[float] | np.ndarray,
    reference: int = 0,
    fit_range: tuple[int, int] | None = None,
    num_layers: int | None = None,
    unit: str = "layer",
) -> ExplosionFit:
    """Fit ``log GSC(k, l) = log c + (k - l) log r`` by least squares.

    Which layers enter (default): k from max(reference + 1, 2) through L. Left out are the
    input k = L + 1 (the first layer maps raw features of another size and scale) and, for
    reference 0, k = 1 (the loss alone, no layer). The readout, the loss and the first layer
    then act only as constant factors, which the intercept absorbs, and the rate r is the
    geometric-mean GSC of the hidden layers.

    Args:
        layers: the k of each GSC value (as in :attr:`GSCProfile.layers`).
        gsc: GSC(k, reference) for each k.
        reference: l.
        fit_range: (first, last) layer k of the window, inclusive, overriding the default.
        num_layers: L; default ``max(layers) - 1`` (layers running up to the input).
        unit: what one step of k is, named in the message: ``"layer"``, or ``"block"`` for a
            ResNet (its k between the readout and the input layer count blocks).

    Returns:
        An :class:`ExplosionFit`; ``ok`` is False (with a message saying why) when a GSC in the
        window is not finite or not positive, or fewer than :data:`MIN_FIT_POINTS` layers remain.
    """
    ks = check_numbers("layers", layers, integers=True)
    values = check_numbers("gsc", gsc)
    if ks.ndim != 1 or values.ndim != 1 or ks.shape != values.shape or ks.size == 0:
        raise ValueError(
            f"layers, gsc: expected two non-empty 1-d sequences of equal length, got shapes "
            f"{ks.shape} and {values.shape}"
        )
    reference = check_int("reference", reference, 0)
    unit = check_choice("unit", unit, ("layer", "block"))
    if ks.min() <= reference:
        raise ValueError(f"layers: every layer must lie above reference={reference}, got {int(ks.min())}")
    num_layers = int(ks.max()) - 1 if num_layers is None else check_int("num_layers", num_layers, 1)
    if fit_range is None:
        first, last = max(reference + 1, 2), num_layers
    else:
        first, last = _check_fit_range(fit_range, reference, num_layers)
    window = (ks >= first) & (ks <= last)
    window_range = (first, last)
    x, y = ks[window] - reference, values[window]
    nan = float("nan")
    if x.size < MIN_FIT_POINTS:
        return ExplosionFit(
            nan,
            nan,
            nan,
            int(x.size),
            False,
            f"no rate fitted: only {x.size} layer(s) in k = {first}..{last}, "
            f"a fit needs at least {MIN_FIT_POINTS}",
            window_range,
        )
    bad = ~np.isfinite(y) | (y <= 0)
    if bad.any():
        where = ", ".join(str(int(k)) for k in (x[bad] + reference)[:5])
        return ExplosionFit(
            nan,
            nan,
            nan,
            int(x.size),
            False,
            f"no rate fitted: the GSC is not finite and positive at layer(s) {where}",
            window_range,
        )
    slope, log_c, r_squared = log_linear_fit(x, y)
    rate = math.exp(slope)
    intercept = math.exp(log_c) if log_c < 700 else float("inf")
    return ExplosionFit(
        rate,
        intercept,
        r_squared,
        int(x.size),
        True,
        f"explosion rate r = {rate:.4g} per {unit} (k = {first}..{last}, "
        f"{x.size} points, R^2 = {r_squared:.3f})",
        window_range,
    )


# --------------------------------------------------------------------------- the meaning check


@at_full_precision
def relative_perturbation_gain(
    net: DeepMLP,
    inputs: Tensor,
    targets: Tensor | None,
    k: int,
    l: int = 0,  # noqa: E741
    epsilon: float = 1e-3,
    seed: int = 0,
) -> float:
    """How much relatively f_l moves when f_k is nudged, per unit of relative nudge.

    f_k is moved by a uniformly random direction of Frobenius size ``epsilon * ||f_k||``, the
    layers above are rerun, and the result is ``(||f_l' - f_l|| / ||f_l||) / epsilon``. For
    small epsilon its mean square over directions is exactly GSC(k, l)^2 (a uniform unit
    direction u has E||J u||^2 = ||J||_F^2 / n), so it is the GSC seen by brute force. Returns
    NaN when a value is not finite.
    """
    x, y = _prepare(net, inputs, targets)
    num_layers = net.num_layers
    k = check_int("k", k, 1, num_layers + 1)
    l = _check_reference(l, num_layers, y, argument="l")  # noqa: E741
    if k <= l:
        raise ValueError(f"k={k} is not allowed: k must be above l={l}")
    epsilon = check_positive("epsilon", epsilon)
    seed = check_seed("seed", seed)
    with batch_statistics(net), torch.no_grad():
        f_k = trace(net, x, y).f(k)
        direction = torch.randn(
            f_k.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
        ).to(device=f_k.device, dtype=f_k.dtype)
        nudge = direction * (epsilon * f_k.double().norm() / direction.double().norm()).to(f_k.dtype)
        forward = _layer_map(net, k, l, y)
        base, moved = forward(f_k), forward(f_k + nudge)
        gain = float((moved - base).double().norm() / base.double().norm()) / epsilon
    return gain if math.isfinite(gain) else float("nan")
