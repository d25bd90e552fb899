"""Tests of the collapsing-domain measures: known values on hand-made pre-activations."""

import copy
import json
import math

import numpy as np
import pytest
import torch

from explodegrad import build_mlp, trace
from explodegrad.measures.domain import (
    domain_stats,
    linear_fit_error,
    neuron_sign_diversity,
    preactivation_std,
    sign_diversity,
)


def gaussian_inputs(batch: int = 64, features: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, features, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- hand-made values


def test_sign_diversity_known_values_with_zeros_counting_as_neither():
    preacts = torch.tensor([[1.0, -1.0, 0.0], [2.0, -3.0, 0.0], [-1.0, 0.0, 0.0], [3.0, 5.0, 0.0]])
    # neuron 0: P = 3, N = 1 -> 1/4; neuron 1: P = 1, N = 2 (one zero) -> 1/3; neuron 2: no sign -> 0
    np.testing.assert_allclose(neuron_sign_diversity(preacts), [0.25, 1 / 3, 0.0])
    assert sign_diversity(preacts) == pytest.approx((0.25 + 1 / 3) / 3)
    assert sign_diversity(torch.tensor([[1.0, -2.0], [-1.0, 2.0]])) == 0.5
    assert sign_diversity(torch.rand(10, 4) + 0.1) == 0.0


def test_an_overflowed_layer_has_no_sign_diversity_rather_than_a_collapsed_one():
    """A neuron with a non-finite pre-activation gets NaN, not 0 (which would read as collapsed)."""
    net = build_mlp(40, 16, "relu", init="gaussian", init_scale=30.0, in_features=8)
    stats = domain_stats(net, gaussian_inputs())
    overflowed = ~np.isfinite(stats.preact_std)
    assert overflowed.any() and np.isnan(stats.sign_diversity[overflowed]).all()
    assert np.isfinite(stats.sign_diversity[~overflowed]).all()


def test_preactivation_std_raw_and_relative_known_values():
    preacts = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    # population stds 1 and 0 -> mean 0.5; RMS of all entries sqrt((1 + 9) / 4)
    assert preactivation_std(preacts) == pytest.approx(0.5)
    assert preactivation_std(preacts, relative=True) == pytest.approx(0.5 / math.sqrt(2.5))
    centred = torch.tensor([[2.0, -2.0], [-2.0, 2.0]])  # centred neurons of equal spread: 1
    assert preactivation_std(centred, relative=True) == pytest.approx(1.0)
    assert math.isnan(preactivation_std(torch.zeros(5, 3), relative=True))
    assert preactivation_std(torch.tensor([1.0, 3.0])) == pytest.approx(1.0)  # 1-d: one neuron


def test_relu_fed_one_sign_is_linear_and_fed_symmetric_uniform_scores_one_fifth():
    positive = torch.rand(200, 5, generator=torch.Generator().manual_seed(1)) + 0.01
    assert linear_fit_error(positive, "relu") < 1e-12
    assert sign_diversity(positive) == 0.0
    assert linear_fit_error(-positive, "relu") == 0.0  # constant output: affine fit is exact
    # x uniform on [-1, 1]: cov(x, relu x) = 1/6, var x = 1/3, var relu x = 5/48 -> R^2 = 0.8
    uniform = torch.linspace(-1, 1, 20001, dtype=torch.float64)
    assert linear_fit_error(uniform, "relu") == pytest.approx(0.2, abs=1e-4)


def test_tanh_with_tiny_spread_is_nearly_linear_and_with_wide_spread_is_not():
    generator = torch.Generator().manual_seed(2)
    tiny = 0.5 + 1e-3 * torch.randn(500, 8, generator=generator)
    wide = 3.0 * torch.randn(500, 8, generator=generator)
    assert linear_fit_error(tiny, "tanh") < 1e-5
    assert linear_fit_error(wide, "tanh") > 0.05
    assert linear_fit_error(wide, torch.tanh) == pytest.approx(linear_fit_error(wide, "tanh"))
    assert linear_fit_error(torch.full((10, 3), 0.7), "tanh") == 0.0  # no spread at all


# ----------------------------------------------------------------------------- networks


def test_linear_network_has_zero_linear_fit_error_at_every_hidden_layer():
    net = build_mlp(6, 16, "linear", "none", "he", in_features=8)
    stats = domain_stats(net, gaussian_inputs())
    assert stats.layers.tolist() == [2, 3, 4, 5, 6]
    np.testing.assert_allclose(stats.linear_fit_error, 0.0, atol=1e-12)
    assert stats.label == net.config.label() and stats.batch_size == 64


def test_batch_norm_standardizes_each_neuron():
    # Batch norm's output per neuron has mean 0 and std sqrt(var / (var + eps)) ~ 1.
    net = build_mlp(8, 32, "relu", "batch", "he", in_features=8)
    stats = domain_stats(net, gaussian_inputs(128))
    np.testing.assert_allclose(stats.preact_std, 1.0, atol=1e-3)
    np.testing.assert_allclose(stats.preact_std_relative, 1.0, atol=1e-3)
    assert ((stats.sign_diversity > 0.3) & (stats.sign_diversity <= 0.5)).all()
    assert ((stats.linear_fit_error > 0.1) & (stats.linear_fit_error < 0.4)).all()


def test_values_match_the_helpers_on_the_recorded_preactivations_plain_and_residual():
    x = gaussian_inputs()
    for net in (
        build_mlp(5, 16, "tanh", "none", "xavier", in_features=8),
        build_mlp(6, 16, "relu", "layer", "he", in_features=8, residual=True),
    ):
        stats = domain_stats(net, x)
        recorded = trace(net, x)
        activation = "tanh" if net.config.activation == "tanh" else "relu"
        for i, k in enumerate(stats.layers):
            pre = recorded.preactivation(int(k))
            assert stats.sign_diversity[i] == pytest.approx(sign_diversity(pre))
            assert stats.preact_std[i] == pytest.approx(preactivation_std(pre))
            assert stats.preact_std_relative[i] == pytest.approx(preactivation_std(pre, relative=True))
            assert stats.linear_fit_error[i] == pytest.approx(linear_fit_error(pre, activation), abs=1e-12)
        assert stats.layers.tolist() == list(range(2, net.num_layers + 1))


def test_measurement_leaves_the_network_alone_and_serializes():
    net = build_mlp(5, 16, "relu", "batch", "he", in_features=8)
    net.eval()
    saved = copy.deepcopy(net.state_dict())
    stats = domain_stats(net, gaussian_inputs())
    assert not any(m.training for m in net.modules())
    for key, value in net.state_dict().items():
        assert torch.equal(value, saved[key]), key
    np.testing.assert_allclose(stats.preact_std, 1.0, atol=1e-3)  # batch statistics, not running ones
    assert json.loads(json.dumps(stats.to_dict(), allow_nan=False))["layers"] == [2, 3, 4, 5]
    assert stats.at(3)["sign_diversity"] == stats.sign_diversity[1]
    shallow = domain_stats(build_mlp(1, 16, in_features=8), gaussian_inputs())
    assert shallow.layers.size == 0 and shallow.linear_fit_error.size == 0


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: sign_diversity(torch.zeros(2, 2, 2)), "preacts"),
        (lambda: sign_diversity(torch.zeros(0, 3)), "preacts"),
        (lambda: preactivation_std(torch.zeros(3, 0)), "preacts"),
        (lambda: linear_fit_error(torch.zeros(3, 2), "swish"), "activation"),
        (lambda: domain_stats(build_mlp(3, 8, in_features=8), gaussian_inputs(features=5)), "inputs"),
        (lambda: domain_stats(build_mlp(3, 8, in_features=8), gaussian_inputs()[:0]), "inputs"),
        (lambda: domain_stats(build_mlp(3, 8, in_features=8), gaussian_inputs()).at(1), "k"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: linear_fit_error(torch.zeros(3, 2), 3), "activation"),
        (lambda: sign_diversity(torch.zeros(3, 2, dtype=torch.bool)), "preacts"),
        (lambda: domain_stats(torch.nn.Linear(8, 4), gaussian_inputs()), "net"),
    ],
)
def test_wrong_types_raise_type_error_naming_the_argument(call, argument):
    with pytest.raises(TypeError, match=argument):
        call()
