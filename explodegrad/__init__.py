"""explodegrad: why deep networks are hard to train, measured.

A small library behind a Jupyter course that follows Philipp, Song & Carbonell, "The
exploding gradient problem demystified" (arXiv:1712.05577). Data flows one way::

    config -> nets -> trace -> measures (gsc, domain, residual, taylor) -> results
           -> plots -> widgets -> notebooks / cli
"""

from explodegrad.config import ACTIVATIONS, INITS, NORMS, NetConfig
from explodegrad.data import Dataset, gaussian_data, load_cifar10, load_dataset, load_digits
from explodegrad.device import DeviceChoice, pick_device
from explodegrad.init import initialize
from explodegrad.nets import DeepMLP, build_from_config, build_mlp, per_example_loss
from explodegrad.trace import Trace, trace

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS", "INITS", "NORMS", "NetConfig", "Dataset", "gaussian_data", "load_cifar10",
    "load_dataset", "load_digits", "DeviceChoice", "pick_device", "initialize", "DeepMLP",
    "build_from_config", "build_mlp", "per_example_loss", "Trace", "trace", "__version__",
]
