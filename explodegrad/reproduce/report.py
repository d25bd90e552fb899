"""The report's files: the Markdown report and the JSON of every number, section by section."""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from explodegrad.claims import Judgement, all_claims, exploding_definition, remedies_summary
from explodegrad.core.data import Dataset
from explodegrad.core.scales import PAPER
from explodegrad.reproduce.figures import (
    ReportFigure,
    _impact_study,
    merge_depth_studies,
    report_figures,
    save_figures,
)
from explodegrad.reproduce.jsonable import _dump_json, _write_atomic, to_jsonable
from explodegrad.reproduce.machine import UNKNOWN_CODE, RunInfo, cpu_seconds
from explodegrad.reproduce.markdown import (
    ARCHITECTURE_COLUMNS,
    DEPTH_COLUMNS,
    DILUTION_COLUMNS,
    REMEDY_COLUMNS,
    SURVEY_COLUMNS,
    _fmt,
    markdown_table,
)
from explodegrad.reproduce.parts import Part, is_claims_part, table_row
from explodegrad.reproduce.plan import FORMAT_VERSION, TABLE_ARCHITECTURES, ReportPlan
from explodegrad.reproduce.store import StoredPart, load_plan_data
from explodegrad.reproduce.tables import (
    architecture_table,
    dilution_table,
    survey_table,
)
from explodegrad.studies.common import Architecture, study_settings
from explodegrad.studies.remedies import (
    RemedyEvidence,
    initialization_evidence,
    normalization_evidence,
    skip_connection_evidence,
    width_evidence,
)


def stored_judgements(stored: dict[str, StoredPart]) -> list[Judgement]:
    """Every claims part's judgements, in the registry's order of claims."""
    order = {c.claim_id: i for i, c in enumerate(all_claims())}
    judged = [j for name, part in stored.items() if is_claims_part(name) for j in part.objects["judgements"]]
    return sorted(judged, key=lambda j: order[j.claim_id])


def remedy_evidence(stored: dict[str, StoredPart]) -> list[RemedyEvidence]:
    """Every remedy's evidence from the stored parts (table look-ups; the training ran in the parts)."""
    survey = stored["survey"].objects["survey"]
    pair = (Architecture("relu", "batch"), Architecture("relu", "batch", True))
    relu = merge_depth_studies([(a.label, table_row(stored, a)["study"]) for a in pair])
    return [
        skip_connection_evidence(survey, "relu", "batch", relu),
        initialization_evidence(stored["orthogonal"].objects["result"]),
        normalization_evidence(survey, "relu", "batch"),
        stored["clipping"].objects["evidence"],
        stored["optimizers"].objects["evidence"],
        width_evidence(stored["width-vs-depth"].objects["result"]),
    ]


@dataclass
class _Report:
    """Everything the report's text is made of."""

    plan: ReportPlan
    data: Dataset
    parts: list[Part]
    stored: dict[str, StoredPart]
    info: RunInfo
    table: pd.DataFrame
    claims: list[Judgement]
    remedies: Any
    figures: dict[str, list[ReportFigure]]
    figure_folder: str
    results_name: str

    def images(self, section: str) -> list[str]:
        return [
            f"![{f.file}]({self.figure_folder}/{f.file})\n\n*{f.caption}*\n" for f in self.figures[section]
        ]


def write_report(
    out: Path, plan: ReportPlan, parts: list[Part], stored: dict[str, StoredPart], info: RunInfo, start: float
) -> tuple[Path, Path, list[Path]]:
    """Draw the figures, then write the JSON of every number and the Markdown report; return the paths."""
    name = plan.scale.name
    figures = report_figures(stored)
    paths = save_figures(figures, out / f"figures-{name}")
    table = architecture_table(stored)
    judged = stored_judgements(stored)
    report = _Report(
        plan=plan,
        data=load_plan_data(plan, "cpu"),
        parts=parts,
        stored=stored,
        info=info,
        table=table,
        claims=judged,
        remedies=remedies_summary(remedy_evidence(stored), judged),
        figures=figures,
        figure_folder=f"figures-{name}",
        results_name=f"results-{name}-scale.json",
    )
    info.wall_time = time.perf_counter() - start
    cpu_now = cpu_seconds()
    info.cpu_time = None if info.cpu_start is None or cpu_now is None else cpu_now - info.cpu_start
    results_path = out / report.results_name
    _write_atomic(results_path, _dump_json(_results(report)))
    report_path = out / f"report-{name}-scale.md"
    text = "\n".join(
        _header(report)
        + _table_section(report)
        + _gsc_section(report)
        + _survey_section(report)
        + _impact_section(report)
        + _dilution_section(report)
        + _depth_section(report)
        + _remedies_section(report)
        + _parts_section(report)
    )
    _write_atomic(report_path, (text + "\n").encode())
    return report_path, results_path, paths


def _results(report: _Report) -> dict[str, Any]:
    plan, info, data, stored = report.plan, report.info, report.data, report.stored
    # the scale without its data_root (where CIFAR-10 was found is not part of the experiment,
    # as in the parts' keys; the data's source names the folder)
    scale = {k: v for k, v in dataclasses.asdict(plan.scale).items() if k != "data_root"}
    meta = {
        "scale": scale,
        "lrs": list(plan.lrs),
        "seed": plan.seed,
        "data": {
            "name": data.name,
            "source": data.source,
            "n_train": len(data.x_train),
            "n_test": len(data.x_test),
            "in_features": data.in_features,
        },
        "device": info.device,
        "machine": info.machine,
        "code": info.code,
        "load_average": info.load_average,
        "started": info.started,
        "command": info.command,
        "jobs": info.jobs,
        "wall_time": info.wall_time,
        "cpu_time": info.cpu_time,
        "compute_time_of_parts": sum(s.wall_time for s in stored.values()),
        "computed": info.computed,
        "reused": info.reused,
        "format": FORMAT_VERSION,
        "exploding": exploding_definition(),
        "claim_seeds": list(plan.claim_seeds),
    }
    parts = {
        part.name: {
            "title": part.title,
            "chapters": part.chapters,
            "wall_time": stored[part.name].wall_time,
            "device": stored[part.name].device,
            "machine": stored[part.name].machine,
            "code": stored[part.name].code,
            "numbers": stored[part.name].numbers,
        }
        for part in report.parts
    }
    extra = {}
    if "survey-paper-size" in stored:
        big = survey_table(stored["survey-paper-size"].objects)
        extra = {"survey_paper_size": big}
    verdicts = [
        {"id": j.claim_id, "sentence": j.sentence, "verdict": j.verdict, "measured": j.line}
        for j in report.claims
    ]
    return to_jsonable(
        {
            "meta": meta,
            "architecture_table": report.table,
            "claims": verdicts,
            **extra,
            "dilution_table": dilution_table(stored["dilution"].objects),
            "remedies": report.remedies.measurements,
            "parts": parts,
        }
    )


def _data_line(report: _Report) -> str:
    scale, data = report.plan.scale, report.data
    sizes = (
        f"{len(data.x_train):,} training / {len(data.x_test):,} test examples, {data.in_features} features"
    )
    if data.name == "cifar10":
        return f"- **Data:** CIFAR-10, the paper's data set ({sizes}), from {data.source}."
    why = (
        "CIFAR-10 was not found"
        if scale.name == "paper"
        else f"the {scale.name} scale uses it so that it runs on a CPU in minutes"
    )
    return (
        f"- **Data:** {data.name} ({sizes}; {data.source}) instead of CIFAR-10, the paper's data set: "
        f"{why}. For CIFAR-10 run `--scale paper --data-root PATH` (see docs/README.md)."
    )


def _header(report: _Report) -> list[str]:
    scale, info = report.plan.scale, report.info
    compute = sum(s.wall_time for s in report.stored.values())
    cores = os.cpu_count() or 1
    cpu = f"; CPU time {info.cpu_time:.0f} s" if info.cpu_time is not None else ""
    load = ""
    if info.load_average is not None:
        load = f"; load average {info.load_average:.1f} on {cores} cores at the start"
        if info.load_average > cores:
            load += " (a shared machine: the wall time is longer than on an idle one)"
    return [
        f"# explodegrad: the study reproduced headless ({scale.name} scale)",
        "",
        f"- **Scale:** {scale.describe()} ({scale.reason}).",
        _data_line(report),
        f"- **Machine:** {info.machine}; device {info.device}.",
        f"- **Wall time:** {info.wall_time:.0f} s for the run that wrote this report ({len(info.computed)} "
        f"parts computed, {len(info.reused)} reused from an earlier run, {info.jobs} job(s)){cpu}{load}; "
        f"the parts took {compute:.0f} s of compute in all.",
        f"- **Command:** `{info.command}`, started {info.started}; code: commit {info.code}.",
        *_other_origins(report),
        "",
        f"Every number is in `{report.results_name}`. Layers are counted from the output as in the paper "
        "(k = 1 the logits, k = L the first layer). Philipp, Song & Carbonell, *The exploding gradient "
        "problem demystified* (arXiv:1712.05577), measure depth-50, width-100 networks on CIFAR-10; this "
        "report runs the same experiments through the library functions the course notebooks use.",
        "",
    ]


def _table_section(report: _Report) -> list[str]:
    scale, settings = report.plan.scale, study_settings(report.plan.scale)
    rates = ", ".join(f"{lr:g}" for lr in report.plan.lrs)
    lines = [
        "## 1. The architecture table (chapters 04, 05, 07)",
        "",
        f"Each row is one network of depth {scale.depth} (weight layers) and width {scale.width}, with its "
        "activation's usual initialization (He for ReLU, Xavier for tanh, LeCun for SELU) unless named. "
        f"Training: SGD with momentum {settings.momentum:g}, batch {settings.batch_size}, {settings.steps} "
        f"steps; the learning rate is chosen per architecture from {{{rates}}} by the lowest final "
        "training error in one batched search (`explodegrad.training.sweep.lr_search`), "
        + (
            "and its effective depth is tracked on the search's own network at that rate (no retraining). "
            if report.plan.measure_search_models
            else "and the network is trained again at that rate to track its effective depth. "
        )
        + "Errors are measured on fixed subsets of "
        f"{settings.eval_size} examples with batch statistics. Residual networks have blocks of two "
        "layers: their L counts the input layer, the blocks and the readout.",
        "",
        markdown_table(report.table, ARCHITECTURE_COLUMNS),
        "",
        "- *GSC(L,0) at init*: the gradient scale coefficient from the first layer's output to the losses "
        "at initialization (the paper's headline number); *rate r*: its fitted growth per layer; "
        f"*explodes*: {exploding_definition()} (an operational choice).",
        "- *sign div. k=2*: mean over neurons of min(P, N) / (P + N) of the last hidden layer's "
        "pre-activations (0.5: every neuron is positive half the time; 0: a collapsed domain); "
        "*pre-act. spread k=2*: their spread across the batch relative to their RMS.",
        "- *eff. depth init*: effective depth at initialization with the natural skip (identity for "
        "ResNets, each layer's best affine fit otherwise); *eff. depth trained*: after training, with "
        "skip = the layer at initialization (the paper's residual trick); 1 % share threshold.",
        "- *chosen lr*: the search's pick (n/a: every rate diverged); *train/test error*: that run's final "
        "errors.",
        "",
        "### The course's claims, judged (explodegrad.claims)",
        "",
        f"Every claim of chapters 01-08, judged by the same registry the notebooks use; studies that "
        f"train ran {len(report.plan.claim_seeds)} seeds (verdicts need every seed to clear the claim's "
        "margin; the table above is one seed's run).",
        "",
    ]
    lines += [f"- **{c.verdict}** `{c.claim_id}`. {c.sentence} *Measured:* {c.line}." for c in report.claims]
    lines += ["", _setting_line(report), ""]
    return lines


#: CIFAR-10's training set, all of which the paper trains on.
CIFAR10_TRAIN_SIZE = 50_000


def paper_differences(data_name: str, train_size: int, steps: int) -> list[str]:
    """What keeps a paper-scale run from being the paper's setting (empty: nothing does).

    The paper scale's sizes alone do not make the setting: ``--steps`` can shorten training and
    a CIFAR-10 folder can hold a subset (the project's test data holds 3,805 images)."""
    differences = []
    if data_name != "cifar10":
        differences.append(f"{data_name} instead of CIFAR-10")
    elif train_size < CIFAR10_TRAIN_SIZE:
        differences.append(f"{train_size:,} of CIFAR-10's {CIFAR10_TRAIN_SIZE:,} training images")
    if steps != PAPER.train_steps:
        differences.append(f"{steps:,} training steps instead of {PAPER.train_steps:,}")
    return differences


def _setting_line(report: _Report) -> str:
    scale = report.plan.scale
    if scale.name != "paper":
        return (
            f"At the {scale.name} scale the networks, data and training are smaller than the paper's: "
            "agreement can only be qualitative."
        )
    differences = paper_differences(report.data.name, len(report.data.x_train), scale.train_steps)
    if not differences:
        return "This is the paper's setting."
    return (
        "The paper's network sizes, but not its setting: "
        + "; ".join(differences)
        + ". Agreement can only be qualitative."
    )


def _gsc_section(report: _Report) -> list[str]:
    meaning = report.stored["gsc-meaning"].objects
    rescaling, perturbation = meaning["rescaling"], meaning["perturbation"]
    k = rescaling.layer
    ratios = ", ".join(
        f"{_fmt(r, '.3f')} (k = {int(layer)})" for layer, r in zip(perturbation.layers, perturbation.ratio)
    )
    return [
        "## 2. What the GSC means (chapter 03)",
        "",
        f"On {rescaling.label}: multiplying f_{k} by {rescaling.factor:g} changed the mean loss from "
        f"{rescaling.loss_before:.6f} to {rescaling.loss_after:.6f}; the raw gradient at f_{k} went from "
        f"{_fmt(rescaling.raw_before[k - 1])} to {_fmt(rescaling.raw_after[k - 1])}, GSC({k}, 0) from "
        f"{_fmt(rescaling.gsc_before[k - 1], '.4g')} to {_fmt(rescaling.gsc_after[k - 1], '.4g')}. "
        f"Random relative nudges of f_k, RMS gain / GSC(k, 0): {ratios}.",
        "",
        *report.images("gsc"),
    ]


def _survey_section(report: _Report) -> list[str]:
    survey = report.stored["survey"].objects["survey"]
    lines = [
        "## 3. Prevalence at initialization (chapters 04, 05)",
        "",
        f"The survey behind the table's first columns, on one batch of {survey.batch_size} training "
        "examples.",
        "",
        *report.images("survey"),
        *report.images("domain"),
    ]
    if "survey-paper-size" in report.stored:
        big = survey_table(report.stored["survey-paper-size"].objects)
        lines += [
            "At the paper's size (depth 50, width 100), at initialization:",
            "",
            markdown_table(big, SURVEY_COLUMNS),
            "",
        ]
    return lines


def _impact_section(report: _Report) -> list[str]:
    impact, optimizers = _impact_study(report.stored), report.stored["optimizers"].objects["study"]
    return [
        "## 4. Impact on training (chapter 04)",
        "",
        "Training error against depth for two exploding and one non-exploding architecture (each depth "
        "at its best learning rate), and the GSC under three optimizers.",
        "",
        "```",
        impact.summary(),
        "",
        optimizers.summary(),
        "```",
        "",
        *report.images("impact"),
    ]


def _dilution_section(report: _Report) -> list[str]:
    return [
        "## 5. Dilution in ResNets (chapter 06)",
        "",
        "Per residual block at initialization, medians over the blocks: the skip-to-residual ratio k, "
        "the branch's GSC, the block's GSC and the Pythagorean prediction sqrt((k^2 + GSC_r^2) / (k^2 + "
        "1)), which assumes the branch orthogonal to its input (|cos| near 0).",
        "",
        markdown_table(dilution_table(report.stored["dilution"].objects), DILUTION_COLUMNS),
        "",
        *report.images("dilution"),
    ]


def _depth_section(report: _Report) -> list[str]:
    rows = [table_row(report.stored, a) for a in TABLE_ARCHITECTURES]
    tolerance = rows[0]["study"].tolerance
    # Parts stored before the route was recorded were all retrained at the chosen rate.
    routes = sorted({objects.get("route", "retrained at the chosen rate") for objects in rows})
    how = (
        "trained at its chosen rate"
        if routes == ["retrained at the chosen rate"]
        else "measured by this route: " + "; ".join(routes)
    )
    return [
        "## 6. Effective depth and the Taylor experiment (chapter 07)",
        "",
        f"Every table architecture, {how}. The Taylor experiment replaces the top k "
        "layers by their linearization around the data's mean (evaluated in eval mode).",
        "",
        markdown_table(report.table, DEPTH_COLUMNS),
        "",
        f"*Taylor breaks at k*: the smallest k whose training error rises more than {tolerance:g} above "
        "the original network's (n/a: it never does).",
        "",
        *report.images("taylor"),
    ]


def _remedies_section(report: _Report) -> list[str]:
    orthogonal = report.stored["orthogonal"].objects["result"]
    width = report.stored["width-vs-depth"].objects["result"]
    return [
        "## 7. Remedies and tradeoffs (chapter 08)",
        "",
        "```",
        orthogonal.summary(),
        "",
        width.summary(),
        "```",
        "",
        *report.images("remedies"),
        "What each remedy touches, what it leaves alone, and the numbers measured here:",
        "",
        markdown_table(report.remedies.table, REMEDY_COLUMNS),
        "",
    ]


def _other_origins(report: _Report) -> list[str]:
    """Header lines naming the reused parts computed on another machine, or with other code,
    than this run (a run resumed from parts made elsewhere or earlier, e.g. the cheap parts on a
    CPU and the training on a GPU)."""
    machines: dict[str, list[str]] = {}
    codes: dict[str, list[str]] = {}
    unrecorded: list[str] = []
    for part in report.parts:
        done = report.stored[part.name]
        if done.computed:
            continue
        if not done.machine or not done.code:
            unrecorded.append(part.name)
        if done.machine and done.machine != report.info.machine:
            machines.setdefault(f"{done.machine} (device {done.device})", []).append(part.name)
        known = UNKNOWN_CODE not in (done.code, report.info.code)
        if done.code and known and done.code != report.info.code:
            codes.setdefault(done.code, []).append(part.name)
    lines = [
        f"- **Parts computed on another machine:** {', '.join(names)} on {machine}."
        for machine, names in machines.items()
    ]
    lines += [
        f"- **Parts computed with other code:** {', '.join(names)} at commit {code}."
        for code, names in codes.items()
    ]
    if unrecorded:
        lines.append(
            "- **Parts whose machine or code was not recorded** (stored before explodegrad recorded "
            f"them): {', '.join(unrecorded)}."
        )
    return lines


def _parts_section(report: _Report) -> list[str]:
    lines = [
        "## Parts",
        "",
        "Each part is kept in `parts/`; a rerun with the same settings reuses it.",
        "",
        "| part | chapters | what | seconds | device | this run |",
        "|---|---|---|---|---|---|",
    ]
    for part in report.parts:
        done = report.stored[part.name]
        how = "computed" if done.computed else "reused"
        lines.append(
            f"| {part.name} | {part.chapters} | {part.title} | {done.wall_time:.1f} | {done.device} | {how} |"
        )
    return lines
