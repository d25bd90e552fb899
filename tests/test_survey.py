"""The architecture survey: table layout, exact identities, known rates and bad input."""

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from explodegrad.core.data import gaussian_data
from explodegrad.studies.common import DEFAULT_INITS, architecture_label
from explodegrad.studies.survey import BATCHNORM_RELU_MEAN_FIELD_RATE, COLUMNS, architecture_survey

TINY = dict(depth=5, width=12, batch_size=32, seeds=(0,))


@pytest.fixture(scope="module")
def data():
    return gaussian_data(n_train=64, n_test=8, in_features=10, num_classes=3, seed=0, dtype=torch.float64)


@pytest.fixture(scope="module")
def survey(data):
    return architecture_survey(data=data, **TINY)


def test_table_has_one_row_per_architecture_with_the_documented_columns(survey):
    assert list(survey.table.columns) == list(COLUMNS)
    assert len(survey.table) == 9
    assert list(survey.table["label"]) == [
        architecture_label(a, n) for a in ("relu", "tanh", "selu") for n in ("none", "batch", "layer")
    ]
    assert set(survey.profiles) == set(survey.domains) == set(survey.table["label"])
    assert (survey.table["depth"] == 5).all() and (survey.table["width"] == 12).all()
    assert survey.table["overflow_layer"].isna().all()
    assert str(survey.table["overflow_layer"].dtype) == "Int64"


def test_default_inits_follow_the_activation(survey):
    for row in survey.table.itertuples():
        assert row.init == DEFAULT_INITS[row.activation]
    assert DEFAULT_INITS["relu"] == "he" and DEFAULT_INITS["tanh"] == "xavier"
    assert DEFAULT_INITS["selu"] == "lecun"


def test_row_numbers_are_those_of_the_kept_profile_and_domain(survey):
    for label, profile in survey.profiles.items():
        row = survey.table[survey.table["label"] == label].iloc[0]
        assert row["gsc_input"] == profile.gsc[-1]
        assert row["gsc_first_layer"] == profile.gsc_at(5)
        assert row["rate"] == profile.fit.rate
        last = survey.domains[label].at(2)
        assert row["sign_diversity_last"] == last["sign_diversity"]
        assert row["preact_std_last"] == last["preact_std_relative"]
        assert row["linear_fit_error_last"] == last["linear_fit_error"]


def test_probe_equals_exact_without_batch_norm(data):
    kwargs = dict(data=data, activations=("relu", "tanh"), norms=("none", "layer"), **TINY)
    probe = architecture_survey(method="probe", **kwargs)
    exact = architecture_survey(method="exact", **kwargs)
    np.testing.assert_allclose(probe.table["gsc_input"], exact.table["gsc_input"], rtol=1e-10)


def test_orthogonal_linear_network_has_rate_exactly_one(data):
    # Square orthogonal hidden layers keep ||f_k|| and every per-example gradient's norm, so
    # GSC(k, 0) is the same for every hidden k (up to the float32 draw of the matrices).
    result = architecture_survey(
        activations=("linear",), norms=("none",), inits="orthogonal", data=data, **TINY
    )
    row = result.row("linear", "none")
    assert row["rate"] == pytest.approx(1.0, abs=1e-6)
    profile = result.profiles["linear/none"]
    np.testing.assert_allclose(profile.gsc[1:-1], profile.gsc[1], rtol=1e-6)


def test_the_mean_field_rate_is_the_papers_formula():
    # That batch-normalized ReLU networks explode at this rate is measured once, in test_gsc.py.
    assert math.sqrt(math.pi / (math.pi - 1)) == BATCHNORM_RELU_MEAN_FIELD_RATE


def test_residual_layouts_are_labelled(data):
    result = architecture_survey(
        activations=("relu",),
        norms=("none",),
        residual=(False, True),
        data=data,
        depth=6,
        width=12,
        batch_size=32,
    )
    assert list(result.table["label"]) == ["relu/none", "relu/none/res"]
    assert list(result.table["residual"]) == [False, True]
    assert result.profiles["relu/none/res"].num_layers == 4  # input layer, 2 blocks, readout


def test_overflow_is_a_result_not_an_error(data):
    # std-1 Gaussian weights multiply a ReLU signal by about sqrt(width / 2) per layer:
    # 60 layers of width 100 overflow float32.
    result = architecture_survey(
        activations=("relu",),
        norms=("none",),
        inits="gaussian",
        data=data,
        depth=60,
        width=100,
        batch_size=32,
        dtype=torch.float32,
    )
    row = result.row("relu", "none")
    assert not pd.isna(row["overflow_layer"])
    assert math.isnan(row["rate"])


def test_same_seed_same_table(data):
    again = architecture_survey(data=data, activations=("selu",), norms=("batch",), **TINY)
    once = architecture_survey(data=data, activations=("selu",), norms=("batch",), **TINY)
    pd.testing.assert_frame_equal(once.table, again.table)


def test_summary_prints_fixed_format(survey):
    lines = survey.summary().splitlines()
    assert len(lines) == 10
    assert lines[1].startswith("relu/none")


@pytest.mark.parametrize(
    ("kwargs", "argument", "error"),
    [
        (dict(activations=("relu", "swish")), "activations", ValueError),
        (dict(norms=()), "norms", ValueError),
        (dict(norms="group"), "norms", ValueError),
        (dict(inits={"relu": "bogus"}), "inits", ValueError),
        (dict(inits=3), "inits", TypeError),
        (dict(method="guess"), "method", ValueError),
        (dict(batch_size=1), "batch_size", ValueError),
        (dict(batch_size=10_000), "batch_size", ValueError),
        (dict(depth=0), "depth", ValueError),
        (dict(residual=()), "residual", ValueError),
        (dict(data=[1, 2]), "data", TypeError),
        (dict(scale="quick"), "scale", TypeError),
        (dict(device=1), "device", TypeError),
        (dict(seeds=(0, 1)), "seeds", ValueError),
        (dict(seeds="0"), "seeds", TypeError),
    ],
)
def test_bad_input_names_the_argument(data, kwargs, argument, error):
    arguments = dict(data=data, depth=3, width=4, batch_size=16) | kwargs
    with pytest.raises(error, match=argument):
        architecture_survey(**arguments)


def test_survey_serializes_to_plain_json(data):
    result = architecture_survey(data=data, activations=("relu",), norms=("none",), depth=3, width=4)
    as_dict = result.to_dict()
    assert set(as_dict) == {f.name for f in dataclasses.fields(result)}
    assert as_dict["seed"] == 0 and as_dict["table"][0]["label"] == "relu/none"
    json.dumps(as_dict, allow_nan=False)


def test_unknown_row_is_refused(survey):
    with pytest.raises(ValueError, match="not in this survey"):
        survey.row("gelu", "none")


# ----------------------------------------------------------------------------- the study protocol


def test_every_study_takes_the_same_keyword_only_arguments_and_returns_a_study_result():
    import inspect
    import typing

    from explodegrad.studies import (
        clipping,
        common,
        depth_limit,
        effective_depth,
        optimizers,
        orthogonal,
        survey,
        width_depth,
    )

    studies = [
        survey.architecture_survey,
        optimizers.optimizer_study,
        depth_limit.depth_study,
        effective_depth.effective_depth_study,
        orthogonal.orthogonal_initial_state,
        width_depth.width_vs_depth,
        clipping.clipping_comparison,
    ]
    for study in studies:
        parameters = inspect.signature(study).parameters
        for name in ("scale", "device", "data", "seeds"):
            assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY, (study.__name__, name)
            assert parameters[name].default is None, (study.__name__, name)
        result = typing.get_type_hints(study)["return"]
        assert issubclass(result, common.StudyResult), study.__name__
        assert "summary" in vars(result) and "to_dict" not in vars(result), study.__name__
        assert result.__dataclass_params__.frozen, study.__name__
