"""The chain-rule explorer: a gradient is a product of one factor per layer."""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as w
import torch
from matplotlib.figure import Figure

from explodegrad.core.device import DeviceChoice
from explodegrad.plots.chain_rule import plot_linear_gradients, plot_scalar_chain
from explodegrad.plots.theme import new_panels
from explodegrad.studies.chain_rule import ChainResult, LinearGradients, deep_linear_gradients, scalar_chain
from explodegrad.widgets.base import Explorer
from explodegrad.widgets.controls import clamp_notice, depth_slider


@dataclass(frozen=True)
class ChainPair:
    """The two toys at one setting: the scalar chain w^L and a deep linear network of gain w."""

    scalar: ChainResult
    linear: LinearGradients


def measure_chain(depth: int, weight: float, width: int = 64, seed: int = 0) -> ChainPair:
    """The scalar chain y = w^depth x and a deep linear network with per-layer gain ``weight``
    (float64, on the CPU: both are tiny)."""
    return ChainPair(
        scalar_chain(weight=weight, depth=depth),
        deep_linear_gradients(depth=depth, width=width, sigma=weight, seed=seed),
    )


def describe_chain(pair: ChainPair) -> str:
    """The line under the figure: dy/dx of the chain, and the linear network's growth."""
    return (
        f"scalar chain: dy/dx = w^{pair.scalar.depth} = {pair.scalar.input_gradient:.4g}; "
        f"linear network: x{pair.linear.growth_factor:.3g} per layer "
        f"(predicted x{pair.linear.predicted_growth:g})"
    )


def chain_explorer(
    depth: int = 30, weight: float = 1.2, *, width: int = 64, max_depth: int = 100, seed: int = 0
) -> Explorer:
    """Explore the chain rule: the gradient after l layers is a product of l factors.

    Left: y = w * w * ... * w * x, where autograd's gradient after l multiplications is exactly
    w^l. Right: a deep linear network whose layers each multiply a vector's norm by about the
    same w (Gaussian weights of std w / sqrt(width)): the gradient norm grows like w per layer.

    Args:
        depth: number of multiplications / layers at the start.
        weight: the factor w (the per-layer gain of the linear network).
        width: the linear network's width.
        max_depth: slider range.
        seed: seed of the linear network.

    These toys are tiny and run in float64 on the CPU, whatever GPU there is; the device
    label says so.
    """
    device = DeviceChoice(torch.device("cpu"), "CPU", "the chain-rule toys are tiny: float64 on the CPU")
    controls = {
        "depth": depth_slider(depth, minimum=1, maximum=max_depth),
        "weight": w.FloatSlider(
            value=float(weight),
            min=0.5,
            max=2.0,
            step=0.05,
            description="weight scale w",
            readout_format=".2f",
            continuous_update=False,
            style={"description_width": "initial"},
        ),
    }

    def experiment(depth: int, weight: float) -> ChainPair:
        return measure_chain(depth, weight, width, seed)

    def draw(pair: ChainPair) -> Figure:
        fig, (left, right) = new_panels(2)
        plot_scalar_chain(pair.scalar, ax=left, title=f"scalar chain y = w^{pair.scalar.depth} x")
        plot_linear_gradients(pair.linear, ax=right)
        return fig

    return Explorer(
        controls,
        experiment,
        draw,
        "The chain rule: gradients multiply, layer by layer",
        device=device,
        describe=describe_chain,
        name="chain",
        extras=[clamp_notice(controls)],
    )
