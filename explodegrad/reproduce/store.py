"""The parts store: finished parts on disk, their keys, and what a resumed run can reuse.

A part is kept as ``<name>.json`` (key and numbers) and ``<name>.pkl`` (result objects). It is
reused when its key (format version, scale, seed, searched learning rates and the part's own
options) matches and its pickle loads; anything else is computed again. The pickles are
trusted input: only resume from folders you wrote.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import pickle
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from explodegrad.core.data import Dataset
from explodegrad.core.scales import load_scale_data
from explodegrad.core.seeds import seed_everything
from explodegrad.reproduce.jsonable import _dump_json, _write_atomic, to_jsonable
from explodegrad.reproduce.parts import Part
from explodegrad.reproduce.plan import FORMAT_VERSION, ReportPlan


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
        return StoredPart(
            part.name,
            stored.get("numbers", {}),
            objects,
            float(stored.get("wall_time", 0.0)),
            str(stored.get("device", "")),
            computed=False,
        )

    def save(
        self, part: Part, plan: ReportPlan, objects: dict[str, Any], wall_time: float, device: str
    ) -> StoredPart:
        """Store a finished part: the pickle first, then the JSON that marks it complete."""
        self.folder.mkdir(parents=True, exist_ok=True)
        json_path, pickle_path = self.paths(part.name)
        json_path.unlink(missing_ok=True)
        numbers = to_jsonable(objects)
        _write_atomic(pickle_path, pickle.dumps(objects, protocol=pickle.HIGHEST_PROTOCOL))
        record = {
            "key": part_key(part, plan),
            "title": part.title,
            "chapters": part.chapters,
            "wall_time": wall_time,
            "device": device,
            "finished": _dt.datetime.now().isoformat(timespec="seconds"),
            "numbers": numbers,
        }
        _write_atomic(json_path, _dump_json(record))
        return StoredPart(part.name, numbers, objects, wall_time, device, computed=True)


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


def compute_part(part: Part, plan: ReportPlan, device: str, folder: str) -> float:
    """Compute one part and store it in ``folder``; return its wall time (runs in workers too)."""
    seed_everything(plan.seed)
    data = load_plan_data(plan, device)
    start = time.perf_counter()
    objects = part.run(plan, data, part.options)
    wall_time = time.perf_counter() - start
    PartStore(folder).save(part, plan, objects, wall_time, device)
    return wall_time


def pending_parts(
    parts: Sequence[Part], plan: ReportPlan, store: PartStore, fresh: bool = False
) -> tuple[dict[str, StoredPart], list[Part]]:
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
