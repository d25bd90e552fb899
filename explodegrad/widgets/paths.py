"""Chapter 07's explorer: the path-length distribution of a network at initialization.

Controls: depth, plain or residual, the residual branch's scale (skip strength), activation
and normalization. Each setting builds the network, splits it by the residual trick with its
natural skip (identity for ResNets, each layer's best affine fit for plain networks) and
redraws every lambda's share of the gradient with the effective depth it gives
(:func:`explodegrad.studies.effective_depth.paths_at_initialization`).
"""

from __future__ import annotations

from functools import partial

import ipywidgets as w
import torch
from matplotlib.figure import Figure

from explodegrad.core.checks import check_int
from explodegrad.core.config import residual_depth
from explodegrad.core.data import load_digits
from explodegrad.core.device import DeviceLike, as_device_choice
from explodegrad.measures.paths import PathContributions
from explodegrad.plots.paths import plot_path_contributions
from explodegrad.studies.effective_depth import paths_at_initialization
from explodegrad.widgets.base import Explorer
from explodegrad.widgets.controls import ClampReportingFloatLogSlider, clamp_notice, depth_slider


def _describe(result: PathContributions) -> str:
    """The title: effective depth of L, in the units lambda counts (a ResNet's are blocks, its
    input layer and readout; a plain network's are layers)."""
    units = "units" if result.skip == "identity" else "layers"
    return (
        f"{result.label}: effective depth {result.effective_depth} of L = {int(result.lambdas[-1])} {units} "
        f"(skip: {result.skip}, share >= {result.threshold:g})"
    )


def path_explorer(
    device: DeviceLike = None, depth: int = 20, width: int = 64, max_depth: int = 50
) -> Explorer:
    """Depth, residual layout, skip strength, activation and norm -> lambda-shares at initialization.

    The depth slider steps by 2 (a residual network needs an input layer, blocks of two layers
    and a readout). A batch of 128 digits and 2 probes keep each redraw well under a second on
    a CPU at the default sizes.
    """
    device = as_device_choice(device)
    max_depth = check_int("max_depth", max_depth, 4)
    depth = check_int("depth", depth, 4, max_depth)
    controls = {
        "depth": depth_slider(residual_depth(depth), minimum=4, maximum=max_depth, step=2),
        "residual": w.Checkbox(value=True, description="residual"),
        "residual_scale": ClampReportingFloatLogSlider(
            value=1.0, base=10, min=-2, max=0.5, step=0.25, description="branch scale"
        ),
        "activation": w.Dropdown(options=["relu", "tanh", "selu"], value="relu", description="activation"),
        "norm": w.Dropdown(options=["none", "batch", "layer"], value="none", description="norm"),
    }
    data = load_digits(device=device.device, dtype=torch.float32)
    experiment = partial(paths_at_initialization, width=width, data=data, device=device.device)

    def draw(result: PathContributions) -> Figure:
        return plot_path_contributions(result, title=f"path lengths at initialization: {result.label}")

    return Explorer(
        controls,
        experiment,
        draw,
        "Which path lengths carry the gradient?",
        device=device,
        describe=_describe,
        name="paths",
        extras=[clamp_notice(controls)],
    )
