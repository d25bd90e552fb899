"""Taylor compression: how much of a trained network is (locally) linear at the top?

Philipp et al. (2018) probe a network's "effective depth" by replacing its top k layers, the
function ``g_k: f_{k+1} -> f_1``, by the first-order Taylor expansion around a reference point
x0, ``g_k(x0) + J_g(x0) (x - x0)``, and watching the training error. If replacing many layers
barely hurts, those layers act almost linearly on the data: the network is shallower than it
looks. k = 0 is the original network; k = L replaces the whole network by one affine map of
the input.

Choices made here (the paper does not fix them for us):

* Reference point: x0 = the mean over the given inputs of f_{k+1} (``reference="mean"``), the
  centre of the data the expansion must serve.
* Mode: the whole evaluation runs in eval mode (the net's mode is restored after). A single
  point x0 has no batch statistics, so batch norm must use its running averages; using them for
  the data too keeps every k, k = 0 included, the same network function. A network that was
  never trained still has the default running statistics (mean 0, variance 1). Networks
  without batch norm are unaffected.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from explodegrad.core.checks import check_choice, check_int, check_tensor
from explodegrad.core.jacobian import jacobian_matrix
from explodegrad.core.nets import DeepMLP, per_example_loss
from explodegrad.core.trace import check_net, prepare_batch
from explodegrad.measures.gsc import at_full_precision

REFERENCES = ("mean",)


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not results
class TaylorCurve:
    """Training error and loss after replacing the top k layers by their linearization.

    Attributes:
        ks: number of top layers replaced (0 = the original network, L = all of it).
        train_error: fraction of misclassified examples of the given data, per k (an example
            whose logits are not all finite counts as misclassified).
        train_loss: mean cross-entropy on the given data, per k (inf/nan on overflow).
        reference: how the expansion point was chosen (``"mean"``).
        label: the network's label.
    """

    ks: np.ndarray
    train_error: np.ndarray
    train_loss: np.ndarray
    reference: str
    label: str

    @property
    def overflowed(self) -> bool:
        """Whether some loss is inf or NaN (the network, or its linearization, overflowed)."""
        return not bool(np.all(np.isfinite(self.train_loss)))


def _check_ks(ks: Iterable[int] | None, num_layers: int) -> list[int]:
    if ks is None:
        return list(range(num_layers + 1))
    if isinstance(ks, (int, np.integer)):
        ks = [int(ks)]
    if isinstance(ks, (str, bytes)) or not isinstance(ks, Iterable):
        raise TypeError(
            f"ks={ks!r} is not allowed: ks must be an integer or a sequence of integers in "
            f"0..{num_layers} (got {type(ks).__name__})"
        )
    checked = [check_int("ks", k, 0, num_layers) for k in ks]
    if not checked:
        raise ValueError(f"ks=[] is not allowed: ks must list at least one k in 0..{num_layers}")
    return checked


def linearized_top_logits(net: DeepMLP, f_below: Tensor, k: int, reference: Tensor) -> Tensor:
    """Logits of the top k layers replaced by their first-order Taylor expansion at ``reference``.

    Args:
        net: the network (its mode is used as is; :func:`taylor_compression` sets eval mode).
        f_below: f_{k+1}, the (batch x features) input of the top k layers.
        k: number of top layers replaced, 1 <= k <= L.
        reference: x0, a vector with f_below's feature count.

    Returns:
        ``g_k(x0) + (f_below - x0) J_g(x0)^T``, a (batch x out_features) tensor.
    """
    net = check_net(net)
    k = check_int("k", k, 1, net.num_layers)
    check_tensor("f_below", f_below)
    check_tensor("reference", reference)
    # the feature count of f_{k+1}, the input of the top k layers
    expected = net.config.in_features if k == net.num_layers else net.config.width
    if f_below.ndim != 2 or f_below.shape[1] != expected:
        raise ValueError(
            f"f_below: expected a (batch x {expected}) matrix, f_{k + 1}, got shape {tuple(f_below.shape)}"
        )
    if reference.shape != (expected,):
        raise ValueError(
            f"reference: expected a vector of {expected} features, got shape {tuple(reference.shape)}"
        )

    def top(point: Tensor) -> Tensor:
        return net.forward_from(k + 1, point.unsqueeze(0), to=1).squeeze(0)

    with torch.no_grad():
        at_reference = top(reference)
    jacobian = jacobian_matrix(top, reference)  # (out_features x features)
    return at_reference + (f_below - reference) @ jacobian.T


@at_full_precision
def taylor_compression(
    net: DeepMLP,
    data_inputs: Tensor,
    data_targets: Tensor,
    ks: Iterable[int] | None = None,
    *,
    reference: str = "mean",
) -> TaylorCurve:
    """Training error and loss when the top k layers are replaced by their Taylor expansion.

    Args:
        net: a network from :func:`explodegrad.core.nets.build_mlp` (evaluated in eval mode, see
            the module docstring; its mode is restored).
        data_inputs: the (batch x in_features) training inputs the error is measured on; they
            also define the reference point.
        data_targets: their class labels.
        ks: numbers of top layers to replace, each in 0..L (default: all of 0..L).
        reference: ``"mean"``: expand around the mean of f_{k+1} over ``data_inputs``.

    Returns:
        A :class:`TaylorCurve`. Errors need not grow with k: do not expect a monotone curve.
    """
    reference = check_choice("reference", reference, REFERENCES)
    if data_targets is None:
        raise TypeError("data_targets: expected the class labels of data_inputs, got None")
    data_inputs, data_targets = prepare_batch(
        net, data_inputs, data_targets, inputs_name="data_inputs", targets_name="data_targets"
    )
    ks = _check_ks(ks, net.num_layers)
    num_layers = net.num_layers
    modes = [(module, module.training) for module in net.modules()]  # each restored as it was
    net.eval()
    try:
        with torch.no_grad():
            features = [data_inputs]
            for unit in net.units:
                features.append(unit(features[-1]))
        errors, losses = [], []
        for k in ks:
            if k == 0:
                logits = features[-1]
            else:
                f_below = features[num_layers - k]  # f_{k+1}: the input of the top k layers
                logits = linearized_top_logits(net, f_below, k, f_below.mean(0))
            # argmax of a NaN row is 0: a row that is not finite would otherwise be "right"
            # whenever its label is 0; an overflowed prediction is a wrong one
            wrong = (logits.argmax(1) != data_targets) | ~torch.isfinite(logits).all(1)
            errors.append(float(wrong.double().mean()))
            losses.append(float(per_example_loss(logits.double(), data_targets).mean()))
    finally:
        for module, mode in modes:
            module.training = mode
    return TaylorCurve(
        ks=np.array(ks, dtype=int),
        train_error=np.array(errors),
        train_loss=np.array(losses),
        reference=reference,
        label=net.config.label(),
    )


__all__ = ["REFERENCES", "TaylorCurve", "linearized_top_logits", "taylor_compression"]
