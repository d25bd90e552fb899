"""What the GSC means, checked on a real network (chapter 3).

Two experiments behind the definition of :mod:`explodegrad.measures.gsc`:

* :func:`rescaling_comparison`: raw gradient sizes depend on how a network happens to be
  parametrized. ReLU is positively homogeneous, ``relu(a z) = a relu(z)`` for ``a > 0``, so
  multiplying layer k's weights and bias by a and the next layer's weights by 1/a
  (:func:`rescale_layer`) leaves the function unchanged, yet divides ||d loss / d f_k|| by a;
  the GSC stays the same, because it multiplies the Jacobian's norm by ||f_k||.
* :func:`perturbation_check`: nudge f_k by a small random relative amount; the loss moves,
  relatively, GSC(k, 0) times as much (root mean square over random directions).

Layers are numbered from the output as in the paper (f_0 the losses, f_1 the logits, f_L the
first layer's output, f_{L+1} the input).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from explodegrad.core.checks import check_int, check_positive
from explodegrad.core.nets import DeepMLP, per_example_loss
from explodegrad.core.trace import prepare_batch
from explodegrad.measures.gsc import gsc_profile, relative_perturbation_gain
from explodegrad.studies.common import StudyResult

#: The claims judged on this module's results (ids of :mod:`explodegrad.claims`).
CLAIMS = (
    "03/rescaling-moves-raw-not-gsc",
    "03/gsc-is-perturbation-gain",
)

#: Activations with ``act(a z) = a act(z)`` for every ``a > 0``: rescaling passes through them.
HOMOGENEOUS_ACTIVATIONS = ("relu", "leaky_relu", "linear")


def rescale_layer(net: DeepMLP, k: int, factor: float) -> DeepMLP:
    """A copy of ``net`` computing the same function, with f_k multiplied by ``factor``.

    Layer k's weights and bias are multiplied by ``factor`` (its output scales with them,
    since the activation is positively homogeneous) and layer k - 1's weights divided by it.

    Args:
        net: a plain network without normalization and with a homogeneous activation
            (:data:`HOMOGENEOUS_ACTIVATIONS`); left unchanged.
        k: the layer to rescale, 2 <= k <= L (the logits, k = 1, feed the loss directly).
        factor: a > 0.
    """
    if not isinstance(net, DeepMLP):
        raise TypeError(f"net: expected a DeepMLP from explodegrad.build_mlp, got {type(net).__name__}")
    config = net.config
    if config.residual or config.norm != "none" or config.activation not in HOMOGENEOUS_ACTIVATIONS:
        raise ValueError(
            f"net: {config.label()} cannot be rescaled without changing its function; rescaling "
            f"needs a plain network (residual=False) with norm='none' and an activation from "
            f"{HOMOGENEOUS_ACTIVATIONS}"
        )
    if net.num_layers < 2:
        raise ValueError("net: a network of depth 1 has no hidden layer to rescale")
    k = check_int("k", k, 2, net.num_layers)
    factor = check_positive("factor", factor)
    rescaled = copy.deepcopy(net)
    with torch.no_grad():
        layer, above = rescaled.layer(k).linear, rescaled.layer(k - 1).linear
        layer.weight.mul_(factor)
        layer.bias.mul_(factor)
        above.weight.div_(factor)
    return rescaled


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not results
class RescalingComparison(StudyResult):
    """Raw gradients and GSC of a network and of its rescaled twin (same function).

    Attributes:
        label: the network.
        layer: k, the rescaled layer.
        factor: a, the factor f_k was multiplied by.
        layers: k = 1 ... L + 1 (the logits up to the input).
        raw_before, raw_after: ||d mean-loss / d f_k||_F for each k.
        weight_grad_before, weight_grad_after: ||d mean-loss / d W||_F of the layer producing
            f_k (NaN for the input).
        gsc_before, gsc_after: GSC(k, 0) for each k.
        loss_before, loss_after: the mean loss (equal: the function did not change).
        max_logit_change: the largest absolute change of any logit.
    """

    label: str
    layer: int
    factor: float
    layers: np.ndarray
    raw_before: np.ndarray
    raw_after: np.ndarray
    weight_grad_before: np.ndarray
    weight_grad_after: np.ndarray
    gsc_before: np.ndarray
    gsc_after: np.ndarray
    loss_before: float
    loss_after: float
    max_logit_change: float

    def summary(self) -> str:
        """The :meth:`table` around the rescaled layer."""
        return self.table()

    def table(self, layers: tuple[int, ...] | None = None) -> str:
        """Fixed-format lines comparing the two networks at a few layers (default: around k)."""
        if layers is None:
            layers = tuple(
                sorted(
                    {
                        max(1, self.layer - 2),
                        self.layer - 1,
                        self.layer,
                        min(int(self.layers[-1]), self.layer + 1),
                    }
                )
            )
        lines = [
            f"{self.label}: f_{self.layer} multiplied by {self.factor:g}, the next layer's "
            f"weights by 1/{self.factor:g}",
            f"mean loss {self.loss_before:.6f} -> {self.loss_after:.6f}, largest logit change "
            f"{_change(self.max_logit_change)}",
            f"{'k':>3}{'||dL/df_k|| before':>21}{'after':>11}{'GSC(k,0) before':>17}{'after':>9}",
        ]
        for k in layers:
            i = k - 1
            lines.append(
                f"{k:>3}{self.raw_before[i]:>21.4g}{self.raw_after[i]:>11.4g}"
                f"{self.gsc_before[i]:>17.4g}{self.gsc_after[i]:>9.4g}"
            )
        return "\n".join(lines)


#: Changes below this are rounding error: their digits depend on the CPU, so they print as a bound.
ROUNDING_LEVEL = 1e-12


def _change(value: float) -> str:
    """A change as text: its value, or ``below 1e-12 (rounding error)`` when it is that small."""
    return f"below {ROUNDING_LEVEL:.0e} (rounding error)" if abs(value) < ROUNDING_LEVEL else f"{value:.1e}"


def _mean_loss_and_logits(net: DeepMLP, inputs: Tensor, targets: Tensor) -> tuple[float, Tensor]:
    with torch.no_grad():
        logits = net(inputs)
        return float(per_example_loss(logits, targets).double().mean()), logits


def rescaling_comparison(
    net: DeepMLP, inputs: Tensor, targets: Tensor, k: int, factor: float = 10.0
) -> RescalingComparison:
    """Measure ``net`` and :func:`rescale_layer` (net, k, factor) on one batch.

    The two networks compute the same function, so the loss and logits agree (up to
    rounding); the raw gradient at f_k shrinks by ``factor`` while GSC(k, 0) does not move.
    """
    x, y = prepare_batch(net, inputs, targets)
    if y is None:
        raise ValueError("targets: the losses need the batch's labels, got None")
    rescaled = rescale_layer(net, k, factor)
    before = gsc_profile(net, x, y)
    after = gsc_profile(rescaled, x, y)
    loss_before, logits_before = _mean_loss_and_logits(net, x, y)
    loss_after, logits_after = _mean_loss_and_logits(rescaled, x, y)
    return RescalingComparison(
        label=net.config.label(),
        layer=int(k),
        factor=float(factor),
        layers=before.layers,
        raw_before=before.output_grad_norms,
        raw_after=after.output_grad_norms,
        weight_grad_before=before.weight_grad_norms,
        weight_grad_after=after.weight_grad_norms,
        gsc_before=before.gsc,
        gsc_after=after.gsc,
        loss_before=loss_before,
        loss_after=loss_after,
        max_logit_change=float((logits_after - logits_before).abs().max()),
    )


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not results
class PerturbationCheck(StudyResult):
    """GSC(k, 0) next to the brute-force relative-perturbation gain, for several layers k.

    Attributes:
        label: the network.
        layers: the layers k checked.
        gsc: GSC(k, 0) from :func:`explodegrad.measures.gsc.gsc_profile`.
        gains: (layers x directions) relative change of the losses per unit relative change of
            f_k, one column per random direction.
        epsilon: the relative size of the nudge.
    """

    label: str
    layers: np.ndarray
    gsc: np.ndarray
    gains: np.ndarray
    epsilon: float

    @property
    def rms_gain(self) -> np.ndarray:
        """Root mean square of the gains over the directions: estimates GSC(k, 0)."""
        return np.sqrt((self.gains**2).mean(axis=1))

    @property
    def ratio(self) -> np.ndarray:
        """rms_gain / gsc: close to 1 when the GSC means what it says."""
        return self.rms_gain / self.gsc

    def summary(self) -> str:
        """The :meth:`table`."""
        return self.table()

    def table(self) -> str:
        """Fixed-format lines: k, GSC(k, 0), the RMS gain and their ratio."""
        lines = [
            f"{self.label}: nudge f_k by {self.epsilon:g} of its size in "
            f"{self.gains.shape[1]} random directions",
            f"{'k':>4}{'GSC(k, 0)':>12}{'RMS gain':>12}{'ratio':>8}",
        ]
        for k, gsc, gain, ratio in zip(self.layers, self.gsc, self.rms_gain, self.ratio):
            lines.append(f"{int(k):>4}{gsc:>12.4g}{gain:>12.4g}{ratio:>8.3f}")
        return "\n".join(lines)


def linear_nudge(largest_gsc: float) -> float:
    """The default relative nudge of :func:`perturbation_check`: 1e-4, or smaller so that the
    losses move by at most about 0.1 % at the layer with the largest GSC (``1e-3 / GSC``)."""
    if not np.isfinite(largest_gsc) or largest_gsc <= 0:
        return 1e-4
    return min(1e-4, 1e-3 / largest_gsc)


def perturbation_check(
    net: DeepMLP,
    inputs: Tensor,
    targets: Tensor,
    layers: tuple[int, ...] | None = None,
    num_directions: int = 16,
    epsilon: float | None = None,
    seed: int = 0,
) -> PerturbationCheck:
    """Compare GSC(k, 0) with the root-mean-square relative-perturbation gain over random directions.

    The gain equals the GSC only while the nudge is small enough for the losses to respond
    linearly, and "small" is relative to 1 / GSC: a nudge of 1e-4 at a layer whose GSC is 900
    moves the losses by 9 % and the gain falls to 0.70 of the GSC (depth-50 batch-normalized
    ReLU; 0.98 with a nudge of 1e-7). So by default the nudge is chosen to move the losses by
    at most about 0.1 % (an operational choice).

    Args:
        net: a network from :func:`explodegrad.build_mlp` (float64 keeps the nudge exact).
        inputs, targets: one batch and its labels.
        layers: the layers k to check (default: every 1 ... L + 1).
        num_directions: random directions per layer.
        epsilon: relative size of the nudge (default: ``min(1e-4, 1e-3 / largest GSC checked)``).
        seed: seed of the directions (direction j uses ``seed + j``).
    """
    num_directions = check_int("num_directions", num_directions, 1)
    if epsilon is not None:
        epsilon = check_positive("epsilon", epsilon)
    seed = check_int("seed", seed, 0)
    profile = gsc_profile(net, inputs, targets)
    if layers is None:
        layers = tuple(int(k) for k in profile.layers)
    elif isinstance(layers, (int, np.integer)):
        layers = (int(layers),)  # one layer
    elif not isinstance(layers, Sequence) or isinstance(layers, str) or not layers:
        raise TypeError(
            f"layers={layers!r} is not allowed: give a layer k, a non-empty sequence of them, or None"
        )
    chosen = [check_int("layers", k, 1, net.num_layers + 1) for k in layers]
    if epsilon is None:
        epsilon = linear_nudge(max(profile.gsc_at(k) for k in chosen))
    gains = np.array(
        [
            [
                relative_perturbation_gain(net, inputs, targets, k, 0, epsilon=epsilon, seed=seed + j)
                for j in range(num_directions)
            ]
            for k in chosen
        ]
    )
    return PerturbationCheck(
        label=net.config.label(),
        layers=np.array(chosen),
        gsc=np.array([profile.gsc_at(k) for k in chosen]),
        gains=gains,
        epsilon=epsilon,
    )
