"""The GSC explorer: exploding gradients measured, layer by layer, as the architecture changes."""

from __future__ import annotations

from matplotlib.figure import Figure

from explodegrad.core.device import DeviceLike, as_device_choice
from explodegrad.measures.gsc import GSCProfile, gsc_profile
from explodegrad.plots.gsc import plot_gsc_profile, rate_note
from explodegrad.widgets.base import Explorer
from explodegrad.widgets.controls import (
    NetSetting,
    architecture_controls,
    clamp_notice,
    toggle,
)


def measure_gsc(
    setting: NetSetting,
    depth: int,
    width: int,
    activation: str,
    norm: str,
    init: str,
    residual: bool,
    residual_scale: float,
) -> GSCProfile:
    """GSC(k, 0) of a freshly built network on one batch of digits (probe method: one probe,
    exact, without batch norm; a few probes with it)."""
    net = setting.network(depth, width, activation, norm, init, residual, residual_scale)
    inputs, targets = setting.batch()
    return gsc_profile(net, inputs, targets, reference=0)


def describe_gsc(profile: GSCProfile) -> str:
    """The line under the figure: the network, its rate with the verdict of the one definition of
    exploding, and its GSC from the first layer (a level, which also holds the loss's own factor)."""
    return (
        f"{profile.label}: {rate_note(profile)}; GSC(L, 0) = {profile.first_layer_gsc:.3g} from the "
        f"first layer (a level: it also holds the loss and readout factors); {profile.message}"
    )


def gsc_explorer(
    depth: int = 20,
    width: int = 64,
    activation: str = "relu",
    norm: str = "none",
    init: str = "he",
    residual: bool = False,
    residual_scale: float = 1.0,
    *,
    raw: bool = True,
    max_depth: int = 60,
    max_width: int = 128,
    device: DeviceLike = None,
    seed: int = 0,
) -> Explorer:
    """Explore the GSC profile of a network at initialization; raw gradient norms beside it.

    Every change builds the network again (seeded), runs one batch of 128 digits and measures
    GSC(k, 0) for every layer k. The depth counts weight layers; a residual network needs
    depth = 2 + a multiple of 2 (an input layer, blocks of two layers, the readout): another
    depth shows that message instead of a figure. The residual scale (skip strength) only acts
    when "residual" is ticked.

    Args:
        depth, width, activation, norm, init, residual, residual_scale: the starting setting.
        raw: show the raw gradient norms panel at the start.
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

    def experiment(**values: object) -> GSCProfile:
        return measure_gsc(setting, **values)

    def draw(profile: GSCProfile, raw: bool) -> Figure:
        return plot_gsc_profile(profile, raw=raw)

    return Explorer(
        controls,
        experiment,
        draw,
        "Gradient scale coefficient GSC(k, 0) at initialization, layer by layer",
        device=device,
        describe=describe_gsc,
        view_controls={"raw": toggle("raw gradient norms", raw)},
        extras=[clamp_notice(controls)],
        name="gsc",
    )
