"""Effective depth during training and the Taylor experiment across architectures."""

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import TINY

from explodegrad.core.config import NetConfig
from explodegrad.core.device import DeviceChoice, default_dtype, pick_device, resolve_device
from explodegrad.core.nets import build_from_config
from explodegrad.core.scales import QUICK
from explodegrad.measures.taylor import TaylorCurve
from explodegrad.studies.common import Architecture, architecture_label, resolve_data, study_settings
from explodegrad.studies.effective_depth import (
    EffectiveDepthStudy,
    effective_depth_study,
    linear_layers_in_top,
    natural_skip,
    path_shares_by_depth,
    paths_at_initialization,
    taylor_break,
    track_effective_depth,
    train_together,
)
from explodegrad.training.loop import train


@pytest.fixture(scope="module")
def study(data):
    architectures = [
        Architecture("relu", "batch"),
        Architecture("tanh", "none", residual=True),
        Architecture("linear", "none"),
    ]
    return effective_depth_study(
        architectures, scale=TINY, data=data, checkpoints=3, measure_size=32, taylor_size=48, num_probes=2
    )


def _curve(errors, ks=None):
    errors = np.asarray(errors, dtype=float)
    ks = np.arange(len(errors)) if ks is None else np.asarray(ks)
    return TaylorCurve(ks=ks, train_error=errors, train_loss=errors, reference="mean", label="test")


@pytest.mark.parametrize(
    "config",
    [
        NetConfig(depth=7, width=4),
        NetConfig(depth=8, width=4, residual=True),
        NetConfig(depth=11, width=4, residual=True, block_depth=3),
        NetConfig(depth=1, width=4),
    ],
)
def test_linear_layers_in_top_counts_every_weight_layer_once(config):
    net = build_from_config(config)
    counts = [linear_layers_in_top(config, k) for k in range(config.num_layers + 1)]
    assert counts[0] == 0 and counts[-1] == config.depth == len(net.linear_layers())
    for k in range(1, config.num_layers + 1):  # each unit adds exactly its own linear maps
        assert counts[k] - counts[k - 1] == len(
            [m for m in net.layer(k).modules() if m.__class__.__name__ == "Linear"]
        )


def test_linear_layers_in_top_rejects_k_outside_the_network():
    with pytest.raises(ValueError, match="k=6"):
        linear_layers_in_top(NetConfig(depth=5), 6)


def test_taylor_break_is_the_first_k_past_the_tolerance():
    assert taylor_break(_curve([0.10, 0.12, 0.14, 0.16, 0.40]), tolerance=0.05) == 3
    assert taylor_break(_curve([0.10, 0.11, 0.12]), tolerance=0.05) is None
    assert taylor_break(_curve([0.3, 0.9], ks=[2, 3])) is None  # no k = 0 to compare with
    with pytest.raises(ValueError, match="tolerance=0"):
        taylor_break(_curve([0.1, 0.2]), tolerance=0)


def test_architecture_defaults_and_residual_depth():
    relu = Architecture("relu", "batch")
    assert relu.label == "relu/batch" and relu.config(10, 8, 6, 3).init == "he"
    tanh = Architecture("TANH", residual=True)
    assert tanh.label == "tanh/none/res"
    config = tanh.config(21, 8, 6, 3)
    assert config.depth == 20 and config.init == "xavier" and config.residual
    assert Architecture("selu", init="orthogonal").config(5, 8, 6, 3).init == "orthogonal"
    with pytest.raises(ValueError, match="activation='swish'"):
        Architecture("swish")
    with pytest.raises(ValueError, match="depth=3"):
        tanh.config(3, 8, 6, 3)


def test_natural_skip_and_study_settings():
    assert natural_skip(NetConfig(depth=4, residual=True)) == "identity"
    assert natural_skip(NetConfig(depth=4)) == "linear_fit"
    settings = study_settings(QUICK, checkpoints=4)
    assert (settings.steps, settings.batch_size, settings.record_every) == (200, 128, 50)
    assert study_settings(QUICK, lr=0.1).lr == 0.1
    with pytest.raises(ValueError, match="checkpoints=0"):
        study_settings(QUICK, checkpoints=0)
    with pytest.raises(TypeError, match="scale="):
        study_settings("quick")


def test_effective_depth_since_init_is_zero_at_initialization(data):
    config = Architecture("relu", "none").config(5, 8, data.in_features, data.num_classes)
    settings = study_settings(TINY, checkpoints=2)
    trajectory, net, history = track_effective_depth(config, data, settings, measure_size=32, num_probes=2)
    np.testing.assert_array_equal(trajectory.steps, [0, 3, 6])
    assert trajectory.depth_since_init[0] == 0  # every residual is exactly zero at step 0
    np.testing.assert_array_equal(trajectory.fractions_since_init[0], np.eye(6)[0])
    assert trajectory.fractions_natural.shape == (3, config.num_layers + 1)
    np.testing.assert_allclose(trajectory.fractions_natural.sum(1), 1.0)
    np.testing.assert_array_equal(trajectory.train_error, history.train_error)
    assert trajectory.natural_skip == "linear_fit" and history.steps_done == 6
    assert net.training  # trained in place, mode untouched


def test_study_table_matches_its_trajectories_and_curves(study):
    assert isinstance(study, EffectiveDepthStudy)
    assert study.labels == ["relu/batch", "tanh/none/res", "linear/none"]
    assert list(study.table["label"]) == study.labels
    for row in study.table.itertuples():
        trajectory, curve = study.trajectories[row.label], study.taylor[row.label]
        assert row.depth_natural_init == trajectory.depth_natural[0]
        assert row.depth_since_init_final == trajectory.depth_since_init[-1]
        assert row.final_train_error == study.histories[row.label].final_train_error
        np.testing.assert_array_equal(curve.ks, np.arange(row.num_layers + 1))
        assert study.taylor_linear_layers[row.label][-1] == row.depth
        broke = taylor_break(curve, study.tolerance)
        assert (pd.isna(row.taylor_break_k) and broke is None) or row.taylor_break_k == broke
    assert str(study.table["taylor_break_k"].dtype) == "Int64"
    assert study.table.loc[1, "num_layers"] == 4  # depth 6 residual: input, 2 blocks, readout
    assert "relu/batch" in study.summary()


def test_an_affine_network_has_no_depth_to_find(study):
    # Linear activations: every layer IS its best affine fit, and the Taylor expansion of
    # affine layers is exact, so neither measure may find any depth.
    trajectory = study.trajectories["linear/none"]
    np.testing.assert_array_equal(trajectory.depth_natural, 0)
    curve = study.taylor["linear/none"]
    np.testing.assert_allclose(curve.train_error, curve.train_error[0])
    assert pd.isna(study.table.loc[2, "taylor_break_k"])


def test_study_rejects_bad_input(data):
    with pytest.raises(ValueError, match="architectures=\\[\\]"):
        effective_depth_study([], scale=TINY, data=data)
    with pytest.raises(ValueError, match="repeat"):
        effective_depth_study([Architecture("relu"), Architecture("relu")], scale=TINY, data=data)
    with pytest.raises(TypeError, match="not an Architecture"):
        effective_depth_study([("relu", "none")], scale=TINY, data=data)
    with pytest.raises(TypeError, match="scale="):
        effective_depth_study(scale="quick", data=data)
    with pytest.raises(TypeError, match="device=3"):
        effective_depth_study(scale=TINY, data=data, device=3)
    with pytest.raises(ValueError, match="tolerance=2"):
        effective_depth_study(scale=TINY, data=data, tolerance=2)


def test_studies_train_in_float64_on_the_cpu_and_float32_on_a_gpu(data):
    assert default_dtype() == default_dtype("cpu") == torch.float64
    assert default_dtype("cuda") == default_dtype(torch.device("mps")) == torch.float32
    loaded = resolve_data(scale=TINY, device="cpu")
    assert loaded.x_train.dtype == torch.float64 and loaded.x_train.shape == (64, 64)
    assert resolve_data(data, scale=TINY) is data  # a given Dataset is used as it is
    assert resolve_data(data, dtype=torch.float64).x_train.dtype == torch.float64
    named = resolve_data("digits", device="cpu", dtype=torch.float32)
    assert named.name == "digits" and named.x_train.dtype == torch.float32
    with pytest.raises(TypeError, match="data=3"):
        resolve_data(3)
    with pytest.raises(TypeError, match="scale="):
        resolve_data(scale="quick")
    with pytest.raises(ValueError, match="dtype=torch.float16"):
        resolve_data(data, dtype=torch.float16)


def test_one_device_resolver_takes_names_devices_and_the_setups_choice(data):
    cpu = torch.device("cpu")
    choice = DeviceChoice(cpu, "CPU", "test")
    assert resolve_device("cpu") == resolve_device(cpu) == resolve_device(choice) == cpu
    assert resolve_device(None, data) == data.device  # where the data already is
    assert resolve_device(None) == pick_device().device  # else the setup's choice
    assert resolve_device("cuda:1") == torch.device("cuda", 1)  # a name needs no GPU to be named
    with pytest.raises(TypeError, match="device=0"):
        resolve_device(0)
    with pytest.raises(ValueError, match="device='gpu'"):
        resolve_device("gpu")


def test_one_label_function_names_every_architecture():
    assert architecture_label("relu", "batch") == Architecture("relu", "batch").label == "relu/batch"
    assert architecture_label("tanh", "none", True) == "tanh/none/res"
    assert architecture_label("relu", "none", init="looks_linear") == "relu/none/looks_linear"
    assert Architecture("tanh", "batch", residual=True).name == "tanh/batch/xavier/res"
    assert Architecture("relu", init="looks_linear").name == "relu/none/looks_linear"


def test_paths_at_initialization_find_no_depth_where_there_is_none(data):
    # a zero branch scale makes every block the identity: only the lambda = 0 path remains
    silent = paths_at_initialization(depth=8, width=8, residual_scale=0.0, data=data, batch_size=32)
    np.testing.assert_array_equal(silent.fraction, np.eye(6)[0])  # L = 5: input, 3 blocks, readout
    assert silent.effective_depth == 0 and silent.skip == "identity"
    # a plain network of affine layers is its own best affine fit
    affine = paths_at_initialization(
        depth=6, width=8, activation="linear", residual=False, data=data, batch_size=32, dtype=torch.float64
    )
    assert affine.effective_depth == 0 and affine.skip == "linear_fit"
    full = paths_at_initialization(depth=8, width=8, data=data, batch_size=32)
    assert full.effective_depth > 0 and len(full.lambdas) == 6
    for depth in (2, 7):  # a ResNet's depth: the message says which are allowed
        with pytest.raises(ValueError, match=f"depth={depth} .*residual.*an even depth >= 4"):
            paths_at_initialization(depth=depth, data=data)
    # the mean path length as a share of the longest possible: 0 where only the skip path
    # carries, the weighted mean over the longest lambda otherwise (a ResNet's blocks, L - 2)
    assert silent.mean_share == 0.0 and affine.mean_share == pytest.approx(0.0, abs=1e-14)
    assert full.longest_path == 3 and silent.longest_path == 3  # L = 5: input, 3 blocks, readout
    expected = float(np.sum(full.lambdas * full.fraction)) / 3
    assert full.mean_share == pytest.approx(expected, rel=1e-12) and 0.0 < full.mean_share < 1.0
    # every residual taken: a share of 1 (a huge branch scale leaves the skips nothing)
    loud = paths_at_initialization(depth=8, width=8, residual_scale=1e6, data=data, batch_size=32)
    assert loud.mean_share == pytest.approx(1.0, abs=1e-3)
    plain = paths_at_initialization(
        depth=6, width=8, residual=False, data=data, batch_size=32, dtype=torch.float64
    )
    assert plain.longest_path == 5 and plain.fraction[-1] < 1e-10  # the affine readout: never a residual


def test_path_shares_by_depth_repeat_paths_at_initialization():
    tanh = [Architecture("tanh", "none"), Architecture("tanh", "none", residual=True)]
    shares = path_shares_by_depth((6, 10), 8, tanh, batch_size=32)
    assert list(shares) == [6, 10] and list(shares[6]) == ["tanh/none", "tanh/none/res"]
    one = paths_at_initialization(10, 8, "tanh", residual=True, batch_size=32, dtype=torch.float64)
    assert shares[10]["tanh/none/res"] == one.mean_share  # the same network, batch and probes
    with pytest.raises(ValueError, match="depths=\\[\\]"):
        path_shares_by_depth((), 8, tanh)
    with pytest.raises(ValueError, match="depths=1"):
        path_shares_by_depth((1, 10), 8, tanh)
    for depths in ((2, 10), (3,), (6, 7)):  # a ResNet's depth: even and >= 4, said before any work
        with pytest.raises(ValueError, match=r"depths=.* residual tanh/none/res.*an even depth >= 4"):
            path_shares_by_depth(depths, 8, tanh)
    assert list(path_shares_by_depth((3,), 8, tanh[:1], batch_size=32)) == [3]  # plain: any depth
    with pytest.raises(TypeError, match="not an Architecture"):
        path_shares_by_depth((6,), 8, ["tanh"])


def test_stacked_seeds_measure_what_one_network_trained_alone_measures(data):
    """``stack_seeds`` trains in one sweep and measures the kept networks; with one seed the
    sweep is ``train()`` step for step, so every number matches the default route exactly."""
    architectures = [Architecture("relu", "batch"), Architecture("tanh", "none", residual=True)]
    options = dict(scale=TINY, data=data, seeds=(3,), checkpoints=3, measure_size=32, taylor_size=48)
    alone = effective_depth_study(architectures, **options)
    stacked = effective_depth_study(architectures, stack_seeds=True, **options)
    pd.testing.assert_frame_equal(alone.table, stacked.table)
    for label in alone.labels:
        np.testing.assert_array_equal(alone.trajectories[label].steps, stacked.trajectories[label].steps)
        np.testing.assert_array_equal(
            alone.trajectories[label].depth_since_init, stacked.trajectories[label].depth_since_init
        )
        np.testing.assert_allclose(alone.taylor[label].train_error, stacked.taylor[label].train_error)


def test_train_together_keeps_every_network_with_the_first_seeds_minibatches(data):
    configs = {
        seed: Architecture("relu", "none").config(6, 8, data.in_features, data.num_classes, seed)
        for seed in (0, 1)
    }
    settings = study_settings(TINY, 2).with_(seed=0)
    trained = train_together(configs, data, settings)
    assert list(trained) == [0, 1]
    for seed, kept in trained.items():
        assert [step for step, _ in kept.networks] == [0, 3, 6] == kept.history.steps.tolist()
        assert kept.networks[0][1].config == configs[seed] and kept.history.settings.seed == 0
    # the seed-0 network is the one train() makes from seed 0 (stacking changes no minibatch;
    # a stack of two rounds its float32 products differently from one network alone)
    alone = build_from_config(configs[0], dtype=data.x_train.dtype)
    history = train(alone, data, settings, progress=False)
    np.testing.assert_allclose(trained[0].history.train_error, history.train_error, rtol=1e-6)
    for name, value in alone.state_dict().items():
        torch.testing.assert_close(trained[0].networks[-1][1].state_dict()[name], value, rtol=1e-5, atol=1e-7)
    with pytest.raises(TypeError, match="stack_seeds='yes' is not allowed"):
        effective_depth_study(scale=TINY, data=data, stack_seeds="yes")
    with pytest.raises(ValueError, match="stack_seeds=True is not allowed with trained"):
        effective_depth_study(scale=TINY, data=data, stack_seeds=True, trained={})
    with pytest.raises(ValueError, match="configs=\\{\\} is not allowed"):
        train_together({}, data, settings)
