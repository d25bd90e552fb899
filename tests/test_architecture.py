"""The architecture: the import contract holds, the public names stay importable from the top."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import explodegrad

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("core", "measures", "training", "studies", "claims", "plots", "widgets", "course", "reproduce")


def test_the_import_contract_holds():
    """`lint-imports` (import-linter, configured in pyproject.toml) finds no upward import."""
    pytest.importorskip("importlinter")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(no_cache=True, no_logo=True))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_contract_catches_an_upward_import(tmp_path):
    """A copy of the package where a core module imports the plots breaks the contract."""
    pytest.importorskip("importlinter")
    import shutil

    copy = tmp_path / "explodegrad"
    shutil.copytree(ROOT / "explodegrad", copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / "core" / "device.py").open("a") as handle:
        handle.write("\nfrom explodegrad.plots import set_theme  # noqa: E402, F401\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.path.insert(0, '.'); from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(no_cache=True, no_logo=True))",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "explodegrad.core.device -> explodegrad.plots" in done.stdout


@pytest.mark.parametrize("layer", LAYERS)
def test_every_layer_is_a_package_with_a_docstring(layer):
    module = importlib.import_module(f"explodegrad.{layer}")
    assert module.__doc__ and len(module.__doc__.split()) >= 5


def test_the_top_level_reexports_the_public_names():
    for name in explodegrad.__all__:
        assert getattr(explodegrad, name) is not None, name
    assert explodegrad.build_mlp.__module__ == "explodegrad.core.nets"
    assert explodegrad.gsc_profile.__module__ == "explodegrad.measures.gsc"
    assert explodegrad.train.__module__ == "explodegrad.training.loop"


def test_the_package_root_holds_only_the_layers_and_the_entry_points():
    """A newcomer reads the design from the tree: no loose modules beside the layers."""
    loose = sorted(p.name for p in (ROOT / "explodegrad").glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "cli.py"]
    packages = sorted(p.name for p in (ROOT / "explodegrad").iterdir() if (p / "__init__.py").exists())
    assert packages == sorted(LAYERS)
