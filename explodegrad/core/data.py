"""Data sets: real digits that need no download, synthetic Gaussians, and CIFAR-10.

* ``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, 64 features,
  10 classes). It ships inside scikit-learn, so every notebook runs offline.
* ``gaussian``: standard-normal inputs labelled by a random linear teacher; the inputs the
  paper's measurements at initialization use.
* ``cifar10``: the paper's data set, from the official "python version" archive. It is read
  from a local folder (``root`` argument or the ``EXPLODEGRAD_DATA`` environment variable) or
  downloaded once with its MD5 checksum verified.

Every loader returns a :class:`Dataset` with inputs standardized per feature (statistics of
the training split), a train/test split and tensors on the chosen device.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tarfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from explodegrad.core.checks import check_choice, check_int

DATASETS = ("digits", "gaussian", "cifar10")
DATA_ENV = "EXPLODEGRAD_DATA"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"


class DatasetNotFoundError(FileNotFoundError):
    """A data set is neither on disk nor downloadable; the message says how to get it."""


@dataclass
class Dataset:
    """A classification data set split into train and test tensors."""

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int
    class_names: tuple[str, ...] = field(default=())
    source: str = ""

    @property
    def in_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def device(self) -> torch.device:
        return self.x_train.device

    def to(self, device: Any) -> Dataset:
        """The same data on another device."""
        move = lambda t: t.to(device)  # noqa: E731 - tiny local helper
        return Dataset(
            self.name,
            move(self.x_train),
            move(self.y_train),
            move(self.x_test),
            move(self.y_test),
            self.num_classes,
            self.class_names,
            self.source,
        )

    def batch(self, size: int, seed: int = 0, split: str = "train") -> tuple[Tensor, Tensor]:
        """A fixed random batch (seeded), e.g. for measurements at initialization."""
        split = check_choice("split", split, ("train", "test"))
        x, y = (self.x_train, self.y_train) if split == "train" else (self.x_test, self.y_test)
        size = check_int("size", size, 1, int(x.shape[0]))
        order = torch.randperm(int(x.shape[0]), generator=torch.Generator().manual_seed(seed))[:size]
        order = order.to(x.device)
        return x[order], y[order]

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}: {len(self.x_train)} train / {len(self.x_test)} test, "
            f"{self.in_features} features, {self.num_classes} classes, on {self.device})"
        )


def _standardize(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)  # constant pixels (digits' borders) stay at 0
    return (x_train - mean) / std, (x_test - mean) / std


def _split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    return order[n_test:], order[:n_test]


def _make(
    name: str,
    x_tr: np.ndarray,
    y_tr: np.ndarray,
    x_te: np.ndarray,
    y_te: np.ndarray,
    num_classes: int,
    class_names: tuple[str, ...],
    source: str,
    device: Any,
    dtype: torch.dtype,
) -> Dataset:
    x_tr, x_te = _standardize(x_tr.astype(np.float64), x_te.astype(np.float64))
    as_x = lambda a: torch.as_tensor(a, dtype=dtype, device=device)  # noqa: E731
    as_y = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.long, device=device)  # noqa: E731
    return Dataset(name, as_x(x_tr), as_y(y_tr), as_x(x_te), as_y(y_te), num_classes, class_names, source)


def load_digits(
    test_fraction: float = 0.2, seed: int = 0, device: Any = None, dtype: torch.dtype = torch.float32
) -> Dataset:
    """scikit-learn's bundled 8x8 digits, standardized, split with a seeded permutation."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x, y = bunch.data, bunch.target
    train, test = _split(len(x), test_fraction, seed)
    names = tuple(str(i) for i in range(10))
    return _make(
        "digits",
        x[train],
        y[train],
        x[test],
        y[test],
        10,
        names,
        "scikit-learn bundled digits (offline)",
        device,
        dtype,
    )


def gaussian_data(
    n_train: int = 1024,
    n_test: int = 256,
    in_features: int = 64,
    num_classes: int = 10,
    seed: int = 0,
    device: Any = None,
    dtype: torch.dtype = torch.float32,
) -> Dataset:
    """Standard-normal inputs labelled by the argmax of a random linear teacher."""
    n_train = check_int("n_train", n_train, 1)
    n_test = check_int("n_test", n_test, 1)
    in_features = check_int("in_features", in_features, 1)
    num_classes = check_int("num_classes", num_classes, 2)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_train + n_test, in_features))
    teacher = rng.standard_normal((in_features, num_classes))
    y = (x @ teacher).argmax(axis=1)
    names = tuple(str(i) for i in range(num_classes))
    return _make(
        "gaussian",
        x[:n_train],
        y[:n_train],
        x[n_train:],
        y[n_train:],
        num_classes,
        names,
        f"synthetic Gaussian inputs (seed {seed})",
        device,
        dtype,
    )


def md5_of(path: Path) -> str:
    """The MD5 hex digest of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _how_to_get(searched: list[Path]) -> str:
    places = "\n".join(f"  - {p}" for p in searched)
    return (
        "CIFAR-10 was not found. Looked for the folder 'cifar-10-batches-py' or the archive "
        f"'{CIFAR10_ARCHIVE}' in:\n{places}\n"
        f"Get it by: (a) letting explodegrad download it (download=True, needs internet), or "
        f"(b) downloading {CIFAR10_URL} yourself and passing root='/path/to/folder' (or "
        f"setting {DATA_ENV}=/path/to/folder) where the folder holds the archive or its "
        "extracted 'cifar-10-batches-py'."
    )


def default_data_root() -> Path:
    """Where downloads go: ``$EXPLODEGRAD_DATA`` or ``~/.cache/explodegrad``."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "explodegrad"


def download_cifar10(root: Path, url: str = CIFAR10_URL, md5: str | None = CIFAR10_MD5) -> Path:
    """Download the official archive into ``root`` and verify its checksum; return its path."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    archive = root / CIFAR10_ARCHIVE
    partial = archive.with_suffix(".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise DatasetNotFoundError(
            f"Downloading CIFAR-10 from {url} failed ({error}).\n" + _how_to_get([root])
        ) from None
    if md5 is not None and md5_of(partial) != md5:
        partial.unlink(missing_ok=True)
        raise ValueError(f"The CIFAR-10 download from {url} is corrupt: its MD5 is not {md5}")
    partial.replace(archive)
    return archive


def _extract(archive: Path, md5: str | None) -> Path:
    if md5 is not None and md5_of(archive) != md5:
        raise ValueError(
            f"The CIFAR-10 archive {archive} is corrupt or not the official one: expected MD5 "
            f"{md5}, got {md5_of(archive)}. Delete it and download it again."
        )
    try:
        with tarfile.open(archive, "r:gz") as tar:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4: refuse unsafe paths
                tar.extractall(archive.parent, filter="data")
            else:  # pragma: no cover - old patch releases
                tar.extractall(archive.parent)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ValueError(f"The CIFAR-10 archive {archive} could not be unpacked: {error}") from None
    folder = archive.parent / CIFAR10_FOLDER
    if not folder.is_dir():
        raise ValueError(f"The archive {archive} holds no '{CIFAR10_FOLDER}' folder")
    return folder


def find_cifar10(
    root: str | os.PathLike | None = None,
    download: bool = False,
    url: str = CIFAR10_URL,
    md5: str | None = CIFAR10_MD5,
) -> Path:
    """The ``cifar-10-batches-py`` folder: found, unpacked from an archive, or downloaded."""
    candidates: list[Path] = []
    if root is not None:
        candidates.append(Path(root).expanduser())
    if os.environ.get(DATA_ENV):
        candidates.append(Path(os.environ[DATA_ENV]).expanduser())
    candidates.append(Path.home() / ".cache" / "explodegrad")
    for place in candidates:
        if place.name == CIFAR10_FOLDER and place.is_dir():
            return place
        if (place / CIFAR10_FOLDER).is_dir():
            return place / CIFAR10_FOLDER
        if place.is_file() and place.name.endswith(".tar.gz"):
            return _extract(place, md5)
        if (place / CIFAR10_ARCHIVE).is_file():
            return _extract(place / CIFAR10_ARCHIVE, md5)
    if download:
        return _extract(download_cifar10(candidates[0], url=url, md5=md5), md5)
    raise DatasetNotFoundError(_how_to_get(candidates))


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise ValueError(f"The CIFAR-10 folder {path.parent} is incomplete: expected the file {path.name}")
    try:
        with open(path, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"The CIFAR-10 batch {path} is corrupt: expected a pickled dict with b'data' "
            f"(N x 3072 uint8) and b'labels' ({type(error).__name__}: {error})"
        ) from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise ValueError(
            f"The CIFAR-10 batch {path} is corrupt: expected N x 3072 pixels and N labels, got "
            f"{data.shape} and {len(labels)}"
        )
    return data, labels


def load_cifar10(
    root: str | os.PathLike | None = None,
    download: bool = True,
    n_train: int | None = None,
    n_test: int | None = None,
    device: Any = None,
    dtype: torch.dtype = torch.float32,
    url: str = CIFAR10_URL,
    md5: str | None = CIFAR10_MD5,
) -> Dataset:
    """CIFAR-10 as flattened 3072-feature vectors, standardized per feature.

    Args:
        root: a folder holding ``cifar-10-batches-py`` or the official archive, the folder
            itself, or the archive's path. Default: ``$EXPLODEGRAD_DATA``, then
            ``~/.cache/explodegrad``.
        download: fetch the official archive (MD5-checked) when no local copy is found.
        n_train, n_test: keep only the first examples (quick runs).
        url, md5: where to download from and the checksum to verify (tests use their own).
    """
    folder = find_cifar10(root, download=download, url=url, md5=md5)
    parts = [_read_batch(folder / name) for name in CIFAR10_TRAIN_FILES]
    x_tr = np.concatenate([p[0] for p in parts])
    y_tr = np.concatenate([p[1] for p in parts])
    x_te, y_te = _read_batch(folder / CIFAR10_TEST_FILE)
    if n_train is not None:
        n_train = check_int("n_train", n_train, 1)
        x_tr, y_tr = x_tr[:n_train], y_tr[:n_train]
    if n_test is not None:
        n_test = check_int("n_test", n_test, 1)
        x_te, y_te = x_te[:n_test], y_te[:n_test]
    names: tuple[str, ...] = ()
    meta = folder / "batches.meta"
    if meta.is_file():
        with open(meta, "rb") as handle:
            names = tuple(n.decode() for n in pickle.load(handle, encoding="bytes")[b"label_names"])
    return _make("cifar10", x_tr, y_tr, x_te, y_te, 10, names, f"CIFAR-10 from {folder}", device, dtype)


def load_dataset(name: str = "digits", device: Any = None, **options: Any) -> Dataset:
    """Load a data set by name: ``"digits"``, ``"gaussian"`` or ``"cifar10"``."""
    name = check_choice("name", name, DATASETS)
    loader = {"digits": load_digits, "gaussian": gaussian_data, "cifar10": load_cifar10}[name]
    return loader(device=device, **options)
