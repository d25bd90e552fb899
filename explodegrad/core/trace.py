"""One forward pass, with every layer's output and pre-activation kept.

A :class:`Trace` is indexed the paper's way: ``trace.f(k)`` is f_k, with f_0 the per-example
losses (when targets were given), f_1 the logits, f_L the first layer's output and f_{L+1}
the input. Measures (:mod:`explodegrad.measures.gsc`, :mod:`explodegrad.measures.domain`, ...) read traces;
with ``keep_graph=True`` the tensors stay in the autograd graph so that one backward pass can
reach every layer at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from explodegrad.core.checks import check_batch, check_bool, check_int, check_tensor
from explodegrad.core.nets import DeepMLP, per_example_loss


@dataclass
class Trace:
    """Everything one forward pass computed, in paper numbering.

    Attributes:
        inputs: f_{L+1}, the (batch x features) input.
        outputs: unit outputs from input to output; ``outputs[-1]`` is the logits f_1.
        preactivations: the value fed to each unit's nonlinearity, same order as ``outputs``.
        losses: f_0, the per-example losses, or None when no targets were given.
        targets: the class labels, or None.
    """

    inputs: Tensor
    outputs: list[Tensor]
    preactivations: list[Tensor]
    losses: Tensor | None = None
    targets: Tensor | None = None

    @property
    def num_layers(self) -> int:
        """L, the number of layers with an output (f_1 ... f_L)."""
        return len(self.outputs)

    @property
    def batch_size(self) -> int:
        return int(self.inputs.shape[0])

    def f(self, k: int) -> Tensor:
        """f_k in paper numbering: 0 losses, 1 logits, ..., L first layer, L + 1 input."""
        lowest = 0 if self.losses is not None else 1
        k = check_int("k", k, lowest, self.num_layers + 1)
        if k == 0:
            return self.losses
        if k == self.num_layers + 1:
            return self.inputs
        return self.outputs[self.num_layers - k]

    def preactivation(self, k: int) -> Tensor:
        """The pre-activation of layer k (1 <= k <= L)."""
        k = check_int("k", k, 1, self.num_layers)
        return self.preactivations[self.num_layers - k]

    def detached(self) -> Trace:
        """A copy cut from the autograd graph (cheap: tensors are shared)."""
        return Trace(
            inputs=self.inputs.detach(),
            outputs=[o.detach() for o in self.outputs],
            preactivations=[p.detach() for p in self.preactivations],
            losses=None if self.losses is None else self.losses.detach(),
            targets=self.targets,
        )


@contextmanager
def frozen_batch_statistics(net: nn.Module) -> Iterator[None]:
    """Use batch statistics (training-mode batch norm) without updating running averages.

    The GSC and domain measures are defined on the batch the network sees in training; a
    measurement must not change the network. Batch-norm modules in training mode stop
    tracking running statistics for the duration (so nothing is written in place, and
    tensors traced inside stay differentiable afterwards); eval-mode modules are untouched.
    """
    switched = [
        m
        for m in net.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats
    ]
    for module in switched:
        module.track_running_stats = False
    try:
        yield
    finally:
        for module in switched:
            module.track_running_stats = True


@contextmanager
def batch_statistics(net: nn.Module) -> Iterator[None]:
    """Measure with training-mode batch statistics whatever mode ``net`` is in; modes restored.

    The paper's measures (GSC, domain statistics) are defined on the batch the network sees
    in training, so an evaluation-mode network is switched to training mode for the
    measurement, without updating running averages (:func:`frozen_batch_statistics`).
    """
    modes = [(module, module.training) for module in net.modules()]
    net.train()
    try:
        with frozen_batch_statistics(net):
            yield
    finally:
        for module, mode in modes:
            module.training = mode


def check_net(net: object, argument: str = "net") -> DeepMLP:
    """``net`` if it is a :class:`DeepMLP` whose modules still match its config, else
    ``TypeError`` (or ``ValueError`` for a replaced layer of another shape)."""
    if not isinstance(net, DeepMLP):
        raise TypeError(
            f"{argument}: expected a DeepMLP from explodegrad.build_mlp, got {type(net).__name__}"
        )
    net.check_structure()
    return net


def prepare_batch(
    net: DeepMLP,
    inputs: object,
    targets: object = None,
    *,
    inputs_name: str = "inputs",
    targets_name: str = "targets",
) -> tuple[Tensor, Tensor | None]:
    """Check a batch where it enters a measure and put it on the network's device and dtype.

    Features must be finite floats with the network's ``in_features`` columns, labels integers
    in ``0 .. out_features - 1`` (:func:`explodegrad.core.checks.check_batch`; the messages
    name the first bad row). A numpy array is converted.
    """
    net = check_net(net)
    x, y = check_batch(
        inputs,
        targets,
        net.config.out_features,
        in_features=net.config.in_features,
        inputs_name=inputs_name,
        targets_name=targets_name,
    )
    parameter = next(net.parameters())
    x = x.to(device=parameter.device, dtype=parameter.dtype)
    return x, None if y is None else y.to(device=parameter.device)


def check_batch_statistics_batch(net: DeepMLP, x: Tensor, measure: str) -> None:
    """Refuse a single example where a measure uses batch norm's batch statistics
    (:func:`batch_statistics`): ``net.eval()`` would not help, so the message says so."""
    if x.shape[0] < 2 and any(isinstance(m, torch.nn.BatchNorm1d) for m in net.modules()):
        raise ValueError(
            f"inputs: a batch of {x.shape[0]} example(s) is not allowed: {measure} measures batch norm "
            "with the batch's own statistics, whatever mode the network is in (net.eval() does not "
            "change that), and batch statistics need at least 2 examples"
        )


def trace(net: DeepMLP, inputs: Tensor, targets: Tensor | None = None, *, keep_graph: bool = False) -> Trace:
    """Run ``net`` on ``inputs`` and keep every layer's output and pre-activation.

    Args:
        net: a network from :func:`explodegrad.core.nets.build_mlp`.
        inputs: a (batch x in_features) tensor of finite floats (put on the network's device
            and dtype; a numpy array is converted).
        targets: integer class labels in 0..out_features - 1; when given, the trace also holds
            f_0, the per-example losses.
        keep_graph: keep the tensors in the autograd graph (the input then requires grad), so
            gradients with respect to any f_k can be taken afterwards.

    Batch norm uses the batch statistics in training mode; running averages are left as
    they were.
    """
    keep_graph = check_bool("keep_graph", keep_graph)
    inputs, targets = prepare_batch(net, inputs, targets)
    x = inputs.detach().clone().requires_grad_(True) if keep_graph else inputs
    outputs: list[Tensor] = []
    preacts: list[Tensor] = []
    with torch.set_grad_enabled(keep_graph), frozen_batch_statistics(net):
        h = x
        for unit in net.units:
            h, pre = unit.forward_with_preactivation(h)
            outputs.append(h)
            preacts.append(pre)
        losses = per_example_loss(h, targets) if targets is not None else None
    return Trace(inputs=x, outputs=outputs, preactivations=preacts, losses=losses, targets=targets)


def first_overflow_layer(net: DeepMLP, inputs: Tensor) -> int | None:
    """Where a forward pass overflowed: the layer nearest the input whose output is not finite
    (paper numbering, L the first layer, 1 the logits), or None when every output is finite.

    One forward pass without gradient, with batch statistics whatever mode ``net`` is in
    (:func:`batch_statistics`), as every measure reads it; the network is left unchanged. A
    divergence message and an overflowed measure both name this layer.
    """
    with batch_statistics(net):
        recorded = trace(net, inputs)
    for k in range(recorded.num_layers, 0, -1):
        if not all_finite(recorded.f(k)):
            return k
    return None


def layer_rms(forward_trace: Trace) -> np.ndarray:
    """Root mean square of every layer's output, in paper numbering.

    ``rms[k - 1]`` is ``sqrt(mean(f_k ** 2))`` over the whole (batch x width) matrix f_k, for
    k = 1 (the logits) ... L (the first layer's output); the input f_{L+1} is not included.
    It shows at a glance whether signals grow, shrink or stay put through depth. Computed in
    float64; an overflowed layer gives ``inf`` (or ``nan``), reported, never raised.
    """
    if not isinstance(forward_trace, Trace):
        raise TypeError(
            f"forward_trace: expected a Trace (from explodegrad.trace), got {type(forward_trace).__name__}"
        )
    return np.array([float64_rms(forward_trace.f(k)) for k in range(1, forward_trace.num_layers + 1)])


def float64_rms(tensor: Tensor) -> float:
    """Root mean square, computed in float64 so that large float32 entries do not overflow it."""
    check_tensor("tensor", tensor)
    return float(tensor.detach().double().pow(2).mean().sqrt())


def float64_norm(tensor: Tensor) -> float:
    """Euclidean norm of all entries, in float64 (large float32 entries do not overflow it)."""
    check_tensor("tensor", tensor)
    return float(torch.linalg.vector_norm(tensor.detach().double()))


def all_finite(tensor: Tensor) -> bool:
    """Whether every entry is finite (no NaN, no inf)."""
    check_tensor("tensor", tensor)
    return bool(torch.isfinite(tensor).all())
