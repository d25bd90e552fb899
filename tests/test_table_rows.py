"""The paper scale's table rows of one shape searched together (issue 16: few, wide groups).

At the tiny size with ``stack_table_rows`` forced on: the 19 rows fall into 6 parts, one per
stackable shape, each row in exactly one; each row's numbers equal those of its own part
(:func:`run_architecture`) on both measuring routes; :func:`table_row` reads a row from either
kind of part; the whole report pipeline runs with the grouped parts.
"""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from explodegrad.reproduce import parts as parts_module
from explodegrad.reproduce import reproduce
from explodegrad.reproduce.parts import (
    arch_part_name,
    plan_parts,
    rows_part_name,
    run_architecture,
    run_table_rows,
    table_row,
    table_row_groups,
)
from explodegrad.reproduce.plan import TABLE_ARCHITECTURES, make_plan
from explodegrad.reproduce.store import StoredPart, load_plan_data
from explodegrad.studies.common import Architecture


@pytest.fixture(scope="module")
def plan():
    return dataclasses.replace(make_plan("tiny"), stack_table_rows=True)


@pytest.fixture(scope="module")
def data(plan):
    return load_plan_data(plan, "cpu")


_options = parts_module._arch_options  # a row's options, as the parts hold them


def test_the_paper_plan_searches_the_19_rows_in_6_stacked_parts(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLODEGRAD_DATA", str(tmp_path))  # no CIFAR-10: digits, still the paper plan
    monkeypatch.setenv("HOME", str(tmp_path))
    paper = make_plan("paper")
    assert paper.stack_table_rows and "searched together" in paper.describe()
    assert not make_plan("quick").stack_table_rows and not make_plan("tiny").stack_table_rows
    grouped = [p for p in plan_parts(paper) if p.name.startswith("arch-")]
    assert [p.name for p in grouped] == [
        "arch-rows-none",
        "arch-rows-none-res",
        "arch-rows-batch",
        "arch-rows-batch-res",
        "arch-rows-layer",
        "arch-rows-layer-res",
    ]
    covered = [o for p in grouped for o in p.options["architectures"]]
    assert len(covered) == len(TABLE_ARCHITECTURES)  # every row once
    assert all(_options(a) in covered for a in TABLE_ARCHITECTURES)
    assert all(p.options["measure_search_models"] for p in grouped)
    none_plain = table_row_groups(paper)[0]
    assert [a.name for a in none_plain] == [
        "relu/none/he",
        "tanh/none/xavier",
        "selu/none/lecun",
        "relu/none/looks_linear",
    ]
    assert rows_part_name(none_plain) == "arch-rows-none"


@pytest.mark.parametrize("measure_search_models", [False, True])
def test_each_row_of_a_grouped_part_is_its_own_parts_row(plan, data, measure_search_models):
    """One search over ReLU, tanh and SELU rows of one shape gives every row the numbers its own
    part gives: the chosen rate, the search's table, the route and the measured study."""
    plan = dataclasses.replace(plan, measure_search_models=measure_search_models)
    group = [a for a in TABLE_ARCHITECTURES if a.norm == "batch" and not a.residual]
    together = run_table_rows(plan, data, {"architectures": [_options(a) for a in group]})
    assert set(together) == {"rows"} and list(together["rows"]) == [arch_part_name(a) for a in group]
    # one sweep; on a CPU its groups stay one per activation (sweep's default), on CUDA one stack
    assert len(together["rows"][arch_part_name(group[0])]["search"].sweep.groups) == len(group)
    for architecture in group:
        row = together["rows"][arch_part_name(architecture)]
        alone = run_architecture(plan, data, _options(architecture))
        assert list(row) == list(alone) == ["search", "study", "lr_used", "route"]
        assert row["route"] == alone["route"] and row["lr_used"] == alone["lr_used"]
        pd.testing.assert_frame_equal(
            row["search"].best.drop(columns="arch"), alone["search"].best.drop(columns="arch"), atol=1e-6
        )
        assert (row["search"].best["arch"] == 0).all()
        pd.testing.assert_frame_equal(row["search"].table, alone["search"].table, atol=1e-6)
        pd.testing.assert_frame_equal(row["study"].table, alone["study"].table, atol=1e-6)
        assert not row["search"].sweep.checkpoints  # device copies are dropped before storing


class _Stored:
    def __init__(self, objects):
        self.objects = objects


def test_table_row_reads_a_row_from_its_own_part_or_from_a_grouped_one():
    relu, tanh = Architecture("relu", "batch"), Architecture("tanh", "batch")
    own = {"search": 1, "study": 2, "lr_used": 0.1, "route": "r"}
    stored = {"survey": _Stored({"survey": None}), arch_part_name(relu): _Stored(own)}
    assert table_row(stored, relu) is own
    grouped = {"rows": {arch_part_name(tanh): {"search": 3}}}
    stored["arch-rows-batch"] = _Stored(grouped)
    assert table_row(stored, tanh) == {"search": 3}
    with pytest.raises(KeyError, match="selu/none/lecun"):
        table_row(stored, Architecture("selu", "none"))
    assert StoredPart  # the real parts hold their objects the same way


def test_select_bad_architecture_is_refused(plan, data):
    group = [a for a in TABLE_ARCHITECTURES if a.norm == "layer" and a.residual]
    configs = [a.config(6, 16, data.in_features, data.num_classes) for a in group]
    from explodegrad.training.sweep import lr_search

    search = lr_search(configs, data, [0.01], progress=False)
    assert len(search.best) == 3
    second = search.select(1)
    assert second.best["label"].tolist() == [configs[1].label()]
    np.testing.assert_array_equal(second.table["lr"], [0.01])
    with pytest.raises(ValueError, match="arch=3 is not allowed"):
        search.select(3)


@pytest.mark.slow
def test_the_report_pipeline_runs_with_grouped_rows(tmp_path, monkeypatch):
    """The whole tiny report with the rows grouped (as the paper scale groups them)."""
    original = make_plan

    def grouped_plan(*args, **kwargs):
        return dataclasses.replace(
            original(*args, **kwargs), stack_table_rows=True, measure_search_models=True
        )

    import explodegrad.reproduce as reproduce_package

    monkeypatch.setattr(reproduce_package, "make_plan", grouped_plan)
    result = reproduce(tmp_path / "report", "tiny", device="cpu", jobs=1, log=None)
    arch = [name for name in result.computed if name.startswith("arch-")]
    assert sorted(arch) == sorted(rows_part_name(g) for g in table_row_groups(grouped_plan("tiny")))
    report = (tmp_path / "report" / "report-tiny-scale.md").read_text()
    for architecture in TABLE_ARCHITECTURES:
        assert architecture.name in report
    assert "measured on the search's own models" in report
    assert parts_module.MEASURED_ROUTE in report
