"""The parts store: finished parts on disk, their keys, and what a resumed run can reuse.

A part is kept as ``<name>.json`` (key, numbers and checksums) and ``<name>.pkl`` (result
objects). The JSON carries the SHA-256 of the pickle and of its own content, both written with
the part. A part is reused when its key (format version, scale, seed, searched learning rates
and the part's own options) matches, both checksums match, the pickle holds this part's
results and, for a claims part, its judgements are of the registry's claims as they read now;
anything else is computed again, and the run says which part and why (a truncated, edited or
swapped file, other settings, a claim added, removed or reworded). The pickles are trusted
input: only resume from folders you wrote.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import pickle
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from explodegrad.core.data import Dataset
from explodegrad.core.scales import load_scale_data
from explodegrad.core.seeds import seed_everything
from explodegrad.reproduce.jsonable import _dump_json, _write_atomic, to_jsonable
from explodegrad.reproduce.parts import Part, is_claims_part, stale_claims
from explodegrad.reproduce.plan import FORMAT_VERSION, Log, ReportPlan

#: What a part's JSON says when nothing is stored yet (a plain first run: nothing to report).
MISSING = "not computed yet"


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
        machine: the machine it was computed on, in words (empty for parts stored before this
            was recorded): a resumed report may join parts of several machines.
        code: the code it was computed with (:func:`~explodegrad.reproduce.machine.code_version`;
            empty for parts stored before this was recorded). The key does not hold it, so a
            resumed run reuses parts of earlier commits, and the report names them.
    """

    name: str
    numbers: dict[str, Any]
    objects: dict[str, Any]
    wall_time: float
    device: str
    computed: bool
    machine: str = ""
    code: str = ""


def part_key(part: Part, plan: ReportPlan) -> dict[str, Any]:
    """What must match for a stored part to be reused (the device and data folder need not)."""
    from explodegrad import __version__

    scale = {k: v for k, v in dataclasses.asdict(plan.scale).items() if k not in ("reason", "data_root")}
    return to_jsonable(
        {
            "format": FORMAT_VERSION,
            "explodegrad": __version__,
            "part": part.name,
            "scale": scale,
            "seed": plan.seed,
            "lrs": list(plan.lrs),
            "options": part.options,
        }
    )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _record_checksum(record: dict[str, Any]) -> str:
    """The SHA-256 of a part's JSON record without its own checksum field (canonical form)."""
    body = {k: v for k, v in record.items() if k != "sha256"}
    return _sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode())


def _key_difference(stored: Any, wanted: dict[str, Any]) -> str:
    """Which entries of two part keys differ, in words (``seed: 0 -> 1``)."""
    if not isinstance(stored, dict):
        return "its key is missing"
    changes = []
    for name in sorted(set(stored) | set(wanted)):
        old, new = stored.get(name), wanted.get(name)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            inner = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
            changes += [f"{name}.{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in inner]
        else:
            changes.append(f"{name}: {old!r} -> {new!r}")
    return "; ".join(changes)


class PartStore:
    """The folder of finished parts: ``<name>.json`` (key, numbers, checksums) and ``<name>.pkl``."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def paths(self, name: str) -> tuple[Path, Path]:
        """The JSON and pickle paths of a part."""
        return self.folder / f"{name}.json", self.folder / f"{name}.pkl"

    def _verified(self, part: Part, plan: ReportPlan) -> tuple[dict[str, Any] | None, bytes, str]:
        """The part's record and pickle bytes and ``""`` when its key and both checksums match,
        else None, ``b""`` and why not (:data:`MISSING` when it was never stored); nothing is
        unpickled."""
        json_path, pickle_path = self.paths(part.name)
        if not json_path.exists():
            return None, b"", MISSING
        try:
            stored = json.loads(json_path.read_bytes())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            return None, b"", f"its record {json_path.name} is unreadable, truncated or edited ({error})"
        if not isinstance(stored, dict) or "sha256" not in stored:
            return None, b"", f"its record {json_path.name} has no checksum (written by an older explodegrad)"
        if stored["sha256"] != _record_checksum(stored):
            return None, b"", f"its record {json_path.name} does not match its checksum (edited or truncated)"
        wanted = part_key(part, plan)
        if stored.get("key") != wanted:
            difference = _key_difference(stored.get("key"), wanted)
            return None, b"", f"it was computed with other settings ({difference})"
        if is_claims_part(part.name):
            numbers = stored.get("numbers")
            stale = stale_claims(part, plan, numbers.get("judgements") if isinstance(numbers, dict) else None)
            if stale:
                return None, b"", stale
        try:
            data = pickle_path.read_bytes()
        except OSError as error:
            return (
                None,
                b"",
                f"its objects file {pickle_path.name} is missing or unreadable ({error.strerror})",
            )
        if _sha256(data) != stored.get("pickle_sha256"):
            why = (
                f"its objects file {pickle_path.name} does not match the checksum in {json_path.name} "
                "(truncated, edited or another part's)"
            )
            return None, b"", why
        return stored, data, ""

    def inspect(self, part: Part, plan: ReportPlan) -> tuple[StoredPart | None, str]:
        """The stored part and ``""``, or None and why it cannot be reused (:data:`MISSING`
        when it was never stored)."""
        stored, data, why = self._verified(part, plan)
        if stored is None:
            return None, why
        pickle_path = self.paths(part.name)[1]
        try:
            objects = pickle.loads(data)
        except Exception as error:  # noqa: BLE001 - an unpickling failure raises almost anything
            return None, f"its objects file {pickle_path.name} could not be loaded ({type(error).__name__})"
        numbers = stored.get("numbers", {})
        if not isinstance(objects, dict) or not isinstance(numbers, dict) or set(objects) != set(numbers):
            return None, f"its objects file {pickle_path.name} holds results of another part"
        found = StoredPart(
            part.name,
            numbers,
            objects,
            float(stored.get("wall_time", 0.0)),
            str(stored.get("device", "")),
            computed=False,
            machine=str(stored.get("machine", "")),
            code=str(stored.get("code", "")),
        )
        return found, ""

    def holds(self, part: Part, plan: ReportPlan) -> bool:
        """Whether the part is stored for this plan, by its record's key and both checksums only
        (the objects are not unpickled: cheap enough to ask about every part of a plan)."""
        return self._verified(part, plan)[0] is not None

    def load(self, part: Part, plan: ReportPlan) -> StoredPart | None:
        """The stored part, or None when missing, written for another key, or failing its checksums."""
        return self.inspect(part, plan)[0]

    def save(
        self,
        part: Part,
        plan: ReportPlan,
        objects: dict[str, Any],
        wall_time: float,
        device: str,
        machine: str = "",
        code: str = "",
    ) -> StoredPart:
        """Store a finished part: the pickle first, then the JSON (with both checksums) that marks
        it complete."""
        self.folder.mkdir(parents=True, exist_ok=True)
        json_path, pickle_path = self.paths(part.name)
        json_path.unlink(missing_ok=True)
        numbers = to_jsonable(objects)
        data = pickle.dumps(objects, protocol=pickle.HIGHEST_PROTOCOL)
        _write_atomic(pickle_path, data)
        record = {
            "key": part_key(part, plan),
            "title": part.title,
            "chapters": part.chapters,
            "wall_time": wall_time,
            "device": device,
            "machine": machine,
            "code": code,
            "finished": _dt.datetime.now().isoformat(timespec="seconds"),
            "numbers": numbers,
            "pickle_sha256": _sha256(data),
        }
        record["sha256"] = _record_checksum(record)
        _write_atomic(json_path, _dump_json(record))
        return StoredPart(
            part.name, numbers, objects, wall_time, device, computed=True, machine=machine, code=code
        )


_DATA_CACHE: dict[tuple, Dataset] = {}


def load_plan_data(plan: ReportPlan, device: str | torch.device) -> Dataset:
    """The plan's data set on ``device`` (loaded once per process)."""
    key = (plan.scale, str(device), plan.seed, plan.data_root)
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()
        _DATA_CACHE[key] = load_scale_data(
            plan.scale, device=torch.device(device), seed=plan.seed, data_root=plan.data_root
        )
    return _DATA_CACHE[key]


def compute_part(
    part: Part, plan: ReportPlan, device: str, folder: str, machine: str = "", code: str = ""
) -> float:
    """Compute one part and store it in ``folder`` (with the ``machine`` it ran on and the
    ``code`` it ran, in words); return its wall time (runs in workers too)."""
    seed_everything(plan.seed)
    data = load_plan_data(plan, device)
    start = time.perf_counter()
    objects = part.run(plan, data, part.options)
    wall_time = time.perf_counter() - start
    PartStore(folder).save(part, plan, objects, wall_time, device, machine, code)
    return wall_time


def sort_parts(
    parts: Sequence[Part], plan: ReportPlan, store: PartStore, fresh: bool = False
) -> tuple[dict[str, StoredPart], list[Part], dict[str, str]]:
    """Split ``parts`` into those the store gives back (by name), those still to compute, and
    why each stored-but-refused part is recomputed (by name; parts never stored are not listed)."""
    stored: dict[str, StoredPart] = {}
    todo: list[Part] = []
    reasons: dict[str, str] = {}
    for part in parts:
        found, why = (None, MISSING) if fresh else store.inspect(part, plan)
        if found is None:
            todo.append(part)
            if why != MISSING:
                reasons[part.name] = why
        else:
            stored[part.name] = found
    return stored, todo, reasons


def select_parts(parts: Sequence[Part], names: Sequence[str] | str) -> list[Part]:
    """The parts named in ``names`` (a sequence, or one string with commas), in report order.

    Raises:
        TypeError: when ``names`` holds something other than strings.
        ValueError: for an empty selection or a name the plan does not have (the error lists
            the plan's part names).
    """
    if isinstance(names, str):
        names = [name.strip() for name in names.split(",") if name.strip()]
    if not isinstance(names, (list, tuple)):
        raise TypeError(
            f"parts={names!r} is not allowed: give part names as a list or one comma-separated string"
        )
    names = list(names)
    if not all(isinstance(name, str) for name in names):
        raise TypeError(f"parts={names!r} is not allowed: give part names as strings")
    known = [part.name for part in parts]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        problem = f"no part named {', '.join(map(repr, unknown))}" if unknown else "name at least one part"
        raise ValueError(
            f"parts={names!r} is not allowed: {problem}; this plan's parts are {', '.join(known)}"
        )
    return [part for part in parts if part.name in names]


def part_status(parts: Sequence[Part], plan: ReportPlan, store: PartStore) -> list[dict[str, Any]]:
    """One row per part: name, chapters, relative cost, and whether the store can give it back
    (``stored``, with the device and seconds it took, the machine and the code) or why not."""
    rows = []
    for part in parts:
        found, why = store.inspect(part, plan)
        row = {"part": part.name, "chapters": part.chapters, "cost": part.cost}
        if found is None:
            row |= {"status": "to compute", "why": why}
        else:
            row |= {
                "status": "stored",
                "device": found.device,
                "seconds": found.wall_time,
                "machine": found.machine,
                "code": found.code,
            }
        rows.append(row)
    return rows


def recompute_notice(name: str, reason: str, folder: Path) -> str:
    """The line a run prints for a stored part it computes again."""
    return (
        f"part {name!r} in {folder} is computed again: {reason} (--fresh, or fresh=True, recomputes "
        "every part)"
    )


def pending_parts(
    parts: Sequence[Part],
    plan: ReportPlan,
    store: PartStore,
    fresh: bool = False,
    log: Log | None = None,
) -> tuple[dict[str, StoredPart], list[Part]]:
    """Split ``parts`` into those the store can give back (by name) and those still to compute.

    With ``fresh`` every part is to compute. A part counts as stored only when its key and
    checksums match and its pickle holds its results (see :meth:`PartStore.inspect`); every
    stored part refused is announced with the reason, through ``log`` or, without one, as a
    :class:`RuntimeWarning`.
    """
    stored, todo, reasons = sort_parts(parts, plan, store, fresh)
    for name, reason in reasons.items():
        notice = recompute_notice(name, reason, store.folder)
        if log is not None:
            log(f"  {notice}")
        else:
            warnings.warn(notice, RuntimeWarning, stacklevel=2)
    return stored, todo


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)
