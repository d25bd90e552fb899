"""Reproduce the study headless: the headline experiments of chapters 03-08, written to files.

:func:`reproduce` runs every experiment *part* of a :class:`ReportPlan` through the same
library functions the notebooks call (:mod:`explodegrad.studies.survey`,
:mod:`explodegrad.studies.depth_limit`, :mod:`explodegrad.studies.effective_depth`,
:mod:`explodegrad.studies.remedies`, ...), keeps each finished part on disk, then draws the
figures with :mod:`explodegrad.plots` and writes the report::

    OUT/report-<scale>-scale.md     tables and figures, each with a one-line explanation
    OUT/results-<scale>-scale.json  every number
    OUT/figures-<scale>/*.png       the figures
    OUT/parts/<scale>/              per part: <name>.json (its numbers) and <name>.pkl (its
                                    result objects, which the figures are drawn from)

Resuming: a part is reused when its JSON is there, its *key* (format version, scale, seed,
searched learning rates and the part's own options) matches, and the checksums written with
it (of the JSON and of the pickle) still match; anything else is recomputed, and the run says
which part and why. An interrupted run therefore continues where it stopped; ``fresh=True``
recomputes everything (with ``parts``, every chosen part). ``parts`` computes only the named
parts and writes no report: a long run split over machines or time slices; each part records
the machine and the code it was computed with, and the report names parts made elsewhere.
The pickles are trusted input: only resume from folders you wrote.

``results-<scale>-scale.json`` holds no machine-dependent value except the run's explicit
provenance and timings (``meta``: machine, code, device, load, dates, command, jobs, times;
each part's ``wall_time``, ``device``, ``machine`` and ``code``): two runs of the same command
give the same numbers.

Parts do not depend on each other, so ``jobs > 1`` computes them in separate processes. On a
GPU that is what keeps the device busy: networks of width 100 are launch-bound, and several
processes overlap their kernel launches.

The architecture table (one row per architecture, :data:`TABLE_ARCHITECTURES`) joins the
survey at initialization (GSC, fitted rate, collapsing-domain numbers at the last hidden
layer) with one training part per architecture: a batched learning-rate search
(:func:`explodegrad.training.sweep.lr_search`), then training at the chosen rate while tracking the
effective depth, and the Taylor experiment
(:func:`explodegrad.studies.effective_depth.effective_depth_study`). At the paper scale the rows
of one shape (those that differ only in activation and initializer) share one part and one
search, so their networks train as one stacked group (6 parts of 15-20 models instead of 19 of
5), and are measured on the search's own networks; :func:`~explodegrad.reproduce.parts.table_row`
reads a row from either kind of part.

The package, one concept per module: :mod:`~explodegrad.reproduce.plan` (scales, the plan),
:mod:`~explodegrad.reproduce.parts` (the experiments), :mod:`~explodegrad.reproduce.store`
(finished parts and resuming), :mod:`~explodegrad.reproduce.tables` (the tables; verdicts
come from :mod:`explodegrad.claims`),
:mod:`~explodegrad.reproduce.figures`, :mod:`~explodegrad.reproduce.markdown` and
:mod:`~explodegrad.reproduce.report` (the files written); :func:`reproduce` runs them all.
"""

from __future__ import annotations

import concurrent.futures
import datetime as _dt
import multiprocessing
import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from explodegrad.core.checks import check_int
from explodegrad.core.device import DeviceChoice, pick_device
from explodegrad.core.scales import Scale
from explodegrad.reproduce.figures import ReportFigure, merge_depth_studies, report_figures, save_figures
from explodegrad.reproduce.jsonable import to_jsonable
from explodegrad.reproduce.machine import RunInfo, code_version, cpu_seconds, machine_description
from explodegrad.reproduce.markdown import (
    ARCHITECTURE_COLUMNS,
    DEPTH_COLUMNS,
    DILUTION_COLUMNS,
    REMEDY_COLUMNS,
    SURVEY_COLUMNS,
    markdown_table,
)
from explodegrad.reproduce.parts import (
    Part,
    arch_part_name,
    plan_parts,
    run_architecture,
    run_claims,
    run_clipping,
    run_dilution,
    run_gsc_meaning,
    run_impact,
    run_optimizers,
    run_orthogonal,
    run_survey,
    run_survey_paper_size,
    run_width_vs_depth,
    table_row,
)
from explodegrad.reproduce.plan import (
    DILUTION_ARCHITECTURES,
    FORMAT_VERSION,
    PAPER_LRS,
    PAPER_SIZE,
    REPORT_SCALES,
    SEARCH_LRS,
    TABLE_ARCHITECTURES,
    TINY,
    Log,
    ReportPlan,
    make_plan,
    report_scale,
)
from explodegrad.reproduce.report import remedy_evidence, write_report
from explodegrad.reproduce.store import (
    PartStore,
    StoredPart,
    _init_worker,
    compute_part,
    load_plan_data,
    part_key,
    part_status,
    pending_parts,
    recompute_notice,
    select_parts,
    sort_parts,
)
from explodegrad.reproduce.tables import (
    architecture_table,
    dilution_table,
    survey_table,
)

__all__ = [
    "ARCHITECTURE_COLUMNS",
    "DEPTH_COLUMNS",
    "DILUTION_ARCHITECTURES",
    "DILUTION_COLUMNS",
    "FORMAT_VERSION",
    "PAPER_LRS",
    "PAPER_SIZE",
    "REMEDY_COLUMNS",
    "REPORT_SCALES",
    "SEARCH_LRS",
    "SURVEY_COLUMNS",
    "TABLE_ARCHITECTURES",
    "TINY",
    "Log",
    "Part",
    "PartStore",
    "ReportFigure",
    "ReportPlan",
    "ReproduceResult",
    "RunInfo",
    "StoredPart",
    "arch_part_name",
    "table_row",
    "architecture_table",
    "compute_part",
    "cpu_seconds",
    "dilution_table",
    "load_plan_data",
    "machine_description",
    "make_plan",
    "markdown_table",
    "merge_depth_studies",
    "part_key",
    "part_status",
    "pending_parts",
    "plan_parts",
    "recompute_notice",
    "remedy_evidence",
    "report_figures",
    "report_scale",
    "reproduce",
    "resolve_jobs",
    "run_architecture",
    "run_clipping",
    "run_dilution",
    "run_gsc_meaning",
    "run_impact",
    "run_claims",
    "run_optimizers",
    "run_orthogonal",
    "run_survey",
    "run_survey_paper_size",
    "run_width_vs_depth",
    "save_figures",
    "select_parts",
    "sort_parts",
    "survey_table",
    "to_jsonable",
    "write_report",
]


@dataclass
class ReproduceResult:
    """What :func:`reproduce` wrote.

    Attributes:
        report: the Markdown report (None when ``parts`` chose some: no report is written).
        results: the JSON with every number (None, likewise).
        figures: the PNG figures (none, likewise).
        parts_folder: where the finished parts are kept.
        computed: parts computed by this run.
        reused: parts reused from an earlier run.
        wall_time: seconds this run took.
        recomputed: stored parts this run refused and computed again, with the reason (a
            checksum that no longer matches, other settings, ...).
        pending: parts still to compute (only when ``parts`` chose some: then no report,
            results or figures are written, and those three are None, None and []).
    """

    report: Path | None
    results: Path | None
    figures: list[Path]
    parts_folder: Path
    computed: list[str]
    reused: list[str]
    wall_time: float
    recomputed: dict[str, str] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)


def resolve_jobs(jobs: int | str | None, device: DeviceChoice) -> int:
    """How many parts run at once: ``"auto"`` (or None) is one per CPU core, at most 8; on an
    Apple GPU 1 (one device queue). Otherwise ``jobs`` itself, an integer >= 1."""
    if jobs is None or jobs == "auto":
        return 1 if device.device.type == "mps" else max(1, min(8, os.cpu_count() or 1))
    return check_int("jobs", jobs, 1)


def reproduce(
    out: str | os.PathLike = "explodegrad-report",
    scale: str | Scale = "quick",
    *,
    device: str | None = None,
    fresh: bool = False,
    jobs: int | str | None = 1,
    steps: int | None = None,
    seed: int = 0,
    data_root: str | os.PathLike | None = None,
    command: str | None = None,
    log: Log | None = print,
    parts: Sequence[str] | str | None = None,
) -> ReproduceResult:
    """Run (or resume) every part of the report, then write the report, the JSON and the figures.

    Args:
        out: the output folder (created when missing).
        scale: ``"tiny"``, ``"quick"``, ``"paper"`` or a :class:`Scale`.
        device: ``"auto"``, ``"cuda"``, ``"mps"`` or ``"cpu"`` (default: ``$EXPLODEGRAD_DEVICE``,
            then auto).
        fresh: ignore parts already on disk and compute everything again (with ``parts``: the
            chosen parts).
        jobs: parts computed at once, in separate processes (see :func:`resolve_jobs`; 1
            computes them one by one in this process).
        steps: training steps of every training run (default: the scale's).
        seed: the seed of everything.
        data_root: where CIFAR-10 is looked for (the paper scale uses it when found).
        command: the command line to print in the report (default: this process's).
        log: where progress lines go (None: nowhere).
        parts: compute only these parts (names, or one comma-separated string; see
            :func:`~explodegrad.reproduce.store.part_status` for a plan's names) and write no
            report: a long run split over machines or time slices, e.g. the cheap parts of the
            paper scale on a CPU, the training parts on a GPU. The parts are stored as always
            (with the machine they ran on), so a later run without ``parts`` reuses them; the
            result's ``pending`` names what is still to compute.

    Returns:
        A :class:`ReproduceResult` naming the files written.

    Raises:
        ValueError: for a bad argument (an unknown scale, an unavailable device, ...).
    """
    start, cpu_start = time.perf_counter(), cpu_seconds()
    say = log if log is not None else (lambda _line: None)
    chosen = parts
    choice = pick_device(device)
    jobs = resolve_jobs(jobs, choice)
    plan = make_plan(scale, steps=steps, seed=seed, data_root=data_root)
    out = Path(out)
    store = PartStore(out / "parts" / plan.scale.name)
    everything = plan_parts(plan)
    parts = everything if chosen is None else select_parts(everything, chosen)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    info = RunInfo(
        device=str(choice),
        machine=machine_description(choice),
        load_average=load,
        started=_dt.datetime.now().isoformat(timespec="seconds"),
        command=command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        jobs=jobs,
        cpu_start=cpu_start,
        code=code_version(),
    )
    say(f"explodegrad reproduce: {plan.describe()}")
    say(f"  scale chosen because: {plan.scale.reason}")
    say(f"  device: {choice}; {jobs} job(s); parts in {store.folder}")
    stored, todo, reasons = sort_parts(parts, plan, store, fresh)
    for name, reason in reasons.items():
        notice = recompute_notice(name, reason, store.folder)
        if log is not None:
            say(f"  {notice}")
        else:
            warnings.warn(notice, RuntimeWarning, stacklevel=2)
    if stored:
        say(f"  reusing {len(stored)} finished part(s) from {store.folder} (--fresh recomputes them)")
    device_name = str(choice.device)
    total = len(todo)
    order = sorted(todo, key=lambda p: -p.cost)
    if jobs == 1 or total <= 1:
        for done, part in enumerate(order, start=1):
            say(f"  [{done}/{total}] {part.name}: {part.title} ...")
            seconds = compute_part(part, plan, device_name, str(store.folder), info.machine, info.code)
            say(f"  [{done}/{total}] {part.name}: done in {seconds:.1f} s")
    else:
        threads = max(1, (os.cpu_count() or 1) // jobs) if choice.device.type == "cpu" else 1
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(
            jobs, mp_context=context, initializer=_init_worker, initargs=(threads,)
        ) as pool:
            futures = {
                pool.submit(
                    compute_part, part, plan, device_name, str(store.folder), info.machine, info.code
                ): part
                for part in order
            }
            try:
                for done, future in enumerate(concurrent.futures.as_completed(futures), start=1):
                    part = futures[future]
                    say(f"  [{done}/{total}] {part.name}: done in {future.result():.1f} s")
            except BaseException:
                _stop_workers(pool)
                raise
    for part in todo:
        found, why = store.inspect(part, plan)
        if found is None:
            raise RuntimeError(
                f"part {part.name!r} was computed but could not be read back from {store.folder}: {why}"
            )
        found.computed = True
        stored[part.name] = found
    info.computed = [p.name for p in parts if p in todo]
    info.reused = [p.name for p in parts if p not in todo]
    if chosen is not None:
        pending = [p.name for p in everything if p not in parts and not store.holds(p, plan)]
        say(
            f"  {len(parts)} chosen part(s) stored in {store.folder}; "
            + (f"still to compute: {', '.join(pending)}" if pending else "every part is stored")
            + " (no report written: run without --parts to write it)"
        )
        return ReproduceResult(
            report=None,
            results=None,
            figures=[],
            parts_folder=store.folder,
            computed=info.computed,
            reused=info.reused,
            wall_time=time.perf_counter() - start,
            recomputed=reasons,
            pending=pending,
        )
    say("  writing the report ...")
    info.wall_time = time.perf_counter() - start
    report, results, figures = write_report(out, plan, parts, stored, info, start)
    say(f"report: {report}\nnumbers: {results}\nfigures: {len(figures)} in {figures[0].parent}")
    return ReproduceResult(
        report=report,
        results=results,
        figures=figures,
        parts_folder=store.folder,
        computed=info.computed,
        reused=info.reused,
        wall_time=time.perf_counter() - start,
        recomputed=reasons,
    )


def _stop_workers(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Cancel what has not started and end the workers now (a part killed mid-way leaves no
    record: the store writes its JSON last, atomically)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # no public way before 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
