"""Explorers: controls that rerun a real experiment and redraw its figure.

Every explorer follows one pattern, :class:`~explodegrad.widgets.base.Explorer`
(controls -> experiment -> result -> figure in an Output area); the sliders and dropdowns it
is built from live in :mod:`~explodegrad.widgets.controls`. Each explorer lives in the file
named after the measure, study or training module it reruns (``widgets/gsc.py`` explores
``measures/gsc.py``, ``widgets/chain_rule.py`` ``studies/chain_rule.py``, ``widgets/loop.py``
``training/loop.py``) and draws with the plot file of the same name. It is created by a single
function call that returns the explorer (a notebook displays it as a cell's last expression)::

    from explodegrad import widgets
    widgets.gsc_explorer(depth=20, width=64)
"""

from explodegrad.widgets.base import CACHE_SIZE, Drawing, Explorer, Progress, figure_data, render_png
from explodegrad.widgets.chain_rule import chain_explorer
from explodegrad.widgets.depth_limit import depth_limit_explorer
from explodegrad.widgets.dilution import dilution_explorer
from explodegrad.widgets.domain import domain_explorer
from explodegrad.widgets.gsc import gsc_explorer
from explodegrad.widgets.loop import training_explorer
from explodegrad.widgets.paths import path_explorer
from explodegrad.widgets.signal_scale import start_here_explorer
from explodegrad.widgets.width_depth import width_depth_explorer

__all__ = [
    "CACHE_SIZE",
    "Drawing",
    "Explorer",
    "Progress",
    "figure_data",
    "render_png",
    "chain_explorer",
    "depth_limit_explorer",
    "domain_explorer",
    "gsc_explorer",
    "dilution_explorer",
    "path_explorer",
    "start_here_explorer",
    "training_explorer",
    "width_depth_explorer",
]
