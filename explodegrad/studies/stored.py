"""Stored evidence: study results computed once at the evidence scale, shipped with the package.

Some studies (the depth limit of chapter 04 on CIFAR-10) take half an hour on a CPU; a
notebook shows their stored result instead, labelled with where it came from, and can rerun
them. A stored file is a JSON document in ``explodegrad/studies/evidence_data/``::

    {"schema": "explodegrad.stored-evidence/1", "name": ..., "study": "depth_limit",
     "study_version": 1, "provenance": {...}, "result": {...}}

``provenance`` says how it was made: the commit (and whether the tree had uncommitted
changes), the exact command, the machine, CPU or GPU, torch and Python versions, the date,
the wall time, the seeds, the data set (name, where it came from, its size and a checksum of
the arrays) and the scale. ``result`` is the study result's ``to_dict()``; the study module's
result class rebuilds it (``from_dict``). A file whose ``study_version`` differs from its
study module's ``STUDY_VERSION`` is *stale*: the study's computation changed since, and a test
fails until the file is computed again (``python -m explodegrad evidence``).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from explodegrad.core.checks import check_choice
from explodegrad.core.data import Dataset

#: The format of a stored file.
SCHEMA = "explodegrad.stored-evidence/1"
#: Where the stored files live (package data).
EVIDENCE_DIR = Path(__file__).resolve().parent / "evidence_data"
#: The studies that can be stored: module name (in :mod:`explodegrad.studies`) -> result class.
STORED_STUDIES = {
    "depth_limit": "DepthStudy",
    "optimizers": "OptimizerStudy",
    "effective_depth": "TrainedDepthStudy",
}
#: What every ``provenance`` holds, and what its ``data`` entry holds.
PROVENANCE_KEYS = (
    "commit",
    "uncommitted_changes",
    "command",
    "machine",
    "device",
    "torch",
    "python",
    "date",
    "wall_time_s",
    "seeds",
    "data",
    "scale",
)
DATA_KEYS = ("name", "source", "n_train", "n_test", "checksum")


def data_checksum(data: Dataset) -> str:
    """``sha256:`` of the data set's arrays (inputs as float32, labels as int64), train then test.

    The same examples give the same checksum whatever device or dtype they were loaded in.
    """
    digest = hashlib.sha256()
    for tensor, dtype in (
        (data.x_train, np.float32),
        (data.y_train, np.int64),
        (data.x_test, np.float32),
        (data.y_test, np.int64),
    ):
        digest.update(np.ascontiguousarray(tensor.detach().cpu().numpy().astype(dtype)).tobytes())
    return "sha256:" + digest.hexdigest()


def validate(document: Any) -> list[str]:
    """What is wrong with a stored document, in words (an empty list: nothing)."""
    if not isinstance(document, dict):
        return [f"the document is a {type(document).__name__}, not a JSON object"]
    problems = []
    if document.get("schema") != SCHEMA:
        problems.append(f"schema is {document.get('schema')!r}, expected {SCHEMA!r}")
    for key, kind in (
        ("name", str),
        ("study", str),
        ("study_version", int),
        ("provenance", dict),
        ("result", dict),
    ):
        if not isinstance(document.get(key), kind):
            problems.append(f"{key} must be of type {kind.__name__}, got {type(document.get(key)).__name__}")
    if isinstance(document.get("study"), str) and document["study"] not in STORED_STUDIES:
        problems.append(f"study {document['study']!r} is not one of {sorted(STORED_STUDIES)}")
    provenance = document.get("provenance")
    if isinstance(provenance, dict):
        problems += [f"provenance lacks {key!r}" for key in PROVENANCE_KEYS if key not in provenance]
        data = provenance.get("data")
        if isinstance(data, dict):
            problems += [f"provenance.data lacks {key!r}" for key in DATA_KEYS if key not in data]
            if not str(data.get("checksum", "")).startswith("sha256:"):
                problems.append("provenance.data.checksum must start with 'sha256:'")
        elif "data" in provenance:
            problems.append("provenance.data must be an object")
        if "wall_time_s" in provenance and not isinstance(provenance["wall_time_s"], (int, float)):
            problems.append("provenance.wall_time_s must be a number of seconds")
        if "seeds" in provenance and not (
            isinstance(provenance["seeds"], list) and all(isinstance(s, int) for s in provenance["seeds"])
        ):
            problems.append("provenance.seeds must be a list of integers")
    return problems


@dataclass(frozen=True)
class StoredEvidence:
    """One stored study result and how it was made.

    Attributes:
        name: the file's name without ``.json``, e.g. ``depth-limit-cifar10``.
        study: the study module, e.g. ``depth_limit``.
        study_version: the study's ``STUDY_VERSION`` when it was computed.
        provenance: how it was made (see the module docstring).
        result: the study result, rebuilt.
    """

    name: str
    study: str
    study_version: int
    provenance: dict[str, Any]
    result: Any

    @property
    def stale(self) -> bool:
        """Whether the study's computation changed since (its ``STUDY_VERSION`` differs)."""
        module = importlib.import_module(f"explodegrad.studies.{self.study}")
        return self.study_version != module.STUDY_VERSION

    def label(self) -> str:
        """Where the numbers come from, in one line, for the notebooks and the report."""
        p = self.provenance
        data = p["data"]
        minutes = p["wall_time_s"] / 60
        dirty = " plus uncommitted changes" if p.get("uncommitted_changes") else ""
        return (
            f"stored evidence '{self.name}': computed {p['date'][:10]} on {p['device']} "
            f"({p['machine']}) in {minutes:.0f} min, commit {str(p['commit'])[:10]}{dirty}, "
            f"seeds {', '.join(map(str, p['seeds']))}, {data['name']} ({data['n_train']} training "
            f"examples, {data['source']})" + (" — STALE: the study changed since" if self.stale else "")
        )


def stored_names() -> list[str]:
    """The names of the stored files shipped with the package."""
    return sorted(path.stem for path in EVIDENCE_DIR.glob("*.json"))


def read(path: str | Path) -> StoredEvidence:
    """A stored file, validated and rebuilt; ``ValueError`` says what is wrong with it."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable JSON file ({error})") from None
    problems = validate(document)
    if problems:
        raise ValueError(f"{path}: not a stored-evidence file: " + "; ".join(problems))
    module = importlib.import_module(f"explodegrad.studies.{document['study']}")
    result_class = getattr(module, STORED_STUDIES[document["study"]])
    return StoredEvidence(
        name=document["name"],
        study=document["study"],
        study_version=document["study_version"],
        provenance=document["provenance"],
        result=result_class.from_dict(document["result"]),
    )


def load(name: str) -> StoredEvidence:
    """The stored evidence ``name`` shipped with the package (see :func:`stored_names`)."""
    name = check_choice("name", name, stored_names())
    return read(EVIDENCE_DIR / f"{name}.json")


def document(result: Any, *, name: str, study: str, provenance: dict[str, Any]) -> dict[str, Any]:
    """The JSON document that stores ``result`` (validated before it is returned)."""
    module = importlib.import_module(f"explodegrad.studies.{study}")
    doc = {
        "schema": SCHEMA,
        "name": name,
        "study": study,
        "study_version": module.STUDY_VERSION,
        "provenance": provenance,
        "result": result.to_dict(),
    }
    problems = validate(json.loads(json.dumps(doc)))
    if problems:
        raise ValueError("the stored document would be invalid: " + "; ".join(problems))
    return doc


# ----------------------------------------------------------------------------- what is stored


@dataclass(frozen=True)
class EvidenceEntry:
    """One stored file: its name, the study module, the data set, how to compute it at the
    evidence scale (``compute(data=, device=, seeds=, progress=)``) and how to rerun the same
    question at the quick scale on any machine (``quick(device=)``, minutes on a CPU)."""

    name: str
    study: str
    data: str
    compute: Callable[..., Any]
    quick: Callable[..., Any]


def _quick_depth_limit(device: Any = None) -> Any:
    from explodegrad.core.scales import QUICK
    from explodegrad.studies import depth_limit

    return depth_limit.depth_study(
        depth_limit.EVIDENCE_ARCHITECTURES, lrs=depth_limit.EVIDENCE_LRS, scale=QUICK, device=device
    )


def _quick_optimizers(architecture: str, device: Any = None) -> Any:
    from explodegrad.core.scales import QUICK
    from explodegrad.studies import optimizers
    from explodegrad.studies.common import resolve_data

    data = resolve_data(scale=QUICK, device=device)
    config = optimizers.EVIDENCE_ARCHITECTURES[architecture].config(
        QUICK.depth, QUICK.width, data.in_features, data.num_classes
    )
    return optimizers.optimizer_study(config, scale=QUICK, data=data)


def _quick_trained_depth(device: Any = None) -> Any:
    from explodegrad.core.scales import QUICK
    from explodegrad.studies import depth_limit, effective_depth
    from explodegrad.studies.common import resolve_data

    data = resolve_data(scale=QUICK, device=device)
    study = depth_limit.depth_study(
        depth_limit.EVIDENCE_ARCHITECTURES, depths=(QUICK.depth,), lrs=depth_limit.EVIDENCE_LRS, data=data
    )
    return effective_depth.trained_depth_study(study, data)


def _compute(study: str, function: str, **fixed: Any) -> Callable[..., Any]:
    def run(**arguments: Any) -> Any:
        module = importlib.import_module(f"explodegrad.studies.{study}")
        return getattr(module, function)(**fixed, **arguments)

    return run


#: Every stored file, by name: how it is computed and rerun.
ENTRIES = {
    entry.name: entry
    for entry in (
        EvidenceEntry(
            "depth-limit-cifar10",
            "depth_limit",
            "cifar10",
            _compute("depth_limit", "depth_limit_evidence"),
            _quick_depth_limit,
        ),
        EvidenceEntry(
            "depth-limit-digits",
            "depth_limit",
            "digits",
            _compute("depth_limit", "depth_limit_evidence"),
            _quick_depth_limit,
        ),
        *(
            EvidenceEntry(
                f"optimizers-{key}-cifar10",
                "optimizers",
                "cifar10",
                _compute("optimizers", "optimizer_evidence", architecture=key),
                functools.partial(_quick_optimizers, key),
            )
            for key in ("relu-batch", "relu-none")
        ),
        # Retrains the depth-50 networks of the stored depth-limit study: computed after it.
        EvidenceEntry(
            "trained-depth-cifar10",
            "effective_depth",
            "cifar10",
            _compute("effective_depth", "trained_depth_evidence"),
            _quick_trained_depth,
        ),
    )
}


def result(name: str, rerun: str | None = None, *, device: Any = None, progress: bool = False) -> Any:
    """A stored study's result, or the same study run again.

    Args:
        name: a stored file's name (:data:`ENTRIES`).
        rerun: None: the stored result (instant); ``"quick"``: the same question at the quick
            scale (the bundled digits, depth 20, width 64; minutes on any CPU; numbers that
            differ from the stored ones, judged by the same claims); ``"evidence"``: the stored
            study computed again here (minutes on a GPU, up to half an hour on a CPU).
        device: where a rerun trains (see :func:`explodegrad.core.device.resolve_device`).
        progress: show progress bars during an evidence-scale rerun.
    """
    entry = ENTRIES[check_choice("name", name, tuple(ENTRIES))]
    if rerun is None:
        return load(name).result
    rerun = check_choice("rerun", rerun, ("quick", "evidence"))
    if rerun == "quick":
        return entry.quick(device=device)
    return entry.compute(data=entry.data, device=device, seeds=None, progress=progress)
