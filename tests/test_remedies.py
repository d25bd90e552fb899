"""Remedies: the orthogonal initial state, width vs depth at a budget, and the summary table."""

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import TINY

from explodegrad.claims import get_claim
from explodegrad.claims.registry import Judgement
from explodegrad.claims.remedies import REMEDIES, remedies_summary, remedy_row
from explodegrad.core.config import NetConfig
from explodegrad.core.data import gaussian_data
from explodegrad.core.nets import build_from_config
from explodegrad.core.scales import PAPER, QUICK
from explodegrad.studies.clipping import first_update_sizes, update_spread
from explodegrad.studies.common import Architecture, resolve_data, study_settings
from explodegrad.studies.optimizers import optimizer_study
from explodegrad.studies.orthogonal import OrthogonalStateResult, orthogonal_initial_state, steps_to_error
from explodegrad.studies.remedies import (
    Measured,
    RemedyEvidence,
    clipping_evidence,
    collect_remedy_evidence,
    find_evidence,
    initialization_evidence,
    normalization_evidence,
    optimizer_evidence,
    skip_comparison,
    skip_connection_evidence,
    width_evidence,
)
from explodegrad.studies.survey import architecture_survey
from explodegrad.studies.width_depth import (
    WidthDepthResult,
    default_budget_depths,
    width_for_budget,
    width_vs_depth,
)
from explodegrad.training.loop import TrainSettings, train


@pytest.fixture(scope="module")
def orthogonal(data):
    return orthogonal_initial_state(
        scale=TINY, data=data, settings=study_settings(TINY, checkpoints=2), measure_size=32, target_error=0.6
    )


@pytest.fixture(scope="module")
def width_depth(data):
    return width_vs_depth([2, 3, 6], scale=TINY, data=data, lrs=[0.01, 0.1])


@pytest.mark.parametrize(
    "config",
    [
        NetConfig(depth=1, in_features=6, out_features=3),
        NetConfig(depth=2, width=5),
        NetConfig(depth=7, width=9, norm="batch"),
        NetConfig(depth=8, width=4, norm="layer", residual=True),
        NetConfig(depth=11, width=3, residual=True, block_depth=3),
    ],
)
def test_parameter_count_matches_the_built_network(config):
    net = build_from_config(config)
    assert config.num_parameters() == sum(p.numel() for p in net.parameters())


def test_width_for_budget_is_the_widest_network_within_the_budget():
    base = NetConfig(in_features=64, out_features=10, norm="batch")
    budget = base.with_(depth=20, width=64).num_parameters()
    for depth in (2, 5, 20, 40):
        width = width_for_budget(base, depth, budget)
        assert base.with_(depth=depth, width=width).num_parameters() <= budget
        assert base.with_(depth=depth, width=width + 1).num_parameters() > budget
    assert width_for_budget(base, 20, budget) == 64
    with pytest.raises(ValueError, match="budget=50"):  # width 1 at depth 5 needs 99
        width_for_budget(base, 5, 50)
    with pytest.raises(ValueError, match="depth=1"):
        width_for_budget(base, 1, budget)


def test_default_budget_depths_include_the_scale_and_twice_it():
    assert default_budget_depths(QUICK) == (2, 4, 8, 20, 40)
    assert default_budget_depths(PAPER) == (2, 4, 8, 50, 100)


def test_looks_linear_starts_with_gsc_one_between_hidden_layers(orthogonal):
    assert orthogonal.names == ["relu/none/he", "relu/none/looks_linear", "tanh/none/orthogonal"]
    looks_linear = orthogonal.table.set_index("name").loc["relu/none/looks_linear"]
    # an orthogonal linear map between hidden layers: GSC exactly 1 (float32 round-off)
    assert looks_linear["hidden_gsc_init"] == pytest.approx(1.0, abs=1e-5)
    assert looks_linear["rate_init"] == pytest.approx(1.0, abs=1e-5)
    table = orthogonal.table.set_index("name")
    for name in orthogonal.names:
        np.testing.assert_array_equal(orthogonal.steps[name], [0, 3, 6])
        history = orthogonal.histories[name]
        np.testing.assert_array_equal(orthogonal.train_error[name], history.train_error)
        assert orthogonal.hidden_gsc[name][-1] == table.loc[name, "hidden_gsc_final"]
        reached = steps_to_error(history, 0.6)
        assert (reached is None and pd.isna(table.loc[name, "steps_to_target"])) or reached == table.loc[
            name, "steps_to_target"
        ]
    assert "looks_linear" in orthogonal.summary()


def test_steps_to_error_finds_the_first_record_at_or_below_the_target(data):
    history = train(
        NetConfig(depth=3, width=8, in_features=6, out_features=3),
        data,
        TrainSettings(steps=3, batch_size=16, record_every=1),
        progress=False,
    )
    history = replace(history, steps=np.array([0, 10, 20, 30]), train_error=np.array([0.9, 0.5, 0.05, 0.2]))
    assert steps_to_error(history, 0.1) == 20
    assert steps_to_error(history, 0.5) == 10
    assert steps_to_error(history, 0.01) is None
    with pytest.raises(ValueError, match="target=0"):
        steps_to_error(history, 0)


def test_orthogonal_study_rejects_bad_input(data):
    with pytest.raises(ValueError, match="width=7"):  # looks-linear mirrors neurons in pairs
        orthogonal_initial_state(scale=TINY, data=data, width=7)
    with pytest.raises(TypeError, match="architectures="):
        orthogonal_initial_state([("relu", "none")], scale=TINY, data=data)
    with pytest.raises(ValueError, match="repeat"):
        orthogonal_initial_state(
            [Architecture("relu"), Architecture("relu", init="he")], scale=TINY, data=data
        )


def test_orthogonal_study_with_stacked_seeds_measures_what_it_measures_alone(data, orthogonal):
    """With one seed the batched route (one sweep, the kept networks measured afterwards) takes
    ``train()``'s steps, so its numbers match the default route's to float32 rounding (initial
    states of one shape train stacked, whose products round differently); with two seeds, the
    second one trains on the first seed's minibatches (with its own weights)."""
    options = dict(scale=TINY, data=data, settings=study_settings(TINY, checkpoints=2), measure_size=32)
    one = orthogonal_initial_state(seeds=(0,), stack_seeds=True, target_error=0.6, **options)
    first = orthogonal.table[orthogonal.table["seed"] == 0].reset_index(drop=True)
    pd.testing.assert_frame_equal(one.table, first, rtol=1e-5)
    for name in one.names:
        np.testing.assert_allclose(one.hidden_gsc[name], orthogonal.hidden_gsc[name], rtol=1e-5)
        np.testing.assert_allclose(one.rate[name], orthogonal.rate[name], rtol=1e-5)
    both = orthogonal_initial_state(seeds=(0, 1), stack_seeds=True, **options)
    assert both.table["seed"].tolist() == [0, 0, 0, 1, 1, 1]
    with pytest.raises(TypeError, match="stack_seeds=1 is not allowed"):
        orthogonal_initial_state(scale=TINY, data=data, stack_seeds=1)


def test_width_vs_depth_keeps_every_network_within_the_budget(width_depth):
    table = width_depth.table
    assert list(table["depth"]) == [2, 3, 6]
    assert (
        width_depth.budget
        == NetConfig(depth=6, width=8, norm="batch", in_features=6, out_features=3).num_parameters()
    )
    assert (table["parameters"] <= width_depth.budget).all()
    assert table.loc[2, "width"] == 8  # the scale's own network uses the whole budget
    assert set(table["best_lr"]) <= {0.01, 0.1}
    best = width_depth.search.best
    np.testing.assert_array_equal(table["final_train_error"], best["final_train_error"])
    assert "at most" in width_depth.summary()
    with pytest.raises(ValueError, match="depths=1"):
        width_vs_depth([1, 4], scale=TINY)
    with pytest.raises(ValueError, match="architecture="):
        width_vs_depth(scale=TINY, architecture=Architecture("relu", residual=True))


def test_update_spread_and_clipping_leaves_layer_balance_unchanged():
    assert update_spread(np.array([2.0, 1.0, 6.0])) == 3.0
    with pytest.raises(ValueError, match="sizes"):
        update_spread(np.array([1.0]))
    data = gaussian_data(n_train=64, n_test=16, in_features=6, num_classes=3, dtype=torch.float64)
    config = Architecture("relu", "batch").config(5, 8, data.in_features, data.num_classes)
    settings = study_settings(TINY, checkpoints=2)
    evidence = clipping_evidence(config, data, settings, clip_norm=1e-3)
    balance = evidence.measured[0]
    # clipping multiplies every layer's gradient by the same factor: with SGD the ratio of
    # relative update sizes between layers cannot change
    assert balance.with_remedy == pytest.approx(balance.without, rel=1e-9)
    assert evidence.remedy == "gradient clipping (norm 0.001)"
    automatic = clipping_evidence(config, data, settings)  # bound = median gradient norm
    assert "gradient clipping (norm" in automatic.remedy


def test_adam_first_update_moves_every_parameter_by_the_learning_rate(data):
    # Adam's bias-corrected first step is lr * g / (|g| + eps): every parameter moves by lr,
    # so layer k's relative update is lr * sqrt(#parameters_k) / ||theta_k||.
    config = NetConfig(depth=4, width=8, activation="tanh", init="xavier", in_features=6, out_features=3)
    settings = TrainSettings(optimizer="adam", lr=1e-3, batch_size=16, eps=1e-12)
    sizes = first_update_sizes(config, data, settings)
    net = build_from_config(config)
    expected = [
        1e-3
        * math.sqrt(sum(p.numel() for p in net.layer(k).parameters()))
        / float(torch.cat([p.detach().reshape(-1) for p in net.layer(k).parameters()]).norm())
        for k in range(1, 5)
    ]
    np.testing.assert_allclose(sizes, expected, rtol=1e-4)


def test_evidence_from_a_survey_cites_its_numbers(data):
    survey = architecture_survey(
        activations=("relu",),
        norms=("none", "batch"),
        residual=(False, True),
        data=data,
        depth=6,
        width=8,
        batch_size=32,
    )
    skip = skip_connection_evidence(survey)
    assert skip.measured[0].without == survey.row("relu", "batch")["gsc_input"]
    assert skip.measured[0].with_remedy == survey.row("relu", "batch", True)["gsc_input"]
    norm = normalization_evidence(survey)
    assert norm.measured[1].without == survey.row("relu", "none")["sign_diversity_last"]
    assert norm.measured[1].with_remedy == survey.row("relu", "batch")["sign_diversity_last"]
    with pytest.raises(ValueError, match="not in this survey"):
        skip_connection_evidence(survey, "tanh", "none")
    with pytest.raises(TypeError, match="survey"):
        normalization_evidence(survey.table)


def test_initialization_width_and_optimizer_evidence(orthogonal, width_depth, data):
    init = initialization_evidence(orthogonal)
    assert init.measured[0].with_remedy == pytest.approx(1.0, abs=1e-5)
    assert "relu/none/he vs relu/none/looks_linear" in init.comparison
    with pytest.raises(ValueError, match="remedy='sigmoid'"):
        initialization_evidence(orthogonal, remedy="sigmoid")
    width = width_evidence(width_depth)
    table = width_depth.table.set_index("depth")
    assert width.measured[1].without == table.loc[6, "final_test_error"]
    assert width.measured[1].with_remedy == table.loc[2, "final_test_error"]
    with pytest.raises(ValueError, match="deep=5"):
        width_evidence(width_depth, deep=5)
    config = NetConfig(depth=4, width=8, norm="batch", in_features=6, out_features=3)
    study = optimizer_study(config, ("sgd", "adam"), data=data, scale=TINY, steps=4)
    optimizer = optimizer_evidence(study, data)
    assert optimizer.measured[2].without == study.histories[("sgd", 0)].final_train_error
    with pytest.raises(ValueError, match="remedy='rmsprop'"):
        optimizer_evidence(study, data, remedy="rmsprop")
    for wrong_type in (
        lambda: initialization_evidence(width_depth),
        lambda: width_evidence(orthogonal),
        lambda: optimizer_evidence(orthogonal, data),
        lambda: find_evidence([init, width], 3),
    ):
        with pytest.raises(TypeError):
            wrong_type()
    assert find_evidence([init, width], "width") is width


def test_summary_table_states_claims_and_lists_every_remedy_with_its_numbers():
    items = [
        RemedyEvidence(
            "skip connections (ResNet)",
            "a vs b",
            "05",
            (Measured("GSC", 14.25, 2.5), Measured("error", 0.5, float("nan"))),
        ),
        RemedyEvidence("width instead of depth", "c vs d", "07", (Measured("steps", 120, 40),)),
    ]
    judged = Judgement("06/resnets-explode-far-less", "The ResNets explode less.", "holds", "0.1 < 0.5", {})
    summary = remedies_summary(items, [judged])
    assert list(summary.table.columns) == ["remedy", "touches", "does_not_touch", "evidence", "chapters"]
    assert summary.table.loc[0, "evidence"] == (
        "a vs b: GSC: 14.2 without, 2.5 with; error: 0.5 without, n/a with"
    )
    assert summary.table.loc[1, "evidence"] == "c vs d: steps: 120 without, 40 with"
    # a judged claim brings its sentence and verdict, an unjudged one its registry sentence
    assert summary.table.loc[0, "touches"] == (
        "exploding gradients — The ResNets explode less. (✅ holds: 06/resnets-explode-far-less)"
    )
    assert summary.table.loc[0, "does_not_touch"].endswith(
        f"{get_claim('07/resnet-short-paths').sentence} (claim 07/resnet-short-paths, judged in chapter 07)"
    )
    assert "c vs d" in summary.summary() and "(chapter 07)" in summary.summary()  # one chapter: singular
    assert summary.table.loc[1, "does_not_touch"].startswith("what depth buys")  # descriptive, no claim
    assert len(summary.measurements) == 3
    assert list(summary.measurements["quantity"]) == ["GSC", "error", "steps"]
    assert "touches:      exploding gradients — The ResNets explode less." in summary.summary()
    with pytest.raises(ValueError, match="evidence"):
        remedies_summary([])
    with pytest.raises(TypeError, match="RemedyEvidence"):
        remedies_summary(["skip"])
    with pytest.raises(ValueError, match="'layer normalization' is not allowed"):
        remedies_summary([RemedyEvidence("layer normalization", "e vs f", "03", ())])
    with pytest.raises(TypeError, match="Judgement"):
        remedies_summary(items, ["06/resnets-explode-far-less"])


def test_every_remedy_row_is_backed_by_registered_claims_and_matches_its_evidence():
    for row in REMEDIES:
        for claim_id in row.touches_claims + row.does_not_touch_claims:
            assert get_claim(claim_id).sentence  # a ValueError here names an unknown id
        assert remedy_row(RemedyEvidence(f"{row.remedy} (x)", "a vs b", "07", ())) is row
    assert [row.remedy for row in REMEDIES] == [
        "skip connections",
        "orthogonal initial state",
        "batch normalization",
        "gradient clipping",
        "adaptive optimizer",
        "width instead of depth",
    ]


def test_architecture_name_names_the_initializer():
    assert Architecture("relu", "none", init="looks_linear").name == "relu/none/looks_linear"
    assert Architecture("tanh", "batch", residual=True).name == "tanh/batch/xavier/res"


def test_collect_remedy_evidence_covers_six_remedies(orthogonal, width_depth, data):
    evidence = collect_remedy_evidence(TINY, orthogonal=orthogonal, width_depth=width_depth, data=data)
    names = [item.remedy.split(" (")[0] for item in evidence]
    assert names == [
        "skip connections",
        "orthogonal initial state",
        "batch normalization",
        "gradient clipping",
        "adaptive optimizer",
        "width instead of depth",
    ]
    assert isinstance(orthogonal, OrthogonalStateResult)
    assert all(item.measured for item in evidence)


def test_skip_comparison_pairs_plain_and_residual_rows(data):
    survey = architecture_survey(
        activations=("relu", "tanh"),
        norms=("batch",),
        residual=(False, True),
        data=data,
        depth=6,
        width=8,
        batch_size=32,
    )
    table = skip_comparison(survey)
    assert list(table["activation"]) == ["relu", "tanh"]
    relu = table.iloc[0]
    assert relu["gsc_plain"] == survey.row("relu", "batch")["gsc_input"]
    assert relu["gsc_resnet"] == survey.row("relu", "batch", True)["gsc_input"]
    assert relu["ratio"] == pytest.approx(relu["gsc_plain"] / relu["gsc_resnet"], rel=1e-12)
    plain_only = architecture_survey(
        activations=("relu",), norms=("none",), data=data, depth=6, width=8, batch_size=32
    )
    with pytest.raises(ValueError, match="residual=\\(False, True\\)"):
        skip_comparison(plain_only)
    with pytest.raises(TypeError, match="survey"):
        skip_comparison(survey.table)


def test_the_first_update_is_measured_in_float64_whatever_the_data():
    """Clipping scales every layer's gradient by one factor, so the first update's balance is
    unchanged; measured as a difference of float32 weights it seemed to move by 7.9e-5 (the
    H200 run of 08/clipping-keeps-balance). float32 data gives the float64 measurement."""
    data32 = gaussian_data(n_train=256, n_test=64, seed=0, dtype=torch.float32)
    config = NetConfig(
        depth=8, width=32, activation="relu", norm="batch", in_features=data32.in_features, out_features=10
    )
    settings = study_settings(TINY).with_(batch_size=64)
    plain = update_spread(first_update_sizes(config, data32, settings))
    clipped = update_spread(first_update_sizes(config, data32, settings.with_(clip_norm=1e-3)))
    assert abs(clipped - plain) / abs(plain) < 1e-9
    data64 = resolve_data(data32, dtype=torch.float64)
    assert update_spread(first_update_sizes(config, data64, settings)) == plain


def _measured(evidence: RemedyEvidence, quantity: str) -> Measured:
    return next(m for m in evidence.measured if m.quantity == quantity)


def test_skip_connection_evidence_takes_the_median_over_an_effective_depth_studys_seeds():
    from types import SimpleNamespace

    survey = architecture_survey(
        activations=("relu",), norms=("batch",), residual=(False, True), depth=4, width=8, batch_size=32
    )
    rows = [
        {"label": label, "seed": seed, "depth_since_init_final": depth, "final_train_error": error}
        for label, depths, errors in (
            ("relu/batch", (3, 4, 9), (0.2, math.nan, 0.1)),  # seed 1 diverged: error 1
            ("relu/batch/res", (2, 2, 5), (0.1, 0.1, 0.3)),
        )
        for seed, depth, error in zip((0, 1, 2), depths, errors)
    ]
    study = SimpleNamespace(table=pd.DataFrame(rows))  # was float(Series): a TypeError
    evidence = skip_connection_evidence(survey, "relu", "batch", study)
    depth = _measured(evidence, "effective depth after training (skip = initial layer)")
    error = _measured(evidence, "final training error")
    assert (depth.without, depth.with_remedy) == (4.0, 2.0)
    assert (error.without, error.with_remedy) == (0.2, 0.1)


def test_width_evidence_counts_a_diverged_seed_as_error_one():
    table = pd.DataFrame(
        {
            "depth": [2, 2, 2, 40, 40, 40],
            "seed": [0, 1, 2] * 2,
            "width": [100] * 3 + [10] * 3,
            "best_lr": [0.1] * 3 + [0.1, math.nan, math.nan],
            "final_train_error": [0.05, 0.06, 0.05, 0.02, math.nan, math.nan],  # two deep seeds diverged
            "final_test_error": [0.1, 0.1, 0.1, 0.3, math.nan, math.nan],
        }
    )
    result = WidthDepthResult(
        table=table, budget=1000, architecture="relu/batch/he", search=None, seeds=(0, 1, 2)
    )
    error = _measured(width_evidence(result), "final training error")
    assert (error.without, error.with_remedy) == (1.0, 0.05)  # was 0.02: the deep network looked better
