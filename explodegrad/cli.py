"""The command line: ``python -m explodegrad reproduce|claims`` (or the ``explodegrad`` script).

``claims`` judges every claim of the course (:mod:`explodegrad.claims`) at a scale and prints
each verdict with the numbers it used; ``--json FILE`` also writes them.

``reproduce`` runs the headline experiments of chapters 03-08 headless, through the same
library functions the notebooks use, and writes a Markdown report, its figures and a JSON of
every number (see :mod:`explodegrad.reproduce`). Bad arguments end with a usage message and
exit status 2, before anything is computed (the output folder too: a file, a folder that
cannot be created or written, an empty name); an interrupted run (Ctrl-C or SIGTERM) says
what it kept, exits with 130 or 143, and resumes from the parts it already wrote.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from explodegrad.core.device import DEVICE_CHOICES, DEVICE_ENV
from explodegrad.studies import stored

if TYPE_CHECKING:  # the reproduce package is imported only when a command needs it
    from explodegrad.reproduce import Part, ReportPlan

#: Exit status of a run stopped with Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED = 130
#: Exit status of a run stopped with SIGTERM (128 + SIGTERM), as shells report it.
TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that a run stops as it does on Ctrl-C."""


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (in the main thread only)."""

    def stop(signum: int, frame: object) -> None:
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: leave the default
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stopped(error: KeyboardInterrupt, kept: str) -> int:
    """Say what an interrupted command kept; the exit status of the signal that stopped it."""
    how = "terminated (SIGTERM)" if isinstance(error, Terminated) else "interrupted"
    print(f"\n{how}: {kept}", file=sys.stderr)
    return TERMINATED if isinstance(error, Terminated) else INTERRUPTED


def _writable_folder_problem(path: str) -> str | None:
    """Why ``path`` cannot be (created and) written as an output folder, or None; creates nothing."""
    if not path.strip():
        return f"{path!r} is not allowed: give a folder name (e.g. explodegrad-report)"
    target = os.path.abspath(os.path.expanduser(path))
    if os.path.exists(target):
        if not os.path.isdir(target):
            return f"{path!r} is a file, not a folder"
        if not os.access(target, os.W_OK | os.X_OK):
            return f"{path!r} is a folder this user cannot write to"
        return None
    parent = os.path.dirname(target)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        return f"{path!r} cannot be created: {parent!r} is a file, not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{path!r} cannot be created: {parent!r} is a folder this user cannot write to"
    return None


def _writable_file_problem(path: str) -> str | None:
    """Why ``path`` cannot be written as a file, or None; creates nothing."""
    if not path.strip():
        return f"{path!r} is not allowed: give a file name (e.g. verdicts.json)"
    target = os.path.abspath(os.path.expanduser(path))
    if os.path.isdir(target):
        return f"{path!r} is a folder, not a file"
    if os.path.exists(target):
        return None if os.access(target, os.W_OK) else f"{path!r} is a file this user cannot write to"
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        return f"{path!r} cannot be written: its folder {parent!r} does not exist"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{path!r} cannot be written: {parent!r} is a folder this user cannot write to"
    return None


DESCRIPTION = """\
Reproduce the study of Philipp, Song & Carbonell, "The exploding gradient problem demystified"
(arXiv:1712.05577), headless: the architecture table (GSC at initialization and its fitted rate,
sign diversity and pre-activation spread of the last hidden layer, effective depth at
initialization and after training, the learning rate a batched search chose, final training and
test error), the Taylor experiment, width against depth and the other headline experiments of
chapters 03-08. Writes, under OUT:

  report-<scale>-scale.md     the report: tables and figures, each with a one-line explanation
  results-<scale>-scale.json  every number
  figures-<scale>/            the figures as PNG
  parts/<scale>/              one result per experiment part; a rerun reuses them (resume)
"""

EPILOG = """\
scales:
  quick  depth 20, width 64, bundled digits, 200 SGD steps per run: a few minutes on a CPU
  paper  depth 50, width 100, CIFAR-10 (the digits stand in when it is not found), 10,000 steps:
         meant for a GPU, e.g. `--scale paper --device cuda --data-root ~/data`
  tiny   a smoke test of the pipeline in seconds; its numbers mean little

examples:
  python -m explodegrad reproduce                         # quick scale into ./explodegrad-report
  python -m explodegrad reproduce --scale paper --device cuda --out docs/
  python -m explodegrad reproduce --out run1 --fresh      # recompute every part
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not allowed: give an integer >= 1")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is not allowed: give an integer >= 0")
    return value


def _jobs(text: str) -> int | str:
    return "auto" if text == "auto" else _positive_int(text)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m explodegrad`` (one subcommand: ``reproduce``)."""
    from explodegrad import __version__
    from explodegrad.reproduce import REPORT_SCALES

    parser = argparse.ArgumentParser(
        prog="python -m explodegrad",
        description="explodegrad: why deep networks are hard to train, measured. Commands below.",
    )
    parser.add_argument("--version", action="version", version=f"explodegrad {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    reproduce = commands.add_parser(
        "reproduce",
        help="run the headline experiments headless and write a report",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    reproduce.add_argument(
        "--scale",
        choices=REPORT_SCALES,
        default="quick",
        help="experiment size: quick (CPU, minutes), paper (the paper's sizes, for a GPU) or tiny "
        "(a seconds-long smoke test); default: %(default)s",
    )
    reproduce.add_argument(
        "--device",
        choices=DEVICE_CHOICES,
        default=None,
        help=f"where to run: auto picks cuda, then mps, then cpu; default: ${DEVICE_ENV} or auto. "
        "Asking for a device that is not there is an error",
    )
    reproduce.add_argument(
        "--out",
        metavar="DIR",
        default="explodegrad-report",
        help="output folder, created when missing; default: %(default)s",
    )
    reproduce.add_argument(
        "--data-root",
        metavar="PATH",
        default=None,
        help="where CIFAR-10 is: a folder holding cifar-10-batches-py/ or cifar-10-python.tar.gz "
        "(default: $EXPLODEGRAD_DATA, then ~/.cache/explodegrad). Used by --scale paper; "
        "without it the bundled digits stand in and the report says so",
    )
    reproduce.add_argument(
        "--fresh",
        action="store_true",
        help="ignore the parts a previous run left in OUT/parts/<scale>/ and compute everything again "
        "(with --parts: the chosen parts; default: reuse every part whose scale and settings match, "
        "i.e. resume)",
    )
    reproduce.add_argument(
        "--jobs",
        type=_jobs,
        default="auto",
        metavar="N",
        help="experiment parts computed at once, each in its own process (1: one after another in "
        "this process); 'auto' is one per CPU core, at most 8 (on a GPU several processes keep it "
        "busy: networks this small are launch-bound), 1 on an Apple GPU; default: %(default)s",
    )
    reproduce.add_argument(
        "--steps",
        type=_positive_int,
        default=None,
        metavar="N",
        help="training steps of every training run (default: the scale's: 200 quick, 10000 paper)",
    )
    reproduce.add_argument(
        "--seed",
        type=_non_negative_int,
        default=0,
        help="seed of every weight draw, minibatch order, batch and probe; default: %(default)s",
    )
    reproduce.add_argument(
        "--quiet", action="store_true", help="print only the paths written, not the progress lines"
    )
    reproduce.add_argument(
        "--parts",
        metavar="NAMES",
        default=None,
        help="compute only these parts (comma-separated names, see --list-parts) and write no "
        "report: split a long run over machines or time slices; a run without --parts then reuses "
        "them and writes the report",
    )
    reproduce.add_argument(
        "--list-parts",
        action="store_true",
        help="print the plan's parts (name, relative cost, chapters; only those of --parts when "
        "given) and whether OUT holds each one finished, and where and with which code it was "
        "computed, then stop without computing anything",
    )
    reproduce.set_defaults(command_parser=reproduce)

    claims = commands.add_parser(
        "claims",
        help="judge every claim the course makes and print the verdicts",
        description="Judge every claim of the course's chapters 01-08 (explodegrad.claims) on freshly "
        "computed studies: holds, does not hold or inconclusive, with the numbers used. "
        "Studies that train run several seeds. Exit status 0 whatever the verdicts.",
    )
    claims.add_argument(
        "--scale",
        choices=("quick", "evidence", "paper"),
        default="quick",
        help="experiment size (see `reproduce --help`; evidence: the claims judged on the stored "
        "evidence shipped with the package); default: %(default)s",
    )
    claims.add_argument(
        "--seeds",
        type=_positive_int,
        default=None,
        metavar="N",
        help="seeds of every study that trains (default: the scale's: 3 quick, 5 paper)",
    )
    claims.add_argument(
        "--device",
        choices=DEVICE_CHOICES,
        default=None,
        help=f"where to run (default: ${DEVICE_ENV}, then the CPU)",
    )
    claims.add_argument(
        "--chapter",
        choices=("01", "02", "03", "04", "05", "06", "07", "08"),
        default=None,
        help="only this chapter's claims",
    )
    claims.add_argument(
        "--claim",
        action="append",
        default=None,
        metavar="ID",
        dest="claim_ids",
        help="only this claim (repeatable), e.g. 04/batch-norm-explodes",
    )
    claims.add_argument("--json", metavar="FILE", default=None, help="also write the verdicts as JSON")
    claims.add_argument("--quiet", action="store_true", help="do not print progress lines")
    claims.set_defaults(command_parser=claims)

    evidence = commands.add_parser(
        "evidence",
        help="compute the stored evidence (studies at the evidence scale) with its provenance",
        description="Run the studies whose results ship with the package as stored evidence "
        "(explodegrad/studies/evidence_data/*.json) at the evidence scale, and write each with "
        "its provenance: commit, command, machine, device, torch, date, wall time, seeds, data "
        "and checksum, study version. CIFAR-10 is read from --data-root or $EXPLODEGRAD_DATA.",
    )
    evidence.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"which stored files to compute (default: all): {', '.join(stored.ENTRIES)}",
    )
    evidence.add_argument(
        "--device", choices=DEVICE_CHOICES, default=None, help="where to run (default: the CPU)"
    )
    evidence.add_argument(
        "--seeds", type=_positive_int, default=None, metavar="N", help="seeds (default: the scale's, 3)"
    )
    evidence.add_argument(
        "--out", default=None, help="folder to write to (default: the package's evidence_data/)"
    )
    evidence.add_argument("--data-root", default=None, help="folder holding cifar-10-batches-py")
    evidence.set_defaults(command_parser=evidence)
    return parser


def _check_reproduce_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse, with a usage error, what argparse cannot see: a bad output folder, a missing
    device or data folder."""
    from explodegrad.core.device import pick_device
    from explodegrad.core.scales import cifar10_available

    problem = _writable_folder_problem(args.out)
    if problem is not None:
        parser.error(f"argument --out: {problem}")
    try:
        pick_device(args.device)
    except ValueError as error:
        parser.error(f"argument --device: {error}")
    if args.data_root is not None:
        if not os.path.exists(args.data_root):
            parser.error(f"argument --data-root: {args.data_root!r} does not exist")
        if not cifar10_available(args.data_root):
            parser.error(
                f"argument --data-root: no CIFAR-10 ('cifar-10-batches-py' or "
                f"'cifar-10-python.tar.gz') was found in {args.data_root!r}"
            )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 success, 2 bad arguments, 130 interrupted)."""
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(arguments)
    with _sigterm_as_interrupt():
        if args.command == "claims":
            return _claims(args)
        if args.command == "evidence":
            return _evidence(args, " ".join(["python -m explodegrad", shlex.join(arguments)]))
        return _reproduce(args, arguments)


def _reproduce(args: argparse.Namespace, arguments: list[str]) -> int:
    """``python -m explodegrad reproduce``: check every argument, then run or resume the report."""
    if args.list_parts:  # computes nothing: the output folder may be read-only, the device absent
        return _list_parts(args)
    _check_reproduce_arguments(args.command_parser, args)

    import matplotlib

    matplotlib.use("Agg")  # headless: figures go to files only
    from explodegrad.reproduce import reproduce

    if args.parts is not None:
        _plan_and_parts(args)  # a name the plan does not have is a usage error before any work
    command = " ".join(["python -m explodegrad", shlex.join(arguments)])
    try:
        result = reproduce(
            args.out,
            args.scale,
            device=args.device,
            fresh=args.fresh,
            jobs=args.jobs,
            steps=args.steps,
            seed=args.seed,
            data_root=args.data_root,
            command=command,
            log=None if args.quiet else print,
            parts=args.parts,
        )
    except KeyboardInterrupt as stopped:
        return _stopped(
            stopped,
            f"finished parts are kept in {args.out}/parts/{args.scale}/; run the same command again "
            "to resume",
        )
    if args.quiet and result.report is not None:
        print(f"report: {result.report}\nnumbers: {result.results}")
    elif args.quiet:
        print(f"parts: {result.parts_folder}; still to compute: {', '.join(result.pending) or 'none'}")
    return 0


def _plan_and_parts(args: argparse.Namespace) -> tuple[ReportPlan, list[Part]]:
    """The plan of ``reproduce``'s arguments and its parts (those of ``--parts`` when given; a
    name the plan does not have is a usage error)."""
    from explodegrad.reproduce import make_plan, plan_parts, select_parts

    plan = make_plan(args.scale, steps=args.steps, seed=args.seed, data_root=args.data_root)
    parts = plan_parts(plan)
    if args.parts is not None:
        try:
            parts = select_parts(parts, args.parts)
        except ValueError as error:
            args.command_parser.error(f"argument --parts: {error}")
    return plan, parts


def _list_parts(args: argparse.Namespace) -> int:
    """``reproduce --list-parts``: the plan's parts and what OUT holds of them; computes nothing."""
    from explodegrad.reproduce import PartStore, part_status

    plan, parts = _plan_and_parts(args)
    store = PartStore(os.path.join(args.out, "parts", plan.scale.name))
    print(f"{plan.describe()}\nparts in {store.folder}:")
    for row in part_status(parts, plan, store):
        if row["status"] == "stored":
            where = ", ".join(
                [f"{row['device']}, {row['seconds']:.1f} s"]
                + ([row["machine"]] if row["machine"] else [])
                + ([f"commit {row['code']}"] if row["code"] else [])
            )
            state = f"stored ({where})"
        else:
            state = f"to compute ({row['why']})"
        print(f"  {row['part']:<24} cost {row['cost']:>4.1f}  {state}; chapters {row['chapters']}")
    return 0


def _claims(args: argparse.Namespace) -> int:
    """``python -m explodegrad claims``: judge the claims, print a table, optionally write JSON."""
    import json

    from explodegrad import claims
    from explodegrad.core.device import pick_device
    from explodegrad.core.scales import SCALES

    parser = args.command_parser
    try:
        device = pick_device(args.device or os.environ.get(DEVICE_ENV) or "cpu")
        if args.claim_ids:
            for claim_id in args.claim_ids:
                claims.get_claim(claim_id)
    except ValueError as error:
        parser.error(str(error))
    if args.json is not None:
        problem = _writable_file_problem(args.json)
        if problem is not None:
            parser.error(f"argument --json: {problem}")
    try:
        judgements = claims.evaluate(
            SCALES[args.scale],
            args.seeds,
            device,
            chapter=args.chapter,
            claim_ids=args.claim_ids,
            log=None if args.quiet else print,
        )
    except KeyboardInterrupt as stopped:
        return _stopped(stopped, "no verdict was printed or written; run the same command again")
    print(claims.table(judgements))
    counts = {verdict: sum(j.verdict == verdict for j in judgements) for verdict in claims.VERDICTS}
    print(", ".join(f"{n} {verdict}" for verdict, n in counts.items()) + f" ({len(judgements)} claims)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(
                [
                    {"id": j.claim_id, "sentence": j.sentence, "verdict": j.verdict, "measured": j.line}
                    for j in judgements
                ],
                handle,
                indent=1,
            )
    return 0


def _evidence(args: argparse.Namespace, command: str) -> int:
    """``python -m explodegrad evidence``: compute stored evidence files."""
    from explodegrad.reproduce.evidence import EVIDENCE, compute, source_state
    from explodegrad.studies.stored import EVIDENCE_DIR

    parser = args.command_parser
    unknown = [name for name in args.names if name not in EVIDENCE]
    if unknown:
        parser.error(f"argument NAME: {', '.join(map(repr, unknown))} not one of {', '.join(EVIDENCE)}")
    if args.data_root is not None:
        if not os.path.isdir(args.data_root):
            parser.error(f"argument --data-root: {args.data_root!r} is not a folder")
        os.environ["EXPLODEGRAD_DATA"] = args.data_root
    if args.out is not None:
        problem = _writable_folder_problem(args.out)
        if problem is not None:
            parser.error(f"argument --out: {problem}")
    out_dir = args.out or EVIDENCE_DIR
    source = source_state()  # once: the files this command writes do not count as changes
    try:
        for name in args.names or list(EVIDENCE):
            compute(
                name, out_dir=out_dir, device=args.device, seeds=args.seeds, command=command, source=source
            )
    except KeyboardInterrupt as stopped:
        return _stopped(stopped, f"the files finished before the stop are kept in {out_dir}")
    return 0


if __name__ == "__main__":  # pragma: no cover - `python -m explodegrad` goes through __main__.py
    raise SystemExit(main())
