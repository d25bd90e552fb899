"""Initializers: variances, orthogonality and the looks-linear initial state."""

import math

import pytest
import torch
from torch import nn

from explodegrad.core.init import effective_linear_map, initialize, orthogonal_matrix, weight_std
from explodegrad.core.nets import build_mlp

F64 = torch.float64


def _hidden_weights(net):
    return torch.cat([layer.weight.flatten() for layer in net.linear_layers()[1:-1]]).double()


@pytest.mark.parametrize(
    "init, std",
    [
        ("he", math.sqrt(2 / 256)),
        ("xavier", math.sqrt(2 / 512)),
        ("lecun", math.sqrt(1 / 256)),
        ("gaussian", 1.0),
    ],
)
def test_gaussian_initializers_have_their_variance_within_sampling_error(init, std):
    net = build_mlp(depth=6, width=256, init=init, in_features=256)
    weights = _hidden_weights(net)  # 4 layers of 256 x 256: n = 262,144 draws
    n = weights.numel()
    relative_sampling_sd = math.sqrt(2 / n)  # sd of the sample variance / variance, Gaussian
    assert abs(weights.var().item() / std**2 - 1) < 5 * relative_sampling_sd
    assert abs(weights.mean().item()) < 5 * std / math.sqrt(n)


def test_he_variance_is_two_over_fan_in_for_every_layer_shape():
    net = build_mlp(depth=3, width=300, in_features=64, out_features=10, init="he")
    for layer in net.linear_layers():
        fan_in = layer.weight.shape[1]
        assert weight_std("he", fan_in, layer.weight.shape[0], 1.0) ** 2 == pytest.approx(2 / fan_in)
    first = net.linear_layers()[0].weight.double()  # 300 x 64 = 19,200 draws
    assert abs(first.var().item() * 64 / 2 - 1) < 5 * math.sqrt(2 / first.numel())


def test_init_scale_multiplies_the_standard_deviation():
    plain = build_mlp(depth=3, width=64, in_features=64, init="he", seed=1)
    scaled = build_mlp(depth=3, width=64, in_features=64, init="he", init_scale=3.0, seed=1)
    torch.testing.assert_close(scaled.units[1].linear.weight, 3.0 * plain.units[1].linear.weight)


@pytest.mark.parametrize("rows, cols", [(32, 32), (16, 40), (40, 16)])
def test_orthogonal_matrix_has_orthonormal_rows_or_columns(rows, cols):
    q = orthogonal_matrix(rows, cols, torch.Generator().manual_seed(0)).double()
    gram = q @ q.T if rows <= cols else q.T @ q
    torch.testing.assert_close(gram, torch.eye(min(rows, cols), dtype=F64), atol=1e-5, rtol=0)


def test_orthogonal_init_satisfies_w_w_transpose_equal_identity():
    net = build_mlp(depth=4, width=32, in_features=32, init="orthogonal")
    for layer in net.linear_layers()[:-1]:
        w = layer.weight.double()
        torch.testing.assert_close(w @ w.T, torch.eye(32, dtype=F64), atol=1e-5, rtol=0)
    readout = net.linear_layers()[-1].weight.double()  # 10 x 32: orthonormal rows
    torch.testing.assert_close(readout @ readout.T, torch.eye(10, dtype=F64), atol=1e-5, rtol=0)


def test_orthogonal_init_with_scale():
    net = build_mlp(depth=3, width=16, in_features=16, init="orthogonal", init_scale=2.0)
    w = net.units[1].linear.weight.double()
    torch.testing.assert_close(w @ w.T, 4.0 * torch.eye(16, dtype=F64), atol=1e-4, rtol=0)


def test_biases_and_norm_parameters_start_at_zero_and_one():
    net = build_mlp(depth=3, width=8, norm="batch")
    assert all(torch.all(layer.bias == 0) for layer in net.linear_layers())
    assert torch.all(net.units[0].norm.weight == 1) and torch.all(net.units[0].norm.bias == 0)


def test_looks_linear_weights_are_mirrored():
    net = build_mlp(depth=4, width=8, init="looks_linear", in_features=5)
    hidden = net.units[1].linear.weight
    w = hidden[:4, :4]
    torch.testing.assert_close(hidden, torch.cat([torch.cat([w, -w], 1), torch.cat([-w, w], 1)], 0))
    first = net.units[0].linear.weight
    torch.testing.assert_close(first[4:], -first[:4])
    readout = net.units[-1].linear.weight
    torch.testing.assert_close(readout[:, 4:], -readout[:, :4])


@pytest.mark.parametrize("depth", [1, 2, 6])
def test_looks_linear_relu_network_equals_the_product_of_its_weight_maps(depth):
    net = build_mlp(
        depth=depth, width=16, init="looks_linear", in_features=12, out_features=5, dtype=F64, seed=3
    )
    x = torch.randn(9, 12, dtype=F64)
    linear_map = effective_linear_map(net)
    assert linear_map.shape == (5, 12)
    torch.testing.assert_close(net(x), x @ linear_map.T, atol=1e-12, rtol=1e-12)


def test_looks_linear_map_is_orthogonal_so_the_network_preserves_norms():
    net = build_mlp(depth=6, width=32, init="looks_linear", in_features=16, out_features=16, dtype=F64)
    m = effective_linear_map(net)
    torch.testing.assert_close(m @ m.T, torch.eye(16, dtype=F64), atol=1e-5, rtol=0)


def test_initialize_is_deterministic_in_its_seed():
    a = initialize(nn.Linear(8, 8), "he", seed=4).weight
    b = initialize(nn.Linear(8, 8), "he", seed=4).weight
    c = initialize(nn.Linear(8, 8), "he", seed=5).weight
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_bad_init_arguments_raise():
    with pytest.raises(ValueError, match="init='uniform'"):
        initialize(nn.Linear(3, 3), "uniform")
    with pytest.raises(ValueError, match="scale=0"):
        initialize(nn.Linear(3, 3), "he", scale=0)
    with pytest.raises(TypeError, match="scale='2'"):
        initialize(nn.Linear(3, 3), "he", scale="2")
    with pytest.raises(TypeError, match="net: init='looks_linear' needs a DeepMLP"):
        initialize(nn.Sequential(nn.Linear(3, 3)), "looks_linear")
