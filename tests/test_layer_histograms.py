"""Per-layer histograms at initialization (chapter 02): shares, scales and the figure."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from explodegrad.plots.layer_histograms import plot_layer_histograms, shown_layers
from explodegrad.studies.layer_histograms import LayerHistograms, layer_histograms, log_histograms


def test_log_histograms_share_the_edges_and_leave_out_zeros():
    edges, shares = log_histograms([np.array([1.0, 10.0, 0.0]), np.array([-100.0, np.inf])], bins=2)
    np.testing.assert_allclose(edges, [0.0, 1.0, 2.0])
    np.testing.assert_allclose(shares, [[0.5, 0.5], [0.0, 1.0]])  # 0 and inf have no bin
    with pytest.raises(ValueError, match="no nonzero finite value"):
        log_histograms([np.zeros(3)], bins=4)
    with pytest.raises(ValueError, match="bins"):
        log_histograms([np.ones(3)], bins=1)


@pytest.fixture(scope="module")
def good_and_bad():
    return [layer_histograms(12, 64, init=init, batch=64) for init in ("he", "xavier")]


def test_he_keeps_every_layer_in_place_and_xavier_lets_them_drift(good_and_bad):
    he, xavier = good_and_bad
    assert isinstance(he, LayerHistograms) and he.label == "relu/none/he d12 w64"
    assert he.activation_share.shape == (12, 60) and he.gradient_edges.shape == (61,)
    np.testing.assert_allclose(he.activation_share.sum(axis=1), 1.0)
    np.testing.assert_allclose(he.gradient_share.sum(axis=1), 1.0)
    # ReLU zeroes about half of every hidden layer's outputs; the logits are never exactly 0
    assert he.zero_share[0] == 0 and ((he.zero_share[1:] > 0.3) & (he.zero_share[1:] < 0.7)).all()
    # Xavier halves the variance of a ReLU layer: the gradient RMS shrinks about sqrt(2) per layer
    # towards the input, so over 10 hidden layers by roughly 2^5 = 32; He keeps it within 3x
    assert xavier.gradient_rms[1] / xavier.gradient_rms[-1] > 10
    assert 1 / 3 < he.gradient_rms[1] / he.gradient_rms[-1] < 3


def test_layer_histograms_refuse_bad_arguments():
    with pytest.raises(ValueError, match="init="):
        layer_histograms(4, 8, init="nonsense")
    with pytest.raises(ValueError, match="depth"):
        layer_histograms(1, 8)


def test_the_histogram_figure_has_one_row_per_network(good_and_bad):
    fig = plot_layer_histograms(good_and_bad, count=4)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["relu/none/he d12 w64"] * 2 + [
        "relu/none/xavier d12 w64"
    ] * 2
    assert all(len(ax.lines) == 4 for ax in panels)
    assert list(shown_layers(12, 4)) == [2, 5, 9, 12] and list(shown_layers(3, 10)) == [2, 3]
    assert len(plot_layer_histograms(good_and_bad[0]).axes) == 3  # two panels and the colour bar
    with pytest.raises(TypeError, match="results: expected a LayerHistograms from explodegrad.studies"):
        plot_layer_histograms(np.ones(3))
    with pytest.raises(ValueError, match="count=0 is not allowed"):
        plot_layer_histograms(good_and_bad, count=0)
    plt.close("all")
