"""Impact studies: optimizers vs GSC, error vs depth, relative update sizes."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from explodegrad.core.config import NetConfig
from explodegrad.core.data import gaussian_data
from explodegrad.core.nets import build_from_config
from explodegrad.core.scales import PAPER, QUICK
from explodegrad.measures.gsc import gsc_profile
from explodegrad.studies import depth_limit, stored
from explodegrad.studies.common import Architecture
from explodegrad.studies.depth_limit import (
    DEFAULT_ARCHITECTURES,
    DepthStudy,
    default_depths,
    depth_study,
    widened_rate,
)
from explodegrad.studies.optimizers import DEFAULT_LRS, optimizer_study, relative_update_sizes
from explodegrad.studies.survey import architecture_survey
from explodegrad.training.loop import TrainSettings, train


@pytest.fixture(scope="module")
def data():
    return gaussian_data(n_train=96, n_test=32, in_features=10, num_classes=3, seed=0)


def tiny_config(**changes):
    return NetConfig(
        depth=4, width=8, activation="tanh", init="xavier", in_features=10, out_features=3
    ).with_(**changes)


# ----------------------------------------------------------------------------- update sizes


def test_update_sizes_are_the_median_of_the_recorded_updates(data):
    history = train(
        tiny_config(), data, TrainSettings(steps=6, batch_size=16, record_every=2), progress=False
    )
    np.testing.assert_array_equal(relative_update_sizes(history), np.median(history.update_ratio[1:], axis=0))
    np.testing.assert_array_equal(
        relative_update_sizes(history, "mean"), history.update_ratio[1:].mean(axis=0)
    )
    assert relative_update_sizes(history).shape == (4,)


def test_adams_first_step_moves_every_parameter_by_lr(data):
    # Adam's first update is lr * sign(gradient) for every entry, so layer k moves by
    # lr * sqrt(#parameters) whatever its gradient's size: the same relative size per layer
    # up to the weights' norms (biases start at zero).
    config = tiny_config()
    lr = 1e-3
    history = train(
        config,
        data,
        TrainSettings(optimizer="adam", lr=lr, steps=1, batch_size=16, record_every=1),
        progress=False,
    )
    net = build_from_config(config)
    expected = [
        lr
        * math.sqrt(sum(p.numel() for p in net.layer(k).parameters()))
        / float(torch.linalg.vector_norm(net.layer(k).linear.weight.detach()))
        for k in range(1, 5)
    ]
    np.testing.assert_allclose(relative_update_sizes(history), expected, rtol=1e-3)


def test_update_sizes_without_updates_are_nan(data):
    history = train(
        tiny_config(), data, TrainSettings(steps=1, batch_size=16, record_every=1), progress=False
    )
    history.steps[1] = 0  # pretend only the initial network was recorded
    assert np.isnan(relative_update_sizes(history)).all()


def test_update_sizes_bad_input(data):
    with pytest.raises(TypeError, match="history"):
        relative_update_sizes({"update_ratio": [1.0]})
    history = train(tiny_config(), data, TrainSettings(steps=1, batch_size=16), progress=False)
    with pytest.raises(ValueError, match="statistic"):
        relative_update_sizes(history, "max")


# ----------------------------------------------------------------------------- optimizers


@pytest.fixture(scope="module")
def study(data):
    return optimizer_study(tiny_config(norm="batch"), data=data, steps=6, measure_every=3, seeds=1)


def test_optimizer_study_measures_every_optimizer_at_the_same_steps(study):
    assert list(study.histories) == [("sgd", 0), ("adam", 0), ("rmsprop", 0)]
    assert study.optimizers == ("sgd", "adam", "rmsprop") and study.seeds == (0,)
    assert list(study.gsc["step"]) == [0, 3, 6] * 3
    for name in ("sgd", "adam", "rmsprop"):
        assert (study.gsc.loc[study.gsc["optimizer"] == name, "lr"] == DEFAULT_LRS[name]).all()
    # same seed, same initial network: the step-0 GSC agrees exactly
    start = study.gsc[study.gsc["step"] == 0]
    assert start["gsc_first_layer"].nunique() == 1 and start["gsc_input"].nunique() == 1


def test_optimizer_study_rows_are_the_histories_numbers(study):
    history = study.histories[("adam", 0)]
    rows = study.gsc[study.gsc["optimizer"] == "adam"]
    for row, measurement in zip(rows.itertuples(), history.measurements):
        assert row.gsc_first_layer == measurement.gsc.first_layer_gsc
        assert row.rate == measurement.gsc.fit.rate or (
            math.isnan(row.rate) and math.isnan(measurement.gsc.fit.rate)
        )
    updates = study.updates[study.updates["optimizer"] == "adam"]
    assert list(updates["layer"]) == [1, 2, 3, 4]
    np.testing.assert_array_equal(updates["update_size"], relative_update_sizes(history))
    assert list(updates["gsc_start"]) == [history.measurements[0].gsc.gsc_at(k) for k in range(1, 5)]


def test_optimizer_study_summary_has_one_line_per_optimizer(study):
    lines = study.summary().splitlines()
    assert len(lines) == 5 and lines[2].split()[0] == "sgd"
    lines = study.update_summary().splitlines()
    assert len(lines) == 5 and "k = 4" in lines[1]
    sizes = relative_update_sizes(study.histories[("rmsprop", 0)])
    assert lines[4].split()[1:4] == [f"{sizes[1]:.3g}", f"{sizes[3]:.3g}", f"{sizes[3] / sizes[1]:.2f}"]
    run = study.runs[study.runs["optimizer"] == "rmsprop"].iloc[0]
    assert run["update_ratio"] == pytest.approx(sizes[3] / sizes[1], rel=1e-12)


def test_optimizer_study_runs_every_seed_and_reports_median_and_range(data):
    result = optimizer_study(
        tiny_config(norm="batch"), ("sgd",), data=data, steps=2, measure_every=2, seeds=(0, 4)
    )
    assert result.seeds == (0, 4) and list(result.runs["seed"]) == [0, 4]
    ends = result.values("sgd", "gsc_end")
    assert len(ends) == 2 and ends[0] != ends[1]  # different initial weights
    line = result.summary().splitlines()[2]
    assert f"{np.median(ends):.3g} [{ends.min():.3g}, {ends.max():.3g}]" in line
    # one seed of a multi-seed study is the single-seed study of that seed
    alone = optimizer_study(
        tiny_config(norm="batch"), ("sgd",), data=data, steps=2, measure_every=2, seeds=(4,)
    )
    assert alone.values("sgd", "gsc_end")[0] == ends[1]
    with pytest.raises(ValueError, match="optimizer='adam' is not allowed"):
        result.values("adam", "gsc_end")
    with pytest.raises(ValueError, match="seeds=0 is not allowed"):
        optimizer_study(tiny_config(), data=data, steps=1, seeds=0)


def test_optimizer_study_with_stacked_seeds_is_the_default_for_one_seed(data):
    """``stack_seeds`` trains each optimizer's seeds in one stack (``train_several``); with one
    seed that is ``train()``, so every table is the default route's, exactly."""
    kwargs = dict(config=tiny_config(norm="batch"), data=data, steps=4, measure_every=2)
    alone = optimizer_study(**kwargs, seeds=(3,))
    stacked = optimizer_study(**kwargs, seeds=(3,), stack_seeds=True)
    for table in ("gsc", "updates", "runs", "layers"):
        pd.testing.assert_frame_equal(getattr(alone, table), getattr(stacked, table))
    both = optimizer_study(**kwargs, seeds=(3, 4), stack_seeds=True)
    assert list(both.runs["seed"]) == [3, 3, 3, 4, 4, 4]
    assert {history.settings.seed for history in both.histories.values()} == {3}  # one minibatch order
    with pytest.raises(TypeError, match="stack_seeds=None is not allowed"):
        optimizer_study(**kwargs, stack_seeds=None)


def test_optimizer_study_trains_in_float64_on_a_cpu_by_default(data):
    kwargs = dict(config=tiny_config(), data=data, optimizers=("sgd",), steps=2, measure_every=1, seeds=1)
    default, double, single = (
        optimizer_study(**kwargs, dtype=dtype) for dtype in (None, torch.float64, torch.float32)
    )
    assert data.x_train.dtype == torch.float32
    assert default.gsc.equals(double.gsc)
    assert not default.gsc.equals(single.gsc)


def test_optimizer_study_takes_the_learning_rates_given(data):
    result = optimizer_study(
        tiny_config(), ("adam",), {"adam": 0.005}, data=data, steps=2, measure_every=2, seeds=1
    )
    assert list(result.gsc["lr"]) == [0.005, 0.005]


@pytest.mark.parametrize(
    ("kwargs", "argument", "error"),
    [
        (dict(optimizers=("sgd", "lbfgs")), "optimizers", ValueError),
        (dict(optimizers=()), "optimizers", ValueError),
        (dict(lrs=[0.1]), "lrs", TypeError),
        (dict(lrs={"sgd": -1.0}), "lrs", ValueError),
        (dict(steps=0), "steps", ValueError),
        (dict(measure_every=0), "measure_every", ValueError),
        (dict(config="relu"), "config", TypeError),
        (dict(scale="quick"), "scale", TypeError),
        (dict(device=torch.float64), "device", TypeError),
        (dict(dtype=torch.float16), "dtype", ValueError),
        (dict(data=[1.0]), "data", TypeError),
    ],
)
def test_optimizer_study_bad_input(data, kwargs, argument, error):
    with pytest.raises(error, match=argument):
        optimizer_study(**({"config": tiny_config(), "data": data, "steps": 2} | kwargs))


# ----------------------------------------------------------------------------- depth


def test_default_depths_follow_the_scale():
    assert default_depths(QUICK) == (2, 10, 20, 40)
    assert default_depths(PAPER) == (2, 25, 50, 100)


def test_default_architectures_explode_or_not_as_documented():
    # relu/batch explodes at the mean-field rate: measured once, in test_gsc.py.
    survey = architecture_survey(
        activations=("tanh",),
        norms=("layer", "none"),
        depth=20,
        width=64,
        data="digits",
        batch_size=256,
    )
    assert DEFAULT_ARCHITECTURES == (("relu", "batch"), ("tanh", "layer"), ("tanh", "none"))
    assert survey.row("tanh", "layer")["rate"] > 1.05
    assert survey.row("tanh", "none")["rate"] < 1.02


def test_depth_study_table(data):
    result = depth_study(
        (("relu", "batch"), ("relu", "none", "looks_linear")),
        depths=(2, 3),
        lrs=(0.01, 0.1),
        data=data,
        width=8,
        steps=4,
        seeds=1,
    )
    table = result.table
    assert list(table["architecture"]) == ["relu/batch"] * 2 + ["relu/none/looks_linear"] * 2
    assert list(table["depth"]) == [2, 3, 2, 3]
    assert set(table["best_lr"]) <= {0.01, 0.1}
    assert len(result.search.table) == 8  # every (architecture, depth, rate) was trained
    for row in table.itertuples():
        best = result.search.best[result.search.best["label"] == row.label].iloc[0]
        assert row.final_train_error == best["final_train_error"]
    # the initial GSC is that of the network each run started from
    config = result.search.sweep.runs[2].config
    inputs, targets = data.batch(min(256, len(data.x_train)), seed=0)
    profile = gsc_profile(build_from_config(config, dtype=torch.float64), inputs.double(), targets)
    assert table.iloc[1]["gsc_init"] == profile.first_layer_gsc
    assert len(result.summary().splitlines()) == 6


def test_widened_rate_adds_one_grid_step_beyond_each_edge_a_seed_chose():
    grid = (0.01, 0.1, 1.0)
    assert widened_rate(grid, [0.1, 0.1]) == []
    assert widened_rate(grid, [0.1, 1.0]) == pytest.approx([10.0])
    assert widened_rate(grid, [0.01, 0.1]) == pytest.approx([0.001])
    assert widened_rate(grid, [0.01, 1.0]) == pytest.approx([0.001, 10.0])
    assert widened_rate(grid, [math.nan]) == pytest.approx([0.001])  # every rate diverged: go lower
    assert widened_rate((0.1,), [0.1]) == []  # one rate: no grid to widen


def test_depth_study_widens_the_grid_until_the_chosen_rate_is_inside(data):
    # Tiny rates barely move the network: the largest rate of the grid wins, so the grid grows.
    result = depth_study(
        [Architecture("tanh", "none"), Architecture("relu", "batch", residual=True)],
        depths=(4,),
        lrs=(1e-5, 1e-4, 1e-3),
        data=data,
        width=8,
        steps=4,
        seeds=2,
        widen=2,
    )
    assert list(result.table["architecture"]) == ["tanh/none"] * 2 + ["relu/batch/res"] * 2
    assert list(result.table["residual"]) == [False, False, True, True]
    for row in result.table.itertuples():
        tried = result.rates[
            (result.rates["architecture"] == row.architecture) & (result.rates["seed"] == row.seed)
        ]
        assert sorted(tried["lr"]) == pytest.approx([1e-5, 1e-4, 1e-3, 1e-2, 1e-1])  # two rates added above
        best = tried[~tried["diverged"]].sort_values(["final_train_error", "final_train_loss", "lr"]).iloc[0]
        assert row.best_lr == best["lr"] and row.final_train_error == best["final_train_error"]
        assert row.at_edge == (row.best_lr in (tried["lr"].min(), tried["lr"].max()))


def test_depth_study_trains_every_seed_in_one_sweep(data):
    result = depth_study(
        (("relu", "none"),), depths=(2,), lrs=(0.01, 0.1), data=data, width=8, steps=3, seeds=(0, 1, 2)
    )
    assert list(result.table["seed"]) == [0, 1, 2] and result.seeds == (0, 1, 2)
    assert len(result.search.sweep.runs) == 6  # 3 seeds x 2 rates, one sweep
    errors = result.values("relu/none", 2, "final_train_error")
    assert len(errors) == 3
    assert f"{np.median(errors):.3f} [{errors.min():.3f}, {errors.max():.3f}]" in result.summary()
    with pytest.raises(ValueError, match="is not allowed"):
        result.values("relu/none", 5, "final_train_error")


@pytest.mark.parametrize(
    ("kwargs", "argument", "error"),
    [
        (dict(architectures=(("relu",),)), "architectures", ValueError),
        (dict(architectures=(("relu", "group"),)), "architectures", ValueError),
        (dict(architectures=3), "architectures", TypeError),
        (dict(depths=()), "depths", ValueError),
        (dict(depths=(0,)), "depths", ValueError),
        (dict(width=0), "width", ValueError),
        (dict(data=3), "data", TypeError),
        (dict(scale=object()), "scale", TypeError),
        (dict(dtype=torch.int64), "dtype", ValueError),
    ],
)
def test_depth_study_bad_input(data, kwargs, argument, error):
    with pytest.raises(error, match=argument):
        depth_study(
            **({"depths": (2,), "lrs": (0.1,), "data": data, "width": 4, "steps": 1, "seeds": 1} | kwargs)
        )


# ----------------------------------------------------------------------------- rate curves and reruns

#: Labels an old parser of "activation/norm[/init][/res]" got wrong: the initializer is in the label.
NAMED_INITS = [
    Architecture("relu", "none", init="looks_linear"),
    Architecture("tanh", "layer", residual=True, init="orthogonal"),
]


@pytest.fixture(scope="module")
def named_init_study(data):
    return depth_study(NAMED_INITS, depths=(4,), lrs=(0.01, 0.1), data=data, width=8, steps=2, seeds=1)


def test_rate_curves_carry_the_architecture_not_its_label(named_init_study):
    assert list(dict.fromkeys(named_init_study.table["architecture"])) == [
        "relu/none/looks_linear",
        "tanh/layer/orthogonal/res",
    ]
    for label, architecture in zip(["relu/none/looks_linear", "tanh/layer/orthogonal/res"], NAMED_INITS):
        curves = depth_limit.rate_curves(named_init_study, label, 4)
        assert curves.architecture == label and curves.spec == architecture


def test_a_stored_study_gives_rate_curves_their_architecture():
    study = stored.load("depth-limit-digits").result
    curves = depth_limit.rate_curves(study, "tanh/layer/res", 30)
    assert curves.spec == Architecture("tanh", "layer", residual=True, init="xavier")
    assert depth_limit.rate_curves(study, "selu/none", 10).spec == Architecture("selu", "none", init="lecun")


def test_a_study_read_back_from_json_gives_the_same_curves(named_init_study):
    again = DepthStudy.from_dict(json.loads(json.dumps(named_init_study.to_dict())))
    pd.testing.assert_frame_equal(again.table, named_init_study.table, check_dtype=False)
    for label in ("relu/none/looks_linear", "tanh/layer/orthogonal/res"):
        assert (
            depth_limit.rate_curves(again, label, 4).spec
            == depth_limit.rate_curves(named_init_study, label, 4).spec
        )


def test_a_null_only_float_column_reads_back_as_nan(named_init_study):
    values = json.loads(json.dumps(named_init_study.to_dict()))
    for row in values["table"]:
        row["best_lr"] = None  # every rate diverged
    table = DepthStudy.from_dict(values).table
    assert table["best_lr"].dtype == float and table["best_lr"].isna().all()


def test_a_quick_rerun_trains_the_architecture_the_curves_carry(named_init_study, monkeypatch):
    trained = []

    def recording_depth_study(architectures, **kwargs):
        trained.append((list(architectures), kwargs["depths"]))
        return depth_study(architectures, **kwargs)

    monkeypatch.setattr(depth_limit, "depth_study", recording_depth_study)
    curves = depth_limit.rate_curves(named_init_study, "tanh/layer/orthogonal/res", 4)
    again = depth_limit.quick_rerun(curves, steps=2, device="cpu")
    assert trained == [([NAMED_INITS[1]], (4,))]
    assert again.spec == curves.spec and len(again.rerun) <= 3


def test_a_diverged_run_has_no_end_numbers_and_its_claims_cannot_be_judged():
    # lr 10 on a linear network diverges before the second measurement: its "end" was step 0
    from explodegrad.claims.chapters.ch04 import explodes_at_end

    config = NetConfig(depth=6, width=16, activation="linear", norm="none", init="lecun")
    study = optimizer_study(config, ("sgd",), {"sgd": 10.0}, seeds=(0, 1), steps=30, measure_every=5)
    runs = study.runs
    assert runs["diverged"].all()
    for column in ("gsc_end", "rate_end", "r_squared_end", "update_ratio", "final_train_error"):
        assert runs[column].isna().all(), column
    assert runs["gsc_start"].notna().all()
    assert explodes_at_end(study, "sgd").verdict == "inconclusive"
    assert "2 run(s) diverged (their numbers are left out)" in study.summary()
