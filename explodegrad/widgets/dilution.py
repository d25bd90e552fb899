"""The dilution explorer: skip connections pull a block's GSC towards 1."""

from __future__ import annotations

from matplotlib.figure import Figure

from explodegrad.core.checks import check_int
from explodegrad.core.config import INITS, is_residual_depth, residual_depth, residual_depth_rule
from explodegrad.core.device import DeviceLike, as_device_choice
from explodegrad.measures.dilution import DilutionResult, dilution_profile
from explodegrad.plots.dilution import plot_dilution
from explodegrad.studies.common import DEFAULT_INITS
from explodegrad.widgets.base import Explorer
from explodegrad.widgets.controls import (
    NetSetting,
    activation_dropdown,
    choice,
    clamp_notice,
    depth_slider,
    log_slider,
    norm_dropdown,
    width_slider,
)

#: Linear layers per residual branch in the dilution explorer.
BLOCK_DEPTH = 2
#: The init dropdown's first option: the activation's usual initializer (He for ReLU, Xavier
#: for tanh, LeCun for SELU; :data:`explodegrad.studies.common.DEFAULT_INITS`).
DEFAULT_INIT = "default"
#: Initializers the dilution explorer offers (looks-linear is for plain ReLU networks).
DILUTION_INITS = (DEFAULT_INIT, *(name for name in INITS if name != "looks_linear"))


def resolved_init(activation: str, init: str) -> str:
    """The initializer used: ``init`` itself, or the activation's usual one for ``"default"``."""
    return DEFAULT_INITS.get(activation, "he") if init == DEFAULT_INIT else init


def measure_dilution(
    setting: NetSetting,
    depth: int,
    width: int,
    activation: str,
    norm: str,
    residual_scale: float,
    init: str = DEFAULT_INIT,
) -> DilutionResult:
    """Dilution of every block of a freshly built residual network on one batch; ``init`` is an
    initializer name or ``"default"`` (the activation's usual one, see :func:`resolved_init`).

    Jacobian norms come from one Rademacher probe per block (the exact method needs a full
    Jacobian per block: minutes instead of a fraction of a second at depth 50).
    """
    init = resolved_init(activation, init)
    net = setting.network(depth, width, activation, norm, init, True, residual_scale)
    inputs, _ = setting.batch()
    return dilution_profile(net, inputs, method="probe", num_probes=1, seed=setting.seed)


def describe_dilution(result: DilutionResult) -> str:
    """The line under the figure: the block nearest the input, measured and predicted."""
    i = 0  # blocks run from the input to the output
    return (
        f"{result.label}: block k = {result.layers[i]}: ||x|| / ||r|| = "
        f"{result.skip_to_residual[i]:.3g}, block GSC {result.block_gsc[i]:.3g} measured, "
        f"{result.predicted_block_gsc[i]:.3g} predicted (branch GSC {result.residual_gsc[i]:.3g})"
    )


def dilution_explorer(
    depth: int = 20,
    width: int = 64,
    activation: str = "relu",
    norm: str = "batch",
    residual_scale: float = 1.0,
    init: str = DEFAULT_INIT,
    *,
    max_depth: int = 60,
    max_width: int = 128,
    device: DeviceLike = None,
    seed: int = 0,
) -> Explorer:
    """Explore dilution in a residual network at initialization: per block, the measured GSC
    against the Pythagorean prediction, and the skip-to-residual ratio.

    The depth slider steps through valid residual depths only (2 + a multiple of 2). The
    residual scale multiplies every branch: small values mean strong skips, large dilution.

    Args:
        depth, width, activation, norm, residual_scale: the starting setting.
        init: an initializer, or ``"default"``: the activation's usual one (He for ReLU,
            Xavier for tanh, LeCun for SELU), so that tanh is not measured with He weights.
        max_depth, max_width: slider ranges.
        device: where to run (a name such as 'cpu', a torch.device, or the
            setup's ctx.device; default: :func:`~explodegrad.core.device.pick_device`'s choice).
        seed: seed of the weights, the batch and the probes.
    """
    device = as_device_choice(device)
    smallest = 2 + BLOCK_DEPTH
    depth = check_int("depth", depth, smallest, max_depth)
    if not is_residual_depth(depth, BLOCK_DEPTH):
        raise ValueError(
            f"depth={depth} is not allowed: a residual network needs {residual_depth_rule(BLOCK_DEPTH)}, "
            f"e.g. {depth + 1}"
        )
    setting = NetSetting(device.device, seed)
    controls = {
        "depth": depth_slider(
            depth, minimum=smallest, maximum=residual_depth(max_depth, BLOCK_DEPTH), step=BLOCK_DEPTH
        ),
        "width": width_slider(width, maximum=max_width),
        "activation": activation_dropdown(activation),
        "norm": norm_dropdown(norm),
        "init": choice("init", DILUTION_INITS, init, DILUTION_INITS),
        "residual_scale": log_slider("residual scale", residual_scale, -2.0, 0.5),
    }

    def experiment(**values: object) -> DilutionResult:
        return measure_dilution(setting, **values)

    def draw(result: DilutionResult) -> Figure:
        return plot_dilution(result)

    return Explorer(
        controls,
        experiment,
        draw,
        "Dilution: how skip connections tame a block's GSC",
        device=device,
        describe=describe_dilution,
        extras=[clamp_notice(controls)],
        name="dilution",
    )
