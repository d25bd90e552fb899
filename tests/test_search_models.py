"""Measuring the rate search's own networks instead of retraining them (issue 16, paper scale).

At the tiny size with ``measure_search_models`` forced on: the networks measured are the
chosen run's kept checkpoints bit for bit, the effective depths and Taylor curve are what the
measures give on those networks by hand, the route is named, a search of one rate gives the
retraining route's numbers exactly, and the checkpoints' memory estimate is the bytes they
take. With the flag off (quick and tiny) the part is the old path's, bit for bit.
"""

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from explodegrad.measures.paths import DEFAULT_THRESHOLD
from explodegrad.measures.taylor import taylor_compression
from explodegrad.reproduce import parts
from explodegrad.reproduce.parts import (
    ALL_DIVERGED_ROUTE,
    MEASURED_ROUTE,
    RETRAINED_ROUTE,
    arch_part_name,
    check_search_memory,
    plan_parts,
    run_architecture,
    search_checkpoint_bytes,
)
from explodegrad.reproduce.plan import make_plan
from explodegrad.reproduce.store import load_plan_data, part_key
from explodegrad.studies.common import Architecture, study_settings
from explodegrad.studies.effective_depth import (
    TrainedNetworks,
    effective_depth_study,
    measure_both_skips,
    measure_trained,
    sweep_run_history,
)
from explodegrad.training.loop import train
from explodegrad.training.stacked import unflatten_row
from explodegrad.training.sweep import RunSpec, lr_search, sweep

RELU_BATCH = Architecture("relu", "batch")
RELU_BATCH_RES = Architecture("relu", "batch", True)


@pytest.fixture(scope="module")
def plan():
    return make_plan("tiny")


@pytest.fixture(scope="module")
def measuring(plan):
    return dataclasses.replace(plan, measure_search_models=True)


@pytest.fixture(scope="module")
def data(plan):
    return load_plan_data(plan, "cpu")  # float32 digits, as the report's tiny run


def _options(architecture: Architecture) -> dict:
    return {
        "activation": architecture.activation,
        "norm": architecture.norm,
        "residual": architecture.residual,
        "init": architecture.init,
    }


def _search(plan, data, architecture):
    """The part's own search, run again on its own (the same weights, rates and minibatches)."""
    config = architecture.config(
        plan.scale.depth, plan.scale.width, data.in_features, data.num_classes, plan.seed
    )
    settings = study_settings(plan.scale, seed=plan.seed)
    return lr_search([config], data, list(plan.lrs), settings, progress=False, keep_checkpoints=True)


def _assert_same_study(a, b):
    """Two effective-depth studies hold the same numbers, exactly."""
    pd.testing.assert_frame_equal(a.table, b.table, check_exact=True)
    assert a.labels == b.labels
    for label in a.labels:
        ta, tb = a.trajectories[label], b.trajectories[label]
        for name in (
            "steps",
            "train_error",
            "depth_since_init",
            "depth_natural",
            "fractions_since_init",
            "fractions_natural",
        ):
            np.testing.assert_array_equal(getattr(ta, name), getattr(tb, name), err_msg=name)
        np.testing.assert_array_equal(a.taylor[label].ks, b.taylor[label].ks)
        np.testing.assert_array_equal(a.taylor[label].train_error, b.taylor[label].train_error)
        np.testing.assert_array_equal(a.taylor_linear_layers[label], b.taylor_linear_layers[label])
        for name in ("steps", "train_loss", "train_error", "test_loss", "test_error"):
            np.testing.assert_array_equal(
                getattr(a.histories[label], name), getattr(b.histories[label], name), err_msg=name
            )


# ----------------------------------------------------------------------------- the plan


def test_only_the_paper_plan_measures_the_search_models(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLODEGRAD_DATA", str(tmp_path))  # no CIFAR-10: digits, still the paper plan
    monkeypatch.setenv("HOME", str(tmp_path))
    assert not make_plan("tiny").measure_search_models and not make_plan("quick").measure_search_models
    paper = make_plan("paper")
    assert paper.measure_search_models and "the search's own models" in paper.describe()
    assert "own models" not in make_plan("quick").describe()
    for plan in (make_plan("tiny"), make_plan("quick"), paper):
        arch = [p for p in plan_parts(plan) if p.name.startswith("arch-")]
        assert [("measure_search_models" in p.options) for p in arch] == [plan.measure_search_models] * len(
            arch
        )
    # the quick and tiny parts keep their keys (stored parts stay reusable); the paper's change
    tiny = make_plan("tiny")
    part = next(p for p in plan_parts(tiny) if p.name == arch_part_name(RELU_BATCH))
    assert part.options == _options(RELU_BATCH)
    forced = dataclasses.replace(tiny, measure_search_models=True)
    forced_part = next(p for p in plan_parts(forced) if p.name == part.name)
    assert part_key(part, tiny) != part_key(forced_part, forced)


# ----------------------------------------------------------------------------- the measured route


@pytest.fixture(scope="module")
def measured(measuring, data):
    """The measured route's part, with the networks it measured as they were handed over."""
    seen = {}

    def spy(*args, **kwargs):
        trained = kwargs.get("trained")
        if trained is not None:
            ((key, given),) = trained.items()
            seen["key"] = key
            seen["states"] = [(step, copy.deepcopy(net.state_dict())) for step, net in given.networks]
            seen["history"] = given.history
        study = effective_depth_study(*args, **kwargs)
        if trained is not None:
            seen["after"] = [(step, net.state_dict()) for step, net in given.networks]
        return study

    patch = pytest.MonkeyPatch()
    patch.setattr(parts, "effective_depth_study", spy)
    try:
        result = run_architecture(measuring, data, _options(RELU_BATCH))
    finally:
        patch.undo()
    return result, seen


def test_the_measured_networks_are_the_chosen_runs_checkpoints_bit_for_bit(measuring, data, measured):
    result, seen = measured
    assert result["route"] == MEASURED_ROUTE
    assert seen["key"] == (RELU_BATCH.label, measuring.seed)
    search = _search(measuring, data, RELU_BATCH)
    run = search.best_run(0)
    assert run is not None and search.sweep.runs[run].settings.lr == result["lr_used"] == search.best_lr(0)
    kept = search.sweep.checkpoints[run]
    steps = [c.step for c in kept]
    assert steps == [0, 2, 4, 6, 8, 10] == [step for step, _ in seen["states"]]
    for checkpoint, (step, state) in zip(kept, seen["states"]):
        net = search.sweep.network_at(run, step)
        expected = unflatten_row(checkpoint.params, net, checkpoint.transposed)
        for name, tensor in expected.items():
            assert torch.equal(state[name], tensor), (step, name)
        for name, buffer in checkpoint.buffers.items():
            assert torch.equal(state[name], buffer), (step, name)
    for (_, before), (_, after) in zip(seen["states"], seen["after"]):  # measuring changed nothing
        assert all(torch.equal(before[name], after[name]) for name in before)
    # the history is the search's record of that run, and the search's numbers are its own
    rows = search.sweep.table[search.sweep.table["run"] == run]
    np.testing.assert_array_equal(seen["history"].train_loss, rows["train_loss"].to_numpy())
    pd.testing.assert_frame_equal(result["search"].table, search.table, check_exact=True)
    assert result["search"].sweep.checkpoints == {}  # dropped: device memory, not stored with the part


def test_effective_depth_and_taylor_are_the_measures_on_those_networks(measuring, data, measured):
    result, _ = measured
    study = result["study"]
    label = RELU_BATCH.label
    search = _search(measuring, data, RELU_BATCH)
    run = search.best_run(0)
    steps = [c.step for c in search.sweep.checkpoints[run]]
    inputs, _ = data.batch(min(256, len(data.x_train)), seed=measuring.seed)
    initial = search.sweep.network_at(run, 0)
    by_hand = [
        measure_both_skips(
            search.sweep.network_at(run, s), initial, inputs, 2, DEFAULT_THRESHOLD, measuring.seed
        )
        for s in steps
    ]
    trajectory = study.trajectories[label]
    np.testing.assert_array_equal(trajectory.steps, steps)
    np.testing.assert_array_equal(trajectory.depth_since_init, [a.effective_depth for a, _ in by_hand])
    np.testing.assert_array_equal(trajectory.depth_natural, [b.effective_depth for _, b in by_hand])
    np.testing.assert_array_equal(trajectory.fractions_since_init, [a.fraction for a, _ in by_hand])
    np.testing.assert_array_equal(trajectory.fractions_natural, [b.fraction for _, b in by_hand])
    assert trajectory.depth_since_init[0] == 0  # skip = the step-0 network: nothing has changed yet
    rows = search.sweep.table[search.sweep.table["run"] == run]
    np.testing.assert_array_equal(trajectory.train_error, rows["train_error"].to_numpy())
    taylor_inputs, taylor_targets = data.batch(min(1024, len(data.x_train)), seed=measuring.seed)
    curve = taylor_compression(search.sweep.network_at(run, steps[-1]), taylor_inputs, taylor_targets)
    np.testing.assert_array_equal(study.taylor[label].train_error, curve.train_error)
    row = study.table.iloc[0]
    assert row["final_train_error"] == search.best["final_train_error"].iloc[0]
    assert row["depth_since_init_final"] == by_hand[-1][0].effective_depth


def test_a_one_rate_search_measured_equals_the_retrained_route(plan, measuring, data):
    """A search of one rate is a stack of one, train()'s own path: both routes give the same numbers."""
    for architecture in (RELU_BATCH, RELU_BATCH_RES):
        one = {"lrs": (0.03,)}
        retrained = run_architecture(dataclasses.replace(plan, **one), data, _options(architecture))
        measured = run_architecture(dataclasses.replace(measuring, **one), data, _options(architecture))
        assert (retrained["route"], measured["route"]) == (RETRAINED_ROUTE, MEASURED_ROUTE)
        _assert_same_study(retrained["study"], measured["study"])


def test_every_rate_diverged_falls_back_to_retraining_at_the_smallest(measuring, data):
    diverging = dataclasses.replace(measuring, lrs=(1e30, 1e31))
    result = run_architecture(diverging, data, _options(Architecture("relu")))
    assert result["route"] == ALL_DIVERGED_ROUTE and result["lr_used"] == 1e30
    assert result["search"].sweep.checkpoints == {}


# ----------------------------------------------------------------------------- the flag off


@pytest.mark.parametrize(
    "architecture", [RELU_BATCH, Architecture("tanh", "none", True)], ids=lambda a: a.name
)
def test_with_the_flag_off_the_part_is_the_old_path_bit_for_bit(plan, data, architecture):
    """The old run_architecture, written out: search, then effective_depth_study at the chosen rate."""
    result = run_architecture(plan, data, _options(architecture))
    assert result["route"] == RETRAINED_ROUTE and set(result) == {"search", "study", "lr_used", "route"}
    config = architecture.config(
        plan.scale.depth, plan.scale.width, data.in_features, data.num_classes, plan.seed
    )
    settings = study_settings(plan.scale, seed=plan.seed)
    search = lr_search([config], data, list(plan.lrs), settings, progress=False)
    chosen = search.best_lr(0)
    lr_used = chosen if np.isfinite(chosen) else min(plan.lrs)
    study = effective_depth_study(
        [architecture], scale=plan.scale, data=data, settings=settings.with_(lr=lr_used), seeds=(plan.seed,)
    )
    assert result["lr_used"] == lr_used
    pd.testing.assert_frame_equal(result["search"].table, search.table, check_exact=True)
    pd.testing.assert_frame_equal(result["search"].best, search.best, check_exact=True)
    assert result["search"].sweep.checkpoints == {}
    _assert_same_study(result["study"], study)
    for name in ("grad_norms", "update_ratio"):  # retrained: train()'s own records, not NaN
        label = architecture.label
        np.testing.assert_array_equal(
            getattr(result["study"].histories[label], name), getattr(study.histories[label], name)
        )


# ----------------------------------------------------------------------------- memory


@pytest.mark.parametrize(
    "architecture",
    [RELU_BATCH, RELU_BATCH_RES, Architecture("tanh", "layer"), Architecture("relu")],
    ids=lambda a: a.name,
)
def test_the_checkpoint_estimate_is_the_bytes_kept(plan, data, architecture):
    search = _search(plan, data, architecture)
    assert not search.sweep.summary["diverged"].any()  # every run recorded to the end
    storages = {}
    for kept in search.sweep.checkpoints.values():
        for checkpoint in kept:
            for tensor in (checkpoint.params, *checkpoint.buffers.values()):
                storage = tensor.untyped_storage()
                storages[storage.data_ptr()] = storage.nbytes()
    config = search.sweep.runs[0].config
    settings = search.sweep.runs[0].settings
    estimate = search_checkpoint_bytes(config, settings, len(data.x_train), len(plan.lrs), data.x_train.dtype)
    assert estimate == sum(storages.values())


def test_the_paper_scale_estimate_is_the_documented_one():
    from explodegrad.core.scales import PAPER

    settings = study_settings(PAPER, seed=0)
    plain, batch = (Architecture("relu"), RELU_BATCH)
    sizes = [
        search_checkpoint_bytes(a.config(50, 100, 3072, 10, 0), settings, 50_000, 5, torch.float32)
        for a in (plain, batch)
    ]
    assert sizes == [6 * 5 * 793_110 * 4, 6 * 5 * ((802_910 + 2 * 100 * 49) * 4 + 49 * 8)]
    assert [round(s / 2**20, 1) for s in sizes] == [90.8, 93.0]


def test_a_search_whose_checkpoints_do_not_fit_is_refused(measuring, data, monkeypatch):
    config = RELU_BATCH.config(6, 16, data.in_features, data.num_classes, 0)
    settings = study_settings(measuring.scale, seed=0)
    kept = check_search_memory(config, settings, data, 4, limit=2**40)
    assert kept == search_checkpoint_bytes(config, settings, len(data.x_train), 4, data.x_train.dtype)
    with pytest.raises(ValueError, match=r"measure_search_models=True is not allowed here: the 4 searched"):
        check_search_memory(config, settings, data, 4, limit=kept)
    monkeypatch.setattr(parts, "memory_limit", lambda device: 1024)
    monkeypatch.setattr(parts, "lr_search", lambda *a, **k: pytest.fail("trained before the memory check"))
    with pytest.raises(ValueError, match=r"MiB on cpu; use a plan with measure_search_models=False"):
        run_architecture(measuring, data, _options(RELU_BATCH))
    monkeypatch.undo()
    monkeypatch.setattr(parts, "memory_limit", lambda device: pytest.fail("the flag off consulted the limit"))
    assert (
        run_architecture(make_plan("tiny"), data, _options(Architecture("relu")))["route"] == RETRAINED_ROUTE
    )


# ----------------------------------------------------------------------------- the study's new inputs


@pytest.fixture(scope="module")
def one_run(data):
    """A sweep of one run (train()'s own path) with its checkpoints, and train()'s history of it."""
    config = RELU_BATCH.config(6, 16, data.in_features, data.num_classes, 2)
    settings = study_settings(make_plan("tiny").scale, seed=2).with_(lr=0.03)
    result = sweep([RunSpec(config, settings)], data, progress=False, keep_checkpoints=True)
    history = train(config, data, settings, progress=False)
    return result, history


def test_a_sweep_runs_history_is_train_s(data, one_run):
    result, history = one_run
    mine = sweep_run_history(result, 0, data)
    for name in ("steps", "train_loss", "train_error", "test_loss", "test_error", "learning_rate", "layers"):
        np.testing.assert_array_equal(getattr(mine, name), getattr(history, name), err_msg=name)
    for name in (
        "final_train_loss",
        "final_train_error",
        "final_test_error",
        "steps_done",
        "diverged",
        "label",
    ):
        assert getattr(mine, name) == getattr(history, name), name
    assert mine.grad_norms.shape == history.grad_norms.shape and np.isnan(mine.grad_norms).all()
    with pytest.raises(ValueError, match="run=1 is not allowed"):
        sweep_run_history(result, 1, data)
    with pytest.raises(TypeError, match="expected a SweepResult"):
        sweep_run_history(history, 0, data)


def test_measure_trained_refuses_bad_networks(data, one_run):
    result, history = one_run
    nets = [(s, result.network_at(0, s)) for s in (0, 2, 10)]
    trajectory = measure_trained(TrainedNetworks(nets, history), data, measure_size=64)
    np.testing.assert_array_equal(trajectory.steps, [0, 2, 10])
    bad = {
        "the first step is 2": [nets[1], nets[2]],
        "the first step is None": [],
        r"steps \[0, 10, 2\] are not allowed": [nets[0], nets[2], nets[1]],
        r"steps \[3\] are not allowed": [nets[0], (3, nets[1][1])],
    }
    for message, given in bad.items():
        with pytest.raises(ValueError, match=message):
            measure_trained(TrainedNetworks(given, history), data)
    other = RELU_BATCH_RES.config(6, 16, data.in_features, data.num_classes, 2)
    from explodegrad.core.nets import build_from_config

    with pytest.raises(ValueError, match="give one network's records"):
        measure_trained(TrainedNetworks([nets[0], (2, build_from_config(other))], history), data)
    with pytest.raises(TypeError, match="expected TrainedNetworks"):
        measure_trained(nets, data)
    tiny = make_plan("tiny").scale
    with pytest.raises(ValueError, match=r"trained: \[\('relu/batch', 2\)\] are missing"):
        effective_depth_study([RELU_BATCH], scale=tiny, data=data, seeds=(2,), trained={})
    with pytest.raises(ValueError, match=r"trained\[\('relu/batch', 3\)\]: the networks are"):
        effective_depth_study(
            [RELU_BATCH],
            scale=tiny,
            data=data,
            seeds=(3,),
            trained={("relu/batch", 3): TrainedNetworks(nets, history)},
        )
