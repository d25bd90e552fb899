"""Shared test setup: a non-interactive matplotlib backend and closed figures."""

import matplotlib
import pytest
import torch

matplotlib.use("Agg", force=True)


@pytest.fixture(autouse=True)
def _close_figures_and_seed():
    torch.manual_seed(0)
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
