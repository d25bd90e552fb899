"""What the GSC means: rescaling invariance and the perturbation check."""

import numpy as np
import pytest
import torch

from explodegrad.core.data import gaussian_data
from explodegrad.core.nets import build_mlp
from explodegrad.studies.gsc_meaning import perturbation_check, rescale_layer, rescaling_comparison


@pytest.fixture(scope="module")
def batch():
    data = gaussian_data(n_train=64, n_test=4, in_features=10, num_classes=3, seed=0, dtype=torch.float64)
    return data.x_train, data.y_train


def relu_net(**changes):
    kwargs = (
        dict(depth=5, width=12, activation="relu", in_features=10, out_features=3, dtype=torch.float64)
        | changes
    )
    return build_mlp(**kwargs)


def test_rescaled_network_computes_the_same_function(batch):
    net = relu_net()
    twin = rescale_layer(net, 3, 7.0)
    x, _ = batch
    with torch.no_grad():
        torch.testing.assert_close(twin(x), net(x), rtol=1e-12, atol=1e-12)
        assert not torch.equal(twin.layer(3).linear.weight, net.layer(3).linear.weight)
        torch.testing.assert_close(twin.layer(3).linear.weight, 7.0 * net.layer(3).linear.weight)


def test_raw_gradient_shrinks_by_the_factor_but_the_gsc_does_not(batch):
    comparison = rescaling_comparison(relu_net(), *batch, k=3, factor=10.0)
    i = 3 - 1  # row of layer k = 3
    assert comparison.raw_after[i] == pytest.approx(comparison.raw_before[i] / 10.0, rel=1e-10)
    others = np.arange(len(comparison.layers)) != i
    np.testing.assert_allclose(comparison.raw_after[others], comparison.raw_before[others], rtol=1e-10)
    np.testing.assert_allclose(comparison.gsc_after, comparison.gsc_before, rtol=1e-10)
    # the weight gradients change too: layer k's by 1/a, layer k - 1's by a
    assert comparison.weight_grad_after[i] == pytest.approx(comparison.weight_grad_before[i] / 10, rel=1e-10)
    assert comparison.weight_grad_after[i - 1] == pytest.approx(
        comparison.weight_grad_before[i - 1] * 10, rel=1e-10
    )
    assert comparison.loss_after == pytest.approx(comparison.loss_before, rel=1e-12)
    assert comparison.max_logit_change < 1e-10
    assert len(comparison.table().splitlines()) == 7


@pytest.mark.parametrize(
    ("changes", "k", "factor", "argument"),
    [
        (dict(activation="tanh"), 3, 2.0, "net"),
        (dict(norm="batch"), 3, 2.0, "net"),
        (dict(residual=True, depth=6), 3, 2.0, "net"),
        ({}, 1, 2.0, "k"),
        ({}, 6, 2.0, "k"),
        ({}, 3, 0.0, "factor"),
        ({}, 3, -2.0, "factor"),
    ],
)
def test_rescaling_bad_input(changes, k, factor, argument):
    with pytest.raises(ValueError, match=argument):
        rescale_layer(relu_net(**changes), k, factor)


def test_rescaling_needs_a_network():
    with pytest.raises(TypeError, match="net"):
        rescale_layer(torch.nn.Linear(3, 3), 2, 2.0)


def test_perturbation_gain_matches_the_gsc(batch):
    # The mean square of the gain over uniform directions is GSC^2 exactly (for small
    # epsilon); 64 directions estimate it to a few percent.
    check = perturbation_check(relu_net(), *batch, layers=(2, 4, 6), num_directions=64)
    assert list(check.layers) == [2, 4, 6]
    assert check.gains.shape == (3, 64)
    np.testing.assert_allclose(check.ratio, 1.0, atol=0.08)
    assert len(check.table().splitlines()) == 5


def test_perturbation_check_defaults_to_every_layer_up_to_the_input(batch):
    check = perturbation_check(relu_net(depth=2), *batch, num_directions=2)
    assert list(check.layers) == [1, 2, 3]
    np.testing.assert_array_equal(check.rms_gain, np.sqrt((check.gains**2).mean(axis=1)))


def test_the_default_nudge_stays_linear_where_the_gsc_is_large():
    """Depth-50 batch-normalized ReLU (the paper scale's claim network): at layer 42 the GSC is
    about 900, so a nudge of 1e-4 moves the losses by 9 % and the gain falls to 0.70 of the GSC
    (measured 2026-11-30; the claim failed at the paper scale for it). The default nudge,
    1e-3 / GSC, keeps the response linear."""
    from explodegrad.claims.evidence import _digits_batch
    from explodegrad.studies.gsc_meaning import linear_nudge

    net = build_mlp(50, 64, "relu", norm="batch", init="he", dtype=torch.float64)
    inputs, targets = _digits_batch()
    default = perturbation_check(net, inputs, targets, layers=(42,), num_directions=32)
    assert default.gsc[0] > 500 and default.epsilon == pytest.approx(1e-3 / default.gsc[0])
    assert abs(default.ratio[0] - 1) < 0.05
    fixed = perturbation_check(net, inputs, targets, layers=(42,), num_directions=32, epsilon=1e-4)
    assert fixed.ratio[0] < 0.8  # out of the linear regime
    assert linear_nudge(8.3) == 1e-4 and linear_nudge(1000.0) == pytest.approx(1e-6)
    assert linear_nudge(float("inf")) == 1e-4  # an overflowed GSC: the check is inconclusive anyway


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        (dict(num_directions=0), "num_directions"),
        (dict(epsilon=0.0), "epsilon"),
        (dict(layers=(0,)), "layers"),
        (dict(layers=(9,)), "layers"),
    ],
)
def test_perturbation_check_bad_input(batch, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        perturbation_check(relu_net(), *batch, **kwargs)


def test_rescaling_comparison_and_perturbation_check_take_bad_input_in_words():
    net = build_mlp(4, 8, "relu", in_features=5, out_features=3, dtype=torch.float64)
    x, y = torch.randn(16, 5, dtype=torch.float64), torch.randint(3, (16,))
    with pytest.raises(ValueError, match="targets: the losses need the batch's labels"):
        rescaling_comparison(net, x, None, k=2)  # was torch's "Could not infer dtype of NoneType"
    with pytest.raises(TypeError, match="inputs: expected a"):
        rescaling_comparison(net, "abc", y, k=2)
    assert rescaling_comparison(net, x.float(), y, k=2).gsc_before.shape  # put on the net's dtype
    one = perturbation_check(net, x, y, layers=3, num_directions=1)  # one layer: was not iterable
    assert [int(k) for k in one.layers] == [3]
    with pytest.raises(TypeError, match="layers='3' is not allowed"):
        perturbation_check(net, x, y, layers="3")
