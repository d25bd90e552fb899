"""Networks whose layers can be addressed the way the paper numbers them.

Layers are numbered from the output (Philipp et al., 2018): f_0 is the vector of per-example
losses, f_1 the logits, f_L the first layer's output and f_{L+1} the input. A
:class:`DeepMLP` keeps its layers in ``units`` from input to output, so ``net.layer(k)`` is
``net.units[L - k]``. Each unit returns its output and its pre-activation (the value fed to
its nonlinearity), which :mod:`explodegrad.core.trace` records.

A plain layer is linear -> norm -> activation. A residual block is ``x + residual_scale *
r(x)`` whose branch ``r`` is ``block_depth`` pre-activation layers (norm -> activation ->
linear), the usual ResNet-v2 ordering: the branch then ends in a linear map, so its output
is centred and not forced to be positive.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from explodegrad.core.checks import (
    check_float_dtype,
    check_int,
    check_memory,
    check_tensor,
    dtype_name,
)
from explodegrad.core.config import NetConfig
from explodegrad.core.device import check_device_available, resolve_device


def make_activation(name: str) -> nn.Module:
    """The activation module for a name of :data:`explodegrad.core.config.ACTIVATIONS`."""
    return {
        "relu": nn.ReLU,
        "tanh": nn.Tanh,
        "selu": nn.SELU,
        "sigmoid": nn.Sigmoid,
        "linear": nn.Identity,
        "gelu": nn.GELU,
        "leaky_relu": nn.LeakyReLU,
        "softplus": nn.Softplus,
    }[name]()


def make_norm(name: str, width: int) -> nn.Module:
    """The normalization module for ``"none"``, ``"batch"`` or ``"layer"``."""
    if name == "batch":
        return nn.BatchNorm1d(width)
    if name == "layer":
        return nn.LayerNorm(width)
    return nn.Identity()


def _check_batch(module: nn.Module, norm: nn.Module, x: Tensor) -> None:
    if isinstance(norm, nn.BatchNorm1d) and module.training and x.shape[0] < 2:
        raise ValueError(
            f"inputs: a batch of {x.shape[0]} example(s) is not allowed for batch norm in "
            "training mode: batch statistics need at least 2 examples (call net.eval() to use "
            "running statistics)"
        )


class DenseLayer(nn.Module):
    """A plain layer: linear -> norm -> activation."""

    def __init__(self, in_features: int, out_features: int, activation: str, norm: str) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.norm = make_norm(norm, out_features)
        self.activation = make_activation(activation)

    def forward_with_preactivation(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Output and pre-activation (the normalized linear output)."""
        _check_batch(self, self.norm, x)
        pre = self.norm(self.linear(x))
        return self.activation(pre), pre

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_preactivation(x)[0]


class PreActivationLayer(nn.Module):
    """One layer of a residual branch: norm -> activation -> linear."""

    def __init__(self, width: int, activation: str, norm: str) -> None:
        super().__init__()
        self.norm = make_norm(norm, width)
        self.activation = make_activation(activation)
        self.linear = nn.Linear(width, width)

    def forward_with_preactivation(self, x: Tensor) -> tuple[Tensor, Tensor]:
        _check_batch(self, self.norm, x)
        pre = self.norm(x)
        return self.linear(self.activation(pre)), pre

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_preactivation(x)[0]


class ResidualBlock(nn.Module):
    """``x + residual_scale * r(x)`` with an identity skip.

    The recorded pre-activation is that of the branch's first layer, the one fed by the
    block's input. ``residual_scale`` is a (non-persistent) 0-d buffer, not a Python float, so
    that networks stacked together (:mod:`explodegrad.training.stacked`) can each
    have their own; it is not saved in the ``state_dict`` (the configuration carries it).
    """

    residual_scale: Tensor

    def __init__(
        self, width: int, activation: str, norm: str, block_depth: int, residual_scale: float
    ) -> None:
        super().__init__()
        self.branch = nn.ModuleList(PreActivationLayer(width, activation, norm) for _ in range(block_depth))
        self.register_buffer("residual_scale", torch.tensor(float(residual_scale)), persistent=False)

    def residual(self, x: Tensor) -> Tensor:
        """The scaled residual branch ``residual_scale * r(x)`` alone."""
        return self.residual_scale * self._branch(x)[0]

    def _branch(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h, first_pre = x, None
        for layer in self.branch:
            h, pre = layer.forward_with_preactivation(h)
            first_pre = pre if first_pre is None else first_pre
        return h, first_pre

    def forward_with_preactivation(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h, pre = self._branch(x)
        return x + self.residual_scale * h, pre

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_preactivation(x)[0]


class Readout(nn.Module):
    """The final linear layer producing the logits f_1; its pre-activation is its output."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward_with_preactivation(self, x: Tensor) -> tuple[Tensor, Tensor]:
        out = self.linear(x)
        return out, out

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x)


def per_example_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """f_0: the cross-entropy of every example (a vector, not its mean).

    Labels are not range-checked here (this runs inside every measure): they are checked where
    data enters (:func:`explodegrad.core.checks.check_batch`).
    """
    check_tensor("logits", logits)
    check_tensor("targets", targets)
    return F.cross_entropy(logits, targets, reduction="none")


def _unit_layout(c: NetConfig) -> list[tuple[type[nn.Module], int, int]]:
    """(kind, fan-in, fan-out) of each unit from input to output, as :class:`DeepMLP` builds it
    and :meth:`DeepMLP.check_structure` checks it (a block's linear maps are all width x width)."""
    if not c.residual and c.depth == 1:
        return [(Readout, c.in_features, c.out_features)]
    middle = (
        [(ResidualBlock, c.width, c.width)] * c.num_blocks
        if c.residual
        else [(DenseLayer, c.width, c.width)] * (c.depth - 2)
    )
    return [(DenseLayer, c.in_features, c.width), *middle, (Readout, c.width, c.out_features)]


class DeepMLP(nn.Module):
    """A deep multilayer perceptron with paper-numbered layers.

    Use :func:`build_mlp` to make one; ``units`` runs from input to output.
    """

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        self.config = _check_config(config)
        c = config
        units: list[nn.Module] = []
        for kind, fan_in, fan_out in _unit_layout(c):
            if kind is ResidualBlock:
                units.append(ResidualBlock(c.width, c.activation, c.norm, c.block_depth, c.residual_scale))
            elif kind is DenseLayer:
                units.append(DenseLayer(fan_in, fan_out, c.activation, c.norm))
            else:
                units.append(Readout(fan_in, fan_out))
        self.units = nn.ModuleList(units)

    @property
    def num_layers(self) -> int:
        """L, the number of addressable layers (f_1 ... f_L)."""
        return len(self.units)

    def position(self, k: int) -> int:
        """Index in ``units`` of layer k (paper numbering, 1 <= k <= L)."""
        k = check_int("k", k, 1, self.num_layers)
        return self.num_layers - k

    def layer(self, k: int) -> nn.Module:
        """The module that produces f_k."""
        return self.units[self.position(k)]

    def forward(self, x: Tensor) -> Tensor:
        for unit in self.units:
            x = unit(x)
        return x

    def forward_from(self, k: int, f_k: Tensor, to: int = 1) -> Tensor:
        """Run the layers above f_k and return f_to (``k > to >= 1``; ``k = L + 1`` is the input)."""
        k = check_int("k", k, 2, self.num_layers + 1)
        to = check_int("to", to, 1, k - 1)
        h = f_k
        for unit in self.units[self.num_layers + 1 - k : self.num_layers + 1 - to]:
            h = unit(h)
        return h

    def check_structure(self) -> None:
        """Refuse a network whose modules were replaced so that they no longer match its
        ``config`` (the measures address layers by the config): ``TypeError`` for a unit of
        another kind, ``ValueError`` for a linear map of another shape, each naming the unit."""
        c = self.config
        layout = _unit_layout(c)
        if len(self.units) != len(layout):
            raise ValueError(
                f"net: {len(self.units)} units do not match its config ({c.label()}: {len(layout)} units)"
            )
        for position, (unit, (kind, fan_in, fan_out)) in enumerate(zip(self.units, layout)):
            if type(unit) is not kind:
                raise TypeError(
                    f"net.units[{position}]: expected a {kind.__name__} as built by build_mlp, got "
                    f"{type(unit).__name__}"
                )
            linears = [m for m in unit.modules() if isinstance(m, nn.Linear)]
            shapes = [(m.in_features, m.out_features) for m in linears]
            wanted = [(fan_in, fan_out)] * (len(linears) if kind is ResidualBlock else 1)
            if shapes != wanted:
                raise ValueError(
                    f"net.units[{position}]: linear map(s) of shape {shapes} do not match its config "
                    f"({c.label()}, {c.in_features} inputs, {c.out_features} classes: {wanted})"
                )

    def linear_layers(self) -> list[nn.Linear]:
        """Every linear map, from input to output."""
        return [m for m in self.modules() if isinstance(m, nn.Linear)]

    def extra_repr(self) -> str:
        return self.config.label()


def build_mlp(
    depth: int = 10,
    width: int = 100,
    activation: str = "relu",
    norm: str = "none",
    init: str = "he",
    *,
    residual: bool = False,
    residual_scale: float = 1.0,
    block_depth: int = 2,
    in_features: int = 64,
    out_features: int = 10,
    init_scale: float = 1.0,
    seed: int = 0,
    device: Any = None,
    dtype: torch.dtype | None = None,
) -> DeepMLP:
    """Build and initialize a :class:`DeepMLP`.

    Args:
        depth, width, activation, norm, init, residual, residual_scale, block_depth,
        in_features, out_features, init_scale, seed: see :class:`explodegrad.core.config.NetConfig`.
        device: where the parameters live: a torch device or its name, or the setup call's
            :class:`~explodegrad.core.device.DeviceChoice` (default: the CPU).
        dtype: parameter dtype (default: torch's default, float32).

    Returns:
        The network, in training mode.
    """
    config = NetConfig(
        depth=depth,
        width=width,
        activation=activation,
        norm=norm,
        init=init,
        init_scale=init_scale,
        residual=residual,
        residual_scale=residual_scale,
        block_depth=block_depth,
        in_features=in_features,
        out_features=out_features,
        seed=seed,
    )
    return build_from_config(config, device=device, dtype=dtype)


def _check_config(config: Any) -> NetConfig:
    if not isinstance(config, NetConfig):
        raise TypeError(
            f"config: expected a NetConfig (e.g. NetConfig(depth=10, width=100)), got {type(config).__name__}"
        )
    return config


def network_memory_bytes(config: NetConfig, dtype: torch.dtype | None = None) -> int:
    """About how many bytes building the network of ``config`` takes at its peak.

    The parameters are made in torch's default dtype, then converted to ``dtype``; the largest
    weight matrix is drawn in float64 (three copies: the draw, the scaled draw, a QR factor).
    """
    config = _check_config(config)
    final = torch.get_default_dtype() if dtype is None else check_float_dtype(dtype)
    default_size = torch.empty((), dtype=torch.get_default_dtype()).element_size()
    final_size = torch.empty((), dtype=final).element_size()
    parameters = config.num_parameters()
    largest = max(out * inp for out, inp in config.linear_shapes())
    converted = parameters * final_size if final != torch.get_default_dtype() else 0
    return parameters * default_size + converted + 3 * 8 * largest


def check_network_size(config: NetConfig, dtype: torch.dtype | None = None) -> None:
    """Refuse, before any allocation, a network that needs more memory than the machine has."""
    needed = network_memory_bytes(config, dtype)
    settings = f"depth={config.depth}, width={config.width}"
    if config.in_features > config.width or config.out_features > config.width:
        settings += f", in_features={config.in_features}, out_features={config.out_features}"
    check_memory(settings, f"this network ({config.num_parameters():,} parameters)", needed)


def _check_weights_finite(net: DeepMLP, dtype: torch.dtype) -> None:
    """The initial weights must be finite numbers in the network's dtype (a huge ``init_scale``)."""
    from explodegrad.core.init import weight_std

    for linear in net.linear_layers():
        if not bool(torch.isfinite(linear.weight).all()):
            config = net.config
            fan_out, fan_in = linear.weight.shape
            std = config.init_scale * (
                1.0
                if config.init in ("orthogonal", "looks_linear")
                else weight_std(config.init, fan_in, fan_out, 1.0)
            )
            made_in = torch.get_default_dtype()  # the modules are made (and drawn into) in it
            limiting = made_in if torch.finfo(made_in).max < torch.finfo(dtype).max else dtype
            raise ValueError(
                f"init_scale={config.init_scale:g} is not allowed: the initial weights (std {std:.3g} "
                f"in the {fan_out} x {fan_in} layer) overflow to inf in {dtype_name(limiting)}, which "
                f"holds at most {torch.finfo(limiting).max:.3g}; choose a smaller init_scale"
            )


def build_from_config(config: NetConfig, device: Any = None, dtype: torch.dtype | None = None) -> DeepMLP:
    """Build and initialize the network a :class:`NetConfig` describes (seeded, no global RNG use).

    The weights are drawn in float64 and stored in float32 before the network moves to
    ``dtype``, so every dtype gets the same draw, rounded once to float32: a float64 network's
    weights are float32 numbers. For the Gaussian initializers that is just another sample; an
    orthogonal or looks-linear float64 network is therefore orthogonal to about 1e-7, not to
    float64 rounding (its GSC between hidden layers is 1 to about 1e-8).

    Raises:
        TypeError: ``config`` is not a NetConfig, ``dtype`` not a dtype, ``device`` not a device.
        ValueError: a non-floating dtype, an unknown or absent device, a network larger than the
            machine's memory (refused before allocating, with the estimate), or an ``init_scale``
            whose weights overflow in ``dtype``.
    """
    from explodegrad.core.init import (
        initialize,  # init sits beside nets; imported here to keep nets standalone
    )

    config = _check_config(config)
    dtype = None if dtype is None else check_float_dtype(dtype)
    device = None if device is None else check_device_available(resolve_device(device), device)
    check_network_size(config, dtype)
    with torch.random.fork_rng(devices=[]):
        net = DeepMLP(config)
    initialize(net, config.init, scale=config.init_scale, seed=config.seed)
    net = net.to(device=device, dtype=dtype)
    _check_weights_finite(net, dtype or torch.get_default_dtype())
    with torch.no_grad():  # exact in the final dtype, not rounded through float32 first
        for unit in net.units:
            if isinstance(unit, ResidualBlock):
                unit.residual_scale.fill_(config.residual_scale)
    return net
