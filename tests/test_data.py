"""Data sets: digits, Gaussians, and CIFAR-10 from a folder, an archive or a (file://) download."""

import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import CIFAR10_CLASS_NAMES as CLASS_NAMES
from helpers import write_tiny_cifar10

from explodegrad.core.checks import check_batch
from explodegrad.core.data import (
    CIFAR10_ARCHIVE,
    CIFAR10_FOLDER,
    CIFAR10_URL,
    DATA_ENV,
    Dataset,
    DatasetNotFoundError,
    gaussian_data,
    load_cifar10,
    load_dataset,
    load_digits,
    md5_of,
)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PER_BATCH, N_TEST = 4, 3


@pytest.fixture(autouse=True)
def _isolated_data_locations(tmp_path, monkeypatch):
    """No EXPLODEGRAD_DATA and an empty home, so no real copy on this machine is found."""
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def tiny_cifar(tmp_path):
    """A tiny CIFAR-10 in the official layout: the extracted folder and its tar.gz archive."""
    source = tmp_path / "source"
    folder = write_tiny_cifar10(source, PER_BATCH, N_TEST)
    archive_dir = tmp_path / "archive"
    archive_dir.mkdir()
    archive = archive_dir / CIFAR10_ARCHIVE
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=CIFAR10_FOLDER)
    return {"root": source, "folder": folder, "archive": archive, "md5": md5_of(archive)}


def _check_tiny(dataset):
    assert dataset.name == "cifar10"
    assert dataset.x_train.shape == (5 * PER_BATCH, 3072)
    assert dataset.x_test.shape == (N_TEST, 3072)
    assert dataset.num_classes == 10
    assert dataset.class_names == tuple(name.decode() for name in CLASS_NAMES)
    assert dataset.y_train.dtype == torch.long
    np.testing.assert_allclose(dataset.x_train.double().mean(0).numpy(), 0.0, atol=1e-5)


def test_digits_are_standardized_and_split_by_seed():
    data = load_digits()
    assert data.in_features == 64 and data.num_classes == 10
    assert len(data.x_train) + len(data.x_test) == 1797
    assert len(data.x_test) == round(0.2 * 1797)
    np.testing.assert_allclose(data.x_train.double().mean(0).numpy(), 0.0, atol=1e-5)
    assert torch.equal(load_digits(seed=0).y_train, data.y_train)
    assert not torch.equal(load_digits(seed=1).y_train, data.y_train)


def test_gaussian_data_is_seeded_and_shaped():
    data = gaussian_data(n_train=50, n_test=20, in_features=7, num_classes=3, seed=2)
    assert data.x_train.shape == (50, 7) and data.x_test.shape == (20, 7)
    assert set(data.y_train.tolist()) <= {0, 1, 2}
    assert torch.equal(
        gaussian_data(n_train=50, n_test=20, in_features=7, num_classes=3, seed=2).x_train, data.x_train
    )


def test_batches_are_fixed_by_their_seed():
    data = gaussian_data(n_train=40, n_test=10)
    x1, y1 = data.batch(8, seed=3)
    x2, _ = data.batch(8, seed=3)
    assert x1.shape == (8, 64) and y1.shape == (8,)
    assert torch.equal(x1, x2)
    assert data.batch(5, split="test")[0].shape == (5, 64)


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: load_dataset("mnist"), "name='mnist'"),
        (lambda: gaussian_data(n_train=0), "n_train=0"),
        (lambda: gaussian_data(num_classes=1), "num_classes=1"),
        (lambda: gaussian_data(n_train=10).batch(11), "size=11"),
        (lambda: gaussian_data(n_train=10).batch(2, split="val"), "split='val'"),
    ],
)
def test_bad_arguments_raise_naming_them(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


def test_load_dataset_by_name():
    assert load_dataset("gaussian", n_train=10, n_test=5).name == "gaussian"
    assert load_dataset("Digits").name == "digits"


def test_cifar10_from_the_extracted_folder_or_its_parent(tiny_cifar):
    _check_tiny(load_cifar10(tiny_cifar["root"], download=False))
    _check_tiny(load_cifar10(tiny_cifar["folder"], download=False))


def test_cifar10_from_the_archive_with_its_md5(tiny_cifar):
    data = load_cifar10(tiny_cifar["archive"].parent, download=False, md5=tiny_cifar["md5"])
    _check_tiny(data)
    assert (tiny_cifar["archive"].parent / CIFAR10_FOLDER / "data_batch_5").is_file()


def test_cifar10_archive_with_the_wrong_md5_is_refused(tiny_cifar):
    with pytest.raises(ValueError, match="corrupt or not the official one: expected MD5"):
        load_cifar10(tiny_cifar["archive"], download=False)  # the official MD5 differs


def test_cifar10_missing_raises_and_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_cifar10(tmp_path / "nowhere", download=False)
    message = str(info.value)
    assert str(tmp_path / "nowhere") in message
    assert CIFAR10_URL in message and DATA_ENV in message and "root=" in message
    assert isinstance(info.value, FileNotFoundError)


def test_cifar10_from_the_environment_variable(tiny_cifar, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tiny_cifar["root"]))
    _check_tiny(load_cifar10(download=False))


def test_cifar10_download_from_a_file_url_is_md5_checked(tiny_cifar, tmp_path):
    target = tmp_path / "download"
    data = load_cifar10(target, download=True, url=tiny_cifar["archive"].as_uri(), md5=tiny_cifar["md5"])
    _check_tiny(data)
    assert md5_of(target / CIFAR10_ARCHIVE) == tiny_cifar["md5"]


def test_cifar10_download_with_the_wrong_md5_leaves_nothing_behind(tiny_cifar, tmp_path):
    target = tmp_path / "download"
    with pytest.raises(ValueError, match="corrupt"):
        load_cifar10(target, download=True, url=tiny_cifar["archive"].as_uri(), md5="0" * 32)
    assert list(target.iterdir()) == []


def test_cifar10_failed_download_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="Downloading CIFAR-10 from .* failed"):
        load_cifar10(tmp_path / "download", download=True, url=(tmp_path / "absent.tar.gz").as_uri())


def test_cifar10_subsets(tiny_cifar):
    data = load_cifar10(tiny_cifar["root"], download=False, n_train=6, n_test=2)
    assert data.x_train.shape == (6, 3072) and data.x_test.shape == (2, 3072)
    with pytest.raises(ValueError, match="n_train=0"):
        load_cifar10(tiny_cifar["root"], download=False, n_train=0)


def test_cifar10_corrupt_batch_is_reported(tiny_cifar):
    (tiny_cifar["folder"] / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="data_batch_3 is corrupt"):
        load_cifar10(tiny_cifar["root"], download=False)


def test_cifar10_incomplete_folder_is_reported(tiny_cifar):
    (tiny_cifar["folder"] / "test_batch").unlink()
    with pytest.raises(ValueError, match="incomplete: expected the file test_batch"):
        load_cifar10(tiny_cifar["root"], download=False)


@pytest.mark.skipif(not (SHARED_DATA / CIFAR10_FOLDER).is_dir(), reason="no shared CIFAR-10 subset here")
def test_real_cifar10_subset_loads():
    data = load_cifar10(SHARED_DATA, download=False)
    assert data.in_features == 3072
    assert data.num_classes == 10
    assert len(data.x_train) > 0 and len(data.x_test) > 0
    assert set(data.y_train.tolist()) == set(range(10))
    assert data.class_names[0] == "airplane"


# ----------------------------------------------------------------------------- one route for the checks


def _message(call):
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    return str(info.value)


@pytest.mark.parametrize(
    "x, y",
    [
        (torch.tensor([[0.0, 1.0], [2.0, float("nan")], [1.0, 1.0]]), torch.tensor([0, 1, 0])),
        (torch.zeros(3, 2, dtype=torch.int64), torch.tensor([0, 1, 0])),
        (torch.zeros(3, 2), torch.tensor([0.0, 1.0, 0.0])),
        (torch.zeros(3, 2), torch.tensor([0, 5, 0])),
        (torch.zeros(3, 0), torch.tensor([0, 1, 0])),
    ],
)
def test_a_dataset_and_a_batch_refuse_bad_data_with_the_same_words(x, y):
    # The data set's check and the measures' batch check are one route (core.checks): the same
    # message but for the argument's name and where the number of classes comes from.
    ok_x, ok_y = torch.zeros(2, x.shape[1]), torch.tensor([0, 1])
    from_data = _message(lambda: Dataset("toy", x, y, ok_x.to(x.dtype), ok_y, 2))
    from_batch = _message(lambda: check_batch(x, y, 2, inputs_name="x_train", targets_name="y_train"))
    assert from_data == from_batch.replace("the network has out_features=2", "num_classes=2")


def test_the_loaders_take_numpy_booleans_and_refuse_other_truthy_values(tmp_path):
    with pytest.raises(DatasetNotFoundError):
        load_cifar10(tmp_path, download=np.bool_(False))
    with pytest.raises(TypeError, match="download=1 is not allowed: download must be True or False"):
        load_cifar10(tmp_path, download=1)
