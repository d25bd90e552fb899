"""Bad input refused in plain words where data enters, on the command line, in the results store
and in a sweep's memory planning: each case asserts the error type (or exit status 2) and that
the message names the argument; plus the behaviours that replace silent failures (a root that
holds no CIFAR-10, an unpack that fails half-way, a part edited on disk, SIGTERM)."""

import json
import os
import pickle
import re
import signal
import tarfile
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from explodegrad import NetConfig, cli
from explodegrad.core.data import (
    CIFAR10_ARCHIVE,
    CIFAR10_FOLDER,
    DATA_ENV,
    Dataset,
    DatasetNotFoundError,
    find_cifar10,
    gaussian_data,
    load_cifar10,
    load_dataset,
    load_digits,
)
from explodegrad.core.jsonable import to_jsonable
from explodegrad.reproduce import Part, PartStore, make_plan, pending_parts, sort_parts
from explodegrad.training.loop import TrainSettings, train
from explodegrad.training.sweep import RunSpec, sweep

# ----------------------------------------------------------------------------- Dataset


def _dataset(**changes):
    """A valid 6-train / 3-test, 4-feature, 3-class data set with ``changes`` applied."""
    parts = {
        "name": "toy",
        "x_train": torch.zeros(6, 4),
        "y_train": torch.tensor([0, 1, 2, 0, 1, 2]),
        "x_test": torch.ones(3, 4),
        "y_test": torch.tensor([2, 1, 0]),
        "num_classes": 3,
    }
    parts.update(changes)
    return Dataset(**parts)


def _with(tensor, row, value):
    tensor = tensor.clone()
    tensor[row] = value
    return tensor


DATASET_CASES = [
    (dict(x_train=_with(torch.zeros(6, 4), 3, float("nan"))), ValueError, "x_train: row 3 .*nan"),
    (dict(x_test=_with(torch.ones(3, 4), 1, float("inf"))), ValueError, "x_test: row 1 .*inf"),
    (dict(x_train=torch.zeros(6, 4, dtype=torch.int64)), TypeError, "x_train: .*floating-point"),
    (dict(x_train=np.zeros((6, 4))), TypeError, "x_train: expected a torch.Tensor"),
    (dict(x_train=torch.zeros(6)), ValueError, "x_train: expected a 2-D tensor"),
    (
        dict(x_train=torch.zeros(0, 4), y_train=torch.zeros(0, dtype=torch.long)),
        ValueError,
        "x_train: the train split is empty",
    ),
    (
        dict(x_test=torch.zeros(0, 4), y_test=torch.zeros(0, dtype=torch.long)),
        ValueError,
        "x_test: the test split is empty",
    ),
    (dict(x_test=torch.ones(3, 5)), ValueError, "x_test: 5 features"),
    (dict(x_test=torch.ones(3, 4, dtype=torch.float64)), ValueError, "x_test: dtype torch.float64"),
    (dict(y_train=torch.tensor([0.0, 1, 2, 0, 1, 2])), TypeError, "y_train: labels must be integer"),
    (dict(y_train=torch.tensor([True, False] * 3)), TypeError, "y_train: labels must be integer"),
    (dict(y_train=[0, 1, 2, 0, 1, 2]), TypeError, "y_train: expected a torch.Tensor"),
    (dict(y_train=torch.tensor([0, 1, 12, 0, 1, 2])), ValueError, "y_train: row 2 has label 12"),
    (dict(y_test=torch.tensor([-3, 1, 0])), ValueError, "y_test: row 0 has label -3"),
    (dict(y_test=torch.tensor([0, 1])), ValueError, r"y_test: expected one label per example \(3\)"),
    (dict(num_classes=1), ValueError, "num_classes=1"),
    (dict(num_classes=3.0), TypeError, "num_classes=3.0"),
    (dict(name=7), TypeError, "name=7"),
]


@pytest.mark.parametrize("changes, error, message", DATASET_CASES)
def test_a_dataset_refuses_bad_data_naming_it(changes, error, message):
    with pytest.raises(error, match=message):
        _dataset(**changes)


def test_a_valid_dataset_is_accepted_and_moves():
    data = _dataset()
    assert data.to("cpu").in_features == 4
    with pytest.raises(ValueError, match="device='gpu'"):
        data.to("gpu")


# ----------------------------------------------------------------------------- loaders

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present here")

LOADER_CASES = [
    (lambda: load_digits(test_fraction=1.5), ValueError, "test_fraction=1.5"),
    (lambda: load_digits(test_fraction=-0.5), ValueError, "test_fraction=-0.5"),
    (lambda: load_digits(test_fraction=0.0), ValueError, "test_fraction=0.0"),
    (lambda: load_digits(test_fraction=1.0), ValueError, "test_fraction=1.0"),
    (lambda: load_digits(test_fraction=1e-5), ValueError, "test_fraction=1e-05 .*no test examples"),
    (lambda: load_digits(test_fraction=0.99999), ValueError, "test_fraction=0.99999 .*no training"),
    (lambda: load_digits(test_fraction="0.2"), TypeError, "test_fraction='0.2'"),
    (lambda: load_digits(test_fraction=True), TypeError, "test_fraction=True"),
    (lambda: load_digits(seed=-1), ValueError, "seed=-1"),
    (lambda: load_digits(seed=1.5), TypeError, "seed=1.5"),
    (lambda: load_digits(seed=2**64), ValueError, "seed=18446744073709551616"),
    (lambda: load_digits(dtype=torch.int64), ValueError, "dtype=torch.int64"),
    (lambda: load_digits(dtype="int"), ValueError, "dtype='int'"),
    (lambda: load_digits(dtype=5), TypeError, "dtype=5"),
    (lambda: load_digits(device="gpu"), ValueError, "device='gpu'"),
    pytest.param(lambda: load_digits(device="cuda"), ValueError, "device='cuda'", marks=NO_CUDA),
    (lambda: load_digits(device=3), TypeError, "device=3"),
    (lambda: gaussian_data(in_features=10**9), ValueError, "in_features=1000000000 .*GiB"),
    (lambda: gaussian_data(n_train=10**12), ValueError, "n_train=1000000000000.*GiB"),
    (lambda: gaussian_data(seed=-2), ValueError, "seed=-2"),
    (lambda: gaussian_data(dtype=torch.int32), ValueError, "dtype=torch.int32"),
    (lambda: gaussian_data(n_test=0), ValueError, "n_test=0"),
    (lambda: gaussian_data(in_features="64"), TypeError, "in_features='64'"),
    (lambda: gaussian_data(n_train=8, n_test=4).batch(2, seed=-1), ValueError, "seed=-1"),
    (lambda: load_dataset("gaussian", n_train=5.5), TypeError, "n_train=5.5"),
    (lambda: load_dataset(3), TypeError, "name=3"),
]


@pytest.mark.parametrize("call, error, message", LOADER_CASES)
def test_loaders_refuse_bad_arguments_naming_them(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_the_memory_refusal_comes_before_allocating():
    start = time.perf_counter()
    with pytest.raises(ValueError, match="would need about 2?[0-9,.]+ GiB"):
        gaussian_data(in_features=10**9)
    assert time.perf_counter() - start < 1.0


# ----------------------------------------------------------------------------- CIFAR-10


@pytest.fixture(autouse=True)
def _isolated_data_locations(tmp_path, monkeypatch):
    """No EXPLODEGRAD_DATA and an empty home, so no real copy on this machine is found."""
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def _write_batch(path, n=2, offset=0, data=None, labels=None):
    rng = np.random.default_rng(offset)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8) if data is None else data
    labels = [(offset + i) % 10 for i in range(n)] if labels is None else labels
    with open(path, "wb") as handle:
        pickle.dump({b"data": data, b"labels": labels}, handle)


def _cifar_folder(root: Path) -> Path:
    folder = root / CIFAR10_FOLDER
    folder.mkdir(parents=True)
    for i in range(1, 6):
        _write_batch(folder / f"data_batch_{i}", offset=i)
    _write_batch(folder / "test_batch", offset=9)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, handle)
    return folder


def _pixels(value, dtype=np.int64):
    data = np.zeros((2, 3072), dtype=dtype)
    data[1, 5] = value
    return data


def _break(name, **batch):
    return lambda folder: _write_batch(folder / name, **batch)


def _write_meta(content: bytes):
    return lambda folder: (folder / "batches.meta").write_bytes(content)


CIFAR_CASES = [
    (_break("data_batch_2", labels=[3, 12]), "data_batch_2 is corrupt: row 1 has label 12"),
    (_break("test_batch", labels=[-3, 1]), "test_batch is corrupt: row 0 has label -3"),
    (_break("data_batch_1", data=_pixels(300)), "data_batch_1 is corrupt: row 1 has pixel value 300"),
    (_break("data_batch_1", data=_pixels(-1)), "data_batch_1 is corrupt: row 1 has pixel value -1"),
    (_break("data_batch_4", data=_pixels(0.5, np.float64)), "data_batch_4 is corrupt: pixels must be uint8"),
    (_break("data_batch_3", labels=[1.5, 2.0]), "data_batch_3 is corrupt: labels must be integers"),
    (_break("data_batch_5", labels=[1, 2, 3]), "data_batch_5 is corrupt: expected N x 3072 pixels"),
    (lambda f: (f / "data_batch_1").write_bytes(pickle.dumps([1, 2])), "data_batch_1 is corrupt"),
    (_write_meta(b"not a pickle"), "batches.meta is corrupt"),
    (
        _write_meta(pickle.dumps({b"names": []})),
        r"batches.meta is corrupt: expected a pickled dict with b'label_names'",
    ),
    (lambda f: (f / "test_batch").unlink(), "incomplete: expected the file test_batch"),
]


@pytest.mark.parametrize("damage, message", CIFAR_CASES)
def test_a_corrupt_cifar10_file_is_refused_naming_it(tmp_path, damage, message):
    folder = _cifar_folder(tmp_path / "data")
    damage(folder)
    with pytest.raises(ValueError, match=message):
        load_cifar10(tmp_path / "data", download=False)


CIFAR_ARGUMENT_CASES = [
    (dict(root=123), TypeError, "root=123"),
    (dict(root=""), ValueError, "root=''"),
    (dict(download="yes"), TypeError, "download='yes'"),
    (dict(md5="abc"), ValueError, "md5='abc'"),
    (dict(md5=5), TypeError, "md5=5"),
    (dict(url=5, download=True), TypeError, "url=5"),
    (dict(n_train=0), ValueError, "n_train=0"),
    (dict(n_test=2.0), TypeError, "n_test=2.0"),
    (dict(dtype=torch.uint8), ValueError, "dtype=torch.uint8"),
]


@pytest.mark.parametrize("changes, error, message", CIFAR_ARGUMENT_CASES)
def test_cifar10_arguments_are_checked(tmp_path, changes, error, message):
    _cifar_folder(tmp_path / "data")
    arguments = {"root": tmp_path / "data", "download": False, **changes}
    with pytest.raises(error, match=message):
        load_cifar10(**arguments)


def test_a_root_that_holds_no_cifar10_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    _cifar_folder(tmp_path / "elsewhere")
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "elsewhere"))
    assert find_cifar10() == tmp_path / "elsewhere" / CIFAR10_FOLDER  # the variable, when no root
    typo = tmp_path / "elswhere"
    with pytest.raises(DatasetNotFoundError, match=f"root='{typo}' holds no CIFAR-10"):
        load_cifar10(typo, download=False)


def _archive(tmp_path: Path, drop: tuple[str, ...] = (), folder_name: str = CIFAR10_FOLDER) -> Path:
    folder = _cifar_folder(tmp_path / "source")
    for name in drop:
        (folder / name).unlink()
    archive = tmp_path / "store" / CIFAR10_ARCHIVE
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder_name)
    return archive


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != CIFAR10_ARCHIVE)


def test_an_archive_is_unpacked_into_a_temporary_folder_then_renamed(tmp_path):
    archive = _archive(tmp_path)
    data = load_cifar10(archive.parent, download=False, md5=None)
    assert len(data.x_train) == 10 and _leftovers(archive.parent) == [CIFAR10_FOLDER]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda t: _archive(t), "could not be unpacked"),  # truncated below
        (lambda t: _archive(t, drop=("test_batch",)), "is incomplete: it lacks test_batch"),
        (lambda t: _archive(t, folder_name="other"), f"holds no '{CIFAR10_FOLDER}' folder"),
    ],
)
def test_a_failed_unpack_leaves_no_folder_behind(tmp_path, make, message):
    archive = make(tmp_path)
    if message == "could not be unpacked":
        content = archive.read_bytes()
        archive.write_bytes(content[: len(content) // 2])
    with pytest.raises(ValueError, match=message):
        load_cifar10(archive.parent, download=False, md5=None)
    assert _leftovers(archive.parent) == []  # no half-filled cifar-10-batches-py, no staging folder
    with pytest.raises(ValueError, match=message):  # and the next call checks again
        load_cifar10(archive.parent, download=False, md5=None)


# ----------------------------------------------------------------------------- command line


@pytest.fixture
def calls(monkeypatch):
    """Replace the pipelines by recorders: nothing may be computed before the arguments pass."""
    import explodegrad.claims
    import explodegrad.reproduce
    import explodegrad.reproduce.evidence

    recorded = []

    def fake(out, scale, **kwargs):
        recorded.append(out)
        return explodegrad.reproduce.ReproduceResult(
            Path(out) / "r.md", Path(out) / "r.json", [], Path(out), [], [], 0.0
        )

    monkeypatch.setattr(explodegrad.reproduce, "reproduce", fake)
    monkeypatch.setattr(explodegrad.claims, "evaluate", lambda *a, **k: recorded.append("claims") or [])
    monkeypatch.setattr(
        explodegrad.reproduce.evidence, "compute", lambda *a, **k: recorded.append("evidence")
    )
    return recorded


def _usage_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as stopped:
        cli.main(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err
    return err


CLI_CASES = [
    (
        lambda t: ["reproduce", "--out", str(t / "afile")],
        "argument --out: '{t}/afile' is a file, not a folder",
    ),
    (lambda t: ["reproduce", "--out", ""], "argument --out: '' is not allowed"),
    (lambda t: ["reproduce", "--out", "  "], "argument --out: '  ' is not allowed"),
    (
        lambda t: ["reproduce", "--out", str(t / "afile" / "sub" / "dir")],
        "argument --out: '{t}/afile/sub/dir' cannot be created: '{t}/afile' is a file",
    ),
    (lambda t: ["claims", "--json", str(t / "missing" / "v.json")], "argument --json: .* does not exist"),
    (lambda t: ["claims", "--json", str(t)], "argument --json: '{t}' is a folder, not a file"),
    (lambda t: ["claims", "--json", ""], "argument --json: '' is not allowed"),
    (lambda t: ["evidence", "--out", str(t / "afile")], "argument --out: '{t}/afile' is a file"),
]


@pytest.mark.parametrize("argv, message", CLI_CASES)
def test_a_bad_output_path_is_a_usage_error_before_any_computing(tmp_path, capsys, calls, argv, message):
    (tmp_path / "afile").write_text("x")
    err = _usage_error(argv(tmp_path), capsys)
    assert re.search(message.format(t=tmp_path), err), err
    assert calls == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_output_folder_is_a_usage_error(tmp_path, capsys, calls):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    err = _usage_error(["reproduce", "--out", str(locked / "report")], capsys)
    assert "argument --out" in err and "cannot write" in err


def test_a_good_output_path_is_not_created_by_the_check(tmp_path, calls):
    assert cli.main(["reproduce", "--out", str(tmp_path / "new" / "report"), "--quiet"]) == 0
    assert not (tmp_path / "new").exists()  # the recorder computed nothing, the check created nothing
    assert calls == [str(tmp_path / "new" / "report")]


def test_sigterm_stops_a_run_like_ctrl_c(monkeypatch, capsys):
    import explodegrad.reproduce

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        raise AssertionError("SIGTERM did not stop the run")

    monkeypatch.setattr(explodegrad.reproduce, "reproduce", terminated)
    before = signal.getsignal(signal.SIGTERM)
    assert cli.main(["reproduce", "--out", "somewhere"]) == cli.TERMINATED == 143
    err = capsys.readouterr().err
    assert "terminated (SIGTERM)" in err and "finished parts are kept in somewhere/parts/quick/" in err
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is put back


# ----------------------------------------------------------------------------- results store


def _constant(plan, data, options):
    return {"value": np.arange(3.0) * options["factor"], "note": "ok"}


ONE = Part("one", "first", "00", _constant, {"factor": 1.0})
TWO = Part("two", "second", "00", _constant, {"factor": 2.0})


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-20])


def _edit_number(path: Path) -> None:
    record = json.loads(path.read_text())
    record["numbers"]["value"][1] = 999.0
    path.write_text(json.dumps(record))


def _drop_checksum(path: Path) -> None:
    record = json.loads(path.read_text())
    del record["sha256"]
    path.write_text(json.dumps(record))


STORE_CASES = [
    (lambda d: _truncate(d / "two.json"), "its record two.json is unreadable, truncated or edited"),
    (lambda d: _edit_number(d / "two.json"), "its record two.json does not match its checksum"),
    (lambda d: _drop_checksum(d / "two.json"), "its record two.json has no checksum"),
    (lambda d: _truncate(d / "two.pkl"), "its objects file two.pkl does not match the checksum in two.json"),
    (
        lambda d: (d / "two.pkl").write_bytes((d / "one.pkl").read_bytes()),
        r"two.pkl does not match the checksum in two.json \(truncated, edited or another part's\)",
    ),
    (lambda d: (d / "two.pkl").unlink(), "its objects file two.pkl is missing"),
]


@pytest.mark.parametrize("damage, reason", STORE_CASES)
def test_a_damaged_part_is_recomputed_and_the_run_says_why(tmp_path, damage, reason):
    plan = make_plan("tiny")
    store = PartStore(tmp_path)
    for part in (ONE, TWO):
        store.save(part, plan, _constant(plan, None, part.options), 0.1, "cpu")
    damage(tmp_path)
    stored, todo, reasons = sort_parts([ONE, TWO], plan, store)
    assert list(stored) == ["one"] and todo == [TWO]
    assert re.search(reason, reasons["two"])
    said = []
    pending_parts([ONE, TWO], plan, store, log=said.append)
    (line,) = said
    assert "part 'two'" in line and re.search(reason, line) and "--fresh" in line
    with pytest.warns(RuntimeWarning, match="part 'two' .* computed again"):
        pending_parts([ONE, TWO], plan, store)


def test_other_settings_are_named_and_an_intact_store_is_silent(tmp_path):
    plan = make_plan("tiny")
    store = PartStore(tmp_path)
    store.save(ONE, plan, _constant(plan, None, ONE.options), 0.1, "cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stored, todo = pending_parts([ONE, TWO], plan, store)  # "two" was never stored: no notice
    assert list(stored) == ["one"] and todo == [TWO]
    reasons = sort_parts([ONE], make_plan("tiny", seed=1), store)[2]
    assert reasons == {"one": "it was computed with other settings (seed: 0 -> 1)"}


# ----------------------------------------------------------------------------- sweep

SETTINGS = TrainSettings(steps=12, batch_size=32, record_every=4, eval_size=200)


@pytest.fixture(scope="module")
def digits64():
    return load_digits(dtype=torch.float64)


SWEEP_CASES = [
    (dict(memory_limit_bytes="lots"), TypeError, "memory_limit_bytes='lots'"),
    (dict(memory_limit_bytes=1.5e9), TypeError, "memory_limit_bytes=1500000000.0"),
    (dict(memory_limit_bytes=True), TypeError, "memory_limit_bytes=True"),
    (dict(memory_limit_bytes=0), ValueError, "memory_limit_bytes=0"),
    (dict(memory_limit_bytes=-5), ValueError, "memory_limit_bytes=-5"),
    (dict(progress="no"), TypeError, "progress='no'"),
]


@pytest.mark.parametrize("changes, error, message", SWEEP_CASES)
def test_sweep_refuses_bad_memory_limits(digits64, changes, error, message):
    with pytest.raises(error, match=message):
        sweep([NetConfig(depth=3, width=8)], digits64, SETTINGS, **{"progress": False, **changes})


def test_sweep_results_and_their_json_do_not_depend_on_the_chunk_size(digits64):
    config = NetConfig(depth=3, width=8)
    runs = [RunSpec(config.with_(seed=s), SETTINGS.with_(lr=0.02 * (s + 1))) for s in range(3)]
    whole = sweep(runs, digits64, progress=False)
    one_by_one = sweep(runs, digits64, progress=False, memory_limit_bytes=whole.groups[0].memory.total(1))
    assert [len(c) for c in whole.groups[0].chunks] == [3]
    assert [len(c) for c in one_by_one.groups[0].chunks] == [1, 1, 1]
    columns = ["run", "step", "train_loss", "test_loss", "train_error", "test_error"]
    # equal up to rounding: a stack of one runs without vmap (training/stacked.py)
    np.testing.assert_allclose(
        one_by_one.table[columns].to_numpy(), whole.table[columns].to_numpy(), rtol=0, atol=1e-12
    )
    groups = to_jsonable(whole.groups)
    assert groups == to_jsonable(one_by_one.groups)  # the free memory and the chunking stay out
    assert "limit" not in groups[0] and "chunks" not in groups[0]


def test_the_sweep_summary_names_the_overflowing_layer_as_train_does(digits64):
    config = NetConfig(depth=4, width=16, residual=True, residual_scale=50.0)
    history = train(config, digits64, SETTINGS.with_(lr=1e200), progress=False)
    summary = sweep([config], digits64, SETTINGS.with_(lr=1e200), progress=False).summary
    assert "the first non-finite output is layer" in history.message
    assert summary.loc[0, "message"] == history.message


# ----------------------------------------------------------------------------- results.json

#: The explicit provenance and timing entries of results.json; everything else must repeat.
PROVENANCE = {"started", "wall_time", "cpu_time", "load_average", "compute_time_of_parts", "machine", "code"}


def _without_provenance(value):
    if isinstance(value, dict):
        return {k: _without_provenance(v) for k, v in value.items() if k not in PROVENANCE}
    if isinstance(value, list):
        return [_without_provenance(v) for v in value]
    return value


@pytest.mark.slow  # two tiny reports: a few minutes on a shared 2-core CPU
def test_two_identical_runs_write_the_same_numbers(tmp_path):
    from explodegrad.reproduce import reproduce

    written = []
    for name in ("first", "second"):
        result = reproduce(tmp_path / name, "tiny", device="cpu", jobs=1, log=None)
        written.append(json.loads(result.results.read_text()))
    assert '"limit":' not in json.dumps(written[0])  # no free memory (a sweep's limit) in the numbers
    assert _without_provenance(written[0]) == _without_provenance(written[1])
