"""Stacked sweeps: equal to train() run by run, masking of diverged models, grouping, memory."""

import numpy as np
import pytest
import torch

from explodegrad import NetConfig, load_digits
from explodegrad.training.loop import TrainSettings, train
from explodegrad.training.sweep import RunSpec, StackedMLP, estimate_memory, grid, lr_search, sweep

TINY = NetConfig(depth=3, width=8)
SETTINGS = TrainSettings(steps=15, batch_size=32, record_every=5, eval_size=200)


@pytest.fixture(scope="module")
def digits64():
    return load_digits(dtype=torch.float64)


def _assert_same_as_train(result, run_index, history, tol=1e-5):
    rows = result.table[result.table["run"] == run_index]
    np.testing.assert_array_equal(rows["step"].to_numpy(), history.steps)
    for column in ("train_loss", "test_loss", "train_error", "test_error"):
        np.testing.assert_allclose(rows[column].to_numpy(), getattr(history, column), rtol=0, atol=tol)


@pytest.mark.parametrize(
    "config, settings",
    [
        (NetConfig(depth=4, width=16), SETTINGS.with_(optimizer="sgd", momentum=0.9, lr=0.05)),
        (NetConfig(depth=4, width=16, norm="batch"), SETTINGS.with_(optimizer="sgd", lr=0.05, clip_norm=0.5)),
        (
            NetConfig(depth=5, width=12, norm="batch", activation="tanh"),
            SETTINGS.with_(optimizer="adam", lr=3e-3, schedule="cosine", weight_decay=1e-3),
        ),
        (
            NetConfig(depth=6, width=16, residual=True, residual_scale=0.5, norm="layer"),
            SETTINGS.with_(optimizer="rmsprop", lr=1e-3, clip_value=0.1),
        ),
        (
            NetConfig(depth=6, width=16, residual=True, norm="batch", activation="selu"),
            SETTINGS.with_(optimizer="adam", lr=1e-3, schedule="step"),
        ),
    ],
)
def test_sweep_of_one_configuration_reproduces_train(digits64, config, settings):
    history = train(config, digits64, settings, progress=False)
    result = sweep([config], digits64, settings, progress=False)
    _assert_same_as_train(result, 0, history)
    summary = result.summary.iloc[0]
    assert summary["final_train_loss"] == pytest.approx(history.final_train_loss, abs=1e-5)
    assert summary["steps_done"] == history.steps_done == settings.steps


def test_a_diverging_model_leaves_the_others_as_if_trained_alone(digits64):
    config = NetConfig(depth=4, width=16, norm="batch")
    runs = [
        RunSpec(config.with_(seed=1), SETTINGS.with_(lr=0.05)),
        RunSpec(config.with_(seed=2, residual_scale=2.0), SETTINGS.with_(lr=1e200)),  # explodes
        RunSpec(config.with_(seed=3, init="xavier"), SETTINGS.with_(lr=0.01, momentum=0.5)),
    ]
    result = sweep(runs, digits64, progress=False)
    assert len(result.groups) == 1 and len(result.groups[0].chunks) == 1  # trained together
    summary = result.summary
    assert summary["diverged"].tolist() == [False, True, False]
    step = summary.loc[1, "diverged_step"]
    assert 1 <= step <= SETTINGS.steps and "diverged at step" in summary.loc[1, "message"]
    assert np.isnan(summary.loc[1, "final_train_error"])
    diverged_rows = result.table[result.table["run"] == 1]
    assert (diverged_rows["step"] < step).all()  # records stop before the divergence
    for i in (0, 2):
        alone = train(runs[i].config, digits64, runs[i].settings, progress=False)
        _assert_same_as_train(result, i, alone, tol=1e-10)


def test_learning_rates_form_one_batched_group(digits64):
    config = NetConfig(depth=3, width=8)
    result = sweep([config], digits64, SETTINGS, lrs=[0.01, 0.1], progress=False)
    assert len(result.groups) == 1 and result.summary["lr"].tolist() == [0.01, 0.1]
    for i, lr in enumerate((0.01, 0.1)):
        _assert_same_as_train(result, i, train(config, digits64, SETTINGS, lr=lr, progress=False))


def test_different_shapes_and_optimizers_form_separate_groups(digits64):
    runs = grid(NetConfig(depth=3, width=8), SETTINGS, width=[8, 12], optimizer=["sgd", "adam"])
    result = sweep(runs, digits64, progress=False)
    assert len(result.groups) == 4 and len(result.summary) == 4


def test_memory_limit_splits_into_chunks_with_equal_results(digits64):
    runs = grid(NetConfig(depth=3, width=8), SETTINGS, init_seed=[0, 1, 2])
    whole = sweep(runs, digits64, progress=False)
    per_model = whole.groups[0].memory.per_model
    shared = whole.groups[0].memory.shared
    chunked = sweep(runs, digits64, progress=False, memory_limit_bytes=shared + 2 * per_model)
    assert [len(c) for c in chunked.groups[0].chunks] == [2, 1]
    columns = ["run", "step", "train_loss", "test_loss", "train_error"]
    # equal up to rounding: a chunk's matrix products have other sizes, so BLAS may sum differently
    np.testing.assert_allclose(
        chunked.table[columns].to_numpy(), whole.table[columns].to_numpy(), rtol=0, atol=1e-12
    )
    with pytest.raises(ValueError, match="memory: one model .* more than the limit"):
        sweep(runs, digits64, progress=False, memory_limit_bytes=shared + per_model // 2)


def test_memory_estimate_counts_parameters_exactly():
    config = NetConfig(depth=3, width=8, in_features=64, out_features=10, norm="batch")
    estimate = estimate_memory(config, SETTINGS, n_eval=100)
    scalars = (8 * 64 + 8) + (8 * 8 + 8) + (10 * 8 + 10) + 2 * (2 * 8)  # linears + 2 batch norms
    assert estimate.parameters == 4 * scalars
    assert estimate.total(3) - estimate.total(2) == estimate.per_model
    stacked = StackedMLP([config], dtype=torch.float32)
    assert stacked.params.numel() == scalars


def test_results_are_deterministic(digits64):
    runs = grid(NetConfig(depth=3, width=8), SETTINGS, lr=[0.01, 0.1])
    first = sweep(runs, digits64, progress=False)
    second = sweep(runs, digits64, progress=False)
    columns = ["train_loss", "test_loss", "train_error", "test_error"]
    np.testing.assert_array_equal(first.table[columns].to_numpy(), second.table[columns].to_numpy())


def test_grid_builds_every_combination():
    runs = grid(
        NetConfig(depth=3, width=8),
        SETTINGS,
        activation=["relu", "tanh"],
        lr=[0.1, 0.2, 0.3],
        betas=(0.8, 0.9),
        seed=7,
    )
    assert len(runs) == 6
    assert [r.config.activation for r in runs[:3]] == ["relu"] * 3
    assert [r.settings.lr for r in runs[:3]] == [0.1, 0.2, 0.3]
    assert all(r.settings.betas == (0.8, 0.9) for r in runs)
    assert all(r.config.seed == 7 and r.settings.seed == 7 for r in runs)  # seed sets both
    only_weights = grid(init_seed=[1, 2])
    assert [r.config.seed for r in only_weights] == [1, 2]
    assert [r.settings.seed for r in only_weights] == [0, 0]


def test_lr_search_picks_the_lowest_final_training_error(digits64):
    configs = [NetConfig(depth=3, width=8), NetConfig(depth=3, width=8, norm="batch")]
    lrs = [1e-4, 0.05, 1e200]
    result = lr_search(configs, digits64, lrs, SETTINGS, progress=False)
    assert len(result.sweep.groups) == 2 and len(result.table) == 6
    for arch in (0, 1):
        rows = result.table[result.table["arch"] == arch]
        assert rows.loc[rows["lr"] == 1e200, "diverged"].item()  # never picked
        finite = rows[~rows["diverged"]]
        best = finite.loc[finite["final_train_error"].idxmin(), "lr"]
        assert result.best_lr(arch) == best
    assert result.best_lr(0) == 0.05  # 1e-4 barely moves in 15 steps


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda d: sweep([], d, progress=False), "configs: the grid is empty"),
        (lambda d: sweep([NetConfig(depth=3, width=8)], d, lrs=[], progress=False), r"lrs=\[\]"),
        (lambda d: sweep([NetConfig(depth=3, width=8)], d, lrs=[-1.0], progress=False), "lrs=-1.0"),
        (
            lambda d: sweep([NetConfig(depth=3, width=8)], d, [SETTINGS, SETTINGS], progress=False),
            "settings: 2",
        ),
        (lambda d: sweep([TINY.with_(in_features=32)], d, progress=False), "config: in_features"),
        (lambda d: sweep(["relu"], d, progress=False), "configs: expected NetConfig"),
        (lambda d: grid(depth=[]), r"depth=\[\]"),
        (lambda d: grid(colour=["red"]), "colour"),
        (lambda d: grid(optimizer=["sgd", "lbfgs"]), "optimizer='lbfgs'"),
        (lambda d: lr_search([NetConfig(depth=3, width=8)], d, [], progress=False), "lrs"),
    ],
)
def test_bad_input_names_the_argument(digits64, call, argument):
    with pytest.raises(ValueError, match=argument):
        call(digits64)


def test_incompatible_shapes_cannot_be_forced_into_one_group():
    with pytest.raises(ValueError, match="configs: configuration 1 .* cannot be stacked"):
        StackedMLP([NetConfig(depth=3, width=8), NetConfig(depth=3, width=12)])
    with pytest.raises(ValueError, match="configs: the list is empty"):
        StackedMLP([])
