"""Stacked sweeps: the stacked DeepMLP equals the plain one, sweeps equal train() run by run,
results do not depend on chunking, masking of diverged models, grouping, memory, bad input."""

import numpy as np
import pytest
import torch

from explodegrad import NetConfig, build_from_config, load_digits
from explodegrad.training.loop import TrainSettings, train
from explodegrad.training.stacked import NetStack, flat_row
from explodegrad.training.sweep import RunSpec, estimate_memory, grid, lr_search, sweep

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


@pytest.mark.parametrize(
    "config, settings",
    [
        (NetConfig(depth=3, width=8), SETTINGS),
        (NetConfig(depth=6, width=8, residual=True, norm="batch"), SETTINGS.with_(optimizer="adam", lr=1e-3)),
    ],
)
def test_results_are_identical_whatever_the_chunk_size(digits64, config, settings):
    runs = [
        RunSpec(config.with_(seed=s, residual_scale=0.5 * (s + 1)), settings.with_(lr=settings.lr * (s + 1)))
        for s in range(3)
    ]
    runs.append(RunSpec(config.with_(seed=3), settings.with_(lr=1e200)))  # diverges: masked
    whole = sweep(runs, digits64, progress=False)
    memory = whole.groups[0].memory
    assert [len(c) for c in whole.groups[0].chunks] == [4]
    columns = ["run", "step", "train_loss", "test_loss", "train_error", "test_error"]
    # equal up to rounding, not bitwise: PyTorch's batched reductions (bias and batch-norm
    # gradients over the models' channels side by side) take other paths for other chunk sizes
    for per_chunk, sizes in ((2, [2, 2]), (3, [3, 1]), (1, [1, 1, 1, 1])):
        chunked = sweep(runs, digits64, progress=False, memory_limit_bytes=memory.total(per_chunk))
        assert [len(c) for c in chunked.groups[0].chunks] == sizes
        np.testing.assert_allclose(
            chunked.table[columns].to_numpy(), whole.table[columns].to_numpy(), rtol=0, atol=1e-11
        )
        assert chunked.summary["diverged"].tolist() == [False] * 3 + [True]
        for name in ("steps_done", "diverged_step", "diverged_layer"):
            assert chunked.summary[name].tolist() == whole.summary[name].tolist()


def test_a_model_that_does_not_fit_is_refused(digits64):
    runs = grid(NetConfig(depth=3, width=8), SETTINGS, init_seed=[0, 1])
    memory = sweep(runs[:1], digits64, progress=False).groups[0].memory
    with pytest.raises(ValueError, match="memory: one model .* more than the limit"):
        sweep(runs, digits64, progress=False, memory_limit_bytes=memory.shared + memory.per_model // 2)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"norm": "batch"},
        {"norm": "layer", "activation": "tanh"},
        {"residual": True, "norm": "batch", "depth": 8, "block_depth": 3},
        {"residual": True, "activation": "selu", "depth": 6},
    ],
)
@pytest.mark.parametrize("models", [1, 3])
def test_the_stack_runs_the_same_deep_mlp(changes, models):
    """Logits, gradients and batch-norm running statistics of a stack equal each network's own
    (a stack of one runs without vmap, as train() uses it)."""
    configs = [
        NetConfig(
            depth=5, width=8, in_features=6, out_features=3, seed=s, residual_scale=0.3 * (s + 1)
        ).with_(**changes)
        for s in range(models)
    ]
    nets = [build_from_config(c, dtype=torch.float64) for c in configs]
    stack = NetStack(nets)
    x, y = torch.randn(7, 6, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2, 0])
    losses, logits = stack.losses(x, y)
    grads = stack.gradients(losses.sum())
    for m, net in enumerate(nets):
        net_logits = net(x)  # one training-mode pass each, as the stack made one
        torch.testing.assert_close(logits[m], net_logits, rtol=0, atol=1e-13)
        loss = torch.nn.functional.cross_entropy(net_logits, y)
        expected = flat_row(torch.autograd.grad(loss, list(net.parameters())), models > 1)
        torch.testing.assert_close(grads[m], expected, rtol=0, atol=1e-13)
        for name, buffer in net.named_buffers():  # running statistics, residual scales
            torch.testing.assert_close(stack.buffers[name][m], buffer, rtol=0, atol=1e-15)
    fresh = [build_from_config(c, dtype=torch.float64) for c in configs]
    stack.copy_to(fresh)
    for m, net in enumerate(fresh):
        torch.testing.assert_close(
            flat_row(list(net.parameters()), models > 1), stack.params[m], rtol=0, atol=0
        )


def test_memory_estimate_counts_parameters_exactly():
    config = NetConfig(depth=3, width=8, in_features=64, out_features=10, norm="batch")
    estimate = estimate_memory(config, SETTINGS, n_eval=100)
    scalars = (8 * 64 + 8) + (8 * 8 + 8) + (10 * 8 + 10) + 2 * (2 * 8)  # linears + 2 batch norms
    assert estimate.parameters == 4 * scalars
    assert estimate.total(3) - estimate.total(2) == estimate.per_model
    stacked = NetStack.from_configs([config], dtype=torch.float32)
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
        (lambda d: grid(depth=[]), r"depth=\[\]"),
        (lambda d: grid(colour=["red"]), "colour"),
        (lambda d: grid(optimizer=["sgd", "lbfgs"]), "optimizer='lbfgs'"),
        (lambda d: lr_search([NetConfig(depth=3, width=8)], d, [], progress=False), "lrs"),
    ],
)
def test_bad_input_names_the_argument(digits64, call, argument):
    with pytest.raises(ValueError, match=argument):
        call(digits64)


@pytest.mark.parametrize(
    "call, argument",
    [
        (
            lambda d: sweep(["relu"], d, progress=False),
            "configs: expected NetConfig or RunSpec items, got str",
        ),
        (lambda d: sweep(TINY, "digits", progress=False), "data: expected a Dataset"),
        (
            lambda d: sweep(TINY, d, settings={"lr": 0.1}, progress=False),
            "settings: expected a TrainSettings",
        ),
        (lambda d: sweep(TINY, d, lrs=["fast"], progress=False), "lrs='fast'"),
        (lambda d: sweep(TINY, d, memory_limit_bytes="1 GB", progress=False), "memory_limit_bytes='1 GB'"),
        (lambda d: lr_search([TINY], d, None, progress=False), "lrs: expected a sequence"),
        (lambda d: NetStack.from_configs(TINY), "configs: expected a sequence of NetConfig"),
        (lambda d: NetStack(["net"]), "nets: expected a sequence of DeepMLP"),
    ],
)
def test_wrong_types_raise_type_error(digits64, call, argument):
    with pytest.raises(TypeError, match=argument):
        call(digits64)


def test_incompatible_shapes_cannot_be_forced_into_one_group():
    with pytest.raises(ValueError, match="configs: configuration 1 .* cannot be stacked"):
        NetStack.from_configs([NetConfig(depth=3, width=8), NetConfig(depth=3, width=12)])
    with pytest.raises(ValueError, match="configs: the list is empty"):
        NetStack.from_configs([])


# --- activations chosen per model ---------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        NetConfig(depth=5, width=12),
        NetConfig(depth=5, width=12, norm="batch"),
        NetConfig(depth=6, width=12, residual=True, norm="layer", residual_scale=0.5),
    ],
)
def test_networks_that_differ_only_in_activation_train_as_one_group_as_if_alone(digits64, config):
    """ReLU, tanh, SELU and GELU networks of one shape, given in mixed order with a diverging
    one among them, form one group; each run's numbers are those of its activation's own sweep."""
    activations = ["tanh", "relu", "gelu", "relu", "selu", "tanh"]
    runs = [
        RunSpec(config.with_(activation=a, seed=i), SETTINGS.with_(lr=0.01 * (1 + i % 3)))
        for i, a in enumerate(activations)
    ]
    runs.append(RunSpec(config.with_(activation="selu", seed=9), SETTINGS.with_(lr=1e200)))  # diverges
    assert len(sweep(runs, digits64, progress=False).groups) == 4  # on a CPU by default: apart
    mixed = sweep(runs, digits64, progress=False, stack_activations=True)
    assert len(mixed.groups) == 1 and "differ only in activation" in mixed.describe()
    stacked = [runs[i].config.activation for i in mixed.groups[0].runs]
    assert stacked == ["tanh"] * 2 + ["relu"] * 2 + ["gelu"] + ["selu"] * 2  # one segment each
    assert mixed.summary["label"].tolist() == [r.label for r in runs]  # results in the given order
    assert mixed.summary["diverged"].tolist() == [False] * 6 + [True]
    columns = ["step", "train_loss", "test_loss", "train_error", "test_error"]
    for activation in dict.fromkeys(activations + ["selu"]):
        members = [i for i, r in enumerate(runs) if r.config.activation == activation]
        alone = sweep([runs[i] for i in members], digits64, progress=False, stack_activations=True)
        for j, i in enumerate(members):
            np.testing.assert_allclose(
                mixed.table[mixed.table["run"] == i][columns].to_numpy(),
                alone.table[alone.table["run"] == j][columns].to_numpy(),
                rtol=0,
                atol=1e-12,
            )
            for name in ("diverged_step", "diverged_layer", "steps_done"):
                assert str(mixed.summary.loc[i, name]) == str(alone.summary.loc[j, name])


def test_a_stack_in_any_activation_order_is_each_networks_own_forward_and_backward():
    """Unsorted activations (relu, tanh, relu: three segments) still give every network its own
    logits and gradients (float64, to rounding)."""
    config = NetConfig(depth=4, width=10, in_features=6, out_features=3, norm="batch")
    nets = [
        build_from_config(config.with_(activation=a, seed=i), dtype=torch.float64)
        for i, a in enumerate(["relu", "tanh", "relu"])
    ]
    stack = NetStack(nets)
    assert stack.activation_segments == [("relu", 1), ("tanh", 1), ("relu", 1)]
    x = torch.randn(8, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    losses, logits = stack.losses(x, y, track_running_stats=False)
    grads = stack.gradients(losses.sum())
    for m, net in enumerate(nets):
        own_logits = net(x)
        torch.testing.assert_close(logits[m], own_logits, rtol=0, atol=1e-13)
        own_loss = torch.nn.functional.cross_entropy(own_logits, y)
        own_grads = torch.autograd.grad(own_loss, list(net.parameters()))
        torch.testing.assert_close(grads[m], flat_row(own_grads), rtol=0, atol=1e-13)


def test_stack_key_leaves_out_the_activation_only():
    config = NetConfig(depth=4, width=10)
    assert config.stack_key() == config.with_(activation="tanh", init="xavier", seed=2).stack_key()
    assert config.shape_key() != config.with_(activation="tanh").shape_key()  # still another architecture
    for change in ({"norm": "batch"}, {"width": 12}, {"depth": 5}, {"residual": True}):
        assert config.stack_key() != config.with_(**change).stack_key()


def test_group_keys_join_activations_only_when_asked(digits64):
    relu, tanh = (RunSpec(TINY.with_(activation=a), SETTINGS) for a in ("relu", "tanh"))
    assert relu.group_key(stack_activations=True) == tanh.group_key(stack_activations=True)
    assert relu.group_key() != tanh.group_key()  # the default: as on a CPU
    with pytest.raises(TypeError, match="stack_activations='yes' is not allowed"):
        sweep([relu], digits64, progress=False, stack_activations="yes")
