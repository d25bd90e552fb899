"""pick_device: explicit names, the environment variable, and refusals."""

import pytest
import torch

from explodegrad.core.device import DEVICE_ENV, DeviceChoice, as_device_choice, cpu_model, pick_device

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")


@pytest.fixture(autouse=True)
def _no_device_env(monkeypatch):
    monkeypatch.delenv(DEVICE_ENV, raising=False)


def test_cpu_works_and_says_so():
    choice = pick_device("cpu")
    assert isinstance(choice, DeviceChoice)
    assert choice.device == torch.device("cpu")
    assert not choice.is_gpu
    assert str(choice).startswith("cpu (CPU")
    assert choice.reason == "asked for"


@no_cuda
def test_cuda_when_absent_raises():
    with pytest.raises(ValueError, match="device='cuda' is not available"):
        pick_device("cuda")


@no_cuda
def test_auto_without_gpu_falls_back_to_cpu_with_a_reason():
    if pick_device("auto").device.type == "mps":
        pytest.skip("an Apple GPU is present")
    choice = pick_device("auto")
    assert choice.device.type == "cpu"
    assert choice.reason == "no GPU was found"


def test_environment_variable_overrides_auto(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    choice = pick_device()
    assert choice.device.type == "cpu"
    assert DEVICE_ENV in choice.reason


def test_bad_environment_value_raises_naming_the_choices(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV, "tpu")
    with pytest.raises(ValueError, match=r"EXPLODEGRAD_DEVICE='tpu' .*'auto', 'cuda', 'mps', 'cpu'"):
        pick_device()


@no_cuda
def test_an_absent_gpu_set_in_the_environment_names_the_variable(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV, "cuda")
    with pytest.raises(ValueError, match=r"^EXPLODEGRAD_DEVICE='cuda' is not available"):
        pick_device()


@pytest.mark.parametrize("name", ["gpu", "", "cuda:7"])
def test_bad_name_raises(name):
    with pytest.raises(ValueError, match=r"device="):
        pick_device(name)


def test_cpu_model_reads_the_model_name(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Example CPU 9000 @ 3.0GHz\nflags\t: fpu\n")
    assert cpu_model(str(info)) == "Example CPU 9000 @ 3.0GHz"


def test_cpu_model_falls_back_without_cpuinfo(tmp_path):
    import platform

    assert cpu_model(str(tmp_path / "missing")) == (platform.processor() or platform.machine())


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu"), "cpu:0"])
def test_as_device_choice_takes_what_studies_take(device):
    choice = as_device_choice(device)
    assert isinstance(choice, DeviceChoice) and choice.device.type == "cpu" and not choice.is_gpu
    assert choice.reason == "asked for" and choice.name.startswith("CPU, ")


def test_as_device_choice_keeps_a_choice_and_picks_one_for_none(monkeypatch):
    ctx_device = pick_device("cpu")
    assert as_device_choice(ctx_device) is ctx_device
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    assert as_device_choice(None).reason == f"set by {DEVICE_ENV}"


@pytest.mark.parametrize(
    "device, error, message",
    [
        (3, TypeError, "device=3 is not allowed: device must be a name"),
        ("gpu", ValueError, "device='gpu' is not allowed: .*a GPU is 'cuda' or 'mps'"),
        ("cuda:7", ValueError, "device='cuda:7' is not available here"),
    ],
)
def test_as_device_choice_refuses_in_words(device, error, message):
    if device == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    with pytest.raises(error, match=message):
        as_device_choice(device)
