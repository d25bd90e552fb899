"""Chapter 08's width-against-depth explorer: pick an architecture and a parameter budget, train
networks of several depths, each as wide as the budget allows, and see which trains best."""

from __future__ import annotations

import torch
from matplotlib.figure import Figure

from explodegrad.core.checks import check_int
from explodegrad.core.data import load_digits
from explodegrad.core.device import DeviceLike, as_device_choice
from explodegrad.core.scales import QUICK
from explodegrad.plots.width_depth import plot_width_vs_depth
from explodegrad.studies.common import Architecture, study_settings
from explodegrad.studies.width_depth import WidthDepthResult, width_vs_depth
from explodegrad.widgets.base import Explorer
from explodegrad.widgets.controls import choice, clamp_notice, depth_slider, width_slider

#: The depths compared at every budget.
DEPTHS = (2, 4, 8, 16, 32)


def budget_study(
    activation: str, norm: str, depth: int, width: int, steps: int = 100, device: str = "cpu"
) -> WidthDepthResult:
    """The explorer's experiment: the budget is a ``depth`` x ``width`` network's parameter count;
    networks of :data:`DEPTHS` layers, each as wide as that budget allows, train on the digits
    (one seed, the learning rate chosen per depth among 0.03, 0.1 and 0.3, float32)."""
    steps = check_int("steps", steps, 1, 2000)
    data = load_digits(device=device, dtype=torch.float32)
    settings = study_settings(QUICK, checkpoints=1, steps=steps, record_every=steps)
    reference = Architecture(activation, norm).config(depth, width, data.in_features, data.num_classes)
    return width_vs_depth(
        DEPTHS,
        budget=reference.num_parameters(),
        data=data,
        seeds=(0,),
        architecture=Architecture(activation, norm),
        settings=settings,
    )


def width_depth_explorer(
    activation: str = "relu",
    norm: str = "batch",
    depth: int = 20,
    width: int = 64,
    *,
    steps: int = 100,
    device: DeviceLike = None,
) -> Explorer:
    """Choose the activation, the normalization and the reference network whose parameter count
    is the budget; every change trains the five depths of :data:`DEPTHS` at that budget (a few
    seconds to a minute on a CPU) and draws their final errors against depth."""
    device = as_device_choice(device)
    controls = {
        "activation": choice("activation", ("relu", "tanh", "selu"), activation, ("relu", "tanh", "selu")),
        "norm": choice("norm", ("none", "batch", "layer"), norm, ("none", "batch", "layer")),
        "depth": depth_slider(depth, minimum=2, maximum=60),
        "width": width_slider(width, minimum=8, maximum=256),
    }
    extras = [clamp_notice(controls)]

    def experiment(activation: str, norm: str, depth: int, width: int) -> WidthDepthResult:
        return budget_study(activation, norm, depth, width, steps=steps, device=str(device.device))

    def draw(result: WidthDepthResult) -> Figure:
        return plot_width_vs_depth(result)

    return Explorer(
        controls,
        experiment,
        draw,
        "Width against depth at one parameter budget (the budget: a depth x width network)",
        device=device,
        describe=WidthDepthResult.summary,
        extras=extras,
    )
