"""The command line: argument parsing, usage errors (exit status 2) and the wiring to reproduce()."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from explodegrad import cli

OPTIONS = (
    "--scale",
    "--device",
    "--out",
    "--data-root",
    "--fresh",
    "--jobs",
    "--steps",
    "--seed",
    "--quiet",
    "--parts",
    "--list-parts",
)


def _fail(argv, capsys) -> str:
    with pytest.raises(SystemExit) as stopped:
        cli.main(argv)
    assert stopped.value.code == 2
    return capsys.readouterr().err


@pytest.fixture
def calls(monkeypatch):
    """Replace the pipeline by a recorder: the tests here check the wiring, not the experiments."""
    import explodegrad.reproduce

    recorded = []

    def fake(out, scale, **kwargs):
        recorded.append({"out": out, "scale": scale, **kwargs})
        return explodegrad.reproduce.ReproduceResult(
            Path(out) / "r.md", Path(out) / "r.json", [], Path(out), [], [], 0.0
        )

    monkeypatch.setattr(explodegrad.reproduce, "reproduce", fake)
    return recorded


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["reproduce", "--help"])
    assert stopped.value.code == 0
    text = capsys.readouterr().out
    for option in OPTIONS:
        assert option in text
    for scale in ("tiny", "quick", "paper"):
        assert scale in text
    assert "report-<scale>-scale.md" in text and "results-<scale>-scale.json" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "required: COMMAND"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["reproduce", "--scale", "huge"], "invalid choice: 'huge'"),
        (["reproduce", "--device", "tpu"], "invalid choice: 'tpu'"),
        (["reproduce", "--jobs", "0"], "--jobs: 0 is not allowed"),
        (["reproduce", "--jobs", "many"], "'many' is not an integer"),
        (["reproduce", "--steps", "-5"], "--steps: -5 is not allowed"),
        (["reproduce", "--steps", "1.5"], "'1.5' is not an integer"),
        (["reproduce", "--seed", "-1"], "--seed: -1 is not allowed"),
        (["reproduce", "--no-such-option"], "unrecognized arguments: --no-such-option"),
    ],
)
def test_bad_arguments_are_usage_errors(argv, message, capsys, calls):
    err = _fail(argv, capsys)
    assert message in err
    assert "usage:" in err
    assert calls == []


def test_missing_data_root_is_a_usage_error(tmp_path, capsys, calls):
    err = _fail(["reproduce", "--data-root", str(tmp_path / "nowhere")], capsys)
    assert "--data-root" in err and "does not exist" in err
    err = _fail(["reproduce", "--data-root", str(tmp_path)], capsys)
    assert "no CIFAR-10" in err
    assert calls == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present here")
def test_unavailable_device_is_a_usage_error(capsys, calls):
    err = _fail(["reproduce", "--device", "cuda"], capsys)
    assert "--device" in err and "no CUDA GPU" in err
    assert calls == []


def test_arguments_reach_reproduce(tmp_path, calls, capsys):
    out = tmp_path / "report"
    status = cli.main(
        [
            "reproduce",
            "--scale",
            "tiny",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--fresh",
            "--jobs",
            "2",
            "--steps",
            "7",
            "--seed",
            "3",
            "--quiet",
        ]
    )
    assert status == 0
    (call,) = calls
    assert call["out"] == str(out) and call["scale"] == "tiny"
    assert call["device"] == "cpu" and call["fresh"] is True and call["jobs"] == 2
    assert call["steps"] == 7 and call["seed"] == 3 and call["data_root"] is None
    assert call["log"] is None
    assert call["command"].startswith("python -m explodegrad reproduce --scale tiny")
    assert "report:" in capsys.readouterr().out


def test_defaults(calls):
    assert cli.main(["reproduce"]) == 0
    (call,) = calls
    assert call["scale"] == "quick" and call["out"] == "explodegrad-report"
    assert call["jobs"] == "auto" and call["fresh"] is False and call["steps"] is None
    assert call["seed"] == 0 and call["device"] is None and call["log"] is print
    assert call["parts"] is None


def test_parts_reach_reproduce_and_unknown_ones_are_usage_errors(tmp_path, calls, capsys):
    out = str(tmp_path / "report")
    assert cli.main(["reproduce", "--scale", "tiny", "--out", out, "--parts", "survey,dilution"]) == 0
    assert calls[0]["parts"] == "survey,dilution"
    err = _fail(["reproduce", "--scale", "tiny", "--out", out, "--parts", "survey,nothing"], capsys)
    assert "argument --parts:" in err and "no part named 'nothing'" in err and "gsc-meaning, survey" in err
    assert len(calls) == 1


def test_list_parts_prints_the_plan_and_computes_nothing(tmp_path, calls, capsys):
    from explodegrad.reproduce import make_plan, plan_parts

    assert cli.main(["reproduce", "--scale", "tiny", "--out", str(tmp_path), "--list-parts"]) == 0
    assert calls == [] and not (tmp_path / "parts").exists()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("tiny: depth 6, width 16") and lines[1].startswith("parts in ")
    names = [line.split()[0] for line in lines[2:]]
    assert names == [part.name for part in plan_parts(make_plan("tiny"))]
    assert all("to compute (not computed yet)" in line for line in lines[2:])
    # only the chosen parts; no device or writable folder needed to list them
    status = cli.main(
        [
            "reproduce",
            "--scale",
            "tiny",
            "--out",
            str(tmp_path),
            "--list-parts",
            "--parts",
            "survey",
            "--device",
            "cuda",
        ]
    )
    assert status == 0 and calls == []
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[2:]] == ["survey"]


def test_interrupt_says_how_to_resume(monkeypatch, capsys):
    import explodegrad.reproduce

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(explodegrad.reproduce, "reproduce", interrupted)
    assert cli.main(["reproduce", "--out", "somewhere"]) == cli.INTERRUPTED
    assert "run the same command again to resume" in capsys.readouterr().err


def test_version(capsys):
    from explodegrad import __version__

    with pytest.raises(SystemExit) as stopped:
        cli.main(["--version"])
    assert stopped.value.code == 0 and capsys.readouterr().out.strip() == f"explodegrad {__version__}"


@pytest.mark.slow  # a fresh interpreter imports torch: about 6 s on a 2-core CPU
def test_python_dash_m_runs_the_cli():
    done = subprocess.run(
        [sys.executable, "-m", "explodegrad", "reproduce", "--scale", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "invalid choice: 'nope'" in done.stderr
