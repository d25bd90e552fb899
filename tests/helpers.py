"""Constants several test files share, defined once (``from helpers import TINY, CPU``).

They live here, not in ``conftest.py``, because two conftest modules (``tests/`` and
``tests/browser/``) share the module name ``conftest``, so ``from conftest import`` is ambiguous.
Fixtures shared by several files live in ``conftest.py``; helpers that build files live here.
"""

import pickle
from pathlib import Path

import numpy as np
import torch

from explodegrad.core.data import CIFAR10_FOLDER
from explodegrad.core.device import DeviceChoice
from explodegrad.core.scales import Scale

#: The test-only scale: a 6-deep, 8-wide network trained for 6 steps on 64 Gaussian examples
#: (the ``data`` fixture of ``conftest.py``); seconds per study, numbers that mean little.
TINY = Scale(
    name="tiny", depth=6, width=8, batch_size=16, train_steps=6, dataset="gaussian", n_train=64, n_test=16
)
#: The setup's device choice, pinned to the CPU, for code that takes one.
CPU = DeviceChoice(torch.device("cpu"), "CPU", "test")

#: The tiny CIFAR-10's class names and sizes (:func:`write_tiny_cifar10`).
CIFAR10_CLASS_NAMES = [f"class{i}".encode() for i in range(10)]


def _write_cifar10_batch(path: Path, n: int, offset: int) -> None:
    rng = np.random.default_rng(offset)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [(offset + i) % 10 for i in range(n)]
    with open(path, "wb") as handle:
        pickle.dump({b"data": data, b"labels": labels, b"batch_label": b"tiny"}, handle)


def write_tiny_cifar10(root: Path, per_batch: int = 4, n_test: int = 3) -> Path:
    """A tiny CIFAR-10 in the official layout under ``root`` (random pixels, labels cycling
    through the classes): five training batches of ``per_batch`` images and a test batch.
    Returns the extracted folder."""
    folder = Path(root) / CIFAR10_FOLDER
    folder.mkdir(parents=True)
    for i in range(1, 6):
        _write_cifar10_batch(folder / f"data_batch_{i}", per_batch, offset=10 * i)
    _write_cifar10_batch(folder / "test_batch", n_test, offset=99)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({b"label_names": CIFAR10_CLASS_NAMES, b"num_vis": 3072}, handle)
    return folder
