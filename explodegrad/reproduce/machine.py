"""Where and how a report was produced: the machine in words, CPU seconds, the run's record."""

from __future__ import annotations

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


def code_version() -> str:
    """The code a run uses, in words: the commit's first 12 hex digits, ``+ uncommitted changes``
    when tracked files differ from it, or ``unknown`` outside a git checkout."""
    commit, uncommitted = source_state()
    short = commit[:12] if commit != "unknown" else commit
    return short + (" + uncommitted changes" if uncommitted else "")
