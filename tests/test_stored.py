"""Stored evidence: every shipped file valid, fresh and reproducible; the format's checks."""

import copy
import json

import numpy as np
import pytest

from explodegrad.core.data import gaussian_data, load_digits
from explodegrad.studies import depth_limit, stored
from explodegrad.studies.common import Architecture

SHIPPED = stored.stored_names()
#: How far a recomputed training error may lie from the stored one: the stored run trained in
#: float32 inside a stack of 15 models (rates x seeds), the recomputation alone, possibly on
#: another CPU; rounding differences grow over 200 steps, but a network that fits its training
#: set fits it either way.
TRAINING_ERROR_TOLERANCE = 0.05


def _tiny_study():
    data = gaussian_data(n_train=64, n_test=16, in_features=6, num_classes=3, seed=0)
    return depth_limit.depth_study(
        [Architecture("tanh", "none"), Architecture("relu", "batch", residual=True)],
        depths=(4,),
        lrs=(0.01, 0.1),
        data=data,
        width=8,
        steps=3,
        seeds=2,
        widen=1,
    )


def _provenance():
    return {
        "commit": "0" * 40,
        "uncommitted_changes": False,
        "command": "python -m explodegrad evidence tiny",
        "machine": "a test",
        "device": "CPU",
        "torch": "2",
        "python": "3",
        "date": "2026-11-30T00:00:00+00:00",
        "wall_time_s": 1.0,
        "seeds": [0, 1],
        "data": {
            "name": "gaussian",
            "source": "made here",
            "n_train": 64,
            "n_test": 16,
            "checksum": "sha256:00",
        },
        "scale": {"name": "test"},
    }


def test_evidence_files_ship_with_the_package():
    assert set(stored.ENTRIES) == set(SHIPPED)  # every entry computed, nothing stored without an entry


@pytest.mark.parametrize("name", SHIPPED)
def test_every_stored_file_is_valid_and_not_stale(name):
    document = json.loads((stored.EVIDENCE_DIR / f"{name}.json").read_text())
    assert stored.validate(document) == []
    evidence = stored.load(name)
    assert not evidence.stale, f"{name} is stale: run `python -m explodegrad evidence {name}`"
    assert evidence.name == name
    assert evidence.provenance["seeds"] == list(evidence.result.seeds)
    assert len(evidence.provenance["seeds"]) >= 3
    assert name in evidence.label() and "STALE" not in evidence.label()


@pytest.mark.parametrize("name", [n for n in SHIPPED if n.startswith("depth-limit")])
def test_the_stored_depth_limit_is_what_the_issue_asks_for(name):
    study = stored.load(name).result
    table = study.table
    assert set(table["depth"]) >= {10, 30, 50}
    assert study.width == 100
    assert len(set(table["architecture"])) == len(depth_limit.EVIDENCE_ARCHITECTURES)
    rates = study.rates
    for (_, _, _), runs in rates.groupby(["architecture", "depth", "seed"]):
        assert len(runs) >= 5  # at least five rates per (architecture, depth, seed)
    assert table["at_edge"].dtype == bool


@pytest.mark.parametrize("name", [n for n in SHIPPED if n.startswith("optimizers")])
def test_the_stored_optimizer_studies_tune_each_optimizer(name):
    study = stored.load(name).result
    assert set(study.optimizers) == {"sgd", "adam", "rmsprop"} and study.data_name == "cifar10"
    chosen = study.tuning[study.tuning["chosen"]]
    assert dict(zip(chosen["optimizer"], chosen["lr"])) == dict(
        zip(study.runs["optimizer"], study.runs["lr"])
    )
    for _, tried in study.tuning.groupby(["optimizer", "seed"]):
        assert len(tried) >= 5  # at least five rates per optimizer and seed
    assert int(study.layers["layer"].max()) == 50 and len(set(study.layers["step"])) >= 5


def test_the_stored_trained_depth_study_retrains_the_depth_limit_networks():
    study = stored.load("trained-depth-cifar10").result
    limit = stored.load("depth-limit-cifar10").result
    deep = limit.table[limit.table["depth"] == 50].set_index(["architecture", "seed"])
    for _, row in study.table.iterrows():
        assert row["lr"] == deep.loc[(row["label"], row["seed"]), "best_lr"]
        assert row["search_train_error"] == deep.loc[(row["label"], row["seed"]), "final_train_error"]
    assert study.depth == 50 and set(study.labels) == set(deep.index.get_level_values(0))


def test_the_cheapest_stored_configuration_recomputes_within_the_tolerance():
    """Integrity: digits, ReLU without normalization, depth 10, seed 0, at its chosen rate."""
    evidence = stored.load("depth-limit-digits")
    row = evidence.result.table.query("architecture == 'relu/none' and depth == 10 and seed == 0").iloc[0]
    again = depth_limit.depth_limit_evidence(
        data="digits",
        device="cpu",
        seeds=(0,),
        architectures=[Architecture("relu", "none")],
        depths=(10,),
        lrs=(float(row["best_lr"]),),
        widen=0,
    ).table.iloc[0]
    assert again["gsc_init"] == pytest.approx(row["gsc_init"], rel=1e-9)  # float64 at init: exact
    assert abs(again["final_train_error"] - row["final_train_error"]) <= TRAINING_ERROR_TOLERANCE


def test_the_stored_data_checksum_is_that_of_the_data_loaded_now():
    evidence = stored.load("depth-limit-digits")
    data = load_digits()
    n_train, n_test = evidence.provenance["data"]["n_train"], evidence.provenance["data"]["n_test"]
    from explodegrad.core.scales import _truncate

    assert stored.data_checksum(_truncate(data, n_train, n_test)) == evidence.provenance["data"]["checksum"]


def test_a_document_round_trips_through_json(tmp_path):
    study = _tiny_study()
    doc = stored.document(study, name="tiny", study="depth_limit", provenance=_provenance())
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(doc))
    back = stored.read(path)
    assert back.study_version == depth_limit.STUDY_VERSION and not back.stale
    np.testing.assert_array_equal(back.result.table["final_train_error"], study.table["final_train_error"])
    assert list(back.result.table["architecture"]) == list(study.table["architecture"])
    assert back.result.search is None and back.result.lrs == study.lrs
    assert back.result.summary() == study.summary()


def test_a_changed_study_version_makes_a_file_stale(tmp_path, monkeypatch):
    doc = stored.document(_tiny_study(), name="tiny", study="depth_limit", provenance=_provenance())
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(doc))
    monkeypatch.setattr(depth_limit, "STUDY_VERSION", depth_limit.STUDY_VERSION + 1)
    evidence = stored.read(path)
    assert evidence.stale and "STALE" in evidence.label()


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda d: d.update(schema="other/1"), "schema"),
        (lambda d: d["provenance"].pop("commit"), "provenance lacks 'commit'"),
        (lambda d: d["provenance"]["data"].pop("checksum"), "provenance.data lacks 'checksum'"),
        (lambda d: d["provenance"].update(seeds="0,1"), "seeds must be a list"),
        (lambda d: d.update(study="survey"), "study 'survey' is not one of"),
        (lambda d: d.update(study_version="1"), "study_version must be of type int"),
    ],
)
def test_validation_names_what_is_wrong(change, problem, tmp_path):
    doc = {
        "schema": stored.SCHEMA,
        "name": "x",
        "study": "depth_limit",
        "study_version": 1,
        "provenance": _provenance(),
        "result": {},
    }
    broken = copy.deepcopy(doc)
    change(broken)
    assert any(problem in line for line in stored.validate(broken)), stored.validate(broken)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="not a stored-evidence file"):
        stored.read(path)


def test_unknown_names_and_unreadable_files_are_refused(tmp_path):
    with pytest.raises(ValueError, match="name='nothing' is not supported"):
        stored.load("nothing")
    path = tmp_path / "bad.json"
    path.write_text("{")
    with pytest.raises(ValueError, match="not a readable JSON file"):
        stored.read(path)


def test_one_evidence_command_records_the_commit_it_started_from_in_every_file(monkeypatch, tmp_path):
    """The first file a command writes changes the tree; the next file must still record the
    state the command started from, not "uncommitted changes" made by the command itself."""
    import explodegrad.reproduce.evidence as evidence
    from explodegrad import cli

    states = iter([("abc123", False), ("abc123", True), ("abc123", True)])
    monkeypatch.setattr(evidence, "source_state", lambda: next(states))
    seen = []
    monkeypatch.setattr(evidence, "compute", lambda name, **kwargs: seen.append((name, kwargs["source"])))
    status = cli.main(["evidence", "depth-limit-cifar10", "depth-limit-digits", "--out", str(tmp_path)])
    assert status == 0
    assert seen == [("depth-limit-cifar10", ("abc123", False)), ("depth-limit-digits", ("abc123", False))]
