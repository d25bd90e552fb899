"""Taylor compression: replacing the top k layers by their first-order expansion."""

import math

import numpy as np
import pytest
import torch

from explodegrad.core.nets import build_mlp, per_example_loss
from explodegrad.measures.taylor import linearized_top_logits, taylor_compression

F64 = torch.float64


def _data(n=60, features=6, classes=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (
        torch.randn(n, features, generator=gen, dtype=F64),
        torch.randint(0, classes, (n,), generator=gen),
    )


def _randomize_biases(net, seed=1):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for linear in net.linear_layers():
            linear.bias.copy_(torch.randn(linear.bias.shape, generator=gen, dtype=linear.bias.dtype))
    return net


def _error_and_loss(logits, targets):
    return (
        float((logits.argmax(1) != targets).double().mean()),
        float(per_example_loss(logits, targets).mean()),
    )


@pytest.mark.parametrize("residual", [False, True])
def test_linearizing_an_affine_network_is_exact(residual):
    inputs, targets = _data()
    net = _randomize_biases(
        build_mlp(
            depth=6, width=8, activation="linear", residual=residual, in_features=6, out_features=3, dtype=F64
        )
    )
    logits = net(inputs).detach()
    for k in range(1, net.num_layers + 1):
        f_below = (
            inputs if k == net.num_layers else net.forward_from(net.num_layers + 1, inputs, to=k + 1).detach()
        )
        torch.testing.assert_close(
            linearized_top_logits(net, f_below, k, f_below.mean(0)), logits, rtol=1e-10, atol=1e-10
        )
    curve = taylor_compression(net, inputs, targets)
    np.testing.assert_array_equal(curve.ks, np.arange(net.num_layers + 1))
    error, loss = _error_and_loss(logits, targets)
    np.testing.assert_array_equal(curve.train_error, error)
    np.testing.assert_allclose(curve.train_loss, loss, rtol=1e-10)


def test_k_zero_is_the_original_network_and_k_one_replaces_only_the_affine_readout():
    inputs, targets = _data(seed=3)
    net = build_mlp(depth=5, width=12, activation="relu", in_features=6, out_features=3, dtype=F64)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(10):
        optimizer.zero_grad()
        per_example_loss(net(inputs), targets).mean().backward()
        optimizer.step()
    error, loss = _error_and_loss(net(inputs).detach(), targets)
    curve = taylor_compression(net, inputs, targets, ks=[0, 1, 5])
    assert curve.train_error[0] == error and curve.train_loss[0] == pytest.approx(loss, rel=1e-12)
    assert curve.train_error[1] == error and curve.train_loss[1] == pytest.approx(loss, rel=1e-10)
    assert curve.train_loss[2] != pytest.approx(loss, rel=1e-6)  # a ReLU net is not affine
    assert curve.reference == "mean" and curve.label == net.config.label()


def test_batch_norm_net_uses_eval_mode_and_is_left_unchanged():
    inputs, targets = _data()
    net = build_mlp(depth=4, width=8, norm="batch", in_features=6, out_features=3, dtype=F64)
    net(inputs)  # move the running statistics away from their defaults
    before = [b.clone() for b in net.buffers()]
    curve = taylor_compression(net, inputs, targets)
    assert net.training
    assert all(torch.equal(a, b) for a, b in zip(before, net.buffers()))
    net.eval()
    error, _ = _error_and_loss(net(inputs).detach(), targets)
    assert curve.train_error[0] == error and np.all(np.isfinite(curve.train_loss))


def test_an_overflowed_prediction_counts_as_wrong():
    """argmax of a NaN row is 0: without care, a NaN network would be right on every label 0."""
    inputs, targets = _data()
    net = build_mlp(depth=4, width=8, in_features=6, out_features=3, dtype=F64)
    with torch.no_grad():
        net.linear_layers()[0].weight[0, 0] = math.nan
    curve = taylor_compression(net, inputs, targets, ks=[0, 1])
    assert curve.overflowed and np.all(curve.train_error == 1.0)


def test_taylor_bad_input():
    inputs, targets = _data()
    net = build_mlp(depth=4, width=8, in_features=6, out_features=3, dtype=F64)
    for bad in ([-1], [5]):
        with pytest.raises(ValueError, match="ks"):
            taylor_compression(net, inputs, targets, ks=bad)
    with pytest.raises(TypeError, match=r"ks=1\.5 .*integer"):
        taylor_compression(net, inputs, targets, ks=[0, 1.5])
    with pytest.raises(ValueError, match="ks"):
        taylor_compression(net, inputs, targets, ks=[])
    with pytest.raises(ValueError, match="reference"):
        taylor_compression(net, inputs, targets, reference="origin")
    with pytest.raises(ValueError, match="data_targets"):
        taylor_compression(net, inputs, targets[:-1])
    with pytest.raises(ValueError, match="data_inputs: the batch is empty"):
        taylor_compression(net, inputs[:0], targets[:0])
    with pytest.raises(ValueError, match="data_inputs: 5 features"):
        taylor_compression(net, inputs[:, :5], targets)
    with pytest.raises(ValueError, match="k="):
        linearized_top_logits(net, inputs, 0, inputs.mean(0))
