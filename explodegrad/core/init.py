"""Weight initializers, including the orthogonal initial state.

All draws use a private ``torch.Generator`` seeded from the configuration, so building the
same network twice gives the same weights and never disturbs the global random state.

Standard deviations (``scale`` multiplies all of them):

========== ==========================================================
he         sqrt(2 / fan_in)             (Kaiming; keeps ReLU variance)
xavier     sqrt(2 / (fan_in + fan_out)) (Glorot; for tanh / sigmoid)
lecun      sqrt(1 / fan_in)             (for SELU; per-layer gain = scale)
gaussian   scale                        (the naive draw N(0, scale^2))
orthogonal (semi-)orthogonal matrix times scale
========== ==========================================================

``looks_linear`` is the *orthogonal initial state* for ReLU networks: hidden weights
``[[W, -W], [-W, W]]`` with W orthogonal, the first layer ``[W; -W]`` and the readout
``[W, -W]``. Because ``relu(u) - relu(-u) = u``, the whole initial network is exactly the
linear map ``W_1 ... W_L`` (Balduzzi et al., 2017), so its GSC is 1 at every layer.
Biases start at zero; normalization layers at weight 1, bias 0.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from explodegrad.core.checks import check_choice, check_float_dtype, check_int, check_positive, check_seed
from explodegrad.core.config import INITS


def orthogonal_matrix(
    rows: int, cols: int, generator: torch.Generator, dtype: torch.dtype | None = None
) -> Tensor:
    """A rows x cols matrix with orthonormal rows (rows <= cols) or columns (rows > cols).

    Drawn uniformly (Haar) by the QR decomposition of a Gaussian matrix with the signs of R's
    diagonal folded into Q. ``dtype`` defaults to torch's default dtype.
    """
    rows = check_int("rows", rows, 1)
    cols = check_int("cols", cols, 1)
    _check_generator(generator)
    dtype = None if dtype is None else check_float_dtype(dtype)
    big, small = max(rows, cols), min(rows, cols)
    gaussian = torch.randn(big, small, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(gaussian)
    q = q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, torch.ones(()))
    return (q if rows >= cols else q.T).to(dtype or torch.get_default_dtype())


def weight_std(init: str, fan_in: int, fan_out: int, scale: float) -> float:
    """Standard deviation of a Gaussian initializer (not for orthogonal ones)."""
    init = check_choice("init", init, ("he", "xavier", "lecun", "gaussian"))
    fan_in = check_int("fan_in", fan_in, 1)
    fan_out = check_int("fan_out", fan_out, 1)
    scale = check_positive("scale", scale)
    return (
        scale
        * {
            "he": math.sqrt(2.0 / fan_in),
            "xavier": math.sqrt(2.0 / (fan_in + fan_out)),
            "lecun": math.sqrt(1.0 / fan_in),
            "gaussian": 1.0,
        }[init]
    )


def _check_generator(generator: object) -> None:
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator: expected a torch.Generator (e.g. torch.Generator().manual_seed(0)), got "
            f"{type(generator).__name__}"
        )


def _reset_norms_and_biases(net: nn.Module) -> None:
    for module in net.modules():
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, (nn.BatchNorm1d, nn.LayerNorm)) and module.weight is not None:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


@torch.no_grad()
def initialize(net: nn.Module, init: str = "he", scale: float = 1.0, seed: int = 0) -> nn.Module:
    """Initialize every linear layer of ``net`` in place and return it.

    Args:
        net: a :class:`explodegrad.core.nets.DeepMLP` (``looks_linear`` needs one) or any module
            with ``nn.Linear`` layers.
        init: one of :data:`explodegrad.core.config.INITS`.
        scale: multiplier of the standard deviation (absolute std for ``"gaussian"``).
        seed: seed of the private generator.
    """
    if not isinstance(net, nn.Module):
        raise TypeError(f"net: expected a torch module (e.g. from build_mlp), got {type(net).__name__}")
    init = check_choice("init", init, INITS)
    scale = check_positive("scale", scale)
    seed = check_seed("seed", seed)
    generator = torch.Generator().manual_seed(seed)
    _reset_norms_and_biases(net)
    if init == "looks_linear":
        _looks_linear(net, scale, generator)
        return net
    for linear in (m for m in net.modules() if isinstance(m, nn.Linear)):
        fan_out, fan_in = linear.weight.shape
        if init == "orthogonal":
            weight = scale * orthogonal_matrix(fan_out, fan_in, generator)
        else:
            std = weight_std(init, fan_in, fan_out, scale)
            # Drawn in float64 whatever the network's dtype: torch's float32 normal sampler has a
            # vectorized (AVX2/AVX-512) path whose digits differ from the portable one, so a float32
            # draw would give another CPU other initial weights; the float64 sampler is the same.
            weight = std * torch.randn(fan_out, fan_in, generator=generator, dtype=torch.float64)
        linear.weight.copy_(weight)
    return net


def _looks_linear(net: nn.Module, scale: float, generator: torch.Generator) -> None:
    units = getattr(net, "units", None)
    config = getattr(net, "config", None)
    if units is None or config is None:
        raise TypeError("net: init='looks_linear' needs a DeepMLP built by explodegrad.core.nets.build_mlp")
    linears = [unit.linear for unit in units]
    if len(linears) == 1:  # a single readout: nothing mirrored, just orthogonal
        out_f, in_f = linears[0].weight.shape
        linears[0].weight.copy_(scale * orthogonal_matrix(out_f, in_f, generator))
        return
    half = config.width // 2
    first = scale * orthogonal_matrix(half, config.in_features, generator)
    linears[0].weight.copy_(torch.cat([first, -first], dim=0))
    for linear in linears[1:-1]:
        w = scale * orthogonal_matrix(half, half, generator)
        linear.weight.copy_(torch.cat([torch.cat([w, -w], 1), torch.cat([-w, w], 1)], 0))
    last = scale * orthogonal_matrix(config.out_features, half, generator)
    linears[-1].weight.copy_(torch.cat([last, -last], dim=1))


def effective_linear_map(net: nn.Module) -> Tensor:
    """The matrix a looks-linear ReLU network computes at initialization: ``W_L ... W_1``.

    Only the first half of each mirrored weight is used, as the construction implies.
    """
    units = getattr(net, "units", None)
    config = getattr(net, "config", None)
    if units is None or config is None or getattr(config, "init", None) != "looks_linear":
        raise TypeError(
            "net: effective_linear_map needs a DeepMLP built with init='looks_linear' "
            f"(build_mlp(..., init='looks_linear')), got {type(net).__name__}"
            + (f" with init={config.init!r}" if config is not None else "")
        )
    if len(units) == 1:
        return units[0].linear.weight.detach().clone()
    half = config.width // 2
    product = units[0].linear.weight[:half].detach()
    for unit in units[1:-1]:
        product = unit.linear.weight[:half, :half].detach() @ product
    return units[-1].linear.weight[:, :half].detach() @ product
