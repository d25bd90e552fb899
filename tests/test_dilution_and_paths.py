"""Dilution, the residual trick, path contributions and effective depth."""

import copy
import math

import numpy as np
import pytest
import torch

from explodegrad.core.jacobian import make_probes
from explodegrad.core.nets import build_mlp, per_example_loss
from explodegrad.measures.dilution import dilution_profile, pythagorean_block_gsc
from explodegrad.measures.paths import DEFAULT_THRESHOLD, effective_depth, path_contributions, path_vjp_terms

F64 = torch.float64


def _linear_resnet(branch_weights, residual_scale, width):
    """A residual net of linear one-layer branches with the given (width x width) weights."""
    net = build_mlp(
        depth=2 + len(branch_weights),
        width=width,
        activation="linear",
        residual=True,
        block_depth=1,
        residual_scale=residual_scale,
        in_features=width,
        dtype=F64,
    )
    with torch.no_grad():
        for block, weight in zip(net.units[1:-1], branch_weights):
            block.branch[0].linear.weight.copy_(weight)
    return net


def _antisymmetric(width, seed):
    a = torch.randn(width, width, generator=torch.Generator().manual_seed(seed), dtype=F64)
    return a - a.T


def _train_a_little(net, inputs, targets, steps=5, lr=0.1):
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        per_example_loss(net(inputs), targets).mean().backward()
        optimizer.step()
    return net


def _full_vjp(net, inputs, targets, source, num_probes, seed=0):
    x = inputs.clone().requires_grad_(True)
    out = net(x) if source == "logits" else per_example_loss(net(x), targets)
    probes = make_probes(tuple(out.shape), num_probes, seed=seed, dtype=out.dtype)
    (grad,) = torch.autograd.grad(out, x, grad_outputs=probes, is_grads_batched=True)
    return grad


# ------------------------------------------------------------------ Pythagorean formula


@pytest.mark.parametrize(
    ("k", "g", "expected"),
    [
        (1.0, 1.0, 1.0),
        (0.0, 3.0, 3.0),
        (3.0, 5.0, math.sqrt(34 / 10)),
        (2.0, 0.0, math.sqrt(4 / 5)),
        (math.inf, 7.0, 1.0),
        (1e200, 1.0, 1.0),
    ],
)
def test_pythagorean_block_gsc_known_values(k, g, expected):
    assert pythagorean_block_gsc(k, g) == pytest.approx(expected, rel=1e-12)


def test_pythagorean_block_gsc_arrays_and_bad_input():
    out = pythagorean_block_gsc(np.array([1.0, 3.0]), np.array([1.0, 5.0]))
    np.testing.assert_allclose(out, [1.0, math.sqrt(3.4)], rtol=1e-12)
    with pytest.raises(ValueError, match="skip_to_residual"):
        pythagorean_block_gsc(-1.0, 1.0)
    with pytest.raises(ValueError, match="residual_gsc"):
        pythagorean_block_gsc(1.0, [1.0, -2.0])


# ------------------------------------------------------------------ dilution


@pytest.mark.parametrize("method", ["exact", "probe"])
def test_prediction_matches_when_residual_is_orthogonal(method):
    # r(x) = s W x with W antisymmetric: x^T W x = 0 for every x (r orthogonal to x) and
    # trace(W) = 0 (J_r orthogonal to the identity): both assumptions hold exactly.
    width = 10
    net = _linear_resnet([_antisymmetric(width, s) for s in range(3)], residual_scale=0.4, width=width)
    inputs = torch.randn(48, width, generator=torch.Generator().manual_seed(5), dtype=F64)
    result = dilution_profile(net, inputs, method=method, num_probes=16)
    assert list(result.layers) == [4, 3, 2]
    np.testing.assert_allclose(result.cosine, 0.0, atol=1e-12)
    assert np.all(np.abs(result.block_gsc - 1.0) > 0.02)  # non-trivial: the block GSC is not 1
    np.testing.assert_allclose(result.predicted_block_gsc, result.block_gsc, rtol=0.02)


def test_prediction_fails_when_residual_cancels_the_input():
    # The data live in the first half of the coordinates, where W = -0.9 I: r(x) = -0.9 x
    # cancels most of x (cosine -1), while W = +3 I on the unused half keeps J_b large. The
    # Pythagorean argument does not apply and misses by far; the cosine warns about it. This
    # guards against a prediction that matches by construction.
    width, half = 8, 4
    weight = torch.diag(torch.tensor([-0.9] * half + [3.0] * half, dtype=F64))
    net = _linear_resnet([weight], residual_scale=1.0, width=width)
    with torch.no_grad():
        net.units[0].linear.weight.copy_(torch.eye(width, dtype=F64))  # pass the data through
    inputs = torch.zeros(30, width, dtype=F64)
    inputs[:, :half] = torch.randn(30, half, generator=torch.Generator().manual_seed(2), dtype=F64)
    result = dilution_profile(net, inputs, method="exact")
    np.testing.assert_allclose(result.cosine, [-1.0], rtol=1e-12)
    # J_b = diag(0.1, 4): ||J_b||_qm = sqrt((0.01 + 16) / 2), and ||b(x)|| = 0.1 ||x||.
    np.testing.assert_allclose(result.block_gsc, [math.sqrt(8.005) / 0.1], rtol=1e-10)
    assert result.predicted_block_gsc[0] < 0.2 * result.block_gsc[0]


def test_dilution_known_values_with_rotation_branch():
    # W made of 90-degree rotations is orthogonal and antisymmetric: ||W x|| = ||x||, so
    # k = 1 / s, GSC_r = 1 and GSC_b = ||I + sW||_qm ||x|| / ||x + sWx|| = 1 exactly.
    width, scale = 8, 0.25
    rotation = torch.zeros(width, width, dtype=F64)
    for i in range(0, width, 2):
        rotation[i, i + 1], rotation[i + 1, i] = -1.0, 1.0
    net = _linear_resnet([rotation], residual_scale=scale, width=width)
    inputs = torch.randn(16, width, generator=torch.Generator().manual_seed(3), dtype=F64)
    result = dilution_profile(net, inputs, method="exact")
    np.testing.assert_allclose(result.skip_to_residual, [1 / scale], rtol=1e-10)
    np.testing.assert_allclose(result.residual_gsc, [1.0], rtol=1e-10)
    np.testing.assert_allclose(result.block_gsc, [1.0], rtol=1e-10)
    np.testing.assert_allclose(result.predicted_block_gsc, [1.0], rtol=1e-10)


@pytest.mark.parametrize("method", ["exact", "probe"])
def test_zero_residual_scale_gives_infinite_dilution_and_unit_block_gsc(method):
    net = build_mlp(depth=6, width=12, residual=True, residual_scale=0.0, in_features=6, dtype=F64)
    inputs = torch.randn(20, 6, generator=torch.Generator().manual_seed(0), dtype=F64)
    result = dilution_profile(net, inputs, method=method)
    assert np.all(np.isinf(result.skip_to_residual))
    np.testing.assert_allclose(result.block_gsc, 1.0, rtol=1e-12)
    np.testing.assert_allclose(result.predicted_block_gsc, 1.0, rtol=1e-12)
    assert np.all(np.isfinite(result.residual_gsc)) and np.all(result.residual_gsc > 0)


def test_an_overflowed_block_gets_nan_not_the_zero_of_finite_over_inf():
    net = build_mlp(40, 16, "relu", init="gaussian", init_scale=30.0, residual=True, in_features=8)
    inputs = torch.randn(32, 8, generator=torch.Generator().manual_seed(0))
    result = dilution_profile(net, inputs, num_probes=2)
    columns = (result.skip_to_residual, result.block_gsc, result.residual_gsc, result.cosine)
    overflowed = np.isnan(result.block_gsc)
    assert overflowed.any() and (~overflowed).any()  # the blocks near the input are still finite
    for column in columns:
        assert np.isnan(column[overflowed]).all() and not (column[overflowed] == 0).any()
        assert np.isfinite(column[~overflowed]).all()


def test_dilution_with_batch_norm_leaves_running_statistics_alone():
    net = build_mlp(depth=6, width=12, norm="batch", residual=True, in_features=6)
    before = [b.clone() for b in net.buffers()]
    result = dilution_profile(net, torch.randn(32, 6), num_probes=4)
    assert result.block_gsc.shape == (2,) and np.all(np.isfinite(result.block_gsc))
    assert all(torch.equal(a, b) for a, b in zip(before, net.buffers()))


def test_dilution_bad_input():
    plain = build_mlp(depth=4, width=8, in_features=4)
    with pytest.raises(ValueError, match="net: dilution needs a residual network"):
        dilution_profile(plain, torch.randn(5, 4))
    net = build_mlp(depth=4, width=8, residual=True, in_features=4)
    with pytest.raises(ValueError, match="inputs"):
        dilution_profile(net, torch.randn(0, 4))
    with pytest.raises(ValueError, match="method"):
        dilution_profile(net, torch.randn(5, 4), method="guess")
    with pytest.raises(ValueError, match="num_probes"):
        dilution_profile(net, torch.randn(5, 4), num_probes=0)


# ------------------------------------------------------------------ path contributions


@pytest.mark.parametrize("norm", ["none", "batch"])
@pytest.mark.parametrize("source", ["logits", "loss"])
@pytest.mark.parametrize("skip", ["identity", "init", "linear_fit"])
def test_lambda_contributions_sum_to_full_vjp(skip, source, norm):
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(40, 6, generator=gen, dtype=F64)
    targets = torch.randint(0, 3, (40,), generator=gen)
    residual = skip == "identity"
    net = build_mlp(
        depth=6,
        width=10,
        activation="tanh",
        norm=norm,
        residual=residual,
        in_features=6,
        out_features=3,
        dtype=F64,
    )
    initial = copy.deepcopy(net)
    _train_a_little(net, inputs, targets)
    terms = path_vjp_terms(net, inputs, targets, skip=skip, initial_net=initial, source=source, num_probes=3)
    assert terms.shape == (3, net.num_layers + 1, 40, 6)
    full = _full_vjp(net, inputs, targets, source, num_probes=3)
    torch.testing.assert_close(terms.sum(1), full, rtol=1e-10, atol=1e-12)
    if skip == "init":  # after training the residuals are no longer zero
        assert terms[:, 1:].abs().max() > 1e-6
    result = path_contributions(
        net, inputs, targets, skip=skip, initial_net=initial, source=source, num_probes=3
    )
    rms_full = float(full.pow(2).sum(dim=(1, 2)).mean().sqrt())
    assert result.total_norm == pytest.approx(rms_full, rel=1e-10)
    assert result.fraction.sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(result.lambdas, np.arange(net.num_layers + 1))


@pytest.mark.parametrize("residual", [False, True])
def test_init_skip_at_initialization_puts_all_mass_at_lambda_zero(residual):
    net = build_mlp(depth=6, width=16, residual=residual, in_features=8)
    result = path_contributions(net, torch.randn(32, 8), skip="init", initial_net=copy.deepcopy(net))
    assert result.contribution_norms[0] > 0
    np.testing.assert_array_equal(result.contribution_norms[1:], 0.0)
    assert result.effective_depth == 0
    assert result.total_norm == pytest.approx(result.contribution_norms[0])


def test_linear_fit_of_an_affine_network_has_no_residual():
    # Every layer of a linear network is affine, so it is its own best affine fit: R = 0.
    net = build_mlp(depth=5, width=8, activation="linear", in_features=6, dtype=F64)
    result = path_contributions(net, torch.randn(50, 6, dtype=F64), skip="linear_fit")
    assert result.contribution_norms[1:].max() < 1e-10 * result.contribution_norms[0]
    assert result.effective_depth == 0


def test_effective_depth_grows_with_residual_scale():
    inputs = torch.randn(64, 16, generator=torch.Generator().manual_seed(1))
    depths = [
        path_contributions(
            build_mlp(depth=10, width=16, residual=True, residual_scale=s, in_features=16), inputs
        ).effective_depth
        for s in (0.0, 0.1, 1.0)
    ]
    assert depths[0] == 0
    assert depths[0] < depths[1] < depths[2] <= 4  # 4 blocks: lambda counts branches


def test_zero_residual_scale_contributions_are_exactly_lambda_zero():
    net = build_mlp(depth=8, width=8, residual=True, residual_scale=0.0, in_features=4)
    result = path_contributions(net, torch.randn(16, 4), skip="identity")
    np.testing.assert_array_equal(result.contribution_norms[1:], 0.0)
    assert result.effective_depth == 0


def test_effective_depth_known_values():
    norms = [1.0, 0.5, 0.005, 0.0]  # shares 0.664, 0.332, 0.0033, 0
    assert effective_depth(norms) == 1
    assert effective_depth(norms, threshold=0.001) == 2
    assert effective_depth(norms, threshold=0.5) == 0
    assert effective_depth([0.0, 0.0]) == 0
    assert effective_depth([1.0, math.inf]) == -1
    assert DEFAULT_THRESHOLD == 0.01
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="threshold"):
            effective_depth(norms, threshold=bad)
    with pytest.raises(ValueError, match="contributions"):
        effective_depth([])
    with pytest.raises(ValueError, match="contributions"):
        effective_depth([1.0, -1.0])


def test_effective_depth_accepts_a_result():
    net = build_mlp(depth=10, width=16, residual=True, residual_scale=0.3, in_features=16)
    result = path_contributions(net, torch.randn(32, 16), threshold=0.05)
    assert effective_depth(result, threshold=0.05) == result.effective_depth
    assert effective_depth(result, threshold=1e-6) >= result.effective_depth
    assert result.threshold == 0.05 and result.skip == "identity" and result.source == "logits"


def test_path_contributions_bad_input():
    res = build_mlp(depth=6, width=8, residual=True, in_features=4)
    plain = build_mlp(depth=4, width=8, in_features=4)
    x = torch.randn(6, 4)
    with pytest.raises(ValueError, match="skip"):
        path_contributions(res, x, skip="diagonal")
    with pytest.raises(ValueError, match="skip='identity'"):
        path_contributions(plain, x, skip="identity")
    with pytest.raises(ValueError, match="initial_net"):
        path_contributions(res, x, skip="init")
    with pytest.raises(ValueError, match="initial_net"):
        path_contributions(
            res, x, skip="init", initial_net=build_mlp(depth=6, width=9, residual=True, in_features=4)
        )
    with pytest.raises(ValueError, match="initial_net"):
        path_contributions(res, x, skip="init", initial_net=plain)
    with pytest.raises(ValueError, match="inputs"):
        path_contributions(res, torch.randn(0, 4))
    with pytest.raises(ValueError, match="targets"):
        path_contributions(res, x, source="loss")
    with pytest.raises(ValueError, match="source"):
        path_contributions(res, x, source="weights")
    with pytest.raises(ValueError, match="threshold"):
        path_contributions(res, x, threshold=2.0)


def test_paths_and_dilution_use_batch_statistics_in_either_mode_as_the_gsc():
    """On an evaluation-mode network the GSC uses the batch's statistics; so must these, or they
    would measure another function (running averages at their defaults here)."""
    net = build_mlp(depth=6, width=12, norm="batch", residual=True, in_features=6, dtype=F64)
    inputs = torch.randn(32, 6, generator=torch.Generator().manual_seed(0), dtype=F64)
    trained_mode = path_contributions(net, inputs, skip="identity", num_probes=4)
    blocks = dilution_profile(net, inputs, num_probes=4)
    net.eval()
    evaluated = path_contributions(net, inputs, skip="identity", num_probes=4)
    np.testing.assert_array_equal(evaluated.fraction, trained_mode.fraction)
    np.testing.assert_array_equal(dilution_profile(net, inputs, num_probes=4).block_gsc, blocks.block_gsc)
    assert all(not m.training for m in net.modules())  # modes restored
    with pytest.raises(ValueError, match="batch of 1 .*whatever mode"):
        path_contributions(net, inputs[:1], skip="identity")
