"""The stacked runner: many :class:`~explodegrad.core.nets.DeepMLP` s of one shape run as one.

There is one model definition, :class:`~explodegrad.core.nets.DeepMLP`: every network is
built, initialized and described by it, and a :class:`NetStack` holds the parameters and
buffers of several such networks stacked along a leading *model* axis. Its forward pass walks
the networks' own module tree (``DeepMLP.units``: dense layers, residual blocks with their
pre-activation layers, the readout; each unit's own activation module) and runs each
operation once for all models:

* a linear map is one batched product ``baddbmm`` ``(models x batch x in) @ (models x in x
  out)`` (a stack of one: the network's own ``F.linear``);
* batch norm is ONE ``F.batch_norm`` over the ``(batch, models * width)`` view, whose
  channels are every model's units side by side, so each model keeps its own batch
  statistics and running averages (the same numbers as each network's ``BatchNorm1d`` to
  rounding, about 1e-15 in float64);
* layer norm is one ``F.layer_norm`` over the last axis and one ``addcmul`` for the
  per-model scale and shift;
* the activation is each model's own: networks that differ only in their activation have the
  same parameters (:meth:`NetConfig.stack_key`) and stack together. Models of one activation
  next to each other form a *segment*; a layer splits its output along the model axis into the
  segments (views), applies each segment's activation and concatenates the results: per
  layer, forward and backward together, 2 x segments operations more than one activation,
  however many models (a stack of one activation applies it once, as before).
  :func:`explodegrad.training.sweep.sweep` orders a group's models by activation, so a group
  has one segment per activation.

So the number of operations a step dispatches does not grow with the number of models, which
is what a GPU needs (each kernel of a width-100 network runs for a few microseconds, about
what launching it costs). A stack of one network is how
:func:`explodegrad.training.loop.train` trains, so one training step serves one network and a
whole sweep; ``tests/test_sweep.py`` checks the stack against each network's own forward
pass, gradients and running statistics.

The parameters live in one flat ``(models x scalars)`` matrix, ``params``, in the order of
``DeepMLP.parameters()``, in a stack of several networks with every weight matrix stored
transposed, ``(in x out)`` (see :func:`flat_row`): the batched products then read the weights
without a transpose and their gradients come out in storage order, so :meth:`NetStack.gradients`
is one concatenation. The per-parameter tensors the forward pass uses are views of it, so the
optimizers of :mod:`explodegrad.training.optimizers` (elementwise, or reductions over a whole
row or a layer's columns, which a permutation within a layer does not change) update it in
place and the next forward pass sees the change. Rows never mix: every model's loss, gradient
and update only reads its own row.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from explodegrad.core.config import NetConfig
from explodegrad.core.nets import (
    DeepMLP,
    DenseLayer,
    PreActivationLayer,
    Readout,
    ResidualBlock,
    build_from_config,
    make_activation,
    per_example_loss,
)


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


def unit_runs(slices: Sequence[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """The units' column ranges (``slices``, by paper number) in forward order, consecutive
    units of equal size merged: ``(start column, units, columns per unit)`` each."""
    runs: list[tuple[int, int, int]] = []
    for start, end in reversed(slices):
        if runs and runs[-1][2] == end - start and runs[-1][0] + runs[-1][1] * runs[-1][2] == start:
            first, count, size = runs[-1]
            runs[-1] = (first, count + 1, size)
        else:
            runs.append((start, 1, end - start))
    return runs


def per_layer_norms(flat: Tensor, slices: Sequence[tuple[int, int]]) -> Tensor:
    """Euclidean norm of each layer's part of each row: ``(models, layers)``, in float64."""
    return torch.stack([torch.linalg.vector_norm(flat[:, s:e].double(), dim=1) for s, e in slices], 1)


def flat_row(tensors: Sequence[Tensor], transpose_weights: bool = True) -> Tensor:
    """One network's parameter-shaped tensors (in ``parameters()`` order) as a stack's flat row.

    With ``transpose_weights`` (a stack of several networks) weight matrices (2-d) enter
    transposed, ``(in x out)``; everything else, and every tensor of a stack of one, as it is.
    """
    return torch.cat([(t.mT if transpose_weights and t.ndim == 2 else t).reshape(-1) for t in tensors])


def unflatten_row(row: Tensor, net: DeepMLP, transposed: bool) -> dict[str, Tensor]:
    """One model's flat parameter row (see :func:`flat_row`) as ``net``'s named parameters.

    ``transposed``: whether weight matrices are stored ``(in x out)`` (a stack of several).
    """
    tensors, offset = {}, 0
    for name, p in net.named_parameters():
        count = p.numel()
        part = row[offset : offset + count]
        if transposed and p.ndim == 2:
            tensors[name] = part.view(p.shape[1], p.shape[0]).mT
        else:
            tensors[name] = part.view(p.shape)
        offset += count
    if offset != row.numel():
        raise ValueError(f"row: {row.numel()} numbers for a network of {offset} parameters")
    return tensors


class NetStack:
    """Several networks of one shape, run together as one.

    Build it from networks (``NetStack(nets)``: their values are copied; :meth:`copy_to`
    writes them back) or from configurations (:meth:`from_configs`, each initialized exactly as
    :func:`explodegrad.core.nets.build_from_config` does). Networks stack when their
    :meth:`NetConfig.stack_key` agrees; everything else (activation, seed, initialization,
    residual scale) may differ per model.

    Attributes:
        configs: each model's configuration.
        params: the ``(models x scalars)`` parameter matrix (the optimizer's view), one
            :func:`flat_row` per model.
        leaves: the tensors autograd differentiates, views of ``params``, one per parameter:
            in a stack of several ``(models, *shape)`` with weights ``(models, in, out)``; in a
            stack of one the network's own shapes.
        buffers: the stacked buffers ``(models, *shape)`` (batch-norm running statistics and
            counters, residual scales).
        layer_slices: column range of each layer, by paper number (see :func:`layer_slices`).
    """

    def __init__(self, nets: Sequence[DeepMLP]) -> None:
        if not isinstance(nets, Sequence) or not all(isinstance(n, DeepMLP) for n in nets):
            raise TypeError(f"nets: expected a sequence of DeepMLP networks, got {type(nets).__name__}")
        if not nets:
            raise ValueError("nets: the list is empty; give at least one network")
        first = next(nets[0].parameters())
        for i, net in enumerate(nets):
            held = next(net.parameters())
            if held.dtype != first.dtype or held.device != first.device:
                raise ValueError(
                    f"nets: network {i} holds {held.dtype} on {held.device}, network 0 {first.dtype} on "
                    f"{first.device}; a stack trains one dtype on one device: move them with .to(...)"
                )
        key = nets[0].config.stack_key()
        for i, net in enumerate(nets):
            if net.config.stack_key() != key:
                raise ValueError(
                    f"configs: configuration {i} ({net.config.label()}) cannot be stacked with "
                    f"configuration 0 ({nets[0].config.label()}): their shapes differ "
                    f"({net.config.stack_key()} vs {key}); only configurations with equal "
                    "NetConfig.stack_key() share a group"
                )
        self.configs = [net.config for net in nets]
        self.num_models = len(nets)
        segments = [
            (name, len(list(run))) for name, run in itertools.groupby(c.activation for c in self.configs)
        ]
        #: (activation name, models) of each run of consecutive models sharing an activation
        self.activation_segments: list[tuple[str, int]] = segments
        modules = {name: make_activation(name) for name, _ in segments}
        self._segment_modules = [modules[name] for name, _ in segments] if len(segments) > 1 else None
        self._segment_sizes = [count for _, count in segments]
        _, self.layer_slices = layer_slices(nets[0])
        #: (start column, units, columns per unit) of each run of equal-sized units, forward order
        self.unit_runs = unit_runs(self.layer_slices)
        self._transpose = self.num_models > 1
        with torch.no_grad():
            self.params = torch.stack([flat_row(list(net.parameters()), self._transpose) for net in nets])
            self.buffers = self._stack_buffers(nets)
        with torch.device("meta"):  # the module tree, without storage: the forward pass reads it
            self._template = DeepMLP(nets[0].config)
        self.leaves: dict[str, Tensor] = {}
        self._shapes = {name: p.shape for name, p in nets[0].named_parameters()}
        offset = 0
        for name, shape in self._shapes.items():
            count = shape.numel()
            columns = self.params[:, offset : offset + count]
            if not self._transpose:  # a stack of one: the network's own shapes, no model axis
                self.leaves[name] = columns.view(shape).requires_grad_(True)
            else:
                stored = shape[::-1] if len(shape) == 2 else shape
                self.leaves[name] = columns.view(self.num_models, *stored).requires_grad_(True)
            offset += count

    def _stack_buffers(self, nets: Sequence[DeepMLP]) -> dict[str, Tensor]:
        """Every buffer stacked along the model axis; the batch-norm counters in one matrix, so
        one ``add_`` advances them all."""
        names = [name for name, _ in nets[0].named_buffers()]
        per_net = [dict(net.named_buffers()) for net in nets]
        counters = [name for name in names if name.endswith("num_batches_tracked")]
        buffers = {
            name: torch.stack([b[name] for b in per_net]).clone() for name in names if name not in counters
        }
        self._counters = None
        if counters:
            self._counters = torch.stack([torch.stack([b[n] for n in counters]) for b in per_net]).clone()
            for j, name in enumerate(counters):
                buffers[name] = self._counters[:, j]
        return {name: buffers[name] for name in names}

    def model_tensor(self, m: int, name: str) -> Tensor:
        """Model ``m``'s parameter ``name`` in the network's own shape (a view of ``params``)."""
        if not self._transpose:
            return self.leaves[name].detach()
        tensor = self.leaves[name][m].detach()
        return tensor.mT if len(self._shapes[name]) == 2 else tensor

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

    # --- the forward pass, one operation for all models -----------------------------------

    def _linear(self, prefix: str, h: Tensor) -> Tensor:
        """``h @ W + b`` per model; ``h`` is the shared input ``(batch, in)`` or ``(models, batch, in)``."""
        weight, bias = self.leaves[f"{prefix}.weight"], self.leaves[f"{prefix}.bias"]
        if not self._transpose:  # a stack of one: the network's own F.linear, (out x in) weights
            out = F.linear(h, weight, bias)
            return out if out.ndim == 3 else out.unsqueeze(0)
        if h.ndim == 2:
            h = h.expand(self.num_models, *h.shape)
        return torch.baddbmm(bias.unsqueeze(1), h, weight)

    def _norm(self, module: nn.Module, prefix: str, h: Tensor, track: bool) -> Tensor:
        """The unit's normalization of ``h`` ``(models, batch, width)``, every model at once."""
        if isinstance(module, nn.Identity):
            return h
        weight, bias = self.leaves[f"{prefix}.weight"], self.leaves[f"{prefix}.bias"]
        models, batch, width = h.shape
        if isinstance(module, nn.BatchNorm1d):
            if batch < 2:
                raise ValueError(
                    f"inputs: a batch of {batch} example(s) is not allowed for batch norm in "
                    "training mode: batch statistics need at least 2 examples"
                )
            if module.momentum is None:
                raise ValueError(
                    "norm: batch norm with momentum=None (a cumulative average) cannot be stacked"
                )
            mean = self.buffers[f"{prefix}.running_mean"].view(-1) if track else None
            var = self.buffers[f"{prefix}.running_var"].view(-1) if track else None
            channels = h.transpose(0, 1).reshape(batch, models * width)  # (batch, models * width)
            out = F.batch_norm(
                channels, mean, var, weight.reshape(-1), bias.reshape(-1), True, module.momentum, module.eps
            )
            # back to (models, batch, width) as a strided view: a batched product reads it as it is
            # (a copy to contiguous costs 3 more operations per layer; on the CPU it gained ~6 %)
            return out.view(batch, models, width).transpose(0, 1)
        if isinstance(module, nn.LayerNorm):
            if not self._transpose:
                return F.layer_norm(h, module.normalized_shape, weight, bias, module.eps)
            normalized = F.layer_norm(h, module.normalized_shape, None, None, module.eps)
            return torch.addcmul(bias.unsqueeze(1), normalized, weight.unsqueeze(1))
        raise TypeError(f"norm: a {type(module).__name__} cannot be stacked (batch, layer or none)")

    def _activate(self, module: nn.Module, h: Tensor) -> Tensor:
        """Each model's activation of ``h`` ``(models, batch, width)``: the unit's own module
        when every model shares it, else one call per segment of the model axis."""
        if self._segment_modules is None:
            return module(h)
        pieces = torch.split(h, self._segment_sizes, dim=0)
        return torch.cat([act(piece) for act, piece in zip(self._segment_modules, pieces)], dim=0)

    def _unit(self, unit: nn.Module, prefix: str, h: Tensor, track: bool) -> Tensor:
        if isinstance(unit, DenseLayer):
            return self._activate(
                unit.activation,
                self._norm(unit.norm, f"{prefix}.norm", self._linear(f"{prefix}.linear", h), track),
            )
        if isinstance(unit, ResidualBlock):
            branch = h
            for i, layer in enumerate(unit.branch):
                if not isinstance(layer, PreActivationLayer):
                    raise TypeError(f"branch: a {type(layer).__name__} cannot be stacked")
                name = f"{prefix}.branch.{i}"
                branch = self._linear(
                    f"{name}.linear",
                    self._activate(layer.activation, self._norm(layer.norm, f"{name}.norm", branch, track)),
                )
            scale = self.buffers[f"{prefix}.residual_scale"].view(self.num_models, 1, 1)
            return torch.addcmul(h, scale, branch)
        if isinstance(unit, Readout):
            return self._linear(f"{prefix}.linear", h)
        raise TypeError(f"units: a {type(unit).__name__} cannot be stacked")

    def forward(self, x: Tensor, *, track_running_stats: bool = True) -> Tensor:
        """Logits ``(models x batch x classes)`` of every model on the shared batch ``x``.

        The networks run in training mode (batch norm normalizes with each model's batch
        statistics). ``track_running_stats=False`` leaves the running averages untouched, as
        the records' evaluation passes must.
        """
        h = x
        for i, unit in enumerate(self._template.units):
            h = self._unit(unit, f"units.{i}", h, track_running_stats)
        if track_running_stats and self._counters is not None:
            with torch.no_grad():
                self._counters.add_(1)
        return h if h.ndim == 3 else h.expand(self.num_models, *h.shape)

    __call__ = forward

    def losses(self, x: Tensor, y: Tensor, *, track_running_stats: bool = True) -> tuple[Tensor, Tensor]:
        """Per-model mean cross-entropy ``(models,)`` and the logits on one batch."""
        logits = self.forward(x, track_running_stats=track_running_stats)
        models, batch, classes = logits.shape
        per_example = per_example_loss(logits.reshape(models * batch, classes), y.repeat(models))
        return per_example.view(models, batch).mean(dim=1), logits

    def gradients(self, total_loss: Tensor) -> Tensor:
        """The flat ``(models x scalars)`` gradient of a sum of per-model losses (one concatenation)."""
        leaves = list(self.leaves.values())
        grads = torch.autograd.grad(total_loss, leaves, allow_unused=True)
        return torch.cat(
            [
                (torch.zeros_like(leaf) if grad is None else grad).reshape(self.num_models, -1)
                for grad, leaf in zip(grads, leaves)
            ],
            dim=1,
        )

    @torch.no_grad()
    def evaluate(self, x: Tensor, y: Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Per-model mean loss and error rate on one batch (batch statistics, running averages
        untouched), read back in one transfer."""
        loss, logits = self.losses(x, y, track_running_stats=False)
        wrong = (logits.argmax(dim=2) != y) | ~torch.isfinite(logits).all(dim=2)  # argmax(NaN) is 0
        error = wrong.double().mean(dim=1)
        loss_and_error = torch.stack([loss.double(), error]).cpu().numpy()
        return loss_and_error[0], loss_and_error[1]

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
