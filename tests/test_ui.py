"""The MLflow UI on a real store, in headless Chromium: what a person comparing runs sees.

Needs Debian's ``chromium`` (``.ci/run`` installs it). Elsewhere the test is skipped unless
``IMBALANCE_LAB_REQUIRE_BROWSER=1``, which turns a missing browser into a failure (CI sets it).
Screenshots go to ``$IMBALANCE_LAB_TEST_OUTPUTS`` if set, else under the test's ``tmp_path``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.ui import serve_ui, ui_url
from tests.conftest import client

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As root on a closed network: no sandbox, and none of Chromium's background connections.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip

pytestmark = pytest.mark.browser


def _need_browser() -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("IMBALANCE_LAB_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed")
    pytest.importorskip("playwright")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A small sweep's store, served by a real ``mlflow server`` on 127.0.0.1 (stopped by its pid)."""
    _need_browser()
    tmp = tmp_path_factory.mktemp("ui")
    store = tmp / "mlflow.db"
    sweep = [
        sys.executable, "-m", "pipeline", "--multirun", "fix=none,smote", "imbalance.positive_rate=0.1",
        "dataset.n_samples=6000", "study=ui", f"tracking.uri=sqlite:///{store}", f"hydra.sweep.dir={tmp}/sweep",
    ]  # fmt: skip
    done = subprocess.run(sweep, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with serve_ui(f"sqlite:///{store}", _free_port(), tmp / "server.log") as base:
        yield base, store


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    out = Path(os.environ.get("IMBALANCE_LAB_TEST_OUTPUTS") or tmp_path) / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.mark.slow  # 36 s with its server and sweep; a real browser
def test_runs_table_and_run_page_in_the_model_training_view(server: tuple[str, Path], screenshots: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, store = server
    c = client(store)
    experiment = c.get_experiment_by_name("ui")
    runs = c.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    child = next(r for r in runs if r.info.run_name == "smote-logreg-none-p0.1-s0")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 900})
            page.goto(ui_url(base, experiment.experiment_id))
            # the Model training view: the runs table, not the GenAI traces overview
            expect(page.get_by_role("heading", name="Runs")).to_be_visible(timeout=60_000)
            expect(page.get_by_text("Token Usage")).to_have_count(0)
            name_cell = page.locator("[role=gridcell]", has_text=parent.info.run_name).first
            expect(name_cell).to_be_visible()
            name_cell.locator("button").first.click()  # unfold the sweep's children
            for name in ("none-logreg-none-p0.1-s0", "smote-logreg-none-p0.1-s0"):
                expect(page.get_by_role("link", name=name)).to_be_visible()
            page.get_by_role("button", name="Columns").click()
            menu = page.locator("[role=menu], [role=dialog], [role=listbox]").first
            menu.get_by_text("test/pr_auc", exact=True).click()
            page.keyboard.press("Escape")
            expect(page.get_by_role("columnheader", name="test/pr_auc").first).to_be_visible()
            shown = f"{child.data.metrics['test/pr_auc']:.4f}"[:5]
            expect(page.get_by_role("gridcell", name=shown).first).to_be_visible()
            page.screenshot(path=str(screenshots / "runs-table.png"))

            page.goto(ui_url(base, experiment.experiment_id, child.info.run_id))
            expect(page.get_by_role("heading", name="smote-logreg-none-p0.1-s0")).to_be_visible(timeout=60_000)
            expect(page.get_by_text("always predicting the majority class", exact=False)).to_be_visible()
            expect(page.get_by_text("blobs2d-train", exact=False).first).to_be_visible()
            page.screenshot(path=str(screenshots / "run-page.png"))
        finally:
            browser.close()
