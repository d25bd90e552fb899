"""NetConfig: validation of every field and the derived layer counts."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from explodegrad.core.checks import (
    check_choice,
    check_finite,
    check_float_dtype,
    check_fraction,
    check_int,
    check_positive,
)
from explodegrad.core.config import ACTIVATIONS, INITS, NORMS, NetConfig


def test_defaults_are_a_valid_plain_network():
    config = NetConfig()
    assert (config.depth, config.width, config.residual) == (10, 100, False)
    assert config.num_layers == 10
    assert config.num_blocks == 0


def test_residual_layer_count_is_input_layer_blocks_and_readout():
    config = NetConfig(depth=10, residual=True, block_depth=2)
    assert config.num_blocks == 4
    assert config.num_layers == 6


def test_names_are_normalized_to_lower_case():
    config = NetConfig(activation="ReLU", norm="Batch", init="HE")
    assert (config.activation, config.norm, config.init) == ("relu", "batch", "he")


def test_config_is_frozen_and_hashable():
    config = NetConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.depth = 3
    assert {config: 1}[NetConfig()] == 1


def test_with_changes_a_copy_and_validates_again():
    config = NetConfig(depth=5)
    deeper = config.with_(depth=7)
    assert (config.depth, deeper.depth) == (5, 7)
    with pytest.raises(ValueError, match="depth=0"):
        config.with_(depth=0)


def test_label_and_shape_key():
    config = NetConfig(depth=50, width=100, norm="batch")
    assert config.label() == "relu/batch/he d50 w100"
    assert config.shape_key() == config.with_(init="xavier", seed=3).shape_key()
    assert config.shape_key() != config.with_(width=64).shape_key()


@pytest.mark.parametrize(
    "argument, value",
    [
        ("activation", "swishy"),
        ("norm", "group"),
        ("init", "zeros"),
    ],
)
def test_unknown_names_raise_naming_the_argument_and_the_choices(argument, value):
    with pytest.raises(ValueError, match=rf"{argument}='{value}'") as info:
        NetConfig(**{argument: value})
    allowed = {"activation": ACTIVATIONS, "norm": NORMS, "init": INITS}[argument]
    assert all(repr(name) in str(info.value) for name in allowed)


@pytest.mark.parametrize("argument", ["depth", "width", "block_depth", "in_features", "out_features"])
def test_sizes_below_one_raise(argument):
    with pytest.raises(ValueError, match=rf"{argument}=0 .*>= 1"):
        NetConfig(**{argument: 0})


@pytest.mark.parametrize("depth", [2.5, 3.0, "3", True, None])
def test_depth_of_the_wrong_type_raises_type_error(depth):
    # True is an int to Python, but a depth of True must not build a depth-1 network.
    with pytest.raises(TypeError, match=r"depth=.* must be an integer >= 1 \(got "):
        NetConfig(depth=depth)


@pytest.mark.parametrize(
    ("argument", "value", "message"),
    [
        ("width", 8.0, r"width=8\.0 .*integer"),
        ("activation", None, r"activation=None .*string"),
        ("init_scale", "1", r"init_scale='1' .*number"),
        ("residual_scale", False, r"residual_scale=False .*number"),
        ("residual", "yes", r"residual='yes' .*True or False"),
    ],
)
def test_other_wrong_types_raise_type_error(argument, value, message):
    with pytest.raises(TypeError, match=message):
        NetConfig(**{argument: value})


def test_numpy_integers_are_integers():
    config = NetConfig(depth=np.int64(4), width=np.int32(8))
    assert (config.depth, config.width) == (4, 8)
    assert type(config.depth) is int


def test_non_positive_init_scale_raises():
    with pytest.raises(ValueError, match=r"init_scale=0\.0 .*> 0"):
        NetConfig(init_scale=0.0)


def test_negative_residual_scale_raises_but_zero_is_allowed():
    assert NetConfig(depth=4, residual=True, residual_scale=0.0).residual_scale == 0.0
    with pytest.raises(ValueError, match="residual_scale=-1"):
        NetConfig(depth=4, residual=True, residual_scale=-1.0)


@pytest.mark.parametrize("depth, block_depth", [(3, 2), (2, 1), (5, 2)])
def test_residual_network_too_shallow_or_misaligned_raises(depth, block_depth):
    with pytest.raises(ValueError, match=rf"depth={depth} .*block_depth={block_depth}"):
        NetConfig(depth=depth, residual=True, block_depth=block_depth)


def test_looks_linear_refuses_activations_it_cannot_serve():
    with pytest.raises(ValueError, match=r"activation='tanh' .*looks_linear"):
        NetConfig(activation="tanh", init="looks_linear")


@pytest.mark.parametrize(
    "changes, argument",
    [
        ({"norm": "batch"}, "norm"),
        ({"residual": True, "depth": 4}, "residual"),
        ({"width": 7}, "width"),
    ],
)
def test_looks_linear_refuses_norms_residuals_and_odd_widths(changes, argument):
    with pytest.raises(ValueError, match=rf"{argument}="):
        NetConfig(init="looks_linear", **changes)


# ----------------------------------------------------------------------------- argument checks


@pytest.mark.parametrize(
    ("check", "value", "wrong_type", "out_of_range"),
    [
        (lambda v: check_int("n", v, 1, 5), 3, [3.0, "3", True, None], [0, 6]),
        (lambda v: check_positive("lr", v), 0.5, ["0.5", False, None, [1.0]], [0, -1.0, math.inf, math.nan]),
        (lambda v: check_fraction("p", v), 1, ["1", True], [0.0, 1.5, math.nan]),
        (lambda v: check_finite("x", v), -2.0, ["-2", None], [math.inf, -math.inf, math.nan]),
        (lambda v: check_choice("norm", v, NORMS), "Batch", [None, 1, ("batch",)], ["group", ""]),
        (check_float_dtype, "float64", [64, None, float], ["float128", torch.int64]),
    ],
)
def test_checks_raise_type_error_for_a_wrong_type_and_value_error_out_of_range(
    check, value, wrong_type, out_of_range
):
    check(value)
    for bad in wrong_type:
        with pytest.raises(TypeError, match=r"is not allowed: .* must be .*\(got "):
            check(bad)
    for bad in out_of_range:
        with pytest.raises(ValueError, match=r"is not (allowed|supported): .* must "):
            check(bad)


def test_checks_return_plain_python_values():
    assert check_int("n", np.int64(4), 1) == 4 and type(check_int("n", np.int64(4), 1)) is int
    assert check_positive("lr", np.float32(0.5)) == 0.5 and check_positive("lr", 0, allow_zero=True) == 0.0
    assert check_choice("norm", "Batch", NORMS) == "batch"
    assert check_float_dtype("FLOAT32") is torch.float32 and check_float_dtype(torch.float16) is torch.float16
    assert check_fraction("p", 1) == 1.0
    with pytest.raises(ValueError, match=r"p=1 .*\(0, 1\)"):
        check_fraction("p", 1, inclusive_high=False)


def test_residual_depth_is_the_deepest_valid_resnet_not_deeper():
    from explodegrad.core.config import residual_depth

    assert [residual_depth(d) for d in (4, 5, 20, 21, 50)] == [4, 4, 20, 20, 50]
    assert residual_depth(11, block_depth=3) == 11 and residual_depth(10, block_depth=3) == 8
    for depth in (4, 9, 50):
        NetConfig(depth=residual_depth(depth), residual=True)  # always a valid residual network
    with pytest.raises(ValueError, match="depth=3"):
        residual_depth(3)


def test_is_residual_depth_is_the_rule_netconfig_enforces():
    from explodegrad.core.config import is_residual_depth, residual_depth, residual_depth_rule

    assert [d for d in range(12) if is_residual_depth(d)] == [4, 6, 8, 10]
    assert [d for d in range(12) if is_residual_depth(d, block_depth=3)] == [5, 8, 11]
    for block_depth in (1, 2, 3):
        for depth in range(2, 15):
            allowed = is_residual_depth(depth, block_depth)
            assert allowed == (depth >= 2 + block_depth and residual_depth(depth, block_depth) == depth)
            if allowed:
                NetConfig(depth=depth, residual=True, block_depth=block_depth)
            else:
                with pytest.raises(ValueError, match=f"depth={depth} .*block_depth={block_depth}"):
                    NetConfig(depth=depth, residual=True, block_depth=block_depth)
    assert residual_depth_rule().endswith("so an even depth >= 4")
    assert residual_depth_rule(3).endswith("so 2 + a positive multiple of 3")


def test_num_parameters_counts_what_a_built_network_holds():
    from explodegrad import build_from_config

    for config in (
        NetConfig(depth=1, width=5, in_features=3, out_features=2),
        NetConfig(depth=5, width=6, norm="layer", in_features=3, out_features=2),
        NetConfig(depth=6, width=4, norm="batch", residual=True, in_features=3, out_features=2),
    ):
        assert config.num_parameters() == sum(p.numel() for p in build_from_config(config).parameters())
        assert len(config.linear_shapes()) == sum(
            1 for m in build_from_config(config).modules() if isinstance(m, torch.nn.Linear)
        )
