"""Where and how a report was produced: the machine in words, CPU seconds, the run's record."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import torch

from explodegrad.core.device import DeviceChoice, cpu_model


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
    code: str = ""


def machine_description(device: DeviceChoice | None = None) -> str:
    """The machine in words: OS, CPU model and cores, GPU when used, torch and Python versions."""
    model = cpu_model()
    gpu = f", GPU {device.name}" if device is not None and device.is_gpu else ""
    return (
        f"{platform.system()} {platform.machine()}, {model}, {os.cpu_count()} CPU cores visible{gpu}; "
        f"torch {torch.__version__}, Python {platform.python_version()}"
    )


def cpu_seconds() -> float | None:
    """User + system CPU seconds of this process and its finished children (None off Unix)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _git(*arguments: str) -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        done = subprocess.run(["git", *arguments], cwd=root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def source_state() -> tuple[str, bool]:
    """The commit the code runs from, and whether tracked files differ from it (read with git)."""
    commit = _git("rev-parse", "HEAD") or "unknown"
    return commit, bool(_git("status", "--porcelain", "--untracked-files=no"))


#: What counts as the code of a run: the package and its dependencies (a report written into
#: ``docs/`` changes tracked files there, which is not a change of code).
CODE_PATHS = ("explodegrad", "pyproject.toml")
#: :func:`code_version` outside a git checkout.
UNKNOWN_CODE = "unknown"


def code_version() -> str:
    """The code a run uses, in words: the commit's first 12 hex digits, then, when the package's
    tracked files differ from it, ``+ uncommitted changes <hash>`` (the first 8 hex digits of the
    SHA-256 of ``git diff HEAD`` over :data:`CODE_PATHS`, so two different edits read
    differently); :data:`UNKNOWN_CODE` outside a git checkout."""
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return UNKNOWN_CODE
    diff = _git("diff", "HEAD", "--", *CODE_PATHS)
    if not diff:
        return commit[:12]
    return f"{commit[:12]} + uncommitted changes {hashlib.sha256(diff.encode()).hexdigest()[:8]}"
