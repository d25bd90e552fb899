"""Reproduce the study headless: the headline experiments of chapters 02-07, written to files.

:func:`reproduce` runs every experiment *part* of a :class:`ReportPlan` through the same
library functions the notebooks call (:mod:`explodegrad.survey`, :mod:`explodegrad.impact`,
:mod:`explodegrad.depth_study`, :mod:`explodegrad.remedies`, ...), keeps each finished part
on disk, then draws the figures with :mod:`explodegrad.plots` and writes the report::

    OUT/report-<scale>-scale.md     tables and figures, each with a one-line explanation
    OUT/results-<scale>-scale.json  every number
    OUT/figures-<scale>/*.png       the figures
    OUT/parts/<scale>/              per part: <name>.json (its numbers) and <name>.pkl (its
                                    result objects, which the figures are drawn from)

Resuming: a part is reused when its JSON is there, its *key* (format version, scale, seed,
searched learning rates and the part's own options) matches, and its pickle loads; anything
else is recomputed. An interrupted run therefore continues where it stopped; ``fresh=True``
recomputes everything. The pickles are trusted input: only resume from folders you wrote.

Parts do not depend on each other, so ``jobs > 1`` computes them in separate processes. On a
GPU that is what keeps the device busy: networks of width 100 are launch-bound, and several
processes overlap their kernel launches.

The architecture table (one row per architecture, :data:`TABLE_ARCHITECTURES`) joins the
survey at initialization (GSC, fitted rate, collapsing-domain numbers at the last hidden
layer) with one training part per architecture: a batched learning-rate search
(:func:`explodegrad.sweep.lr_search`), then training at the chosen rate while tracking the
effective depth, and the Taylor experiment (:func:`explodegrad.depth_study.effective_depth_study`).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as _dt
import json
import math
import multiprocessing
import os
import pickle
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from explodegrad._checks import check_choice, check_int, check_positive
from explodegrad.course import seed_everything
from explodegrad.data import Dataset
from explodegrad.depth_study import Architecture, EffectiveDepthStudy, effective_depth_study, study_settings
from explodegrad.device import DeviceChoice, pick_device
from explodegrad.gsc_meaning import perturbation_check, rescaling_comparison
from explodegrad.impact import DEFAULT_ARCHITECTURES as IMPACT_ARCHITECTURES
from explodegrad.impact import default_depths, depth_study, optimizer_study
from explodegrad.nets import build_mlp
from explodegrad.remedies import (
    RemedyEvidence,
    architecture_name,
    clipping_evidence,
    initialization_evidence,
    normalization_evidence,
    optimizer_evidence,
    orthogonal_initial_state,
    remedies_summary,
    skip_connection_evidence,
    width_evidence,
    width_vs_depth,
)
from explodegrad.residual import dilution_profile
from explodegrad.scale import Scale, load_scale_data, pick_scale
from explodegrad.survey import architecture_survey
from explodegrad.sweep import lr_search

#: Bumped whenever what a part stores changes; parts written under another format are recomputed.
FORMAT_VERSION = 1
#: The scales :func:`reproduce` knows. ``tiny`` is a seconds-long smoke test of the pipeline.
REPORT_SCALES = ("tiny", "quick", "paper")
#: A smoke-test size: every part runs in well under a second on a CPU; the numbers mean little.
TINY = Scale(name="tiny", depth=6, width=16, batch_size=32, train_steps=10, dataset="digits",
             n_train=256, n_test=128)
#: Learning rates the batched searches try (SGD with momentum 0.9) at the CPU scales. 0.003 is
#: in because ReLU ResNets without normalization diverge at 0.01 and above (their residual
#: stream doubles its variance per block at initialization).
SEARCH_LRS = (0.003, 0.01, 0.03, 0.1)
#: The paper scale's grid: on a GPU the stacked sweep trains five rates for little more than one.
PAPER_LRS = (0.001, 0.003, 0.01, 0.03, 0.1)
#: The paper's network size, (depth, width).
PAPER_SIZE = (50, 100)
#: A fitted GSC growth rate above this per layer counts as "exploding" in the claim checks
#: (an operational choice: at least 5 % growth per layer, 2.65x over 20 layers, 11x over 50).
EXPLODING_RATE = 1.05
#: The rows of the architecture table: ReLU, tanh and SELU (each with its usual initializer)
#: times no, batch and layer normalization times plain and residual, and the looks-linear
#: ReLU network (the orthogonal initial state).
TABLE_ARCHITECTURES = tuple(
    Architecture(activation, norm, residual)
    for activation in ("relu", "tanh", "selu")
    for norm in ("none", "batch", "layer")
    for residual in (False, True)
) + (Architecture("relu", "none", init="looks_linear"),)
#: Residual architectures whose dilution is measured (chapter 05).
DILUTION_ARCHITECTURES = (Architecture("relu", "batch", True), Architecture("relu", "layer", True),
                          Architecture("tanh", "none", True), Architecture("selu", "none", True))

Log = Callable[[str], Any]


# ----------------------------------------------------------------------------- plan

@dataclass(frozen=True)
class ReportPlan:
    """What a report runs: the scale, the seed and the searched learning rates.

    Attributes:
        scale: the sizes (network, data set, training steps and batch).
        lrs: learning rates every batched search tries.
        seed: seed of every weight draw, minibatch order, measurement batch and probe.
        data_root: where CIFAR-10 is looked for (None: ``$EXPLODEGRAD_DATA``, then the cache).
        paper_size_survey: also measure the survey at initialization at the paper's depth 50
            and width 100 (cheap; used when the scale's own networks are smaller).
    """

    scale: Scale
    lrs: tuple[float, ...] = SEARCH_LRS
    seed: int = 0
    data_root: str | None = None
    paper_size_survey: bool = False

    def describe(self) -> str:
        """One line: the scale and the searched learning rates."""
        rates = ", ".join(f"{lr:g}" for lr in self.lrs)
        return f"{self.scale.describe()}; learning rates searched: {rates}; seed {self.seed}"


def report_scale(name: str, data_root: str | os.PathLike | None = None, steps: int | None = None) -> Scale:
    """The :class:`Scale` of a report: ``tiny``, ``quick`` or ``paper`` (optionally fewer/more steps).

    ``paper`` falls back to the bundled digits when CIFAR-10 is not found (its ``reason``
    says so), as :func:`explodegrad.scale.pick_scale` does.
    """
    name = check_choice("scale", name, REPORT_SCALES)
    if name == "tiny":
        scale = TINY.with_(reason="a smoke test of the pipeline; the numbers mean little")
    else:
        scale = pick_scale(override=name, data_root=data_root)
    if steps is not None:
        steps = check_int("steps", steps, 1)
        scale = scale.with_(train_steps=steps, reason=f"{scale.reason}; training steps set to {steps}")
    return scale


def make_plan(scale: str | Scale = "quick", *, steps: int | None = None, seed: int = 0,
              data_root: str | os.PathLike | None = None,
              lrs: Sequence[float] | None = None) -> ReportPlan:
    """A :class:`ReportPlan` for a scale name (or a :class:`Scale` of your own).

    Args:
        scale: ``"tiny"``, ``"quick"``, ``"paper"`` or a :class:`Scale`.
        steps: training steps of every training run (default: the scale's).
        seed: the seed of everything.
        data_root: where CIFAR-10 is looked for.
        lrs: learning rates to search (default :data:`PAPER_LRS` at the paper scale,
            :data:`SEARCH_LRS` otherwise).
    """
    if isinstance(scale, Scale):
        chosen = scale if steps is None else scale.with_(train_steps=check_int("steps", steps, 1))
    else:
        chosen = report_scale(scale, data_root, steps)
    if lrs is None:
        lrs = PAPER_LRS if chosen.name == "paper" else SEARCH_LRS
    rates = tuple(check_positive("lrs", lr) for lr in lrs)
    if not rates:
        raise ValueError("lrs=() is not allowed: give at least one learning rate to search")
    paper_size = (chosen.depth, chosen.width) != PAPER_SIZE and chosen.name != "tiny"
    return ReportPlan(scale=chosen, lrs=rates, seed=check_int("seed", seed, 0),
                      data_root=None if data_root is None else str(data_root),
                      paper_size_survey=paper_size)


# ----------------------------------------------------------------------------- parts

@dataclass(frozen=True, eq=False)
class Part:
    """One experiment of the report, computed on its own and stored as one file pair.

    Attributes:
        name: file stem and key, e.g. ``arch-relu-batch-he-res``.
        title: what it measures, in words.
        chapters: the chapters whose headline it reproduces, e.g. ``"03, 06"``.
        run: ``run(plan, data, options) -> dict`` of result objects (numbers only).
        options: the part's own settings (JSON-able); part of its key.
        cost: relative compute cost, to start the longest parts first.
    """

    name: str
    title: str
    chapters: str
    run: Callable[[ReportPlan, Dataset, dict[str, Any]], dict[str, Any]]
    options: dict[str, Any] = field(default_factory=dict)
    cost: float = 1.0


def arch_part_name(architecture: Architecture) -> str:
    """The part name of one table row, e.g. ``arch-relu-batch-he-res``."""
    return "arch-" + architecture_name(architecture).replace("/", "-").replace("_", "-")


def _architecture(options: dict[str, Any]) -> Architecture:
    return Architecture(options["activation"], options["norm"], options["residual"], options["init"])


def _arch_options(architecture: Architecture) -> dict[str, Any]:
    return {"activation": architecture.activation, "norm": architecture.norm,
            "residual": architecture.residual, "init": architecture.init}


def run_gsc_meaning(plan: ReportPlan, data: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    """Chapter 02: rescaling a layer changes raw gradients but not the GSC; the GSC predicts nudges."""
    scale = plan.scale
    net = build_mlp(depth=scale.depth, width=scale.width, activation="relu", norm="none", init="he",
                    in_features=data.in_features, out_features=data.num_classes, seed=plan.seed,
                    device=data.device, dtype=torch.float64)
    inputs, targets = data.batch(min(256, len(data.x_train)), seed=plan.seed)
    inputs = inputs.to(torch.float64)
    middle = max(2, net.num_layers // 2)
    rescaling = rescaling_comparison(net, inputs, targets, middle, factor=options["factor"])
    layers = sorted({1, 2, middle, net.num_layers, net.num_layers + 1})
    perturbation = perturbation_check(net, inputs, targets, layers=tuple(layers),
                                      num_directions=options["directions"], seed=plan.seed)
    return {"rescaling": rescaling, "perturbation": perturbation}


def _surveys(plan: ReportPlan, data: Dataset, depth: int, width: int) -> dict[str, Any]:
    common = dict(data=data, scale=plan.scale, seed=plan.seed, depth=depth, width=width)
    return {"survey": architecture_survey(("relu", "tanh", "selu"), ("none", "batch", "layer"),
                                          residual=(False, True), **common),
            "looks_linear": architecture_survey(("relu",), ("none",), inits="looks_linear", **common)}


def run_survey(plan: ReportPlan, data: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    """Chapters 03-05: GSC, fitted rate and domain statistics of every architecture at initialization."""
    return _surveys(plan, data, plan.scale.depth, plan.scale.width)


def run_survey_paper_size(plan: ReportPlan, data: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    """The same survey at the paper's depth 50 and width 100 (measuring at init is cheap)."""
    return _surveys(plan, data, *PAPER_SIZE)


def run_dilution(plan: ReportPlan, data: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    """Chapter 05: skip-to-residual ratio and block GSC against the Pythagorean prediction."""
    inputs, _ = data.batch(min(plan.scale.batch_size, len(data.x_train)), seed=plan.seed)
    results = {}
    for architecture in DILUTION_ARCHITECTURES:
        config = architecture.config(plan.scale.depth, plan.scale.width, data.in_features,
                                     data.num_classes, plan.seed)
        net = build_mlp(**{k: v for k, v in config.as_dict().items() if k != "seed"}, seed=config.seed,
                        device=data.device, dtype=torch.float64)
        results[architecture.label] = dilution_profile(net, inputs.to(torch.float64), seed=plan.seed)
    return results


def run_architecture(plan: ReportPlan, data: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    """Chapters 03, 06: one table row's training: batched rate search, effective depth, Taylor.

    The rate search trains one network per rate in one stacked sweep; the network is then
    trained again at the chosen rate with :func:`~explodegrad.train.train` (same weights and
    minibatches) so that its effective depth can be measured at every checkpoint. When every
    rate diverged, the smallest rate is used for that second run.
    """
    architecture = _architecture(options)
    scale = plan.scale
    config = architecture.config(scale.depth, scale.width, data.in_features, data.num_classes, plan.seed)
    settings = study_settings(scale, seed=plan.seed)
    search = lr_search([config], data, list(plan.lrs), settings, progress=False)
    chosen = search.best_lr(0)
    lr_used = chosen if math.isfinite(chosen) else min(plan.lrs)
    study = effective_depth_study(scale, [architecture], data=data, settings=settings.with_(lr=lr_used),
                                  seed=plan.seed)
    return {"search": search, "study": study, "lr_used": lr_used}


def run_impact(plan: ReportPlan, data: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    """Chapter 03: training error against depth for one architecture (a batched search per depth)."""
    pair = (options["activation"], options["norm"])
    return {"study": depth_study([pair], depths=options["depths"], lrs=plan.lrs, data=data, scale=plan.scale,
                                 seed=plan.seed)}


def run_optimizers(plan: ReportPlan, data: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    """Chapter 03: the GSC under SGD, Adam and RMSprop; SGD against Adam as remedy evidence."""
    study = optimizer_study(data=data, scale=plan.scale, seed=plan.seed)
    return {"study": study, "evidence": optimizer_evidence(study, data)}


def run_orthogonal(plan: ReportPlan, data: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    """Chapter 07: the looks-linear orthogonal initial state against He and orthogonal tanh."""
    return {"result": orthogonal_initial_state(plan.scale, data=data, seed=plan.seed)}


def run_width_vs_depth(plan: ReportPlan, data: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    """Chapter 07: deeper-narrower against shallower-wider networks at one parameter budget."""
    return {"result": width_vs_depth(plan.scale, data=data, lrs=plan.lrs, seed=plan.seed)}


def run_clipping(plan: ReportPlan, data: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    """Chapter 07: gradient clipping by norm on batch-normalized ReLU, as remedy evidence."""
    config = Architecture("relu", "batch").config(plan.scale.depth, plan.scale.width, data.in_features,
                                                  data.num_classes, plan.seed)
    settings = study_settings(plan.scale).with_(optimizer="sgd", lr=0.01, momentum=0.9, seed=plan.seed)
    return {"evidence": clipping_evidence(config, data, settings)}


def plan_parts(plan: ReportPlan) -> list[Part]:
    """Every part of a report, in report order."""
    parts = [Part("gsc-meaning", "what the GSC means: rescaling and perturbations", "02", run_gsc_meaning,
                  {"factor": 10.0, "directions": 16}, cost=0.3),
             Part("survey", "every architecture at initialization", "03, 04, 05", run_survey, cost=0.5)]
    if plan.paper_size_survey:
        parts.append(Part("survey-paper-size", "every architecture at initialization, depth 50, width 100",
                          "03, 04", run_survey_paper_size, {"depth": PAPER_SIZE[0], "width": PAPER_SIZE[1]},
                          cost=1.0))
    parts.append(Part("dilution", "dilution in residual networks at initialization", "05", run_dilution,
                      cost=0.2))
    for architecture in TABLE_ARCHITECTURES:
        parts.append(Part(arch_part_name(architecture),
                          f"{architecture_name(architecture)}: rate search, effective depth, Taylor",
                          "03, 06", run_architecture, _arch_options(architecture),
                          cost=3.0 if architecture.residual else 5.0))
    for activation, norm in IMPACT_ARCHITECTURES:
        parts.append(Part(f"impact-{activation}-{norm}", f"{activation}/{norm}: training error against depth",
                          "03", run_impact,
                          {"activation": activation, "norm": norm,
                           "depths": list(default_depths(plan.scale))}, cost=8.0))
    parts += [Part("optimizers", "the GSC under SGD, Adam and RMSprop", "03", run_optimizers, cost=4.0),
              Part("orthogonal", "the orthogonal initial state in training", "07", run_orthogonal, cost=4.0),
              Part("width-vs-depth", "width against depth at one parameter budget", "07",
                   run_width_vs_depth, cost=8.0),
              Part("clipping", "gradient clipping by norm", "07", run_clipping, cost=2.0)]
    return parts


# ----------------------------------------------------------------------------- JSON

def to_jsonable(value: Any) -> Any:
    """Plain JSON values for results: arrays and tables become lists, non-finite numbers None.

    Handles numbers (numpy too), strings, None, lists, tuples, dicts, numpy arrays, pandas
    DataFrames (a list of row dicts) and Series, tensors, dataclasses (field by field, or
    their ``to_dict()`` when they have one) and paths; anything else becomes its ``str``.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, torch.Tensor):
        return to_jsonable(value.detach().cpu().numpy())
    if isinstance(value, np.ndarray):
        return [to_jsonable(item) for item in value.tolist()] if value.ndim else to_jsonable(value.item())
    if isinstance(value, pd.DataFrame):
        return [{str(k): to_jsonable(v) for k, v in row.items()} for row in value.to_dict(orient="records")]
    if isinstance(value, pd.Series):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        as_dict = getattr(value, "to_dict", None)
        if callable(as_dict):
            return to_jsonable(as_dict())
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return str(value)


def _write_atomic(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)


def _dump_json(value: Any) -> bytes:
    return json.dumps(value, indent=1, allow_nan=False).encode()


# ----------------------------------------------------------------------------- the parts store

@dataclass
class StoredPart:
    """A finished part: its numbers (as stored in JSON) and its result objects.

    Attributes:
        name: the part's name.
        numbers: JSON-able numbers of every result object.
        objects: the result objects (dataclasses of :mod:`explodegrad`).
        wall_time: seconds the part took to compute.
        device: where it was computed.
        computed: True when this run computed it, False when it was reused from disk.
    """

    name: str
    numbers: dict[str, Any]
    objects: dict[str, Any]
    wall_time: float
    device: str
    computed: bool


def part_key(part: Part, plan: ReportPlan) -> dict[str, Any]:
    """What must match for a stored part to be reused (the device and data folder need not)."""
    from explodegrad import __version__

    scale = {k: v for k, v in dataclasses.asdict(plan.scale).items() if k != "reason"}
    return to_jsonable({"format": FORMAT_VERSION, "explodegrad": __version__, "part": part.name,
                        "scale": scale, "seed": plan.seed, "lrs": list(plan.lrs),
                        "options": part.options})


class PartStore:
    """The folder of finished parts: ``<name>.json`` (key and numbers) and ``<name>.pkl`` (objects)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def paths(self, name: str) -> tuple[Path, Path]:
        """The JSON and pickle paths of a part."""
        return self.folder / f"{name}.json", self.folder / f"{name}.pkl"

    def load(self, part: Part, plan: ReportPlan) -> StoredPart | None:
        """The stored part, or None when missing, written for another key, or unreadable."""
        json_path, pickle_path = self.paths(part.name)
        try:
            stored = json.loads(json_path.read_text())
            if stored.get("key") != part_key(part, plan):
                return None
            with open(pickle_path, "rb") as handle:
                objects = pickle.load(handle)
        except Exception:  # noqa: BLE001 - any unreadable file means: compute it again
            return None
        return StoredPart(part.name, stored.get("numbers", {}), objects, float(stored.get("wall_time", 0.0)),
                          str(stored.get("device", "")), computed=False)

    def save(self, part: Part, plan: ReportPlan, objects: dict[str, Any], wall_time: float,
             device: str) -> StoredPart:
        """Store a finished part: the pickle first, then the JSON that marks it complete."""
        self.folder.mkdir(parents=True, exist_ok=True)
        json_path, pickle_path = self.paths(part.name)
        json_path.unlink(missing_ok=True)
        numbers = to_jsonable(objects)
        _write_atomic(pickle_path, pickle.dumps(objects, protocol=pickle.HIGHEST_PROTOCOL))
        record = {"key": part_key(part, plan), "title": part.title, "chapters": part.chapters,
                  "wall_time": wall_time, "device": device,
                  "finished": _dt.datetime.now().isoformat(timespec="seconds"), "numbers": numbers}
        _write_atomic(json_path, _dump_json(record))
        return StoredPart(part.name, numbers, objects, wall_time, device, computed=True)


_DATA_CACHE: dict[tuple, Dataset] = {}


def load_plan_data(plan: ReportPlan, device: str | torch.device) -> Dataset:
    """The plan's data set on ``device`` (loaded once per process)."""
    key = (plan.scale, str(device), plan.seed, plan.data_root)
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()
        _DATA_CACHE[key] = load_scale_data(plan.scale, device=torch.device(device), seed=plan.seed,
                                           data_root=plan.data_root)
    return _DATA_CACHE[key]


def compute_part(part: Part, plan: ReportPlan, device: str, folder: str) -> float:
    """Compute one part and store it in ``folder``; return its wall time (runs in workers too)."""
    seed_everything(plan.seed)
    data = load_plan_data(plan, device)
    start = time.perf_counter()
    objects = part.run(plan, data, part.options)
    wall_time = time.perf_counter() - start
    PartStore(folder).save(part, plan, objects, wall_time, device)
    return wall_time


def pending_parts(parts: Sequence[Part], plan: ReportPlan, store: PartStore,
                  fresh: bool = False) -> tuple[dict[str, StoredPart], list[Part]]:
    """Split ``parts`` into those the store can give back (by name) and those still to compute.

    With ``fresh`` every part is to compute. A part counts as stored only when its key matches
    and its pickle loads (see :meth:`PartStore.load`).
    """
    stored: dict[str, StoredPart] = {}
    todo: list[Part] = []
    for part in parts:
        found = None if fresh else store.load(part, plan)
        if found is None:
            todo.append(part)
        else:
            stored[part.name] = found
    return stored, todo


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- running

@dataclass
class RunInfo:
    """Where and how a report was produced (its first lines)."""

    device: str
    machine: str
    load_average: float | None
    started: str
    command: str
    jobs: int
    wall_time: float = 0.0
    cpu_start: float | None = None
    cpu_time: float | None = None
    computed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)


@dataclass
class ReproduceResult:
    """What :func:`reproduce` wrote.

    Attributes:
        report: the Markdown report.
        results: the JSON with every number.
        figures: the PNG figures.
        parts_folder: where the finished parts are kept.
        computed: parts computed by this run.
        reused: parts reused from an earlier run.
        wall_time: seconds this run took.
    """

    report: Path
    results: Path
    figures: list[Path]
    parts_folder: Path
    computed: list[str]
    reused: list[str]
    wall_time: float


def machine_description(device: DeviceChoice | None = None) -> str:
    """The machine in words: OS, CPU model and cores, GPU when used, torch and Python versions."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        model = names[0] if names else model
    except OSError:
        pass
    gpu = f", GPU {device.name}" if device is not None and device.is_gpu else ""
    return (f"{platform.system()} {platform.machine()}, {model}, {os.cpu_count()} CPU cores visible{gpu}; "
            f"torch {torch.__version__}, Python {platform.python_version()}")


def cpu_seconds() -> float | None:
    """User + system CPU seconds of this process and its finished children (None off Unix)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def resolve_jobs(jobs: int | str | None, device: DeviceChoice) -> int:
    """How many parts run at once: ``"auto"`` (or None) is one per CPU core, at most 8; on an
    Apple GPU 1 (one device queue). Otherwise ``jobs`` itself, an integer >= 1."""
    if jobs is None or jobs == "auto":
        return 1 if device.device.type == "mps" else max(1, min(8, os.cpu_count() or 1))
    return check_int("jobs", jobs, 1)


def reproduce(out: str | os.PathLike = "explodegrad-report", scale: str | Scale = "quick", *,
              device: str | None = None, fresh: bool = False, jobs: int | str | None = 1,
              steps: int | None = None, seed: int = 0, data_root: str | os.PathLike | None = None,
              command: str | None = None, log: Log | None = print) -> ReproduceResult:
    """Run (or resume) every part of the report, then write the report, the JSON and the figures.

    Args:
        out: the output folder (created when missing).
        scale: ``"tiny"``, ``"quick"``, ``"paper"`` or a :class:`Scale`.
        device: ``"auto"``, ``"cuda"``, ``"mps"`` or ``"cpu"`` (default: ``$EXPLODEGRAD_DEVICE``,
            then auto).
        fresh: ignore parts already on disk and compute everything again.
        jobs: parts computed at once, in separate processes (see :func:`resolve_jobs`; 1
            computes them one by one in this process).
        steps: training steps of every training run (default: the scale's).
        seed: the seed of everything.
        data_root: where CIFAR-10 is looked for (the paper scale uses it when found).
        command: the command line to print in the report (default: this process's).
        log: where progress lines go (None: nowhere).

    Returns:
        A :class:`ReproduceResult` naming the files written.

    Raises:
        ValueError: for a bad argument (an unknown scale, an unavailable device, ...).
    """
    start, cpu_start = time.perf_counter(), cpu_seconds()
    say = log if log is not None else (lambda _line: None)
    choice = pick_device(device)
    jobs = resolve_jobs(jobs, choice)
    plan = make_plan(scale, steps=steps, seed=seed, data_root=data_root)
    out = Path(out)
    store = PartStore(out / "parts" / plan.scale.name)
    parts = plan_parts(plan)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    info = RunInfo(device=str(choice), machine=machine_description(choice), load_average=load,
                   started=_dt.datetime.now().isoformat(timespec="seconds"),
                   command=command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), jobs=jobs,
                   cpu_start=cpu_start)
    say(f"explodegrad reproduce: {plan.describe()}")
    say(f"  scale chosen because: {plan.scale.reason}")
    say(f"  device: {choice}; {jobs} job(s); parts in {store.folder}")
    stored, todo = pending_parts(parts, plan, store, fresh)
    if stored:
        say(f"  reusing {len(stored)} finished part(s) from {store.folder} (--fresh recomputes them)")
    device_name = str(choice.device)
    total = len(todo)
    order = sorted(todo, key=lambda p: -p.cost)
    if jobs == 1 or total <= 1:
        for done, part in enumerate(order, start=1):
            say(f"  [{done}/{total}] {part.name}: {part.title} ...")
            seconds = compute_part(part, plan, device_name, str(store.folder))
            say(f"  [{done}/{total}] {part.name}: done in {seconds:.1f} s")
    else:
        threads = max(1, (os.cpu_count() or 1) // jobs) if choice.device.type == "cpu" else 1
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker,
                                                    initargs=(threads,)) as pool:
            futures = {pool.submit(compute_part, part, plan, device_name, str(store.folder)): part
                       for part in order}
            try:
                for done, future in enumerate(concurrent.futures.as_completed(futures), start=1):
                    part = futures[future]
                    say(f"  [{done}/{total}] {part.name}: done in {future.result():.1f} s")
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    for part in todo:
        found = store.load(part, plan)
        if found is None:
            raise RuntimeError(f"part {part.name!r} was computed but could not be read back from "
                               f"{store.folder}")
        found.computed = True
        stored[part.name] = found
    info.computed = [p.name for p in parts if p in todo]
    info.reused = [p.name for p in parts if p not in todo]
    say("  writing the report ...")
    info.wall_time = time.perf_counter() - start
    report, results, figures = write_report(out, plan, parts, stored, info, start)
    say(f"report: {report}\nnumbers: {results}\nfigures: {len(figures)} in {figures[0].parent}")
    return ReproduceResult(report=report, results=results, figures=figures, parts_folder=store.folder,
                           computed=info.computed, reused=info.reused,
                           wall_time=time.perf_counter() - start)


# ----------------------------------------------------------------------------- tables

def architecture_table(stored: dict[str, StoredPart]) -> pd.DataFrame:
    """One row per :data:`TABLE_ARCHITECTURES` entry: survey at init joined with its training part.

    Columns: architecture, explodes (rate > :data:`EXPLODING_RATE`), layers (L), gsc_init
    (GSC(L, 0)), rate_init, r_squared, sign_diversity_last and preact_std_last (relative to the
    RMS) at k = 2, preact_std_raw_last, effective_depth_init (natural skip),
    effective_depth_trained (skip = the layer at initialization), effective_depth_trained_natural,
    best_lr (NaN when every rate diverged), lr_used, diverged_lrs, final_train_error,
    final_test_error (of the search's best run), taylor_break_k, taylor_break_linear_layers.
    """
    rows = []
    for architecture, measured, domain in _survey_rows(stored["survey"].objects):
        objects = stored[arch_part_name(architecture)].objects
        best = objects["search"].best.iloc[0]
        depth_row = objects["study"].table.iloc[0]
        rows.append({
            "architecture": architecture_name(architecture),
            "explodes": bool(measured["rate"] > EXPLODING_RATE),
            "layers": int(depth_row["num_layers"]),
            "gsc_init": float(measured["gsc_first_layer"]), "rate_init": float(measured["rate"]),
            "r_squared": float(measured["r_squared"]),
            "sign_diversity_last": float(measured["sign_diversity_last"]),
            "preact_std_last": float(measured["preact_std_last"]),
            "preact_std_raw_last": float(domain.at(2)["preact_std"]) if len(domain.layers) else math.nan,
            "effective_depth_init": int(depth_row["depth_natural_init"]),
            "effective_depth_trained": int(depth_row["depth_since_init_final"]),
            "effective_depth_trained_natural": int(depth_row["depth_natural_final"]),
            "best_lr": float(best["best_lr"]), "lr_used": float(objects["lr_used"]),
            "diverged_lrs": int(objects["search"].table["diverged"].sum()),
            "final_train_error": float(best["final_train_error"]),
            "final_test_error": float(best["final_test_error"]),
            "taylor_break_k": depth_row["taylor_break_k"],
            "taylor_break_linear_layers": depth_row["taylor_break_linear_layers"],
        })
    table = pd.DataFrame(rows)
    for column in ("taylor_break_k", "taylor_break_linear_layers"):
        table[column] = table[column].astype("Int64")
    return table


def _survey_rows(objects: dict[str, Any]) -> list[tuple[Architecture, dict[str, Any], Any]]:
    """(architecture, survey row, domain statistics) of every table architecture in a survey part."""
    rows = []
    for architecture in TABLE_ARCHITECTURES:
        source = objects["looks_linear"] if architecture.init == "looks_linear" else objects["survey"]
        measured = source.row(architecture.activation, architecture.norm, architecture.residual)
        rows.append((architecture, measured, source.domains[measured["label"]]))
    return rows


def survey_table(objects: dict[str, Any]) -> pd.DataFrame:
    """The at-initialization columns of a survey part, one row per table architecture."""
    return pd.DataFrame([{"architecture": architecture_name(architecture),
                          "explodes": bool(measured["rate"] > EXPLODING_RATE),
                          "gsc_init": measured["gsc_first_layer"], "rate_init": measured["rate"],
                          "sign_diversity_last": measured["sign_diversity_last"],
                          "preact_std_last": measured["preact_std_last"]}
                         for architecture, measured, _ in _survey_rows(objects)])


def dilution_table(results: dict[str, Any]) -> pd.DataFrame:
    """Medians over the blocks of each :class:`~explodegrad.residual.DilutionResult` of a dilution part."""
    return pd.DataFrame([{"architecture": label, "blocks": len(result.layers),
                          "skip_to_residual": float(np.median(result.skip_to_residual)),
                          "residual_gsc": float(np.median(result.residual_gsc)),
                          "block_gsc": float(np.median(result.block_gsc)),
                          "predicted_block_gsc": float(np.median(result.predicted_block_gsc)),
                          "abs_cosine": float(np.median(np.abs(result.cosine)))}
                         for label, result in results.items()])


@dataclass(frozen=True)
class Claim:
    """One claim of the paper checked against the measured numbers.

    Attributes:
        claim: the paper's claim, in words.
        measured: what was measured here, in words with numbers.
        verdict: ``"holds"``, ``"partly"`` or ``"does not hold"`` (here, at this scale).
    """

    claim: str
    measured: str
    verdict: str


def _verdict(all_of: bool, some_of: bool) -> str:
    return "holds" if all_of else "partly" if some_of else "does not hold"


def _claim_prevalence(plain: pd.DataFrame, table: pd.DataFrame) -> Claim:
    popular = plain[~plain["architecture"].str.contains("looks_linear")]
    exploding = popular[popular["explodes"]]
    safe = table[table["architecture"].isin(("relu/none/he", "relu/none/looks_linear"))]
    most, safe_ok = len(exploding) > len(popular) / 2, not safe["explodes"].any()
    rates = "; ".join(f"{row.architecture}: r = {row.rate_init:.3f}" for row in safe.itertuples())
    return Claim(
        claim=("Exploding gradients are common at initialization: most popular plain architectures have a "
               "GSC that grows exponentially with depth; ReLU with He initialization and no normalization, "
               "and the looks-linear initial state, do not."),
        measured=(f"{len(exploding)} of {len(popular)} popular plain architectures have a fitted rate "
                  f"r > {EXPLODING_RATE:g} per layer ({', '.join(exploding['architecture']) or 'none'}); "
                  f"{rates}"),
        verdict=_verdict(most and safe_ok, most or safe_ok))


def _claim_resnets(table: pd.DataFrame) -> Claim:
    pairs = []  # (the plain twin explodes, plain GSC, residual GSC)
    for row in table[table["architecture"].str.endswith("/res")].itertuples():
        twin = table[table["architecture"] == row.architecture[: -len("/res")]]
        if len(twin):
            first = twin.iloc[0]
            pairs.append((bool(first["explodes"]), float(first["gsc_init"]), float(row.gsc_init)))
    exploding = [(gsc_plain, gsc_res) for explodes, gsc_plain, gsc_res in pairs if explodes]
    lower = sum(gsc_res < gsc_plain for gsc_plain, gsc_res in exploding)
    factors = [gsc_plain / gsc_res for gsc_plain, gsc_res in exploding
               if gsc_res > 0 and math.isfinite(gsc_plain / gsc_res)]
    overall = sum(gsc_res < gsc_plain for _, gsc_plain, gsc_res in pairs)
    by = f" (plain / residual GSC: {min(factors):.3g} to {max(factors):.3g})" if factors else ""
    return Claim(
        claim=("ResNets explode far less: where a plain architecture explodes, its residual version has a "
               "much smaller GSC."),
        measured=(f"of the {len(exploding)} pairs whose plain network explodes, the residual GSC(L, 0) is "
                  f"lower in {lower}{by}; over all {len(pairs)} pairs it is lower in {overall}"),
        verdict=_verdict(bool(exploding) and lower == len(exploding), lower > 0))


def _claim_training(plain: pd.DataFrame, depth: int) -> Claim:
    popular = plain[~plain["architecture"].str.contains("looks_linear")]
    finite = popular[np.isfinite(popular["final_train_error"])]
    rho = (finite[["rate_init", "final_train_error"]].corr(method="spearman").iloc[0, 1]
           if len(finite) > 2 else math.nan)
    worse = finite[finite["explodes"]]["final_train_error"]
    better = finite[~finite["explodes"]]["final_train_error"]
    if len(worse) and len(better):
        measured = (f"mean final training error {worse.mean():.3f} for the {len(worse)} exploding against "
                    f"{better.mean():.3f} for the {len(better)} non-exploding popular plain architectures; "
                    f"Spearman correlation of rate and training error {rho:.2f}")
        higher = worse.mean() > better.mean()
        verdict = _verdict(higher and rho > 0, higher or rho > 0)
    else:
        measured = (f"every popular plain architecture lies on one side of r = {EXPLODING_RATE:g}; Spearman "
                    f"correlation of rate and training error {rho:.2f}")
        verdict = _verdict(False, rho > 0)
    return Claim(claim=f"Exploding architectures reach a worse training error (here at depth {depth}).",
                 measured=measured, verdict=verdict)


def _claim_effective_depth(table: pd.DataFrame) -> Claim:
    ratio = table["effective_depth_trained"] / table["layers"]
    return Claim(
        claim=("Trained networks are shallower than they look: the effective depth (residual trick, skip = "
               "the layer at initialization) stays well below the nominal depth."),
        measured=(f"effective depth after training / L: median {ratio.median():.2f}, largest "
                  f"{ratio.max():.2f} ({table.loc[ratio.idxmax(), 'architecture']})"),
        verdict=_verdict(ratio.median() < 0.5, ratio.min() < 0.5))


def check_claims(table: pd.DataFrame, depth: int) -> list[Claim]:
    """The paper's headline claims, each checked on an :func:`architecture_table`.

    Prevalence: most of the 9 popular plain architectures explode (r > :data:`EXPLODING_RATE`)
    while ReLU/He without normalization and looks-linear do not. ResNets: every residual
    architecture has a lower GSC(L, 0) than its plain twin. Training: exploding popular plain
    architectures have a higher mean final training error and the rank correlation of rate and
    error is positive. Effective depth: its median over L after training is below 0.5. Each
    verdict is "partly" when only some of its conditions hold.
    """
    plain = table[~table["architecture"].str.endswith("/res")]
    return [*check_init_claims(table), _claim_training(plain, depth), _claim_effective_depth(table)]


def check_init_claims(table: pd.DataFrame) -> list[Claim]:
    """The two claims about initialization (prevalence, ResNets), on a table with the columns
    architecture, explodes, rate_init and gsc_init (e.g. :func:`survey_table`)."""
    plain = table[~table["architecture"].str.endswith("/res")]
    return [_claim_prevalence(plain, table), _claim_resnets(table)]


def _fmt(value: Any, spec: str = ".3g") -> str:
    if value is None or value is pd.NA:
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "n/a"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    return format(number, spec)


def markdown_table(frame: pd.DataFrame, columns: Sequence[tuple[str, str, str]]) -> str:
    """A Markdown table of ``frame``: ``columns`` are (column, header, format spec) triples.

    Missing and NaN values show as ``n/a``, infinities as ``inf``, booleans as yes/no.
    """
    lines = ["| " + " | ".join(header for _, header, _ in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(_fmt(row[name], spec) for name, _, spec in columns) + " |")
    return "\n".join(lines)


ARCHITECTURE_COLUMNS = (
    ("architecture", "architecture", ""), ("layers", "L", ""), ("gsc_init", "GSC(L,0) at init", ".3g"),
    ("rate_init", "rate r", ".3f"), ("explodes", f"r > {EXPLODING_RATE:g}", ""),
    ("sign_diversity_last", "sign div. k=2", ".3f"), ("preact_std_last", "pre-act. spread k=2", ".3f"),
    ("effective_depth_init", "eff. depth init", ""), ("effective_depth_trained", "eff. depth trained", ""),
    ("best_lr", "chosen lr", ".3g"), ("final_train_error", "train error", ".3f"),
    ("final_test_error", "test error", ".3f"),
)
SURVEY_COLUMNS = (("architecture", "architecture", ""), ("gsc_init", "GSC(L,0)", ".3g"),
                  ("rate_init", "rate r", ".3f"), ("explodes", f"r > {EXPLODING_RATE:g}", ""),
                  ("sign_diversity_last", "sign div. k=2", ".3f"),
                  ("preact_std_last", "pre-act. spread k=2", ".3f"))
DILUTION_COLUMNS = (("architecture", "architecture", ""), ("blocks", "blocks", ""),
                    ("skip_to_residual", "k", ".3g"), ("residual_gsc", "GSC branch", ".3g"),
                    ("block_gsc", "GSC block", ".4g"), ("predicted_block_gsc", "predicted", ".4g"),
                    ("abs_cosine", "abs cos", ".3f"))
DEPTH_COLUMNS = (("architecture", "architecture", ""), ("layers", "L", ""),
                 ("effective_depth_init", "eff. depth init", ""),
                 ("effective_depth_trained", "trained (skip = init)", ""),
                 ("effective_depth_trained_natural", "trained (natural skip)", ""),
                 ("taylor_break_k", "Taylor breaks at k", ""),
                 ("taylor_break_linear_layers", "= weight layers", ""))
REMEDY_COLUMNS = (("remedy", "remedy", ""), ("touches", "touches", ""),
                  ("does_not_touch", "does not touch", ""), ("evidence", "measured", ""))


# ----------------------------------------------------------------------------- figures

def merge_depth_studies(named: Sequence[tuple[str, EffectiveDepthStudy]]) -> EffectiveDepthStudy:
    """One study made of single-architecture studies, each under a new label (for one figure)."""
    labels, trajectories, taylor, linear, histories, tables = [], {}, {}, {}, {}, []
    for label, study in named:
        old = study.labels[0]
        labels.append(label)
        trajectories[label], taylor[label] = study.trajectories[old], study.taylor[old]
        linear[label], histories[label] = study.taylor_linear_layers[old], study.histories[old]
        tables.append(study.table.assign(label=label))
    return dataclasses.replace(named[0][1], labels=labels, trajectories=trajectories, taylor=taylor,
                               taylor_linear_layers=linear, histories=histories,
                               table=pd.concat(tables, ignore_index=True))


def _impact_study(stored: dict[str, StoredPart]) -> Any:
    """The error-against-depth studies of every impact part as one :class:`~explodegrad.impact.DepthStudy`."""
    studies = [stored[f"impact-{activation}-{norm}"].objects["study"]
               for activation, norm in IMPACT_ARCHITECTURES]
    return dataclasses.replace(studies[0], table=pd.concat([s.table for s in studies], ignore_index=True))


def _activation_study(stored: dict[str, StoredPart], activation: str) -> EffectiveDepthStudy:
    named = [(architecture_name(a) if a.init == "looks_linear" else a.label,
              stored[arch_part_name(a)].objects["study"])
             for a in TABLE_ARCHITECTURES if a.activation == activation]
    return merge_depth_studies(named)


@dataclass(frozen=True)
class ReportFigure:
    """A figure of the report: its file name, its one-line explanation and how to draw it."""

    file: str
    caption: str
    draw: Callable[[], Any]


def report_figures(stored: dict[str, StoredPart]) -> dict[str, list[ReportFigure]]:
    """The figures of each report section, drawn by :mod:`explodegrad.plots` from the stored results."""
    from explodegrad.plots.collapsing_domain import plot_domain_tradeoff, plot_survey_domains
    from explodegrad.plots.depth_study import plot_effective_depth_study
    from explodegrad.plots.gsc_meaning import plot_perturbation_check, plot_rescaling
    from explodegrad.plots.impact import plot_depth_study, plot_optimizer_gsc, plot_update_sizes
    from explodegrad.plots.remedies import plot_orthogonal_state, plot_width_vs_depth
    from explodegrad.plots.residual import plot_dilution
    from explodegrad.plots.survey import plot_survey, plot_survey_profiles

    meaning = stored["gsc-meaning"].objects
    survey = stored["survey"].objects["survey"]
    plain = [label for label in survey.profiles if not label.endswith("/res")]
    figures = {"gsc": [
        ReportFigure("gsc-rescaling.png", "Rescaling one layer's output by 10 (and the next layer's "
                     "weights by 1/10) leaves the function unchanged: the raw gradient jumps, the GSC does "
                     "not move.", lambda: plot_rescaling(meaning["rescaling"])),
        ReportFigure("gsc-perturbation.png", "Nudging f_k by a small relative amount moves the losses, "
                     "relatively, GSC(k, 0) times as much: the root mean square gain lies on the diagonal.",
                     lambda: plot_perturbation_check(meaning["perturbation"]))]}
    figures["survey"] = [
        ReportFigure("survey-gsc.png", "GSC(L, 0) of every architecture at initialization, log scale: bars "
                     "above the dashed line at 1 mean exploding gradients.",
                     lambda: plot_survey(survey, value="gsc_first_layer")),
        ReportFigure("survey-profiles.png", "GSC(k, 0) against the layer k of the plain architectures: a "
                     "straight line on the log axis is exponential growth with rate r.",
                     lambda: plot_survey_profiles(survey, labels=plain))]
    figures["domain"] = [
        ReportFigure("domain-sign-diversity.png", "Sign diversity of every hidden layer at initialization, "
                     "one panel per activation: where it falls towards 0 the domain collapses (neurons "
                     "stop changing sign and act linearly).",
                     lambda: plot_survey_domains(survey, "sign_diversity")),
        ReportFigure("domain-tradeoff.png", "Exploding gradients against a collapsing domain, one point per "
                     "architecture: architectures avoid one at the price of the other.",
                     lambda: plot_domain_tradeoff(survey))]
    dilution = stored["dilution"].objects[DILUTION_ARCHITECTURES[0].label]
    figures["dilution"] = [
        ReportFigure("dilution.png", f"{DILUTION_ARCHITECTURES[0].label}: per block, the measured GSC "
                     "against the Pythagorean prediction and the branch's own GSC (left), and the "
                     "skip-to-residual ratio (right).", lambda: plot_dilution(dilution))]
    if "survey-paper-size" in stored:
        big = stored["survey-paper-size"].objects["survey"]
        figures["survey"].append(ReportFigure(
            "survey-paper-size.png", "The same survey at the paper's size (depth 50, width 100), measured "
            "at initialization only.", lambda: plot_survey(big, value="gsc_first_layer")))
    impact, optimizers = _impact_study(stored), stored["optimizers"].objects["study"]
    figures["impact"] = [
        ReportFigure("impact-depth.png", "Final training error against depth, each depth at its best "
                     "learning rate.", lambda: plot_depth_study(impact)),
        ReportFigure("impact-optimizers.png", "GSC(L, 0) during training under SGD, Adam and RMSprop: "
                     "adaptive optimizers rescale the steps, not the GSC.",
                     lambda: plot_optimizer_gsc(optimizers)),
        ReportFigure("impact-update-sizes.png", "Relative update size per layer (left) and GSC(k, 0) at the "
                     "end of training (right), per optimizer.", lambda: plot_update_sizes(optimizers))]
    figures["taylor"] = []
    for activation in ("relu", "tanh", "selu"):
        study = _activation_study(stored, activation)
        figures["taylor"].append(ReportFigure(
            f"taylor-{activation}.png",
            f"{activation}: effective depth during training (left; skip = the layer at initialization) "
            "and training error when the top layers are replaced by their first-order Taylor expansion "
            f"(right; a ring marks where the error first rises by more than {study.tolerance:g}).",
            lambda study=study, activation=activation: plot_effective_depth_study(
                study, title=f"{activation}: effective depth and the Taylor experiment")))
    orthogonal = stored["orthogonal"].objects["result"]
    width = stored["width-vs-depth"].objects["result"]
    figures["remedies"] = [
        ReportFigure("orthogonal-state.png", "GSC(L, 2) between the hidden layers (left) and training "
                     "error (right) during training; the looks-linear network starts at GSC 1 exactly.",
                     lambda: plot_orthogonal_state(orthogonal)),
        ReportFigure("width-vs-depth.png", "Final errors against depth at one parameter budget, each "
                     "network as wide as the budget allows, at its best learning rate.",
                     lambda: plot_width_vs_depth(width))]
    return figures


def save_figures(figures: dict[str, list[ReportFigure]], folder: Path) -> list[Path]:
    """Draw every figure in the course's theme and save it as PNG in ``folder``; return the paths."""
    import matplotlib.pyplot as plt

    from explodegrad.plots.theme import set_theme

    set_theme()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for section in figures.values():
        for figure in section:
            drawn = figure.draw()
            path = folder / figure.file
            drawn.savefig(path, dpi=100, bbox_inches="tight")
            plt.close(drawn)
            paths.append(path)
    return paths


# ----------------------------------------------------------------------------- the report

def remedy_evidence(stored: dict[str, StoredPart]) -> list[RemedyEvidence]:
    """Every remedy's evidence from the stored parts (table look-ups; the training ran in the parts)."""
    survey = stored["survey"].objects["survey"]
    pair = (Architecture("relu", "batch"), Architecture("relu", "batch", True))
    relu = merge_depth_studies([(a.label, stored[arch_part_name(a)].objects["study"]) for a in pair])
    return [skip_connection_evidence(survey, "relu", "batch", relu),
            initialization_evidence(stored["orthogonal"].objects["result"]),
            normalization_evidence(survey, "relu", "batch"),
            stored["clipping"].objects["evidence"],
            stored["optimizers"].objects["evidence"],
            width_evidence(stored["width-vs-depth"].objects["result"])]


@dataclass
class _Report:
    """Everything the report's text is made of."""

    plan: ReportPlan
    data: Dataset
    parts: list[Part]
    stored: dict[str, StoredPart]
    info: RunInfo
    table: pd.DataFrame
    claims: list[Claim]
    remedies: Any
    figures: dict[str, list[ReportFigure]]
    figure_folder: str
    results_name: str

    def images(self, section: str) -> list[str]:
        return [f"![{f.file}]({self.figure_folder}/{f.file})\n\n*{f.caption}*\n"
                for f in self.figures[section]]


def write_report(out: Path, plan: ReportPlan, parts: list[Part], stored: dict[str, StoredPart],
                 info: RunInfo, start: float) -> tuple[Path, Path, list[Path]]:
    """Draw the figures, then write the JSON of every number and the Markdown report; return the paths."""
    name = plan.scale.name
    figures = report_figures(stored)
    paths = save_figures(figures, out / f"figures-{name}")
    table = architecture_table(stored)
    report = _Report(plan=plan, data=load_plan_data(plan, "cpu"), parts=parts, stored=stored, info=info,
                     table=table, claims=check_claims(table, plan.scale.depth),
                     remedies=remedies_summary(remedy_evidence(stored)), figures=figures,
                     figure_folder=f"figures-{name}", results_name=f"results-{name}-scale.json")
    info.wall_time = time.perf_counter() - start
    cpu_now = cpu_seconds()
    info.cpu_time = None if info.cpu_start is None or cpu_now is None else cpu_now - info.cpu_start
    results_path = out / report.results_name
    _write_atomic(results_path, _dump_json(_results(report)))
    report_path = out / f"report-{name}-scale.md"
    text = "\n".join(_header(report) + _table_section(report) + _gsc_section(report) + _survey_section(report)
                     + _impact_section(report) + _dilution_section(report) + _depth_section(report)
                     + _remedies_section(report) + _parts_section(report))
    _write_atomic(report_path, (text + "\n").encode())
    return report_path, results_path, paths


def _results(report: _Report) -> dict[str, Any]:
    plan, info, data, stored = report.plan, report.info, report.data, report.stored
    meta = {"scale": dataclasses.asdict(plan.scale), "lrs": list(plan.lrs), "seed": plan.seed,
            "data": {"name": data.name, "source": data.source, "n_train": len(data.x_train),
                     "n_test": len(data.x_test), "in_features": data.in_features},
            "device": info.device, "machine": info.machine, "load_average": info.load_average,
            "started": info.started, "command": info.command, "jobs": info.jobs, "wall_time": info.wall_time,
            "cpu_time": info.cpu_time,
            "compute_time_of_parts": sum(s.wall_time for s in stored.values()), "computed": info.computed,
            "reused": info.reused, "format": FORMAT_VERSION, "exploding_rate": EXPLODING_RATE}
    parts = {part.name: {"title": part.title, "chapters": part.chapters,
                         "wall_time": stored[part.name].wall_time, "device": stored[part.name].device,
                         "numbers": stored[part.name].numbers} for part in report.parts}
    extra = {}
    if "survey-paper-size" in stored:
        big = survey_table(stored["survey-paper-size"].objects)
        extra = {"survey_paper_size": big, "claims_paper_size_init": check_init_claims(big)}
    return to_jsonable({"meta": meta, "architecture_table": report.table, "claims": report.claims, **extra,
                        "dilution_table": dilution_table(stored["dilution"].objects),
                        "remedies": report.remedies.measurements, "parts": parts})


def _data_line(report: _Report) -> str:
    scale, data = report.plan.scale, report.data
    sizes = (f"{len(data.x_train):,} training / {len(data.x_test):,} test examples, "
             f"{data.in_features} features")
    if data.name == "cifar10":
        return f"- **Data:** CIFAR-10, the paper's data set ({sizes}), from {data.source}."
    why = ("CIFAR-10 was not found" if scale.name == "paper"
           else f"the {scale.name} scale uses it so that it runs on a CPU in minutes")
    return (f"- **Data:** {data.name} ({sizes}; {data.source}) instead of CIFAR-10, the paper's data set: "
            f"{why}. For CIFAR-10 run `--scale paper --data-root PATH` (see docs/README.md).")


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
        f"# explodegrad: the study reproduced headless ({scale.name} scale)", "",
        f"- **Scale:** {scale.describe()} ({scale.reason}).",
        _data_line(report),
        f"- **Machine:** {info.machine}; device {info.device}.",
        f"- **Wall time:** {info.wall_time:.0f} s for the run that wrote this report ({len(info.computed)} "
        f"parts computed, {len(info.reused)} reused from an earlier run, {info.jobs} job(s)){cpu}{load}; "
        f"the parts took {compute:.0f} s of compute in all.",
        f"- **Command:** `{info.command}`, started {info.started}.", "",
        f"Every number is in `{report.results_name}`. Layers are counted from the output as in the paper "
        "(k = 1 the logits, k = L the first layer). Philipp, Song & Carbonell, *The exploding gradient "
        "problem demystified* (arXiv:1712.05577), measure depth-50, width-100 networks on CIFAR-10; this "
        "report runs the same experiments through the library functions the course notebooks use.", ""]


def _table_section(report: _Report) -> list[str]:
    scale, settings = report.plan.scale, study_settings(report.plan.scale)
    rates = ", ".join(f"{lr:g}" for lr in report.plan.lrs)
    lines = [
        "## 1. The architecture table (chapters 03, 04, 06)", "",
        f"Each row is one network of depth {scale.depth} (weight layers) and width {scale.width}, with its "
        "activation's usual initialization (He for ReLU, Xavier for tanh, LeCun for SELU) unless named. "
        f"Training: SGD with momentum {settings.momentum:g}, batch {settings.batch_size}, {settings.steps} "
        f"steps; the learning rate is chosen per architecture from {{{rates}}} by the lowest final "
        "training error in one batched search (`explodegrad.sweep.lr_search`), and the network is trained "
        "again at that rate to track its effective depth. Errors are measured on fixed subsets of "
        f"{settings.eval_size} examples with batch statistics. Residual networks have blocks of two "
        "layers: their L counts the input layer, the blocks and the readout.", "",
        markdown_table(report.table, ARCHITECTURE_COLUMNS), "",
        "- *GSC(L,0) at init*: the gradient scale coefficient from the first layer's output to the losses "
        "at initialization (the paper's headline number); *rate r*: its fitted growth per layer; "
        f"*r > {EXPLODING_RATE:g}*: counted as exploding below (an operational threshold).",
        "- *sign div. k=2*: mean over neurons of min(P, N) / (P + N) of the last hidden layer's "
        "pre-activations (0.5: every neuron is positive half the time; 0: a collapsed domain); "
        "*pre-act. spread k=2*: their spread across the batch relative to their RMS.",
        "- *eff. depth init*: effective depth at initialization with the natural skip (identity for "
        "ResNets, each layer's best affine fit otherwise); *eff. depth trained*: after training, with "
        "skip = the layer at initialization (the paper's residual trick); 1 % share threshold.",
        "- *chosen lr*: the search's pick (n/a: every rate diverged); *train/test error*: that run's final "
        "errors.", "",
        "### The paper's claims, checked on this table", ""]
    lines += [f"- **{c.verdict}.** {c.claim} *Measured:* {c.measured}." for c in report.claims]
    paper = scale.name == "paper" and report.data.name == "cifar10"
    lines += ["", "This is the paper's setting (one seed)." if paper else
              f"At the {scale.name} scale the networks, data and training are smaller than the paper's: "
              "agreement can only be qualitative.", ""]
    return lines


def _gsc_section(report: _Report) -> list[str]:
    meaning = report.stored["gsc-meaning"].objects
    rescaling, perturbation = meaning["rescaling"], meaning["perturbation"]
    k = rescaling.layer
    ratios = ", ".join(f"{_fmt(r, '.3f')} (k = {int(layer)})"
                       for layer, r in zip(perturbation.layers, perturbation.ratio))
    return ["## 2. What the GSC means (chapter 02)", "",
            f"On {rescaling.label}: multiplying f_{k} by {rescaling.factor:g} changed the mean loss from "
            f"{rescaling.loss_before:.6f} to {rescaling.loss_after:.6f}; the raw gradient at f_{k} went from "
            f"{_fmt(rescaling.raw_before[k - 1])} to {_fmt(rescaling.raw_after[k - 1])}, GSC({k}, 0) from "
            f"{_fmt(rescaling.gsc_before[k - 1], '.4g')} to {_fmt(rescaling.gsc_after[k - 1], '.4g')}. "
            f"Random relative nudges of f_k, RMS gain / GSC(k, 0): {ratios}.", "",
            *report.images("gsc")]


def _survey_section(report: _Report) -> list[str]:
    survey = report.stored["survey"].objects["survey"]
    lines = ["## 3. Prevalence at initialization (chapters 03, 04)", "",
             f"The survey behind the table's first columns, on one batch of {survey.batch_size} training "
             "examples.", "", *report.images("survey"), *report.images("domain")]
    if "survey-paper-size" in report.stored:
        big = survey_table(report.stored["survey-paper-size"].objects)
        lines += ["At the paper's size (depth 50, width 100), at initialization:", "",
                  markdown_table(big, SURVEY_COLUMNS), "",
                  "The claims about initialization, checked at this size:", ""]
        lines += [f"- **{c.verdict}.** {c.claim} *Measured:* {c.measured}." for c in check_init_claims(big)]
        lines.append("")
    return lines


def _impact_section(report: _Report) -> list[str]:
    impact, optimizers = _impact_study(report.stored), report.stored["optimizers"].objects["study"]
    return ["## 4. Impact on training (chapter 03)", "",
            "Training error against depth for two exploding and one non-exploding architecture (each depth "
            "at its best learning rate), and the GSC under three optimizers.", "",
            "```", impact.summary(), "", optimizers.summary(), "```", "", *report.images("impact")]


def _dilution_section(report: _Report) -> list[str]:
    return ["## 5. Dilution in ResNets (chapter 05)", "",
            "Per residual block at initialization, medians over the blocks: the skip-to-residual ratio k, "
            "the branch's GSC, the block's GSC and the Pythagorean prediction sqrt((k^2 + GSC_r^2) / (k^2 + "
            "1)), which assumes the branch orthogonal to its input (|cos| near 0).", "",
            markdown_table(dilution_table(report.stored["dilution"].objects), DILUTION_COLUMNS), "",
            *report.images("dilution")]


def _depth_section(report: _Report) -> list[str]:
    tolerance = report.stored[arch_part_name(TABLE_ARCHITECTURES[0])].objects["study"].tolerance
    return ["## 6. Effective depth and the Taylor experiment (chapter 06)", "",
            "Every table architecture, trained at its chosen rate. The Taylor experiment replaces the top k "
            "layers by their linearization around the data's mean (evaluated in eval mode).", "",
            markdown_table(report.table, DEPTH_COLUMNS), "",
            f"*Taylor breaks at k*: the smallest k whose training error rises more than {tolerance:g} above "
            "the original network's (n/a: it never does).", "", *report.images("taylor")]


def _remedies_section(report: _Report) -> list[str]:
    orthogonal = report.stored["orthogonal"].objects["result"]
    width = report.stored["width-vs-depth"].objects["result"]
    return ["## 7. Remedies and tradeoffs (chapter 07)", "", "```", orthogonal.summary(), "", width.summary(),
            "```", "", *report.images("remedies"),
            "What each remedy touches, what it leaves alone, and the numbers measured here:", "",
            markdown_table(report.remedies.table, REMEDY_COLUMNS), ""]


def _parts_section(report: _Report) -> list[str]:
    lines = ["## Parts", "", "Each part is kept in `parts/`; a rerun with the same settings reuses it.", "",
             "| part | chapters | what | seconds | device | this run |", "|---|---|---|---|---|---|"]
    for part in report.parts:
        done = report.stored[part.name]
        how = "computed" if done.computed else "reused"
        lines.append(f"| {part.name} | {part.chapters} | {part.title} | {done.wall_time:.1f} | {done.device} "
                     f"| {how} |")
    return lines
