"""Traces: one entry per layer in paper numbering, and the per-layer RMS measure."""

import math

import numpy as np
import pytest
import torch

from explodegrad.core.nets import build_mlp, per_example_loss
from explodegrad.core.trace import first_overflow_layer, layer_rms, trace

F64 = torch.float64


@pytest.fixture
def net_and_batch():
    net = build_mlp(depth=5, width=8, in_features=6, out_features=3, dtype=F64)
    x = torch.randn(7, 6, dtype=F64)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    return net, x, y


def test_one_entry_per_layer_with_paper_numbering_and_shapes(net_and_batch):
    net, x, y = net_and_batch
    tr = trace(net, x, y)
    assert tr.num_layers == net.num_layers == 5
    assert len(tr.outputs) == len(tr.preactivations) == 5
    assert tr.batch_size == 7
    assert tr.f(6) is tr.inputs  # f_{L+1}: the input
    assert torch.equal(tr.f(6), x)
    assert tr.f(1).shape == (7, 3)  # f_1: the logits
    assert all(tr.f(k).shape == (7, 8) for k in range(2, 6))
    assert tr.f(0).shape == (7,)  # f_0: one loss per example
    torch.testing.assert_close(tr.f(0), per_example_loss(net(x), y))
    torch.testing.assert_close(tr.f(1), net(x))
    torch.testing.assert_close(tr.f(5), net.units[0](x))  # f_L: the first layer's output


def test_preactivations_feed_the_nonlinearity(net_and_batch):
    net, x, _ = net_and_batch
    tr = trace(net, x)
    for k in range(2, 6):
        torch.testing.assert_close(tr.f(k), torch.relu(tr.preactivation(k)))
    assert torch.equal(tr.preactivation(1), tr.f(1))


def test_without_targets_there_is_no_f0(net_and_batch):
    net, x, _ = net_and_batch
    tr = trace(net, x)
    assert tr.losses is None
    with pytest.raises(ValueError, match="k=0"):
        tr.f(0)
    with pytest.raises(ValueError, match="k=7"):
        tr.f(7)


def test_keep_graph_lets_gradients_reach_every_layer(net_and_batch):
    net, x, y = net_and_batch
    plain = trace(net, x, y)
    assert not plain.f(1).requires_grad
    tr = trace(net, x, y, keep_graph=True)
    grads = torch.autograd.grad(tr.f(0).sum(), [tr.f(k) for k in range(1, 7)])
    assert [g.shape for g in grads] == [tr.f(k).shape for k in range(1, 7)]
    assert not tr.detached().f(1).requires_grad


def test_trace_leaves_batch_norm_running_statistics_alone():
    net = build_mlp(depth=3, width=8, norm="batch", in_features=6)
    before = net.units[0].norm.running_mean.clone()
    trace(net, torch.randn(16, 6) + 3.0)
    assert torch.equal(net.units[0].norm.running_mean, before)


def test_residual_trace_has_one_entry_per_block():
    net = build_mlp(depth=8, width=8, residual=True, in_features=8, dtype=F64)
    tr = trace(net, torch.randn(4, 8, dtype=F64))
    assert tr.num_layers == net.num_layers == 5


@pytest.mark.parametrize(
    "shape, message",
    [
        ((4, 5), "inputs: 5 features given"),
        ((0, 6), "inputs: the batch is empty"),
        ((4,), "inputs: expected"),
    ],
)
def test_bad_batches_raise(net_and_batch, shape, message):
    net, _, _ = net_and_batch
    with pytest.raises(ValueError, match=message):
        trace(net, torch.zeros(shape, dtype=F64))


def test_targets_of_the_wrong_length_raise(net_and_batch):
    net, x, y = net_and_batch
    with pytest.raises(ValueError, match="targets: 6 labels for a batch of 7"):
        trace(net, x, y[:6])


def test_layer_rms_is_the_root_mean_square_of_each_f_k(net_and_batch):
    net, x, _ = net_and_batch
    tr = trace(net, x)
    rms = layer_rms(tr)
    assert isinstance(rms, np.ndarray) and rms.shape == (5,)
    for k in range(1, 6):
        assert rms[k - 1] == pytest.approx(math.sqrt(float((tr.f(k) ** 2).mean())), rel=1e-12)


def test_layer_rms_is_constant_through_an_orthogonal_linear_network():
    # Square orthogonal maps preserve every row's norm exactly, biases are zero: every layer
    # has the input's RMS (to float32 precision: the weights are drawn in float32).
    net = build_mlp(
        depth=6, width=16, activation="linear", init="orthogonal", in_features=16, out_features=16, dtype=F64
    )
    x = 3.0 * torch.randn(32, 16, dtype=F64)
    rms = layer_rms(trace(net, x))
    np.testing.assert_allclose(rms, float(x.pow(2).mean().sqrt()), rtol=1e-6)


def test_layer_rms_orders_layers_from_the_output():
    # Linear He network with a factor 2 per layer in mean square: RMS grows towards the logits.
    net = build_mlp(
        depth=8, width=256, activation="linear", init="he", in_features=256, out_features=256, dtype=F64
    )
    rms = layer_rms(trace(net, torch.randn(64, 256, dtype=F64)))
    ratios = rms[:-1] / rms[1:]  # RMS(f_k) / RMS(f_{k+1}), about sqrt(2)
    np.testing.assert_allclose(ratios, math.sqrt(2), rtol=0.1)


def test_layer_rms_reports_overflow_instead_of_raising():
    net = build_mlp(depth=12, width=16, activation="linear", init="gaussian", init_scale=1e6, in_features=16)
    rms = layer_rms(trace(net, torch.randn(8, 16)))
    assert rms.shape == (12,)
    assert np.isfinite(rms[-1]) and not np.isfinite(rms[0])


def test_first_overflow_layer_is_the_overflowed_layer_nearest_the_input():
    net = build_mlp(depth=12, width=16, activation="linear", init="gaussian", init_scale=1e6, in_features=16)
    x = torch.randn(8, 16)
    rms = layer_rms(trace(net, x))
    overflowed = [k for k in range(1, 13) if not np.isfinite(rms[k - 1])]
    assert first_overflow_layer(net, x) == max(overflowed)
    assert overflowed == list(range(1, max(overflowed) + 1))  # every layer after it, too


def test_first_overflow_layer_names_the_layer_given_an_infinite_weight():
    net = build_mlp(depth=6, width=8, in_features=5, dtype=F64)
    x = torch.randn(4, 5, dtype=F64)
    assert first_overflow_layer(net, x) is None
    with torch.no_grad():
        net.units[2].linear.weight[0, 0] = math.inf  # the third unit from the input: f_{L-2}
    assert first_overflow_layer(net, x) == 6 - 2


def test_first_overflow_layer_uses_batch_statistics_and_leaves_the_net_alone():
    net = build_mlp(depth=4, width=8, norm="batch", in_features=6)
    norm = net.units[1].norm
    with torch.no_grad():
        norm.running_mean.fill_(-1e38)  # eval mode: (x + 1e38) / sqrt(var + eps) is past
        norm.running_var.fill_(1e-30)  # float32's limit, 3.4e38
    net.eval()
    x = torch.randn(16, 6)
    assert not torch.isfinite(net(x)).all()  # the network's own mode overflows
    running = [b.clone() for b in net.buffers()]
    assert first_overflow_layer(net, x) is None  # the batch's statistics do not
    assert not net.training and all(torch.equal(a, b) for a, b in zip(running, net.buffers()))
