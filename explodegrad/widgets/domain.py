"""The collapsing-domain explorer: how much of its nonlinearity each hidden layer uses."""

from __future__ import annotations

from matplotlib.figure import Figure

from explodegrad.core.device import DeviceLike, as_device_choice
from explodegrad.measures.domain import DomainStats, domain_stats
from explodegrad.plots.domain import plot_domain_stats
from explodegrad.widgets.base import Explorer
from explodegrad.widgets.controls import (
    NetSetting,
    architecture_controls,
    clamp_notice,
)


def measure_domain(
    setting: NetSetting,
    depth: int,
    width: int,
    activation: str,
    norm: str,
    init: str,
    residual: bool,
    residual_scale: float,
) -> DomainStats:
    """Domain statistics of a freshly built network on one batch of digits."""
    net = setting.network(depth, width, activation, norm, init, residual, residual_scale)
    inputs, _ = setting.batch()
    return domain_stats(net, inputs)


def describe_domain(stats: DomainStats) -> str:
    """The line under the figure: the numbers at the hidden layer nearest the output (k = 2)."""
    if stats.layers.size == 0:
        return f"{stats.label}: no hidden layers"
    top = stats.at(int(stats.layers[0]))
    return (
        f"{stats.label}, layer k = 2: relative spread {top['preact_std_relative']:.3f}, "
        f"sign diversity {top['sign_diversity']:.3f}, linear fit error "
        f"{top['linear_fit_error']:.3f}"
    )


def domain_explorer(
    depth: int = 20,
    width: int = 64,
    activation: str = "tanh",
    norm: str = "none",
    init: str = "xavier",
    residual: bool = False,
    residual_scale: float = 1.0,
    *,
    max_depth: int = 60,
    max_width: int = 128,
    device: DeviceLike = None,
    seed: int = 0,
) -> Explorer:
    """Explore the collapsing domain of a network at initialization.

    Every change builds the network (seeded), runs one batch of 128 digits and measures, per
    hidden layer k, the spread of the pre-activations across the batch, their sign diversity
    and how well the best affine map fits the layer's activation on them. A network whose
    domain collapses acts more and more linearly: a deep but effectively shallow network.

    Args:
        depth, width, activation, norm, init, residual, residual_scale: the starting setting
            (residual networks need depth = 2 + a multiple of 2; another depth shows why).
        max_depth, max_width: slider ranges.
        device: where to run (a name such as 'cpu', a torch.device, or the
            setup's ctx.device; default: :func:`~explodegrad.core.device.pick_device`'s choice).
        seed: seed of the weights and of the batch.
    """
    device = as_device_choice(device)
    setting = NetSetting(device.device, seed)
    controls = architecture_controls(
        depth,
        width,
        activation,
        norm,
        init,
        residual,
        residual_scale,
        max_depth=max_depth,
        max_width=max_width,
    )

    def experiment(**values: object) -> DomainStats:
        return measure_domain(setting, **values)

    def draw(stats: DomainStats) -> Figure:
        return plot_domain_stats(stats)

    return Explorer(
        controls,
        experiment,
        draw,
        "The collapsing domain: what each layer's nonlinearity sees",
        device=device,
        describe=describe_domain,
        extras=[clamp_notice(controls)],
        name="domain",
    )
