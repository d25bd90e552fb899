"""Chapter 04's depth-limit explorer: the stored training-error-against-rate curves of one
architecture and depth over the seeds, and a quick rerun on the learner's own machine."""

from __future__ import annotations

import functools

import ipywidgets as w
from matplotlib.figure import Figure

from explodegrad.core.checks import check_choice
from explodegrad.core.device import DeviceLike, as_device_choice
from explodegrad.plots.depth_limit import plot_rate_curves
from explodegrad.studies import stored
from explodegrad.studies.depth_limit import RateCurves, quick_rerun, rate_curves
from explodegrad.widgets.base import Explorer

#: The stored depth-limit studies the explorer offers, by data set.
DATA_SETS = ("cifar10", "digits")


@functools.lru_cache(maxsize=len(DATA_SETS))
def _stored(data: str) -> stored.StoredEvidence:
    return stored.load(f"depth-limit-{data}")


def depth_limit_curves(
    data: str, architecture: str, depth: int, rerun: bool, device: str = "cpu"
) -> RateCurves:
    """The stored curves of (architecture, depth) on ``data``; with ``rerun``, a quick fresh run
    (:func:`explodegrad.studies.depth_limit.quick_rerun`, seconds on a CPU) drawn beside them."""
    data = check_choice("data", data, DATA_SETS)
    evidence = _stored(data)
    curves = rate_curves(evidence.result, architecture, depth, source=evidence.label())
    return quick_rerun(curves, device=device) if rerun else curves


def depth_limit_explorer(
    data: str = "cifar10",
    architecture: str = "relu/batch",
    depth: int = 50,
    device: DeviceLike = None,
) -> Explorer:
    """Pick a stored data set, an architecture and a depth; see the training error of every rate
    the stored study tried, per seed (its chosen rate ringed); tick "rerun" to train the same
    architecture and depth now at the quick scale and draw it dashed."""
    device = as_device_choice(device)
    data = check_choice("data", data, DATA_SETS)
    table = _stored(data).result.table
    architectures = list(dict.fromkeys(table["architecture"]))
    depths = sorted(int(d) for d in set(table["depth"]))
    controls = {
        "data": w.Dropdown(options=list(DATA_SETS), value=data, description="data"),
        "architecture": w.Dropdown(
            options=architectures,
            value=check_choice("architecture", architecture, architectures),
            description="architecture",
        ),
        "depth": w.Dropdown(
            options=depths, value=depth if depth in depths else depths[-1], description="depth"
        ),
        "rerun": w.Checkbox(value=False, description="rerun a quick training here (seconds)"),
    }
    experiment = functools.partial(depth_limit_curves, device=str(device.device))

    def draw(curves: RateCurves) -> Figure:
        return plot_rate_curves(curves)

    return Explorer(
        controls,
        experiment,
        draw,
        "The depth limit: training error against learning rate, stored over seeds",
        device=device,
        describe=RateCurves.summary,
    )
