"""The paper-scale report's wall time, extrapolated part by part from two short runs.

A part of ``python -m explodegrad reproduce`` costs a fixed amount (measuring the GSC, effective
depth, Taylor, the claims' init-time studies) plus an amount per training step. One short run
measures the sum only; two runs at different ``--steps`` separate them, part by part:

    t(part, S) = t(part, a) + (t(part, b) - t(part, a)) / (b - a) * (S - a)

The first H200 check charged every model-step at the stacked step's best cost and so
estimated 14.7 minutes; the two runs (20 and 100 steps) showed per-step costs of 35-78 ms per
table part, eager and launch-bound, and put the report above half an hour.

A part that did not finish in the longer run (its time ran out) is charged its shorter run's
time, so the total is then a lower bound and says so; so is a total whose shorter run did not
finish every part. The total is the sum of the parts, the wall time of ``--jobs 1`` only, so
logs of other runs are refused.

    python benchmarks/paper_time.py RUN20.log:20 RUN100.log:100   # the logs reproduce printed
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from explodegrad.core.scales import PAPER

#: Training steps of ``--scale paper``.
PAPER_STEPS = PAPER.train_steps
_DONE = re.compile(r"\[\d+/(?P<total>\d+)\] (?P<part>[\w.-]+): done in (?P<seconds>[\d.]+) s")
_STARTED = re.compile(r"\[\d+/(?P<total>\d+)\] (?P<part>[\w.-]+): (?!done in)")
_JOBS = re.compile(r"; (?P<jobs>\d+) job\(s\);")


@dataclass(frozen=True)
class PartTimes:
    """The parts one reproduce run finished (seconds each) and the ones it started only."""

    steps: int
    done: dict[str, float]
    unfinished: tuple[str, ...]
    total_parts: int = 0

    @property
    def complete(self) -> bool:
        """Whether the run finished every part it had to compute."""
        return bool(self.done) and len(self.done) == self.total_parts


def part_times(text: str, steps: int) -> PartTimes:
    """Parse reproduce's progress lines (``[i/n] part: done in X s``) from a log.

    Raises:
        ValueError: ``steps`` not a positive integer, or a log of a run with more than one job
            (its parts overlap in time, so their sum is not its wall time).
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r} is not allowed: the run's --steps, a positive integer")
    jobs = {int(m["jobs"]) for m in _JOBS.finditer(text)}
    if jobs - {1}:
        raise ValueError(
            f"text: a log of a run with {max(jobs)} jobs is not allowed: only --jobs 1 logs add up"
        )
    done = {m["part"]: float(m["seconds"]) for m in _DONE.finditer(text)}
    started = dict.fromkeys(m["part"] for m in _STARTED.finditer(text))
    totals = [int(m["total"]) for m in _STARTED.finditer(text)]
    return PartTimes(steps, done, tuple(p for p in started if p not in done), max(totals, default=0))


@dataclass(frozen=True)
class Extrapolation:
    """Seconds per part at ``target`` steps, their total, and whether it is only a lower bound."""

    target: int
    seconds: dict[str, float]
    per_step_ms: dict[str, float]
    lower_bound_parts: tuple[str, ...]
    short_run_complete: bool = True
    clamped_parts: tuple[str, ...] = ()

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    @property
    def lower_bound(self) -> bool:
        return bool(self.lower_bound_parts) or not self.short_run_complete

    def describe(self) -> str:
        """One line: the total and how it was reached."""
        bound = "at least " if self.lower_bound else "about "
        notes = []
        if self.lower_bound_parts:
            notes.append(
                f"{len(self.lower_bound_parts)} part(s) charged their short run only "
                f"({', '.join(self.lower_bound_parts)}): a lower bound"
            )
        if not self.short_run_complete:
            notes.append("the short run did not finish every part: a lower bound")
        if self.clamped_parts:
            notes.append(
                f"no per-step cost measured for {', '.join(self.clamped_parts)} (took less time longer)"
            )
        note = "".join(f"; {n}" for n in notes)
        return f"{bound}{self.total / 60:.1f} min at {self.target:,} steps ({len(self.seconds)} parts{note})"


def extrapolate(short: PartTimes, long: PartTimes, target: int = PAPER_STEPS) -> Extrapolation:
    """Each part's time at ``target`` steps, linear in the steps through the two runs.

    Every part the short run finished is counted. A part the long run did not finish is
    charged the short run's time (a lower bound); a negative slope (noise) is taken as 0 and
    the part named.

    Raises:
        ValueError: the runs' steps are not short < long <= target, or the short run finished no part.
    """
    if not short.steps < long.steps <= target:
        raise ValueError(
            f"steps: need short < long <= target, got {short.steps}, {long.steps}, {target} "
            "(give the shorter run first)"
        )
    if not short.done:
        raise ValueError("short: the run finished no part (no 'done in' line in its log)")
    seconds, per_step, bounded, clamped = {}, {}, [], []
    for part, at_short in short.done.items():
        if part in long.done:
            slope = (long.done[part] - at_short) / (long.steps - short.steps)
            if slope < 0:
                clamped.append(part)
                slope = 0.0
            per_step[part] = slope * 1e3
            seconds[part] = at_short + slope * (target - short.steps)
        else:
            seconds[part] = at_short
            bounded.append(part)
    return Extrapolation(target, seconds, per_step, tuple(bounded), short.complete, tuple(clamped))


def _run_argument(text: str) -> PartTimes:
    path, _, steps = text.rpartition(":")
    if not path or not steps.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected LOG:STEPS, e.g. run20.log:20")
    return part_times(Path(path).read_text(), int(steps))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("short", type=_run_argument, help="LOG:STEPS of the shorter run")
    parser.add_argument("long", type=_run_argument, help="LOG:STEPS of the longer run")
    parser.add_argument("--target", type=int, default=PAPER_STEPS, help="steps to extrapolate to")
    args = parser.parse_args(argv)
    result = extrapolate(args.short, args.long, args.target)
    print(
        f"{'part':<22} {'t@' + str(args.short.steps):>9} {'t@' + str(args.long.steps):>9} "
        f"{'ms/step':>8} {'t@' + str(args.target):>10}"
    )
    for part, seconds in result.seconds.items():
        longer = args.long.done.get(part)
        slope = result.per_step_ms.get(part)
        print(
            f"{part:<22} {args.short.done[part]:>9.1f} "
            + (f"{longer:>9.1f} {slope:>8.1f}" if longer is not None else f"{'-':>9} {'-':>8}")
            + f" {seconds:>10.0f}"
        )
    print(result.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
