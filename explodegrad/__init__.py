"""explodegrad: why deep networks are hard to train, measured.

A small library behind a Jupyter course that follows Philipp, Song & Carbonell, "The
exploding gradient problem demystified" (arXiv:1712.05577). One package per layer; data
flows one way, and a package imports only those before it (``make lint`` checks it)::

    core -> measures -> training -> studies -> claims -> plots -> widgets -> course | reproduce
    (nets, data,  (gsc, domain,  (loop,     (one file   (verdicts   (draw a   (explorers) (notebooks'
     trace, ...)   paths, ...)    stacked)   per chapter  with       result)               setup; the
                                             experiment)  margins)                         report)

This module re-exports the public building blocks, so ``from explodegrad import build_mlp,
gsc_profile, train`` works; studies, claims, plots and widgets are imported by their package.
"""

from explodegrad.core.adopt import from_sequential
from explodegrad.core.config import ACTIVATIONS, INITS, NORMS, NetConfig
from explodegrad.core.data import Dataset, gaussian_data, load_cifar10, load_dataset, load_digits
from explodegrad.core.device import DeviceChoice, pick_device
from explodegrad.core.init import initialize
from explodegrad.core.nets import DeepMLP, build_from_config, build_mlp, per_example_loss
from explodegrad.core.scales import PAPER, QUICK, Scale, pick_scale
from explodegrad.core.trace import Trace, layer_rms, trace
from explodegrad.measures.dilution import dilution_profile
from explodegrad.measures.domain import DomainStats, domain_stats
from explodegrad.measures.gsc import ExplosionFit, GSCProfile, fit_explosion_rate, gsc_matrix, gsc_profile
from explodegrad.measures.paths import effective_depth, path_contributions
from explodegrad.measures.taylor import taylor_compression
from explodegrad.training.loop import TrainHistory, TrainSettings, train
from explodegrad.training.sweep import grid, lr_search, sweep

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "NORMS",
    "NetConfig",
    "Dataset",
    "gaussian_data",
    "load_cifar10",
    "load_dataset",
    "load_digits",
    "DeviceChoice",
    "pick_device",
    "initialize",
    "DeepMLP",
    "build_from_config",
    "build_mlp",
    "from_sequential",
    "per_example_loss",
    "Trace",
    "trace",
    "layer_rms",
    "DomainStats",
    "domain_stats",
    "ExplosionFit",
    "GSCProfile",
    "fit_explosion_rate",
    "gsc_matrix",
    "gsc_profile",
    "dilution_profile",
    "effective_depth",
    "path_contributions",
    "taylor_compression",
    "PAPER",
    "QUICK",
    "Scale",
    "pick_scale",
    "grid",
    "lr_search",
    "sweep",
    "TrainHistory",
    "TrainSettings",
    "train",
    "__version__",
]
