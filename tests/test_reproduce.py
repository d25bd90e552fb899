"""The headless report: plan, parts store and resume, JSON, tables, claim checks, end-to-end runs.

The end-to-end runs are marked slow: the tiny scale (every part, seconds each, computed in two
worker processes) and the quick scale the issue asks CI to exercise (minutes on 2 CPU cores).
"""

import dataclasses
import json
import math
import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from explodegrad import cli
from explodegrad.claims import VERDICTS, all_claims
from explodegrad.reproduce import (
    PAPER_SIZE,
    TABLE_ARCHITECTURES,
    Part,
    PartStore,
    arch_part_name,
    make_plan,
    markdown_table,
    part_key,
    part_status,
    pending_parts,
    plan_parts,
    reproduce,
    select_parts,
    to_jsonable,
)
from explodegrad.reproduce.parts import judged_claims, stale_claims
from explodegrad.studies.common import Architecture

SHARED_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar-10-batches-py"
TABLE_KEYS = {
    "architecture",
    "layers",
    "gsc_init",
    "rate_init",
    "sign_diversity_last",
    "preact_std_last",
    "effective_depth_init",
    "effective_depth_trained",
    "best_lr",
    "final_train_error",
    "final_test_error",
}


# ----------------------------------------------------------------------------- plan and parts


def test_plans_of_each_scale():
    tiny = make_plan("tiny")
    assert tiny.scale.name == "tiny" and not tiny.paper_size_survey
    quick = make_plan("quick", seed=3)
    assert (quick.scale.depth, quick.scale.width, quick.scale.dataset) == (20, 64, "digits")
    assert quick.paper_size_survey and quick.seed == 3
    assert make_plan("quick", steps=17).scale.train_steps == 17
    assert "training steps set to 17" in make_plan("quick", steps=17).scale.reason


def test_only_the_paper_scale_trains_the_claims_seeds_together_and_its_report_says_so():
    """At the paper scale the effective-depth, orthogonal, optimizer and clipping studies stack their seeds
    (one minibatch order); the quick scale, whose numbers the notebooks show, keeps one order per seed."""
    from explodegrad import claims
    from explodegrad.claims import evidence

    assert claims.setting("paper").stack_seeds and not claims.setting("quick").stack_seeds
    assert "train their seeds together on one minibatch order" in make_plan("paper").describe()
    assert "together on one minibatch order" not in make_plan("quick").describe()
    # the evidence builders pass the route on
    for name, module, function in (
        ("effective-depth", evidence.effective_depth, "effective_depth_study"),
        ("orthogonal", evidence.orthogonal, "orthogonal_initial_state"),
        ("optimizers", evidence.optimizers, "optimizer_study"),
        ("clipping-runs", evidence.clipping, "clipping_comparison"),
    ):
        for scale, expected in (("paper", True), ("quick", False)):
            seen: list[bool] = []
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(
                    module, function, lambda seen=seen, **kwargs: seen.append(kwargs["stack_seeds"])
                )
                evidence.STUDIES[name](claims.setting(scale))
            assert seen == [expected], (name, scale)
    # a stacked claims part has its own key: one stored before the route is not reused
    keys = {p.name: p.options for p in plan_parts(make_plan("paper"))}
    assert keys["claims-effective-depth"]["stack_seeds"] and "stack_seeds" not in keys["claims-other"]
    assert keys["claims-clipping"]["stack_seeds"]
    assert not any("stack_seeds" in p.options for p in plan_parts(make_plan("quick")))


@pytest.mark.skipif(not SHARED_CIFAR.is_dir(), reason="no CIFAR-10 subset in ../shared/data")
def test_paper_plan_uses_cifar10_when_found():
    plan = make_plan("paper", data_root=SHARED_CIFAR.parent)
    assert (plan.scale.depth, plan.scale.width) == PAPER_SIZE
    assert plan.scale.dataset == "cifar10" and not plan.paper_size_survey


def test_paper_plan_falls_back_to_digits_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLODEGRAD_DATA", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    plan = make_plan("paper")
    assert plan.scale.dataset == "digits" and "CIFAR-10 was not found" in plan.scale.reason


def test_the_claims_part_looks_for_cifar10_in_the_plans_data_root(tmp_path, monkeypatch):
    """The claims' studies load their data themselves; ``--data-root`` must reach them (on the
    first H200 run the paper report failed here: they looked only in ~/.cache/explodegrad). It
    travels as the scale's ``data_root``, without touching the environment."""
    from explodegrad.core.data import DATA_ENV, load_digits
    from explodegrad.reproduce import parts

    monkeypatch.delenv(DATA_ENV, raising=False)
    scales = []
    monkeypatch.setattr(parts.claims, "evaluate", lambda scale, *args, **kwargs: scales.append(scale) or [])
    tiny_cifar = make_plan("tiny").scale.with_(dataset="cifar10")
    plan = dataclasses.replace(make_plan(tiny_cifar), data_root=str(tmp_path / "data"))
    assert plan.scale.data_root == str(tmp_path / "data") and plan.scale == tiny_cifar
    assert dataclasses.replace(plan, data_root=None).scale.data_root is None  # both ways
    assert make_plan("tiny", data_root=tmp_path).scale.data_root is None  # no CIFAR-10 to look for
    assert parts.run_claims(plan, load_digits(), {"studies": ["overshoot"]}) == {"judgements": []}
    assert [scale.data_root for scale in scales] == [str(tmp_path / "data")]
    assert DATA_ENV not in os.environ
    # a part stored with one data folder is reused with another: the folder is not in its key
    other = make_plan(tiny_cifar)
    assert part_key(plan_parts(plan)[0], plan) == part_key(plan_parts(other)[0], other)


@pytest.mark.skipif(not SHARED_CIFAR.is_dir(), reason="no CIFAR-10 subset in ../shared/data")
def test_a_scale_loads_cifar10_from_its_own_data_root(tmp_path, monkeypatch):
    from explodegrad.core.data import DATA_ENV, DatasetNotFoundError
    from explodegrad.core.scales import PAPER, load_scale_data, pick_scale

    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no cache to fall back on
    small = PAPER.with_(n_train=8, n_test=4)
    with pytest.raises(DatasetNotFoundError):
        load_scale_data(small)
    data = load_scale_data(small.with_(data_root=SHARED_CIFAR.parent))
    assert (len(data.x_train), len(data.x_test), data.name) == (8, 4, "cifar10")
    assert pick_scale(override="paper", data_root=SHARED_CIFAR.parent).data_root == str(SHARED_CIFAR.parent)
    with pytest.raises(TypeError, match="data_root=3 is not allowed"):
        PAPER.with_(data_root=3)


def test_a_paper_scale_report_names_what_keeps_it_from_the_papers_setting():
    """--steps and a CIFAR-10 subset make a paper-size run that is not the paper's setting (the
    first H200 report, 20 steps on 3,805 images, called itself 'the paper's setting')."""
    from explodegrad.reproduce.report import paper_differences

    assert paper_differences("cifar10", 50_000, 10_000) == []
    assert paper_differences("cifar10", 3_805, 20) == [
        "3,805 of CIFAR-10's 50,000 training images",
        "20 training steps instead of 10,000",
    ]
    assert paper_differences("digits", 1_437, 10_000) == ["digits instead of CIFAR-10"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"scale": "huge"}, "scale='huge' is not supported"),
        ({"scale": "quick", "steps": 0}, "steps=0 is not allowed"),
        ({"scale": "quick", "seed": -1}, "seed=-1 is not allowed"),
        ({"scale": "quick", "lrs": ()}, "lrs=() is not allowed"),
        ({"scale": "quick", "lrs": (0.1, -1.0)}, "lrs=-1.0 is not allowed"),
    ],
)
def test_bad_plans(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_plan(**kwargs)


def test_reproduce_refuses_bad_jobs(tmp_path):
    with pytest.raises(ValueError, match="jobs=0 is not allowed"):
        reproduce(tmp_path, "tiny", device="cpu", jobs=0, log=None)


@pytest.mark.parametrize("scale", ["tiny", "quick", "paper"])
def test_every_claim_is_judged_in_exactly_one_claims_part(scale):
    """The claims are split by study so that ``--jobs`` spreads their training (at the paper
    scale a single claims part was most of the report: 139 s of 235 at 20 steps on an H200)."""
    from explodegrad.reproduce import parts

    grouped = parts.claim_part_studies(scale)
    studies = [s for chosen in grouped.values() for s in chosen]
    judged = {c.study for c in all_claims() if c.judged_at(scale)}
    assert sorted(studies) == sorted(judged)  # each study once, none left out
    assert grouped["claims-depth-errors"] == ["depth-errors"]
    assert grouped["claims-clipping"] == ["clipping-runs", "clipping"]
    assert "survey" in grouped[parts.OTHER_CLAIMS_PART]
    claim_parts = [p for p in plan_parts(make_plan(scale)) if parts.is_claims_part(p.name)]
    assert [p.name for p in claim_parts] == list(grouped)
    chapters = {p.name: p.chapters for p in claim_parts}
    assert chapters["claims-depth-errors"] == "04" and chapters["claims-width-depth"] == "08"
    assert not parts.is_claims_part("claims") and not parts.is_claims_part("clipping")


def test_parts_cover_the_table_once():
    for scale in ("tiny", "quick"):
        parts = plan_parts(make_plan(scale))
        names = [p.name for p in parts]
        assert len(names) == len(set(names))
        arch = [p for p in parts if p.name.startswith("arch-")]
        assert [p.name for p in arch] == [arch_part_name(a) for a in TABLE_ARCHITECTURES]
        assert ("survey-paper-size" in names) == (scale == "quick")
    assert len(TABLE_ARCHITECTURES) == 3 * 3 * 2 + 1
    assert arch_part_name(Architecture("relu", "none", init="looks_linear")) == "arch-relu-none-looks-linear"
    assert arch_part_name(Architecture("tanh", "batch", True)) == "arch-tanh-batch-xavier-res"


# ----------------------------------------------------------------------------- JSON and tables


@dataclass
class _Point:
    x: float
    tags: tuple


def test_to_jsonable_makes_strict_json():
    frame = pd.DataFrame({"a": [1.0, math.nan], "b": pd.array([3, None], dtype="Int64")})
    value = {
        "nan": math.nan,
        "inf": -math.inf,
        "np": np.float32(0.5),
        "int": np.int64(7),
        "flag": np.bool_(True),
        "array": np.array([[1.0, np.inf], [2.0, 3.0]]),
        "frame": frame,
        "point": _Point(1.5, (1, None)),
        3: "key becomes a string",
    }
    converted = to_jsonable(value)
    assert converted == {
        "nan": None,
        "inf": None,
        "np": 0.5,
        "int": 7,
        "flag": True,
        "array": [[1.0, None], [2.0, 3.0]],
        "frame": [{"a": 1.0, "b": 3}, {"a": None, "b": None}],
        "point": {"x": 1.5, "tags": [1, None]},
        "3": "key becomes a string",
    }
    json.dumps(converted, allow_nan=False)


def test_markdown_table_formats():
    frame = pd.DataFrame(
        {
            "name": ["a", "b"],
            "value": [0.12345, math.nan],
            "big": [math.inf, 2.0],
            "flag": [True, False],
            "count": pd.array([4, None], dtype="Int64"),
        }
    )
    text = markdown_table(
        frame,
        (
            ("name", "name", ""),
            ("value", "v", ".2f"),
            ("big", "B", ".3g"),
            ("flag", "f", ""),
            ("count", "n", ""),
        ),
    )
    assert text.splitlines() == [
        "| name | v | B | f | n |",
        "|---|---|---|---|---|",
        "| a | 0.12 | inf | yes | 4 |",
        "| b | n/a | 2 | no | n/a |",
    ]


# ----------------------------------------------------------------------------- the parts store


def _constant(plan, data, options):
    return {"value": np.arange(3.0) * options["factor"], "note": "ok"}


def _fake_parts():
    return [
        Part("one", "first", "00", _constant, {"factor": 1.0}),
        Part("two", "second", "00", _constant, {"factor": 2.0}),
    ]


def test_store_round_trip_and_key(tmp_path):
    plan = make_plan("tiny")
    store = PartStore(tmp_path / "parts")
    part = _fake_parts()[1]
    saved = store.save(part, plan, _constant(plan, None, part.options), 1.5, "cpu", "machine A")
    assert saved.computed and saved.numbers == {"value": [0.0, 2.0, 4.0], "note": "ok"}
    loaded = store.load(part, plan)
    assert loaded is not None and not loaded.computed
    assert loaded.numbers == saved.numbers and loaded.wall_time == 1.5 and loaded.device == "cpu"
    assert loaded.machine == "machine A" and saved.machine == "machine A"
    np.testing.assert_array_equal(loaded.objects["value"], [0.0, 2.0, 4.0])
    stored = json.loads((tmp_path / "parts" / "two.json").read_text())
    assert stored["key"] == part_key(part, plan) and stored["key"]["scale"]["name"] == "tiny"


def test_store_refuses_other_keys_and_broken_files(tmp_path):
    plan = make_plan("tiny")
    store = PartStore(tmp_path)
    one, two = _fake_parts()
    for part in (one, two):
        store.save(part, plan, _constant(plan, None, part.options), 0.1, "cpu")
    stored, todo = pending_parts([one, two], plan, store)
    assert set(stored) == {"one", "two"} and todo == []
    assert pending_parts([one, two], plan, store, fresh=True)[1] == [one, two]
    for other in (
        make_plan("tiny", seed=1),
        make_plan("tiny", steps=3),
        make_plan("tiny", lrs=(0.5,)),
        make_plan("quick"),
    ):
        assert store.load(one, other) is None
    changed = Part("one", "first", "00", _constant, {"factor": 3.0})
    assert store.load(changed, plan) is None
    (tmp_path / "two.pkl").write_bytes(b"not a pickle")
    (tmp_path / "one.json").unlink()
    stored, todo = pending_parts([one, two], plan, store)
    assert stored == {} and todo == [one, two]


def test_code_version_names_the_commit_and_uncommitted_changes(monkeypatch):
    from explodegrad.reproduce import machine

    diff = ("diff", "HEAD", "--", "explodegrad", "pyproject.toml")  # the package only, not docs/
    answers = {("rev-parse", "HEAD"): "0123456789abcdef0123", diff: ""}
    monkeypatch.setattr(machine, "_git", lambda *arguments: answers[arguments])
    assert machine.code_version() == "0123456789ab"
    answers[diff] = "--- a/explodegrad/cli.py\n+++ b/explodegrad/cli.py\n"
    first = machine.code_version()
    assert first.startswith("0123456789ab + uncommitted changes ") and len(first.split()[-1]) == 8
    answers[diff] += "+another line\n"
    assert machine.code_version() != first  # two different edits of one commit read differently
    monkeypatch.setattr(machine, "_git", lambda *arguments: "")  # no git, or not a checkout
    assert machine.code_version() == "unknown"


def test_the_header_names_parts_made_elsewhere_with_other_code_or_unrecorded():
    from types import SimpleNamespace

    from explodegrad.reproduce.report import _other_origins

    def done(machine, code, computed=False):
        return SimpleNamespace(machine=machine, code=code, device="cpu", computed=computed)

    stored = {
        "here": done("machine A", "c1"),
        "fresh": done("machine B", "c0", computed=True),  # computed by this run: never named
        "away": done("machine B", "c1"),
        "old": done("machine A", "c0"),
        "bare": done("", ""),
        "unknown": done("machine A", "unknown"),
    }
    report = SimpleNamespace(
        parts=[SimpleNamespace(name=name) for name in stored],
        stored=stored,
        info=SimpleNamespace(machine="machine A", code="c1"),
    )
    assert _other_origins(report) == [
        "- **Parts computed on another machine:** away on machine B (device cpu).",
        "- **Parts computed with other code:** old at commit c0.",
        "- **Parts whose machine or code was not recorded** (stored before explodegrad recorded them): bare.",
    ]


def test_select_parts_keeps_report_order_and_names_what_is_allowed():
    one, two = _fake_parts()
    assert select_parts([one, two], ["two", "one"]) == [one, two]
    assert select_parts([one, two], " two ") == [two] and select_parts([one, two], "one,two") == [one, two]
    with pytest.raises(ValueError, match=r"no part named 'three'; this plan's parts are one, two"):
        select_parts([one, two], "one,three")
    with pytest.raises(ValueError, match="name at least one part"):
        select_parts([one, two], [])
    with pytest.raises(TypeError, match="give part names as strings"):
        select_parts([one, two], [1])
    with pytest.raises(TypeError, match="parts=3 is not allowed: give part names as a list"):
        select_parts([one, two], 3)
    assert select_parts([one, two], "two,") == [two]  # a trailing comma names nothing more


def test_part_status_says_what_is_stored_where_and_what_is_not(tmp_path):
    plan = make_plan("tiny")
    store = PartStore(tmp_path)
    one, two = _fake_parts()
    store.save(one, plan, _constant(plan, None, one.options), 2.5, "cuda:0", "an H200 machine", "0123abcd")
    first, second = part_status([one, two], plan, store)
    assert first == {
        "part": "one",
        "chapters": "00",
        "cost": 1.0,
        "status": "stored",
        "device": "cuda:0",
        "seconds": 2.5,
        "machine": "an H200 machine",
        "code": "0123abcd",
    }
    assert second["status"] == "to compute" and second["why"] == "not computed yet"
    assert store.holds(one, plan) and not store.holds(two, plan)
    assert not store.holds(one, make_plan("tiny", seed=1))
    (tmp_path / "one.pkl").write_bytes(b"edited")
    assert not store.holds(one, plan)
    assert part_status([one], make_plan("tiny", seed=1), store)[0]["why"].startswith(
        "it was computed with other settings (seed: 0 -> 1)"
    )


def _claims_part(plan):
    return next(p for p in plan_parts(plan) if p.name == "claims-other")


def _judgements(claims_list):
    return {"judgements": [{"claim_id": c.claim_id, "sentence": c.sentence} for c in claims_list]}


def test_a_claims_part_is_stale_when_a_claim_is_added_removed_or_reworded(tmp_path):
    plan = make_plan("quick")
    part = _claims_part(plan)
    chosen = judged_claims(plan, part.options["studies"])
    assert len(chosen) > 2
    store = PartStore(tmp_path)
    store.save(part, plan, _judgements(chosen), 1.0, "cpu")
    assert store.holds(part, plan) and stale_claims(part, plan, _judgements(chosen)["judgements"]) == ""

    reworded = [dataclasses.replace(chosen[0], sentence=chosen[0].sentence + " (old words)")] + chosen[1:]
    store.save(part, plan, _judgements(reworded), 1.0, "cpu")
    why = part_status([part], plan, store)[0]["why"]
    assert why == f"its claims changed since it was computed (reworded: {chosen[0].claim_id})"
    assert not store.holds(part, plan) and store.load(part, plan) is None

    store.save(part, plan, _judgements(chosen[1:]), 1.0, "cpu")  # judged before chosen[0] existed
    assert part_status([part], plan, store)[0]["why"].endswith(f"(added: {chosen[0].claim_id})")
    gone = dataclasses.replace(chosen[0], claim_id="00/retired")
    store.save(part, plan, _judgements([*chosen, gone]), 1.0, "cpu")
    assert part_status([part], plan, store)[0]["why"].endswith("(removed: 00/retired)")
    assert stale_claims(part, plan, [{"verdict": "holds"}]).startswith("its judgements are unreadable")


SHIPPED_PAPER_PARTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "paper-parts"


@pytest.mark.skipif(not SHARED_CIFAR.is_dir(), reason="no CIFAR-10 subset in ../shared/data")
def test_every_shipped_paper_part_is_reusable_by_the_paper_report():
    """A part committed to benchmarks/results/paper-parts that the paper report would compute
    again (other settings, a claim reworded since) is stale evidence: recompute and commit it."""
    plan = make_plan("paper", data_root=SHARED_CIFAR.parent)
    shipped = {p.stem for p in SHIPPED_PAPER_PARTS.glob("*.json")}
    assert {"claims-other", "survey"} <= shipped
    status = {row["part"]: row for row in part_status(plan_parts(plan), plan, PartStore(SHIPPED_PAPER_PARTS))}
    assert shipped <= set(status)
    why = {name: status[name].get("why", "") for name in sorted(shipped)}
    assert why == dict.fromkeys(sorted(shipped), "")


# ----------------------------------------------------------------------------- end to end


def _results(out: Path, scale: str) -> dict:
    return json.loads((out / f"results-{scale}-scale.json").read_text())


def _check_report(out: Path, scale: str, jobs_note: str | None = None) -> dict:
    report = (out / f"report-{scale}-scale.md").read_text()
    results = _results(out, scale)
    head = "\n".join(report.splitlines()[:8])
    assert f"({scale} scale)" in head and "**Machine:**" in head and "**Wall time:**" in head
    assert "**Data:** digits" in head and "instead of CIFAR-10" in head
    table = results["architecture_table"]
    assert [row["architecture"] for row in table] == [
        f"{a.activation}/{a.norm}/{a.init or {'relu': 'he', 'tanh': 'xavier', 'selu': 'lecun'}[a.activation]}"
        + ("/res" if a.residual else "")
        for a in TABLE_ARCHITECTURES
    ]
    for row in table:
        assert set(row) >= TABLE_KEYS
        assert row["architecture"] in report
        assert row["layers"] >= row["effective_depth_trained"] >= 0
        assert row["gsc_init"] is not None and row["gsc_init"] > 0
    assert "| architecture | L | GSC(L,0) at init | rate r |" in report
    # the verdicts come from the claims registry: every claim judged at this scale, once, with a
    # verdict (the depth-limit claims are judged at the evidence scale, on the stored files)
    assert [c["id"] for c in results["claims"]] == [c.claim_id for c in all_claims() if c.judged_at(scale)]
    assert all(c["verdict"] in VERDICTS for c in results["claims"])
    assert "### The course's claims, judged (explodegrad.claims)" in report
    assert results["meta"]["data"]["name"] == "digits"
    figures = sorted((out / f"figures-{scale}").glob("*.png"))
    assert len(figures) >= 12
    for figure in figures:
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"](figures-{scale}/{figure.name})" in report
    return results


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The whole pipeline at the tiny scale through the command line, parts in 2 worker processes."""
    out = tmp_path_factory.mktemp("tiny") / "report"
    status = cli.main(
        ["reproduce", "--scale", "tiny", "--device", "cpu", "--out", str(out), "--jobs", "2", "--quiet"]
    )
    assert status == 0
    return out


@pytest.mark.slow
def test_tiny_run_writes_report_numbers_and_figures(tiny_run):
    results = _check_report(tiny_run, "tiny")
    assert results["meta"]["jobs"] == 2
    assert len(results["meta"]["computed"]) == len(plan_parts(make_plan("tiny")))
    assert results["meta"]["command"].startswith("python -m explodegrad reproduce --scale tiny")
    assert sorted(p.name for p in (tiny_run / "parts" / "tiny").glob("*.json")) == sorted(
        f"{p.name}.json" for p in plan_parts(make_plan("tiny"))
    )


@pytest.mark.slow
def test_resume_recomputes_only_the_missing_part(tiny_run, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(tiny_run, out)
    before = _results(out, "tiny")
    missing = arch_part_name(Architecture("relu", "batch"))
    (out / "parts" / "tiny" / f"{missing}.json").unlink()
    result = reproduce(out, "tiny", device="cpu", jobs=1, log=None)
    assert result.computed == [missing]
    assert len(result.reused) == len(plan_parts(make_plan("tiny"))) - 1
    after = _results(out, "tiny")
    # recomputed in this process, first computed in a worker: the same numbers (seeded)
    assert after["architecture_table"] == before["architecture_table"]
    assert after["meta"]["computed"] == [missing]
    with open(out / "parts" / "tiny" / f"{missing}.pkl", "rb") as handle:
        objects = pickle.load(handle)
    assert set(objects) == {"search", "study", "lr_used", "route"}
    assert objects["route"] == "retrained at the chosen rate"  # the tiny scale retrains


@pytest.mark.slow
def test_a_run_split_over_machines_computes_the_chosen_parts_then_the_report(tiny_run, tmp_path, monkeypatch):
    """``parts`` computes only those and writes no report; a later run without it reuses them and
    names, in the report's header, the parts made on another machine."""
    import explodegrad.reproduce as pipeline

    out = tmp_path / "split"
    shutil.copytree(tiny_run, out)
    for name in ("survey", "dilution"):
        (out / "parts" / "tiny" / f"{name}.json").unlink()
    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "machine_description", lambda choice=None: "machine A")
        patch.setattr(pipeline, "code_version", lambda: "0123abcd + uncommitted changes")
        first = reproduce(out, "tiny", device="cpu", jobs=1, log=None, parts="dilution")
    assert first.computed == ["dilution"] and first.reused == [] and first.pending == ["survey"]
    assert first.report is None and first.results is None and first.figures == []
    record = json.loads((out / "parts" / "tiny" / "dilution.json").read_text())
    assert record["machine"] == "machine A" and record["code"] == "0123abcd + uncommitted changes"
    second = reproduce(out, "tiny", device="cpu", jobs=1, log=None)
    assert second.computed == ["survey"] and second.pending == []
    header = second.report.read_text().split("## ")[0]
    assert "- **Parts computed on another machine:** dilution on machine A (device cpu)." in header
    assert (
        "- **Parts computed with other code:** dilution at commit 0123abcd + uncommitted changes." in header
    )
    assert f"code: commit {pipeline.code_version()}." in header
    assert _results(out, "tiny")["parts"]["dilution"]["machine"] == "machine A"
    assert "another machine" not in tiny_run.joinpath("report-tiny-scale.md").read_text().split("## ")[0]


@pytest.mark.slow
def test_quick_scale_end_to_end_and_resume(tmp_path):
    out = tmp_path / "quick"
    first = reproduce(out, "quick", device="cpu", jobs="auto", log=None)
    assert len(first.computed) == len(plan_parts(make_plan("quick"))) and first.reused == []
    results = _check_report(out, "quick")
    assert results["meta"]["scale"]["depth"] == 20 and results["meta"]["scale"]["train_steps"] == 200
    report = first.report.read_text()
    assert "At the paper's size (depth 50, width 100), at initialization:" in report
    (out / "parts" / "quick" / "gsc-meaning.json").unlink()
    second = reproduce(out, "quick", device="cpu", jobs=1, log=None)
    assert second.computed == ["gsc-meaning"]
    assert _results(out, "quick")["architecture_table"] == results["architecture_table"]
