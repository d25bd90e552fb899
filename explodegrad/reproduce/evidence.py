"""Compute the stored evidence and write it with its provenance (``python -m explodegrad evidence``).

Each entry of :data:`EVIDENCE` is one stored file of :mod:`explodegrad.studies.stored`: a
study at the evidence scale on one data set. :func:`compute` runs it and writes the JSON
document, recording the commit, the exact command, the machine, the device, torch, the date,
the wall time, the seeds, the data set with its checksum, and the study's version stamp.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from explodegrad.core.checks import check_choice
from explodegrad.core.device import DeviceChoice, pick_device
from explodegrad.core.scales import EVIDENCE as EVIDENCE_SCALE
from explodegrad.core.seeds import resolve_seeds
from explodegrad.reproduce.machine import machine_description, source_state
from explodegrad.studies import stored
from explodegrad.studies.common import resolve_data

#: The stored files and how each is computed (defined with the stored format).
EVIDENCE = stored.ENTRIES


def _data_provenance(name: str, seeds: tuple[int, ...]) -> dict[str, Any]:
    scale = EVIDENCE_SCALE if name == "cifar10" else EVIDENCE_SCALE.with_(dataset=name)
    data = resolve_data(scale=scale, seed=seeds[0], device="cpu", dtype=torch.float32)
    source = data.source or name
    if name == "cifar10" and "shared" in str(source):
        source = f"{source} (a real CIFAR-10 subset in the official layout: the full set was absent)"
    return {
        "name": data.name,
        "source": str(source),
        "n_train": int(data.x_train.shape[0]),
        "n_test": int(data.x_test.shape[0]),
        "checksum": stored.data_checksum(data),
    }


def compute(
    name: str,
    *,
    out_dir: str | Path = stored.EVIDENCE_DIR,
    device: DeviceChoice | str | None = None,
    seeds: int | None = None,
    command: str = "",
    log: Callable[[str], None] | None = print,
    source: tuple[str, bool] | None = None,
) -> Path:
    """Run the stored study ``name`` and write ``<out_dir>/<name>.json``; return its path.

    ``source``: the (commit, uncommitted changes) to record, as :func:`source_state` read them
    when the command started (default: read now). A command that computes several files reads
    it once, so a file it wrote itself does not mark the next one's tree as changed: each file
    records the commit the whole command ran from (rerunning that command there gives them all).
    """
    entry = EVIDENCE[check_choice("name", name, tuple(EVIDENCE))]
    choice = device if isinstance(device, DeviceChoice) else pick_device(device or "cpu")
    chosen_seeds = resolve_seeds(seeds, EVIDENCE_SCALE.num_seeds)
    if log:
        log(f"{entry.name}: {entry.study} on {entry.data}, seeds {chosen_seeds}, {choice.name}")
    # The code that runs is the tree as it is now: record it before computing (a commit made
    # while a long run goes on must not be credited with its numbers).
    commit, uncommitted = source if source is not None else source_state()
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    result = entry.compute(
        data=entry.data, device=choice.device, seeds=chosen_seeds, progress=log is not None
    )
    wall = time.perf_counter() - clock
    provenance = {
        "commit": commit,
        "uncommitted_changes": uncommitted,
        "command": command or f"python -m explodegrad evidence {entry.name}",
        "machine": machine_description(choice),
        "device": "GPU" if choice.is_gpu else "CPU",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": started.isoformat(timespec="seconds"),
        "wall_time_s": round(wall, 1),
        "seeds": list(chosen_seeds),
        "data": _data_provenance(entry.data, chosen_seeds),
        "scale": {"name": EVIDENCE_SCALE.name, "describe": EVIDENCE_SCALE.describe()},
    }
    doc = stored.document(result, name=entry.name, study=entry.study, provenance=provenance)
    path = Path(out_dir) / f"{entry.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    if log:
        log(f"{entry.name}: {wall / 60:.1f} min, written to {path}")
    return path
