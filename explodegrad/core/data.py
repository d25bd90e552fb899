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
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from explodegrad.core.checks import (
    check_bool,
    check_choice,
    check_features,
    check_float_dtype,
    check_fraction,
    check_int,
    check_label_dtype,
    check_label_range,
    check_seed,
)

DATASETS = ("digits", "gaussian", "cifar10")
DATA_ENV = "EXPLODEGRAD_DATA"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"
#: Share of the available memory a synthetic data set may plan to use.
DATA_MEMORY_FRACTION = 0.5


class DatasetNotFoundError(FileNotFoundError):
    """A data set is neither on disk nor downloadable; the message says how to get it."""


@dataclass
class Dataset:
    """A classification data set split into train and test tensors.

    The constructor checks what enters: floating-point 2-D inputs, every value finite, integer
    labels in ``0 .. num_classes - 1``, one per example, and no empty split; anything else is
    a ``TypeError`` (wrong type) or ``ValueError`` naming the tensor and its first bad row.
    """

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int
    class_names: tuple[str, ...] = field(default=())
    source: str = ""

    def __post_init__(self) -> None:
        """Refuse, where data enters, what would give silently wrong results later."""
        if not isinstance(self.name, str):
            raise TypeError(f"name={self.name!r} is not allowed: name must be a string")
        self.num_classes = check_int("num_classes", self.num_classes, 2)
        features = None
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            _check_inputs(f"x_{split}", x, split)
            _check_labels(f"y_{split}", y, len(x), self.num_classes)
            if features is not None and x.shape[1] != features:
                raise ValueError(
                    f"x_test: {x.shape[1]} features per example, but x_train has {features}; "
                    "both splits need the same features"
                )
            features = x.shape[1]
        if self.x_test.dtype != self.x_train.dtype or self.x_test.device != self.x_train.device:
            raise ValueError(
                f"x_test: dtype {self.x_test.dtype} on {self.x_test.device}, but x_train is "
                f"{self.x_train.dtype} on {self.x_train.device}; both splits need the same"
            )

    @property
    def in_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def device(self) -> torch.device:
        return self.x_train.device

    def to(self, device: Any) -> Dataset:
        """The same data on another device."""
        device = _check_device(device)
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
        seed = check_seed("seed", seed)
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


def _check_inputs(argument: str, x: Any, split: str) -> None:
    """Inputs: a 2-D floating tensor with at least one row and one feature, every value finite."""
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{argument}: expected a torch.Tensor of shape (examples, features), got {type(x).__name__} "
            "(convert with torch.as_tensor(array, dtype=torch.float32))"
        )
    check_features(argument, x, what=f"{split} split")


def _check_labels(argument: str, y: Any, n: int, num_classes: int) -> None:
    """Labels: a 1-D integer tensor, one per example, each in ``0 .. num_classes - 1``."""
    if not isinstance(y, Tensor):
        raise TypeError(f"{argument}: expected a torch.Tensor of class indices, got {type(y).__name__}")
    check_label_dtype(argument, y)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"{argument}: expected one label per example ({n}), got shape {tuple(y.shape)}")
    check_label_range(argument, y, num_classes, f"num_classes={num_classes}")


def _check_device(device: Any) -> Any:
    """``device`` as torch takes it, refusing unknown names and a GPU that is not there."""
    if device is None:
        return None
    from explodegrad.core.device import resolve_device  # core.device imports this module

    where = resolve_device(device)
    if where.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} is not allowed: no CUDA GPU is available here; use 'cpu' or 'auto'"
        )
    if where.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r} is not allowed: no Apple GPU (mps) is available here")
    return where


def _available_memory() -> int:
    """Bytes of memory available to this process now."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover - psutil is usually there
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _standardize(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)  # constant pixels (digits' borders) stay at 0
    return (x_train - mean) / std, (x_test - mean) / std


def _split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    test_fraction = check_fraction("test_fraction", test_fraction, inclusive_high=False)
    n_test = int(round(n * test_fraction))
    if n_test in (0, n):
        empty = "test" if n_test == 0 else "training"
        raise ValueError(
            f"test_fraction={test_fraction!r} is not allowed: it leaves no {empty} examples out of {n}"
        )
    order = np.random.default_rng(seed).permutation(n)
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
    dtype = check_float_dtype(dtype)
    device = _check_device(device)
    x_tr, x_te = _standardize(x_tr.astype(np.float64), x_te.astype(np.float64))
    as_x = lambda a: torch.as_tensor(a, dtype=dtype, device=device)  # noqa: E731
    as_y = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.long, device=device)  # noqa: E731
    return Dataset(name, as_x(x_tr), as_y(y_tr), as_x(x_te), as_y(y_te), num_classes, class_names, source)


def load_digits(
    test_fraction: float = 0.2, seed: int = 0, device: Any = None, dtype: torch.dtype = torch.float32
) -> Dataset:
    """scikit-learn's bundled 8x8 digits, standardized, split with a seeded permutation.

    Raises:
        ValueError: ``test_fraction`` outside (0, 1) or leaving a split empty, a negative
            ``seed``, a non-floating ``dtype``, an unknown or absent ``device``.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    check_fraction("test_fraction", test_fraction, inclusive_high=False)
    seed = check_seed("seed", seed)
    check_float_dtype(dtype)
    _check_device(device)

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
    seed = check_seed("seed", seed)
    dtype = check_float_dtype(dtype)
    _check_gaussian_memory(n_train, n_test, in_features, num_classes, dtype)
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


def gaussian_memory_bytes(
    n_train: int, n_test: int, in_features: int, num_classes: int, dtype: torch.dtype = torch.float32
) -> int:
    """Peak bytes :func:`gaussian_data` needs: float64 draws, their standardized copies, the tensors."""
    values = (n_train + n_test) * in_features
    element = torch.empty((), dtype=dtype).element_size()
    return 3 * 8 * values + element * values + 8 * in_features * (num_classes + 2)


def _check_gaussian_memory(
    n_train: int, n_test: int, in_features: int, num_classes: int, dtype: torch.dtype
) -> None:
    needed = gaussian_memory_bytes(n_train, n_test, in_features, num_classes, dtype)
    allowed = int(_available_memory() * DATA_MEMORY_FRACTION)
    if needed > allowed:
        raise ValueError(
            f"n_train={n_train}, n_test={n_test}, in_features={in_features} is not allowed: the data "
            f"set would need about {needed / 2**30:,.1f} GiB, more than the {allowed / 2**30:,.1f} GiB "
            "this machine can spare now (half its available memory); lower n_train, n_test or in_features"
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
    """Unpack the archive next to itself: into a temporary folder, renamed only when complete.

    A failed or interrupted unpack therefore never leaves a half-filled ``cifar-10-batches-py``
    that a later call would take for the data set.
    """
    if md5 is not None and md5_of(archive) != md5:
        raise ValueError(
            f"The CIFAR-10 archive {archive} is corrupt or not the official one: expected MD5 "
            f"{md5}, got {md5_of(archive)}. Delete it and download it again."
        )
    target = archive.parent / CIFAR10_FOLDER
    staging = Path(tempfile.mkdtemp(prefix=f".{CIFAR10_FOLDER}-unpacking-", dir=archive.parent))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4: refuse unsafe paths
                    tar.extractall(staging, filter="data")
                else:  # pragma: no cover - old patch releases
                    tar.extractall(staging)
        except (tarfile.TarError, OSError, EOFError) as error:
            raise ValueError(f"The CIFAR-10 archive {archive} could not be unpacked: {error}") from None
        unpacked = staging / CIFAR10_FOLDER
        if not unpacked.is_dir():
            raise ValueError(f"The archive {archive} holds no '{CIFAR10_FOLDER}' folder")
        missing = [n for n in (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE) if not (unpacked / n).is_file()]
        if missing:
            raise ValueError(f"The CIFAR-10 archive {archive} is incomplete: it lacks {', '.join(missing)}")
        if not target.is_dir():  # another process may have finished first: keep its copy
            unpacked.replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _check_root(root: Any) -> Path | None:
    if root is None:
        return None
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(
            f"root={root!r} is not allowed: root must be a path (str or pathlib.Path) or None "
            f"(got {type(root).__name__})"
        )
    if str(root).strip() == "":
        raise ValueError("root='' is not allowed: give the folder holding CIFAR-10, or None")
    return Path(root).expanduser()


def _check_md5(md5: Any) -> str | None:
    if md5 is None:
        return None
    if not isinstance(md5, str):
        raise TypeError(f"md5={md5!r} is not allowed: md5 must be a 32-digit hex string or None")
    if len(md5) != 32 or any(c not in "0123456789abcdefABCDEF" for c in md5):
        raise ValueError(f"md5={md5!r} is not allowed: md5 must be a 32-digit hex string or None")
    return md5.lower()


def _found_in(place: Path, md5: str | None) -> Path | None:
    """The CIFAR-10 folder in ``place`` (the folder, its parent, or the archive), else None."""
    if place.name == CIFAR10_FOLDER and place.is_dir():
        return place
    if (place / CIFAR10_FOLDER).is_dir():
        return place / CIFAR10_FOLDER
    if place.is_file() and place.name.endswith(".tar.gz"):
        return _extract(place, md5)
    if (place / CIFAR10_ARCHIVE).is_file():
        return _extract(place / CIFAR10_ARCHIVE, md5)
    return None


def find_cifar10(
    root: str | os.PathLike | None = None,
    download: bool = False,
    url: str = CIFAR10_URL,
    md5: str | None = CIFAR10_MD5,
) -> Path:
    """The ``cifar-10-batches-py`` folder: found, unpacked from an archive, or downloaded.

    A ``root`` that is given is the only place searched (a typo is an error, never a silent
    fallback to ``$EXPLODEGRAD_DATA`` or the cache); a download then goes there. Without it,
    ``$EXPLODEGRAD_DATA`` and then ``~/.cache/explodegrad`` are searched.

    Raises:
        DatasetNotFoundError: nothing found (and no download asked for, or it failed).
        ValueError: a corrupt archive; TypeError: arguments of the wrong type.
    """
    place = _check_root(root)
    download = check_bool("download", download)
    md5 = _check_md5(md5)
    if not isinstance(url, str):
        raise TypeError(f"url={url!r} is not allowed: url must be a string")
    if place is not None:
        candidates = [place]
    else:
        candidates = [default_data_root()]
        if os.environ.get(DATA_ENV):
            candidates.append(Path.home() / ".cache" / "explodegrad")
    for candidate in candidates:
        found = _found_in(candidate, md5)
        if found is not None:
            return found
    if download:
        return _extract(download_cifar10(candidates[0], url=url, md5=md5), md5)
    if place is not None:
        raise DatasetNotFoundError(
            f"root={str(root)!r} holds no CIFAR-10 (the root given is the only place searched; "
            f"{DATA_ENV} and the cache are not used when root= is given).\n" + _how_to_get(candidates)
        )
    raise DatasetNotFoundError(_how_to_get(candidates))


def _unpickle(path: Path, what: str) -> Any:
    try:
        with open(path, "rb") as handle:
            return pickle.load(handle, encoding="bytes")
    except Exception as error:  # noqa: BLE001 - a corrupt pickle raises almost anything
        raise ValueError(
            f"The CIFAR-10 file {path} is corrupt: expected {what} ({type(error).__name__}: {error}); "
            "delete the folder and unpack or download the archive again"
        ) from None


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (N x 3072 uint8) and labels (N, in 0..9) of one batch file, checked."""
    if not path.is_file():
        raise ValueError(f"The CIFAR-10 folder {path.parent} is incomplete: expected the file {path.name}")
    expected = "a pickled dict with b'data' (N x 3072 uint8) and b'labels'"
    batch = _unpickle(path, expected)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(f"The CIFAR-10 batch {path} is corrupt: expected {expected}")
    try:
        data = np.asarray(batch[b"data"])
        labels = np.asarray(batch[b"labels"])
    except (TypeError, ValueError) as error:
        raise ValueError(f"The CIFAR-10 batch {path} is corrupt: {error}") from None
    if data.ndim != 2 or data.shape[1] != 3072 or labels.ndim != 1 or len(labels) != len(data):
        raise ValueError(
            f"The CIFAR-10 batch {path} is corrupt: expected N x 3072 pixels and N labels, got "
            f"{data.shape} and {labels.shape}"
        )
    if data.dtype != np.uint8:
        if data.dtype.kind not in "iu":
            raise ValueError(
                f"The CIFAR-10 batch {path} is corrupt: pixels must be uint8 (0 .. 255), got {data.dtype}"
            )
        outside = ((data < 0) | (data > 255)).any(axis=1)
        if outside.any():
            row = int(np.flatnonzero(outside)[0])
            value = int(data[row][(data[row] < 0) | (data[row] > 255)][0])
            raise ValueError(
                f"The CIFAR-10 batch {path} is corrupt: row {row} has pixel value {value}, outside 0 .. 255"
            )
        data = data.astype(np.uint8)
    if labels.dtype.kind not in "iu":
        raise ValueError(
            f"The CIFAR-10 batch {path} is corrupt: labels must be integers 0 .. 9, got {labels.dtype}"
        )
    outside = (labels < 0) | (labels > 9)
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise ValueError(
            f"The CIFAR-10 batch {path} is corrupt: row {row} has label {int(labels[row])}, outside 0 .. 9"
        )
    return data, labels.astype(np.int64)


def _read_class_names(path: Path) -> tuple[str, ...]:
    """The ten class names of ``batches.meta``, checked."""
    expected = "a pickled dict with b'label_names' (10 names)"
    meta = _unpickle(path, expected)
    names = meta.get(b"label_names") if isinstance(meta, dict) else None
    if not isinstance(names, (list, tuple)) or len(names) != 10:
        raise ValueError(f"The CIFAR-10 file {path} is corrupt: expected {expected}")
    try:
        return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    except UnicodeDecodeError as error:
        raise ValueError(f"The CIFAR-10 file {path} is corrupt: {error}") from None


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
        download: fetch the official archive (MD5-checked) when no local copy is found (into
            ``root`` when given).
        n_train, n_test: keep only the first examples (quick runs).
        url, md5: where to download from and the checksum to verify (tests use their own).

    Raises:
        DatasetNotFoundError: no copy found (a ``root`` given is the only place searched).
        ValueError: a corrupt archive or batch (labels outside 0..9, pixels outside 0..255,
            an unreadable ``batches.meta``), naming the file and the first bad row.
    """
    if n_train is not None:
        n_train = check_int("n_train", n_train, 1)
    if n_test is not None:
        n_test = check_int("n_test", n_test, 1)
    dtype = check_float_dtype(dtype)
    folder = find_cifar10(root, download=download, url=url, md5=md5)
    parts = [_read_batch(folder / name) for name in CIFAR10_TRAIN_FILES]
    x_tr = np.concatenate([p[0] for p in parts])
    y_tr = np.concatenate([p[1] for p in parts])
    x_te, y_te = _read_batch(folder / CIFAR10_TEST_FILE)
    if n_train is not None:
        x_tr, y_tr = x_tr[:n_train], y_tr[:n_train]
    if n_test is not None:
        x_te, y_te = x_te[:n_test], y_te[:n_test]
    meta = folder / "batches.meta"
    names = _read_class_names(meta) if meta.is_file() else ()
    return _make("cifar10", x_tr, y_tr, x_te, y_te, 10, names, f"CIFAR-10 from {folder}", device, dtype)


def load_dataset(name: str = "digits", device: Any = None, **options: Any) -> Dataset:
    """Load a data set by name: ``"digits"``, ``"gaussian"`` or ``"cifar10"``."""
    name = check_choice("name", name, DATASETS)
    loader = {"digits": load_digits, "gaussian": gaussian_data, "cifar10": load_cifar10}[name]
    return loader(device=device, **options)
