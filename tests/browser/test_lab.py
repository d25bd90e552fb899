"""The course in a real browser: JupyterLab + headless Debian chromium, driven by Playwright.

Starts JupyterLab on loopback serving an output-free COPY of notebooks/, opens the notebook,
runs all cells, moves the GSC explorer's depth slider with the keyboard and checks that the
readout, the line under the plot and the plot image change. Screenshots go to test-artifacts/ (git-ignored).

Skipped when /usr/bin/chromium (or $CHROMIUM) or playwright is missing, unless
EXPLODEGRAD_REQUIRE_BROWSER=1 (CI sets it), which turns the skip into a failure. Never run
`playwright install`: the system chromium is used through ``executable_path``.

To point the test at another explorer, change the constants below.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = expect = None

# --- what the test drives (change these to test another notebook's explorer) -------------
NOTEBOOK = "00_start_here.ipynb"
EXPLORER = ".explodegrad-gsc"  # CSS class of the GSC explorer (every Explorer has explodegrad-<name>)
SLIDER_LABEL = "depth"  # the description of the slider the test moves
PLOT = f"{EXPLORER} .widget-output img"
OUTPUT = f"{EXPLORER} .widget-output"
START_VALUE, KEY_PRESSES = 20, 4
EXPECTED_TEXT = f"d{START_VALUE + KEY_PRESSES} "  # the output line names the new network
# ------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
REQUIRED = os.environ.get("EXPLODEGRAD_REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
TIMEOUT_MS = 120_000
KERNEL_IDLE_JS = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const session = panel && panel.sessionContext && panel.sessionContext.session;
  const kernel = session && session.kernel;
  return !!kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
}"""


def _missing() -> str | None:
    if sync_playwright is None:
        return "playwright is not installed (pip install -e '.[test]')"
    if not Path(CHROMIUM).exists():
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    return None


MISSING = _missing()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(MISSING is not None and not REQUIRED, reason=str(MISSING)),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _strip_outputs(folder: Path) -> None:
    """Serve notebooks as a learner gets them fresh: no stored outputs can satisfy a check."""
    for path in folder.glob("*.ipynb"):
        notebook = nbformat.read(path, as_version=4)
        notebook.metadata.pop("widgets", None)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nbformat.write(notebook, path)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 with private config, serving a stripped copy of notebooks/."""
    work = tmp_path_factory.mktemp("lab")
    served = work / "notebooks"
    shutil.copytree(ROOT / "notebooks", served, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    _strip_outputs(served)
    env = dict(os.environ)
    for variable, name in [
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_DATA_DIR", "data"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("JUPYTERLAB_SETTINGS_DIR", "settings"),
        ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
    ]:
        (work / name).mkdir()
        env[variable] = str(work / name)
    port, token = _free_port(), secrets.token_hex(16)
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={served}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.extension_manager=readonly",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log_path = work / "lab.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=1).close()
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("JupyterLab did not start:\n" + log_path.read_text()) from None
                    time.sleep(0.25)
            yield {"base": base, "token": token, "log": log_path}
        finally:
            server.terminate()  # our own process only; the server shuts its kernels down
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@pytest.fixture(scope="module")
def browser():
    if MISSING is not None:
        pytest.fail(f"EXPLODEGRAD_REQUIRE_BROWSER=1 but the browser test cannot run: {MISSING}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(lab, browser, request):
    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    yield page
    failed = getattr(request.node, "failed_call", False)
    if failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "lab_failure.png"), full_page=True)
        shutil.copy(lab["log"], ARTIFACTS / "lab_failure.log")
    page.close()


def _run_all_cells(page, lab) -> None:
    page.goto(f"{lab['base']}/lab/tree/{NOTEBOOK}?token={lab['token']}&reset")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell")
    page.wait_for_function(KERNEL_IDLE_JS)  # the toolbar says idle before the kernel is connected
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


def _slider(page, label: str):
    """The slider of the explorer whose description is exactly ``label``."""
    description = page.locator(".widget-label", has_text=re.compile(f"^{re.escape(label)}$"))
    return page.locator(f"{EXPLORER} .widget-slider").filter(has=description).first


def test_explorer_slider_moves_with_the_keyboard_and_redraws(page, lab):
    _run_all_cells(page, lab)
    plot = page.locator(PLOT).first
    plot.wait_for()
    slider = _slider(page, SLIDER_LABEL)
    readout = slider.locator(".widget-readout")
    expect(readout).to_have_text(str(START_VALUE))
    page.wait_for_function(KERNEL_IDLE_JS)
    before = plot.get_attribute("src")
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator(EXPLORER).first.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "lab_before.png"))

    slider.locator(".noUi-handle").focus()
    for _ in range(KEY_PRESSES):
        page.keyboard.press("ArrowRight")

    expect(readout).to_have_text(str(START_VALUE + KEY_PRESSES))
    expect(page.locator(OUTPUT).first).to_contain_text(EXPECTED_TEXT)
    page.wait_for_function(
        "([selector, old]) => { const img = document.querySelector(selector);"
        " return !!img && img.src !== old; }",
        arg=[PLOT, before],
    )
    page.screenshot(path=str(ARTIFACTS / "lab_after.png"))
