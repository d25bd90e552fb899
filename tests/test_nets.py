"""Networks: layer addressing in paper numbering, residual blocks, determinism, bad input."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from explodegrad.core.nets import DenseLayer, Readout, ResidualBlock, build_mlp, per_example_loss

F64 = torch.float64


def test_plain_network_has_one_unit_per_layer_numbered_from_the_output():
    net = build_mlp(depth=5, width=8, in_features=6, out_features=3)
    assert net.num_layers == 5
    assert isinstance(net.layer(1), Readout)
    assert net.layer(1) is net.units[-1]
    assert net.layer(5) is net.units[0]
    assert all(isinstance(net.layer(k), DenseLayer) for k in range(2, 6))
    assert len(net.linear_layers()) == 5


def test_output_shape_and_a_single_layer_network():
    x = torch.randn(4, 6)
    assert build_mlp(depth=3, width=8, in_features=6, out_features=3)(x).shape == (4, 3)
    single = build_mlp(depth=1, in_features=6, out_features=3)
    assert single.num_layers == 1 and isinstance(single.units[0], Readout)
    assert single(x).shape == (4, 3)


def test_residual_network_layout():
    net = build_mlp(depth=8, width=8, residual=True, block_depth=3, in_features=6, out_features=3)
    assert net.num_layers == 4
    assert isinstance(net.layer(4), DenseLayer)
    assert all(isinstance(net.layer(k), ResidualBlock) for k in (2, 3))
    assert all(len(net.layer(k).branch) == 3 for k in (2, 3))


def test_residual_blocks_with_scale_zero_are_the_identity():
    net = build_mlp(depth=6, width=8, residual=True, residual_scale=0.0, in_features=6, dtype=F64)
    x = torch.randn(5, 8, dtype=F64)
    for k in (2, 3):
        assert torch.equal(net.layer(k)(x), x)
    inputs = torch.randn(5, 6, dtype=F64)
    expected = net.units[-1](net.units[0](inputs))
    assert torch.equal(net(inputs), expected)


def test_residual_block_is_skip_plus_scaled_branch():
    net = build_mlp(depth=4, width=8, residual=True, residual_scale=0.3, in_features=8, dtype=F64)
    block = net.layer(2)
    x = torch.randn(5, 8, dtype=F64)
    torch.testing.assert_close(block(x), x + block.residual(x))
    torch.testing.assert_close(block.residual(x), 0.3 * block._branch(x)[0])


def test_forward_from_runs_the_layers_above():
    net = build_mlp(depth=5, width=8, in_features=6, dtype=F64)
    x = torch.randn(4, 6, dtype=F64)
    f4 = net.units[1](net.units[0](x))  # f_4 = output of the second layer from the input
    torch.testing.assert_close(net.forward_from(4, f4), net(x))
    torch.testing.assert_close(net.forward_from(6, x), net(x))
    torch.testing.assert_close(net.forward_from(6, x, to=5), net.units[0](x))


def test_per_example_loss_is_a_vector_of_cross_entropies():
    logits, targets = torch.randn(7, 3), torch.tensor([0, 1, 2, 0, 1, 2, 0])
    losses = per_example_loss(logits, targets)
    assert losses.shape == (7,)
    torch.testing.assert_close(losses.mean(), F.cross_entropy(logits, targets))


def test_same_seed_same_weights_and_global_rng_untouched():
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = build_mlp(depth=4, width=8, seed=5)
    after = torch.rand(3)
    b = build_mlp(depth=4, width=8, seed=5)
    c = build_mlp(depth=4, width=8, seed=6)
    assert torch.equal(before, after)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.units[0].linear.weight, c.units[0].linear.weight)


@pytest.mark.parametrize(
    "norm, kind",
    [
        ("batch", nn.BatchNorm1d),
        ("layer", nn.LayerNorm),
        ("none", nn.Identity),
    ],
)
def test_norms(norm, kind):
    net = build_mlp(depth=3, width=8, norm=norm)
    assert isinstance(net.units[0].norm, kind)


def test_batch_norm_with_a_batch_of_one_in_training_raises():
    net = build_mlp(depth=3, width=8, norm="batch", in_features=6)
    with pytest.raises(ValueError, match="inputs: a batch of 1 .*batch norm"):
        net(torch.randn(1, 6))
    net.eval()
    assert net(torch.randn(1, 6)).shape == (1, 10)


def test_measures_that_use_batch_statistics_refuse_one_example_without_suggesting_eval():
    from explodegrad.measures.domain import domain_stats
    from explodegrad.measures.gsc import gsc_profile

    net = build_mlp(depth=3, width=8, norm="batch", in_features=6).eval()
    x, y = torch.randn(1, 6), torch.tensor([0])
    for measure in (lambda: gsc_profile(net, x, y), lambda: domain_stats(net, x)):
        with pytest.raises(ValueError, match="batch of 1 .*whatever mode") as error:
            measure()
        assert "call net.eval()" not in str(error.value)


def test_residual_batch_norm_with_a_batch_of_one_raises_too():
    net = build_mlp(depth=4, width=8, norm="batch", residual=True, in_features=8)
    with pytest.raises(ValueError, match="inputs: a batch of 1"):
        net.layer(2)(torch.randn(1, 8))


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"activation": "nope"}, "activation"),
        ({"norm": "nope"}, "norm"),
        ({"init": "nope"}, "init"),
        ({"depth": 0}, "depth"),
        ({"width": 0}, "width"),
        ({"depth": 3, "residual": True}, "depth"),
        ({"activation": "tanh", "init": "looks_linear"}, "activation"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=rf"{argument}="):
        build_mlp(**kwargs)


@pytest.mark.parametrize("k", [0, 6])
def test_layer_outside_1_to_L_raises(k):
    net = build_mlp(depth=5, width=4)
    with pytest.raises(ValueError, match="k="):
        net.layer(k)


def test_layer_of_a_non_integer_raises_type_error():
    with pytest.raises(TypeError, match="k=2.5"):
        build_mlp(depth=5, width=4).layer(2.5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_residual_scale_is_a_buffer_exact_in_the_networks_dtype(dtype):
    """A buffer (so stacked networks can each have their own), not in the state_dict (the
    configuration carries it), holding 0.3 rounded once to the network's dtype."""
    net = build_mlp(depth=4, width=8, residual=True, residual_scale=0.3, in_features=8, dtype=dtype)
    block = net.layer(2)
    assert "residual_scale" in dict(block.named_buffers())
    assert not any(key.endswith("residual_scale") for key in net.state_dict())
    assert block.residual_scale.dtype == dtype
    assert block.residual_scale.item() == torch.tensor(0.3, dtype=dtype).item()
    x = torch.randn(5, 8, dtype=dtype)
    assert torch.equal(block(x), x + 0.3 * block._branch(x)[0])  # as with a Python float


def test_build_mlp_takes_the_setup_calls_device_choice():
    from explodegrad.core.device import DeviceChoice

    choice = DeviceChoice(torch.device("cpu"), "CPU", "test")
    net = build_mlp(3, 8, "relu", "none", "he", in_features=4, device=choice)
    assert all(p.device == torch.device("cpu") for p in net.parameters())


def test_a_network_whose_modules_no_longer_match_its_config_is_refused_by_the_measures():
    from explodegrad.measures.gsc import gsc_profile

    x, y = torch.randn(16, 8), torch.randint(0, 3, (16,))
    changes = [
        (
            lambda net: net.units.__setitem__(1, nn.Linear(16, 16)),
            TypeError,
            r"net.units\[1\]: expected a DenseLayer",
        ),
        (
            lambda net: setattr(net.units[0], "linear", nn.Linear(8, 20)),
            ValueError,
            r"net.units\[0\]: .*\(8, 20\)",
        ),
        (
            lambda net: setattr(net.units[-1], "linear", nn.Linear(16, 7)),
            ValueError,
            r"net.units\[3\]: .*\(16, 7\)",
        ),
        (lambda net: net.units.append(nn.ReLU()), ValueError, "5 units do not match its config"),
    ]
    for change, error, message in changes:
        net = build_mlp(4, 16, in_features=8, out_features=3)
        change(net)
        with pytest.raises(error, match=message):
            gsc_profile(net, x, y)
    for residual in (False, True):  # an untouched network passes, plain or residual
        build_mlp(6, 16, residual=residual, in_features=8, out_features=3).check_structure()
    build_mlp(1, 16, in_features=8, out_features=3).check_structure()
