"""The evidence-scale optimizer and trained-depth studies, the depth-limit explorer's curves, and
their figures: identities on tiny runs, round trips through the stored format, bad input."""

import json

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from explodegrad import claims
from explodegrad.core.config import NetConfig
from explodegrad.core.data import gaussian_data
from explodegrad.core.jsonable import frame_from_records, to_jsonable
from explodegrad.plots import plot_layer_trace, plot_rate_curves, plot_trained_depth
from explodegrad.studies import depth_limit, effective_depth, optimizers, stored
from explodegrad.studies.common import Architecture


@pytest.fixture(scope="module")
def data():
    return gaussian_data(n_train=64, n_test=16, in_features=6, num_classes=3, seed=0)


@pytest.fixture(scope="module")
def tiny_depth_study(data):
    return depth_limit.depth_study(
        [Architecture("tanh", "none"), Architecture("relu", "batch", residual=True)],
        depths=(6,),
        lrs=(0.01, 0.1),
        data=data,
        width=8,
        steps=4,
        seeds=2,
    )


@pytest.fixture(scope="module")
def tiny_optimizer_study(data):
    config = NetConfig(depth=5, width=8, activation="relu", norm="batch", in_features=6, out_features=3)
    return optimizers.optimizer_study(
        config,
        ("sgd", "adam"),
        {"sgd": 0.01, "adam": 1e-3},
        data=data,
        seeds=(0, 1),
        steps=4,
        measure_every=2,
    )


# ----------------------------------------------------------------------------- optimizers


def test_the_per_layer_table_holds_every_measurement_and_layer(tiny_optimizer_study):
    study = tiny_optimizer_study
    layers = study.layers
    # 2 optimizers x 2 seeds x 3 measurements (steps 0, 2, 4) x 5 layers
    assert len(layers) == 2 * 2 * 3 * 5
    assert sorted(set(layers["step"])) == [0, 2, 4]
    assert layers.loc[layers["step"] == 0, "update_size"].isna().all()
    history = study.histories[("adam", 1)]
    row = int(np.flatnonzero(history.steps == 4)[0])
    at = layers.query("optimizer == 'adam' and seed == 1 and step == 4").sort_values("layer")
    np.testing.assert_array_equal(at["update_size"].to_numpy(), history.update_ratio[row])
    profile = history.measurements[-1].gsc
    assert at.set_index("layer").loc[3, "gsc"] == pytest.approx(profile.gsc_at(3), rel=1e-12)


def test_an_optimizer_study_round_trips_through_the_stored_format(tiny_optimizer_study, tmp_path):
    study = tiny_optimizer_study
    document = json.loads(json.dumps(to_jsonable(study.to_dict())))
    assert "histories" not in document
    back = optimizers.OptimizerStudy.from_dict(document)
    assert back.summary() == study.summary() and back.update_summary() == study.update_summary()
    assert back.histories == {} and back.seeds == study.seeds
    np.testing.assert_array_equal(back.layers["gsc"].to_numpy(), study.layers["gsc"].to_numpy())


def test_tuning_picks_the_rate_with_the_lowest_median_error(data):
    config = NetConfig(depth=4, width=8, activation="tanh", in_features=6, out_features=3)
    rates, table = optimizers.tune_rates(
        config, data, {"sgd": (0.001, 0.1, 1.0)}, seeds=(0, 1), steps=6, batch_size=16
    )
    errors = table["final_train_error"].where(~table["diverged"], 1.0).fillna(1.0)
    medians = errors.groupby(table["lr"]).median()
    assert rates["sgd"] == medians.idxmin()
    assert table.loc[table["chosen"], "lr"].eq(rates["sgd"]).all() and len(table) == 3 * 2
    assert table["at_edge"].iloc[0] == (rates["sgd"] in (0.001, 1.0))


@pytest.mark.parametrize(
    "grids, error",
    [({"sgd": ()}, ValueError), ({"lion": (0.1,)}, ValueError), ([("sgd", 0.1)], TypeError)],
)
def test_tuning_refuses_bad_grids(data, grids, error):
    config = NetConfig(depth=4, width=8, in_features=6, out_features=3)
    with pytest.raises(error, match="grids|lrs"):
        optimizers.tune_rates(config, data, grids, seeds=(0,), steps=2, batch_size=16)


def test_the_optimizer_evidence_refuses_an_unknown_architecture():
    with pytest.raises(ValueError, match="architecture='relu-layer' is not supported"):
        optimizers.optimizer_evidence(architecture="relu-layer")


# ----------------------------------------------------------------------------- trained depth


@pytest.mark.parametrize(
    "residual, units, layers", [(False, 7, 7), (True, 7, 14), (True, 0, 0), (True, -1, -1), (False, -1, -1)]
)
def test_path_lengths_count_weight_layers(residual, units, layers):
    config = NetConfig(depth=10, width=4, residual=residual)
    assert effective_depth.units_to_weight_layers(config, units) == layers


@pytest.mark.parametrize(
    "units, block_depth, blocks, expected",
    [
        (4, 2, 9, (6, 8)),  # input layer + readout + 2 blocks, or 4 blocks
        (1, 2, 9, (1, 2)),
        (11, 2, 9, (20, 20)),  # every unit: one range
        (7, 1, 18, (7, 7)),  # plain: a unit is a weight layer
        (0, 2, 9, (0, 0)),
        (-1, 2, 9, (-1, -1)),  # no depth passes through
    ],
)
def test_a_resnet_path_holds_a_range_of_weight_layers(units, block_depth, blocks, expected):
    assert effective_depth.path_weight_layers(units, block_depth, blocks) == expected
    config = NetConfig(
        depth=2 + blocks * block_depth, width=4, residual=block_depth > 1, block_depth=block_depth
    )
    assert effective_depth.units_to_weight_layers(config, units) in (expected[1], units * block_depth)


def test_path_weight_layers_refuses_more_units_than_the_network_has():
    with pytest.raises(ValueError, match="units=12 is not allowed: a network of 9 blocks has 11 units"):
        effective_depth.path_weight_layers(12, 2, 9)
    with pytest.raises(ValueError, match="block_depth"):
        effective_depth.path_weight_layers(3, 0, 9)


class _PairStudy:
    """A stand-in for an effective-depth study: per label, per-seed columns."""

    def __init__(self, plain_depth: list[int], resnet_units: list[int]) -> None:
        seeds = len(plain_depth)
        self.columns = {
            ("relu/batch", "depth_since_init_final"): [11] * seeds,
            ("relu/batch/res", "depth_since_init_final"): [4] * seeds,
            ("tanh/none", "depth_since_init_final"): plain_depth,
            ("tanh/none/res", "depth_since_init_final"): resnet_units,
        }
        for label in ("relu/batch", "tanh/none"):
            self.columns[(label, "taylor_break_linear_layers")] = (
                [3.0] * seeds if label == "relu/batch" else [19.0] * seeds
            )
            self.columns[(label, "num_layers")] = [20] * seeds
            self.columns[(label, "depth")] = [20] * seeds
        for label in ("relu/batch/res", "tanh/none/res"):
            self.columns[(label, "taylor_break_linear_layers")] = (
                [9.0] * seeds if label == "relu/batch/res" else [7.0] * seeds
            )
            self.columns[(label, "num_layers")] = [11] * seeds
            self.columns[(label, "depth")] = [20] * seeds

    def values(self, label: str, column: str) -> np.ndarray:
        return np.asarray(self.columns[(label, column)], dtype=float)


def test_the_pairing_claim_leaves_out_seeds_whose_order_depends_on_the_unit_count():
    """Plain tanh at 7 layers against a ResNet lambda of 4 units, i.e. 6 to 8 weight layers:
    which is deeper is open, so no seed of that pair is judged and the claim stays open; at 9
    layers the plain network is the deeper one and breaks later, against the pairing."""
    claim = claims.get_claim("07/deeper-breaks-sooner")
    open_pair = claim.judge(_PairStudy([7, 7, 7], [4, 4, 4]))
    assert open_pair.verdict == claims.INCONCLUSIVE and "3 seeds left out" in open_pair.line
    assert "no seed left to judge" in open_pair.line
    decided = claim.judge(_PairStudy([9, 9, 9], [4, 4, 4]))
    assert decided.verdict == claims.DOES_NOT_HOLD and "0 seeds left out" in decided.line
    resnet_deeper = claim.judge(
        _PairStudy([5, 5, 5], [4, 4, 4])
    )  # 5 < 6: the ResNet is deeper, breaks sooner
    assert resnet_deeper.verdict == claims.HOLDS


def test_retraining_reproduces_the_depth_study_in_float64(tiny_depth_study, data):
    """The trained-depth study retrains each run as its sweep did: in float64 the training error
    is the sweep's (the stacked and the lone network differ by rounding only)."""
    study = effective_depth.trained_depth_study(tiny_depth_study, data, taylor_size=64)
    table = study.table
    assert len(table) == 2 * 2 and study.labels == ["tanh/none", "relu/batch/res"]
    np.testing.assert_allclose(table["final_train_error"], table["search_train_error"], atol=1e-12)
    resnet = table[table["label"] == "relu/batch/res"]
    np.testing.assert_array_equal(resnet["depth_since_init_layers"], 2 * resnet["depth_since_init"])
    plain = table[table["label"] == "tanh/none"]
    np.testing.assert_array_equal(plain["depth_natural_layers"], plain["depth_natural"])
    assert (table["depth_since_init"] >= 0).all() and (table["depth_since_init"] <= table["num_layers"]).all()
    curve = study.taylor.query("label == 'tanh/none' and seed == 0")
    assert list(curve["k"]) == list(range(7)) and list(curve["linear_layers"]) == list(range(7))
    back = effective_depth.TrainedDepthStudy.from_dict(json.loads(json.dumps(to_jsonable(study.to_dict()))))
    assert back.summary() == study.summary()
    fig = plot_trained_depth(study)
    assert len(fig.axes) == 2 and len(fig.axes[1].get_lines()) == 2
    plt.close(fig)


def test_retraining_refuses_a_depth_the_study_lacks(tiny_depth_study, data):
    with pytest.raises(ValueError, match="depth=50 is not allowed"):
        effective_depth.trained_depth_study(tiny_depth_study, data, depth=50)


def test_the_trained_depth_evidence_refuses_other_seeds_and_data():
    with pytest.raises(ValueError, match="data='mnist' is not supported"):
        effective_depth.trained_depth_evidence(data="mnist")
    with pytest.raises(ValueError, match="seeds=.* is not allowed"):
        effective_depth.trained_depth_evidence(data="digits", seeds=(5, 6, 7))


# ----------------------------------------------------------------------------- depth-limit curves


def test_rate_curves_are_the_stored_runs_of_one_architecture_and_depth():
    evidence = stored.load("depth-limit-digits")
    curves = depth_limit.rate_curves(evidence.result, "relu/batch", 50, source=evidence.label())
    rates = evidence.result.rates.query("architecture == 'relu/batch' and depth == 50")
    assert len(curves.stored) == len(rates) and set(curves.chosen["seed"]) == set(evidence.result.seeds)
    assert "depth-limit-digits" in curves.summary()
    fig = plot_rate_curves(curves)
    assert fig.axes[0].get_xscale() == "log"
    plt.close(fig)


@pytest.mark.parametrize(
    "architecture, depth, match",
    [
        ("relu/layer", 50, "architecture='relu/layer' is not supported"),
        ("relu/batch", 40, "depth=40 is not allowed"),
    ],
)
def test_rate_curves_refuse_what_the_study_lacks(architecture, depth, match):
    study = stored.load("depth-limit-digits").result
    with pytest.raises(ValueError, match=match):
        depth_limit.rate_curves(study, architecture, depth)


def test_a_quick_rerun_trains_the_chosen_rate_and_its_neighbours(tiny_depth_study):
    curves = depth_limit.rate_curves(tiny_depth_study, "tanh/none", 6)
    again = depth_limit.quick_rerun(curves, steps=3, device="cpu")
    chosen = float(curves.chosen["best_lr"].iloc[0])
    assert chosen in set(again.rerun["lr"]) and len(again.rerun) <= 3
    assert "your rerun" in again.summary() and curves.rerun is None
    with pytest.raises(TypeError, match="curves"):
        depth_limit.quick_rerun("curves")


def test_frames_come_back_with_nan_for_null():
    frame = frame_from_records([{"a": 1.5, "b": "x", "c": True}, {"a": None, "b": "y", "c": False}])
    assert frame["a"].dtype == float and np.isnan(frame["a"].iloc[1])
    assert frame["b"].tolist() == ["x", "y"] and frame["c"].dtype == bool


def test_the_layer_trace_draws_one_panel_per_optimizer(tiny_optimizer_study):
    fig = plot_layer_trace(tiny_optimizer_study, value="gsc")
    assert len(fig.axes) == 2
    lines = fig.axes[0].get_lines()  # one per measurement, in step order: darker = later
    luminance = [
        float(np.dot(matplotlib.colors.to_rgb(line.get_color()), (0.299, 0.587, 0.114))) for line in lines
    ]
    assert len(lines) > 1 and luminance == sorted(luminance, reverse=True)
    plt.close(fig)
    with pytest.raises(ValueError, match="value='norm' is not supported"):
        plot_layer_trace(tiny_optimizer_study, value="norm")


# ----------------------------------------------------------------------------- claims


def test_the_optimizer_claims_are_judged_at_every_scale_and_the_trained_depth_ones_on_evidence():
    for claim_id in (
        "04/adaptive-optimizers-still-explode",
        "04/sgd-lowers-but-keeps",
        "08/adam-keeps-the-explosion",
    ):
        claim = claims.get_claim(claim_id)
        assert claim.judged_at("quick") and claim.judged_at("evidence")
    for claim_id in ("07/trained-depth-resnets-shallower", "04/optimizers-calm-stays-calm"):
        claim = claims.get_claim(claim_id)
        assert claim.judged_at("evidence") and not claim.judged_at("quick")


def test_the_deeper_breaks_sooner_claim_reads_the_rank_correlation(tiny_depth_study, data):
    study = effective_depth.trained_depth_study(tiny_depth_study, data, taylor_size=64)
    judgement = claims.get_claim("07/trained-depth-deeper-breaks-sooner").judge(study)
    assert "Spearman" in judgement.line and judgement.verdict in claims.VERDICTS


def test_a_stored_result_comes_back_by_name_and_bad_reruns_are_refused():
    stored_study = stored.result("depth-limit-digits")
    assert stored_study.summary() == stored.load("depth-limit-digits").result.summary()
    assert set(stored.ENTRIES) >= set(stored.stored_names())
    with pytest.raises(ValueError, match="rerun='paper' is not supported"):
        stored.result("depth-limit-digits", rerun="paper")
    with pytest.raises(ValueError, match="name='depth-limit' is not supported"):
        stored.result("depth-limit")


def test_tuning_widens_the_grid_where_the_chosen_rate_sits_at_its_edge(data, monkeypatch):
    """A fake search whose error is |log10(lr / 0.05)|: the grid grows upwards one step (x10) at
    a time until the chosen rate is inside, at most ``widen`` times."""

    def fake_search(configs, data, lrs, settings, **_):
        rows = [
            {"arch": arch, "lr": lr, "final_train_error": abs(np.log10(lr / 0.05)), "diverged": False}
            for lr in lrs
            for arch in range(len(configs))
        ]
        return type("Search", (), {"table": pd.DataFrame(rows)})()

    monkeypatch.setattr(optimizers, "lr_search", fake_search)
    config = NetConfig(depth=4, width=8, in_features=6, out_features=3)
    rates, table = optimizers.tune_rates(
        config, data, {"adam": (1e-4, 1e-3)}, seeds=(0, 1), steps=1, batch_size=4, widen=3
    )
    # 0.1 (error 0.30) beats 0.01 (0.70) at the top edge, so 1.0 (1.30) is tried: 0.1 is inside
    assert sorted(set(table["lr"])) == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    assert rates["adam"] == pytest.approx(0.1)
    assert not table["at_edge"].any() and len(table) == 5 * 2
    _, capped = optimizers.tune_rates(
        config, data, {"adam": (1e-5, 1e-4)}, seeds=(0,), steps=1, batch_size=4, widen=1
    )
    assert sorted(set(capped["lr"])) == pytest.approx([1e-5, 1e-4, 1e-3]) and capped["at_edge"].all()
