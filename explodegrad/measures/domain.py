"""The collapsing domain: how much of its nonlinearity each layer actually uses.

A nonlinearity only bends what it is fed. When a layer's pre-activations barely spread over
the batch, or never change sign (ReLU), or stay in a region where the activation is nearly
straight (tanh near 0), the layer acts almost linearly on the data it sees: the network is
"pseudo-linear" there, whatever its depth. Measured per hidden layer k = 2 ... L (the readout,
k = 1, has no nonlinearity) from the recorded pre-activations (``trace(...).preactivation(k)``):

* pre-activation standard deviation: each neuron's std over the batch (population std, the
  spread of this batch itself), averaged over neurons; also divided by the layer's
  pre-activation RMS, ``sqrt(mean of all squared entries)``. The relative value lies in
  [0, 1]: 0 = every example gets the same pre-activation, 1 = centred neurons of equal spread.
* sign diversity: per neuron ``min(P, N) / (P + N)`` with P, N the numbers of positive and
  negative pre-activations in the batch (exact zeros count as neither; a neuron with no
  non-zero value has diversity 0); averaged over neurons. 0.5 = half and half, 0 = one sign.
* linear fit error (pseudo-linearity), an OPERATIONAL CHOICE made here: per neuron, fit its
  activation output by the best affine function of its pre-activation over the batch (least
  squares); the score is ``1 - R^2``, averaged over neurons. 0 means the layer acts exactly
  affinely on the domain it sees (a ReLU neuron that never changes sign, a tanh neuron fed
  nearly identical values); a ReLU neuron fed a symmetric uniform spread scores 0.2. Neurons
  whose pre-activation or output has (near) zero variance (below 1e-10 times its mean square)
  count as linear (0).

For residual blocks the recorded pre-activation is that of the branch's first layer, and its
nonlinearity is ``unit.branch[0].activation``; for plain layers it is ``unit.activation``.
Batch norm is measured with the batch's statistics (training mode), running averages untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from explodegrad.core.checks import check_bool, check_choice, check_numbers
from explodegrad.core.config import ACTIVATIONS
from explodegrad.core.nets import DeepMLP, make_activation
from explodegrad.core.trace import check_batch_statistics_batch, prepare_batch, trace
from explodegrad.measures.gsc import at_full_precision

#: A variance below this fraction of the mean square counts as zero (a constant neuron).
RELATIVE_VARIANCE_FLOOR = 1e-10


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not results
class DomainStats:
    """Per-layer statistics of the domain each hidden layer's nonlinearity sees.

    Attributes:
        layers: the hidden layers k = 2 ... L (paper numbering, k = 2 nearest the output),
            ascending.
        preact_std: mean over neurons of each neuron's pre-activation std over the batch.
        preact_std_relative: ``preact_std`` divided by the layer's pre-activation RMS.
        sign_diversity: mean over neurons of ``min(P, N) / (P + N)``.
        linear_fit_error: mean over neurons of ``1 - R^2`` of the best affine fit of the
            activation output from the pre-activation (0 = acts linearly on this batch).
        label: the network's label.
        batch_size: examples in the measured batch.
    """

    layers: np.ndarray
    preact_std: np.ndarray
    preact_std_relative: np.ndarray
    sign_diversity: np.ndarray
    linear_fit_error: np.ndarray
    label: str
    batch_size: int

    def at(self, k: int) -> dict[str, float]:
        """The four numbers of one layer k."""
        where = np.flatnonzero(self.layers == k)
        if where.size == 0:
            raise ValueError(
                f"k={k!r} is not allowed: k must be one of the hidden layers {self.layers.tolist()}"
            )
        i = int(where[0])
        return {
            "preact_std": float(self.preact_std[i]),
            "preact_std_relative": float(self.preact_std_relative[i]),
            "sign_diversity": float(self.sign_diversity[i]),
            "linear_fit_error": float(self.linear_fit_error[i]),
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-safe dict: arrays become lists, non-finite numbers None."""

        def listed(values: np.ndarray) -> list[float | None]:
            return [float(v) if np.isfinite(v) else None for v in values]

        return {
            "label": self.label,
            "batch_size": self.batch_size,
            "layers": [int(k) for k in self.layers],
            "preact_std": listed(self.preact_std),
            "preact_std_relative": listed(self.preact_std_relative),
            "sign_diversity": listed(self.sign_diversity),
            "linear_fit_error": listed(self.linear_fit_error),
        }


def _as_preactivations(preacts: Any) -> Tensor:
    """A (batch x neurons) float64 matrix; a 1-d input is one neuron."""
    if isinstance(preacts, (np.ndarray, list, tuple)):
        preacts = torch.from_numpy(check_numbers("preacts", preacts))
    if not isinstance(preacts, Tensor):
        raise TypeError(
            f"preacts: expected a (batch x neurons) tensor of real numbers, got {type(preacts).__name__}"
        )
    values = preacts
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] == 0:
        raise ValueError(
            f"preacts: expected a non-empty (batch x neurons) matrix, got shape {tuple(values.shape)}"
        )
    if values.dtype.is_complex or values.dtype == torch.bool:
        raise TypeError(f"preacts: expected real numbers, got dtype {values.dtype}")
    values = values.detach().to(torch.float64)
    finite = torch.isfinite(values)
    if not bool(finite.all()):
        row = int(torch.nonzero(~finite.all(dim=1))[0, 0])
        raise ValueError(
            f"preacts: row {row} holds a value that is not a finite number; the statistics need "
            "finite pre-activations (an overflowed layer has none to measure)"
        )
    return values


def _neuron_std(values: Tensor) -> Tensor:
    return values.std(dim=0, correction=0)


def neuron_sign_diversity(preacts: Any) -> np.ndarray:
    """Per neuron ``min(P, N) / (P + N)`` over the batch (zeros count as neither; none -> 0)."""
    values = _as_preactivations(preacts)
    return _sign_diversity(values).cpu().numpy()


def _sign_diversity(values: Tensor) -> Tensor:
    """Per neuron; NaN for a neuron with a non-finite pre-activation (an overflowed layer must not
    read as a collapsed one), 0 for one whose pre-activations are all exactly zero."""
    positive = (values > 0).sum(0).double()
    negative = (values < 0).sum(0).double()
    total = positive + negative
    diversity = torch.where(total > 0, torch.minimum(positive, negative) / total.clamp_min(1), 0.0)
    return torch.where(torch.isfinite(values).all(0), diversity, float("nan"))


def sign_diversity(preacts: Any) -> float:
    """Mean over neurons of the sign diversity of a (batch x neurons) pre-activation matrix."""
    return float(_sign_diversity(_as_preactivations(preacts)).mean())


def preactivation_std(preacts: Any, relative: bool = False) -> float:
    """Mean over neurons of each neuron's std over the batch (population std).

    Args:
        preacts: a (batch x neurons) matrix (a 1-d tensor is one neuron).
        relative: divide by the RMS of all entries, ``sqrt(mean(preacts ** 2))``; NaN when that
            is 0 (all pre-activations exactly zero).
    """
    values = _as_preactivations(preacts)
    relative = check_bool("relative", relative)
    spread = float(_neuron_std(values).mean())
    if not relative:
        return spread
    rms = float(values.pow(2).mean().sqrt())
    return spread / rms if rms > 0 else float("nan")


def _resolve_activation(activation: str | Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    if isinstance(activation, str):
        return make_activation(check_choice("activation", activation, ACTIVATIONS))
    if not callable(activation):
        raise TypeError(
            f"activation={activation!r} is not allowed: give a name from {ACTIVATIONS} or a callable"
        )
    return activation


def _linear_fit_error(values: Tensor, activation: Callable[[Tensor], Tensor]) -> Tensor:
    """Per neuron ``1 - R^2`` of the affine least-squares fit of activation(x) from x."""
    with torch.no_grad():
        outputs = activation(values).to(torch.float64)
    x = values - values.mean(0)
    y = outputs - outputs.mean(0)
    var_x, var_y, cov = x.pow(2).mean(0), y.pow(2).mean(0), (x * y).mean(0)
    flat_x = var_x <= RELATIVE_VARIANCE_FLOOR * values.pow(2).mean(0) + 1e-300
    flat_y = var_y <= RELATIVE_VARIANCE_FLOOR * outputs.pow(2).mean(0) + 1e-300
    r_squared = cov.pow(2) / (var_x * var_y).clamp_min(1e-300)
    error = (1.0 - r_squared).clamp(0.0, 1.0)
    return torch.where(flat_x | flat_y, 0.0, error)


def linear_fit_error(preacts: Any, activation: str | Callable[[Tensor], Tensor]) -> float:
    """Mean over neurons of ``1 - R^2`` of the best affine fit of ``activation(preacts)``.

    Args:
        preacts: a (batch x neurons) matrix (a 1-d tensor is one neuron).
        activation: a name from :data:`explodegrad.core.config.ACTIVATIONS` or a callable applied
            elementwise (evaluated in float64).
    """
    values = _as_preactivations(preacts)
    return float(_linear_fit_error(values, _resolve_activation(activation)).mean())


def _layer_activation(unit: nn.Module) -> nn.Module:
    """The nonlinearity a unit's recorded pre-activation is fed to."""
    branch = getattr(unit, "branch", None)
    return branch[0].activation if branch is not None else unit.activation


@at_full_precision
def domain_stats(net: DeepMLP, inputs: Tensor) -> DomainStats:
    """Pre-activation spread, sign diversity and linear fit error of every hidden layer.

    Args:
        net: a network from :func:`explodegrad.build_mlp`; left unchanged (modes and batch-norm
            running averages restored).
        inputs: a (batch x in_features) batch.

    Returns:
        A :class:`DomainStats` for k = 2 ... L (empty arrays for a network without hidden layers).
        A layer whose pre-activations overflowed gets NaN entries: a result, never an error.
    """
    x, _ = prepare_batch(net, inputs)
    check_batch_statistics_batch(net, x, "domain_stats")
    modules = list(net.modules())
    modes = [module.training for module in modules]
    for module in modules:
        module.training = True
    try:
        forward_trace = trace(net, x)
    finally:
        for module, mode in zip(modules, modes):
            module.training = mode
    layers = list(range(2, net.num_layers + 1))
    rows = []
    for k in layers:
        values = forward_trace.preactivation(k).detach().to(torch.float64)
        rms = values.pow(2).mean().sqrt()
        spread = _neuron_std(values).mean()
        rows.append(
            torch.stack(
                [
                    spread,
                    torch.where(rms > 0, spread / rms.clamp_min(1e-300), torch.nan),
                    _sign_diversity(values).mean(),
                    _linear_fit_error(values, _layer_activation(net.layer(k))).mean(),
                ]
            )
        )
    table = torch.stack(rows).cpu().numpy() if rows else np.zeros((0, 4))
    return DomainStats(
        layers=np.array(layers, dtype=int),
        preact_std=table[:, 0],
        preact_std_relative=table[:, 1],
        sign_diversity=table[:, 2],
        linear_fit_error=table[:, 3],
        label=net.config.label(),
        batch_size=int(x.shape[0]),
    )
