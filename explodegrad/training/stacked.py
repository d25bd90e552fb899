"""The stacked runner: many :class:`~explodegrad.core.nets.DeepMLP` s of one shape run as one.

There is one model definition, :class:`~explodegrad.core.nets.DeepMLP`. A :class:`NetStack`
holds the parameters and buffers of several such networks stacked along a leading *model*
axis and runs the unchanged module on all of them at once with ``torch.func``
(``functional_call`` inside ``vmap``): the dense layers become batched matrix products, and
each model keeps its own weights, batch-norm running statistics and residual scale (a
buffer of :class:`~explodegrad.core.nets.ResidualBlock`). A stack of one network is how
:func:`explodegrad.training.loop.train` trains, so one training step serves one network and
a whole sweep.

The parameters live in one flat ``(models x scalars)`` matrix, ``params``, in the order of
``DeepMLP.parameters()``, in a stack of several networks with every weight matrix stored
transposed, ``(in x out)`` (see :func:`flat_row`): the batched products then read the weights
without a transpose and their gradients come out in storage order, which saves a strided copy
per layer and step. The per-parameter tensors the forward pass uses are views of it, so the optimizers of
:mod:`explodegrad.training.optimizers` (elementwise, or reductions over a whole row or a
layer's columns, which a permutation within a layer does not change) update it in place and
the next forward pass sees the change. Rows never mix: every model's loss, gradient and
update only reads its own row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from explodegrad.core.config import NetConfig
from explodegrad.core.nets import DeepMLP, build_from_config, per_example_loss
from explodegrad.core.trace import frozen_batch_statistics


def layer_slices(net: DeepMLP) -> tuple[list[Tensor], list[tuple[int, int]]]:
    """The parameters in flat order and the column range of each layer, by paper number.

    ``slices[k - 1]`` is the range of layer k's parameters (1 = readout).
    """
    if not isinstance(net, DeepMLP):
        raise TypeError(f"net: expected a DeepMLP, got {type(net).__name__}")
    params: list[Tensor] = []
    ranges: list[tuple[int, int]] = []
    offset = 0
    for unit in net.units:
        start = offset
        for p in unit.parameters():
            params.append(p)
            offset += p.numel()
        ranges.append((start, offset))
    if len(params) != len(list(net.parameters())):
        raise ValueError("net: every parameter must belong to one of net.units")
    return params, ranges[::-1]


def first_nonfinite_layer(grads: Tensor, slices: Sequence[tuple[int, int]]) -> int | None:
    """The smallest k whose gradient (one model's flat row) has a NaN or Inf, or None."""
    for k, (start, end) in enumerate(slices, start=1):
        if not bool(torch.isfinite(grads[start:end]).all()):
            return k
    return None


def per_layer_norms(flat: Tensor, slices: Sequence[tuple[int, int]]) -> Tensor:
    """Euclidean norm of each layer's part of each row: ``(models, layers)``, in float64."""
    return torch.stack([torch.linalg.vector_norm(flat[:, s:e].double(), dim=1) for s, e in slices], 1)


def flat_row(tensors: Sequence[Tensor], transpose_weights: bool = True) -> Tensor:
    """One network's parameter-shaped tensors (in ``parameters()`` order) as a stack's flat row.

    With ``transpose_weights`` (a stack of several networks) weight matrices (2-d) enter
    transposed, ``(in x out)``; everything else, and every tensor of a stack of one, as it is.
    """
    return torch.cat([(t.mT if transpose_weights and t.ndim == 2 else t).reshape(-1) for t in tensors])


class NetStack:
    """Several networks of one shape, run together with ``torch.func``.

    Build it from networks (``NetStack(nets)``: their values are copied; :meth:`copy_to`
    writes them back) or from configurations (:meth:`from_configs`, each initialized exactly as
    :func:`explodegrad.core.nets.build_from_config` does). Networks stack when their
    :meth:`NetConfig.shape_key` agrees; everything else (seed, initialization, residual
    scale) may differ per model.

    Several networks run as ``vmap(functional_call(DeepMLP, ...))``. A stack of one (what
    :func:`~explodegrad.training.loop.train` uses) runs a private ``DeepMLP`` whose parameters
    and buffers are views of the stack's storage, without ``vmap``: the same module and
    layout, without the batching overhead that dominates one small network's step.

    Attributes:
        configs: each model's configuration.
        params: the ``(models x scalars)`` parameter matrix (the optimizer's view), one
            :func:`flat_row` per model.
        leaves: the tensors autograd differentiates, views of ``params``: per parameter
            ``(models, *shape)`` (weights ``(models, in, out)``); for a stack of one, the
            private network's parameters in their own shapes.
        buffers: the stacked buffers (batch-norm running statistics, residual scales).
        layer_slices: column range of each layer, by paper number (see :func:`layer_slices`).
    """

    def __init__(self, nets: Sequence[DeepMLP]) -> None:
        if not isinstance(nets, Sequence) or not all(isinstance(n, DeepMLP) for n in nets):
            raise TypeError(f"nets: expected a sequence of DeepMLP networks, got {type(nets).__name__}")
        if not nets:
            raise ValueError("configs: the list is empty; give at least one NetConfig")
        key = nets[0].config.shape_key()
        for i, net in enumerate(nets):
            if net.config.shape_key() != key:
                raise ValueError(
                    f"configs: configuration {i} ({net.config.label()}) cannot be stacked with "
                    f"configuration 0 ({nets[0].config.label()}): their shapes differ "
                    f"({net.config.shape_key()} vs {key}); only configurations with equal "
                    "NetConfig.shape_key() share a group"
                )
        self.configs = [net.config for net in nets]
        self.num_models = len(nets)
        _, self.layer_slices = layer_slices(nets[0])
        self._transpose = self.num_models > 1
        with torch.no_grad():
            self.params = torch.stack([flat_row(list(net.parameters()), self._transpose) for net in nets])
            self.buffers = {
                name: torch.stack([dict(net.named_buffers())[name] for net in nets]).clone()
                for name, _ in nets[0].named_buffers()
            }
        with torch.device("meta"):  # a shell without storage: every tensor is supplied below
            template = DeepMLP(nets[0].config)
        self.leaves: dict[str, Tensor] = {}
        self._shapes = {name: p.shape for name, p in nets[0].named_parameters()}
        offset = 0
        for name, shape in self._shapes.items():
            count = shape.numel()
            columns = self.params[:, offset : offset + count]
            if self._transpose and len(shape) == 2:
                self.leaves[name] = columns.view(self.num_models, *shape[::-1]).requires_grad_(True)
            elif self._transpose:
                self.leaves[name] = columns.view(self.num_models, *shape).requires_grad_(True)
            else:  # a Parameter made from a view shares its storage: updates of params show
                self.leaves[name] = nn.Parameter(columns.view(shape))
            offset += count
        if self._transpose:
            self._single = None
            self._forward = vmap(
                lambda params, buffers, x: functional_call(template, (params, buffers), (x,)),
                in_dims=(0, 0, None),
            )
        else:
            for name, leaf in self.leaves.items():
                owner, _, attribute = name.rpartition(".")
                setattr(template.get_submodule(owner), attribute, leaf)
            for name, buffer in self.buffers.items():
                owner, _, attribute = name.rpartition(".")
                setattr(template.get_submodule(owner), attribute, buffer[0])
            self._single = template

    def model_tensor(self, m: int, name: str) -> Tensor:
        """Model ``m``'s parameter ``name`` in the network's own shape (a view of ``params``)."""
        leaf = self.leaves[name]
        if not self._transpose:
            return leaf.detach()
        return leaf[m].detach().mT if len(self._shapes[name]) == 2 else leaf[m].detach()

    @classmethod
    def from_configs(
        cls,
        configs: Sequence[NetConfig],
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> NetStack:
        """Build and stack one network per configuration."""
        if isinstance(configs, NetConfig) or not isinstance(configs, Sequence):
            raise TypeError(f"configs: expected a sequence of NetConfig, got {type(configs).__name__}")
        for i, config in enumerate(configs):
            if not isinstance(config, NetConfig):
                raise TypeError(f"configs: item {i} is a {type(config).__name__}, expected a NetConfig")
        if not configs:
            raise ValueError("configs: the list is empty; give at least one NetConfig")
        return cls([build_from_config(c, device=device, dtype=dtype) for c in configs])

    @property
    def device(self) -> torch.device:
        return self.params.device

    @property
    def dtype(self) -> torch.dtype:
        return self.params.dtype

    def forward(self, x: Tensor, *, track_running_stats: bool = True) -> Tensor:
        """Logits ``(models x batch x classes)`` of every model on the shared batch ``x``.

        The networks run in training mode (batch norm normalizes with each model's batch
        statistics). ``track_running_stats=False`` leaves the running averages untouched, as
        the records' evaluation passes must.
        """
        if self._single is not None:
            if track_running_stats:
                return self._single(x).unsqueeze(0)
            with frozen_batch_statistics(self._single):
                return self._single(x).unsqueeze(0)
        buffers = self.buffers if track_running_stats else {k: v.clone() for k, v in self.buffers.items()}
        params = {k: v.mT if len(self._shapes[k]) == 2 else v for k, v in self.leaves.items()}
        return self._forward(params, buffers, x)

    __call__ = forward

    def losses(self, x: Tensor, y: Tensor, *, track_running_stats: bool = True) -> tuple[Tensor, Tensor]:
        """Per-model mean cross-entropy ``(models,)`` and the logits on one batch."""
        logits = self.forward(x, track_running_stats=track_running_stats)
        models, batch, classes = logits.shape
        per_example = per_example_loss(logits.reshape(models * batch, classes), y.repeat(models))
        return per_example.view(models, batch).mean(dim=1), logits

    def gradients(self, total_loss: Tensor) -> Tensor:
        """The flat ``(models x scalars)`` gradient of a sum of per-model losses."""
        leaves = list(self.leaves.values())
        grads = torch.autograd.grad(total_loss, leaves, allow_unused=True)
        flat = torch.empty_like(self.params)
        offset = 0
        for grad, shape in zip(grads, self._shapes.values()):  # one copy each, straight into place
            count = shape.numel()
            if grad is None:
                flat[:, offset : offset + count].zero_()
            else:
                flat[:, offset : offset + count].copy_(grad.reshape(self.num_models, count))
            offset += count
        return flat

    @torch.no_grad()
    def evaluate(self, x: Tensor, y: Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Per-model mean loss and error rate on one batch (batch statistics, running averages untouched)."""
        loss, logits = self.losses(x, y, track_running_stats=False)
        error = (logits.argmax(dim=2) != y).double().mean(dim=1)
        return loss.double().cpu().numpy(), error.cpu().numpy()

    @torch.no_grad()
    def copy_to(self, nets: Sequence[DeepMLP]) -> None:
        """Write every model's parameters and buffers into ``nets`` (in place, same order)."""
        if len(nets) != self.num_models:
            raise ValueError(f"nets: {len(nets)} networks given for a stack of {self.num_models}")
        for m, net in enumerate(nets):
            for name, p in net.named_parameters():
                p.copy_(self.model_tensor(m, name))
            for name, b in net.named_buffers():
                b.copy_(self.buffers[name][m])
