"""Shared test setup: a non-interactive matplotlib backend, closed figures, shared fixtures.

Constants several files share (the test-only scale ``TINY``, the ``CPU`` device choice) live in
``helpers.py``.
"""

import matplotlib
import pytest
import torch
from helpers import TINY

from explodegrad.core.data import Dataset, gaussian_data

matplotlib.use("Agg", force=True)


@pytest.fixture(scope="module")
def data() -> Dataset:
    """The data ``TINY`` is meant for: 64 + 16 Gaussian examples, 6 features, 3 classes.

    One copy per test module (a ``Dataset`` is mutable). A file that needs other data defines
    its own ``data`` fixture, which pytest uses instead of this one.
    """
    return gaussian_data(n_train=TINY.n_train, n_test=TINY.n_test, in_features=6, num_classes=3, seed=0)


@pytest.fixture(autouse=True)
def _close_figures_and_seed():
    torch.manual_seed(0)
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
