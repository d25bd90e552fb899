"""How fast the explorers redraw: set a control, time until the new figure is ready.

For each explorer at the course's largest default sizes (depth 50, width 100; the chain toys
at depth 100), the depth slider is moved to settings not seen before (no cache hits), and the
time from setting the value until the explorer has rerun the experiment, drawn the figure and
rendered its PNG is taken (``control.value = v`` returns only then: the explorer works
synchronously, as in a kernel). Reported: the median over repeats of the wall time and of the
process CPU time (less sensitive to other programs on a shared machine), and the median split
into experiment, drawing and PNG rendering. Then the same for a setting seen before (cache).

The training explorer is timed differently: how long until its progress bar first moves (the
first record of the run) and until the whole run is drawn.

Targets (issue 5): every explorer but training redraws within 0.5 s on a 2-core CPU; training
shows progress within 1 s.

Run from the repository root: ``.venv/bin/python benchmarks/bench_widgets.py [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from explodegrad import widgets  # noqa: E402
from explodegrad.core.device import cpu_model, pick_device  # noqa: E402
from explodegrad.plots import set_theme  # noqa: E402
from explodegrad.widgets.base import Explorer  # noqa: E402

TARGET_REDRAW_S = 0.5
TARGET_PROGRESS_S = 1.0


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def time_redraws(explorer: Explorer, control: str, values: Sequence[object]) -> dict[str, float]:
    """Set ``control`` to each value in turn; medians of wall, CPU and the explorer's own split."""
    walls, cpus, parts = [], [], {"experiment": [], "draw": [], "render": []}
    for value in values:
        runs = explorer.runs
        wall, cpu = time.perf_counter(), time.process_time()
        explorer.controls[control].value = value
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        if explorer.last_error is not None:
            raise RuntimeError(f"{control}={value!r}: {explorer.last_error}")
        if explorer.runs != runs + 1:
            raise RuntimeError(f"{control}={value!r} did not rerun the experiment (cached?)")
        for name in parts:
            parts[name].append(explorer.last_timings.get(name, float("nan")))
    result = {"wall": _median(walls), "cpu": _median(cpus), "max_wall": max(walls)}
    result.update({name: _median(times) for name, times in parts.items()})
    return result


def time_cached(explorer: Explorer, control: str, values: Sequence[object]) -> float:
    """Median wall time of going back to settings already seen."""
    times = []
    for value in values:
        start = time.perf_counter()
        explorer.controls[control].value = value
        times.append(time.perf_counter() - start)
    return _median(times)


def bench_explorer(
    name: str, make: Callable[[], Explorer], control: str, values: Sequence[object]
) -> dict[str, float]:
    explorer = make()
    fresh = time_redraws(explorer, control, values)
    fresh["cached"] = time_cached(explorer, control, list(values)[:3])
    fresh["name"] = name
    return fresh


def bench_training(make: Callable[[], Explorer], values: Sequence[object]) -> dict[str, float]:
    explorer = make()
    progress = explorer.progress
    first, total = [], []
    for value in values:
        start = time.perf_counter()
        explorer.controls["depth"].value = value
        total.append(time.perf_counter() - start)
        first.append(progress.first_update_at - start)
        if explorer.last_error is not None:
            raise RuntimeError(explorer.last_error)
    return {"first_progress": _median(first), "total": _median(total), "max_first": max(first)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="uncached settings per explorer")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--depth", type=int, default=50, help="largest depth (default 50)")
    parser.add_argument("--width", type=int, default=100, help="width (default 100)")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    set_theme()
    repeats, depth, width = args.repeats, args.depth, args.width
    omp = os.environ.get("OMP_NUM_THREADS", "unset")
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs; torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s); OMP_NUM_THREADS={omp}"
    )
    print(f"device: {device}")
    print(f"settings: depth slider moved to {repeats} unseen values at and below {depth}, width {width}\n")
    down = [depth - i for i in range(1, repeats + 1)]
    even = [depth - depth % 2 - 2 * i for i in range(1, repeats + 1)]
    rows = [
        bench_explorer(
            "gsc",
            lambda: widgets.gsc_explorer(depth=depth, width=width, device=device, max_depth=max(60, depth)),
            "depth",
            down,
        ),
        bench_explorer(
            "gsc (batch norm)",
            lambda: widgets.gsc_explorer(
                depth=depth, width=width, norm="batch", device=device, max_depth=max(60, depth)
            ),
            "depth",
            down,
        ),
        bench_explorer(
            "domain",
            lambda: widgets.domain_explorer(
                depth=depth, width=width, device=device, max_depth=max(60, depth)
            ),
            "depth",
            down,
        ),
        bench_explorer(
            "dilution",
            lambda: widgets.dilution_explorer(
                depth=depth - depth % 2, width=width, device=device, max_depth=max(60, depth)
            ),
            "depth",
            even,
        ),
        bench_explorer(
            "chain",
            lambda: widgets.chain_explorer(depth=2 * depth, max_depth=max(100, 2 * depth)),
            "depth",
            [2 * depth - i for i in range(1, repeats + 1)],
        ),
    ]
    print(
        "| explorer | redraw wall (median) | max | CPU | experiment | draw | PNG render | cached | "
        f"<= {TARGET_REDRAW_S} s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        ok = "yes" if row["wall"] <= TARGET_REDRAW_S else "NO"
        print(
            f"| {row['name']} | {row['wall']:.3f} s | {row['max_wall']:.3f} s | {row['cpu']:.3f} s | "
            f"{row['experiment']:.3f} s | {row['draw']:.3f} s | {row['render']:.3f} s | "
            f"{row['cached'] * 1000:.1f} ms | {ok} |"
        )
    print()
    train_rows = [
        (
            "quick: depth 20 -> 19..., width 64, 200 steps",
            lambda: widgets.training_explorer(depth=20, width=64, device=device),
            [20 - i for i in range(1, min(repeats, 3) + 1)],
        ),
        (
            f"depth {depth} -> ..., width {width}, 200 steps",
            lambda: widgets.training_explorer(
                depth=depth, width=width, device=device, max_depth=max(60, depth)
            ),
            [depth - i for i in range(1, min(repeats, 3) + 1)],
        ),
    ]
    print(
        f"| training explorer | first progress (median) | max | whole run drawn | <= {TARGET_PROGRESS_S} s |"
    )
    print("|---|---|---|---|---|")
    for name, make, values in train_rows:
        row = bench_training(make, values)
        ok = "yes" if row["max_first"] <= TARGET_PROGRESS_S else "NO"
        print(
            f"| {name} | {row['first_progress']:.3f} s | {row['max_first']:.3f} s | {row['total']:.2f} s | "
            f"{ok} |"
        )


if __name__ == "__main__":
    main()
