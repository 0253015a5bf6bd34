"""Take the README's MLflow UI and explainer screenshots from the default store (after `make run`).

    .venv/bin/python docs/screenshots.py

Needs Debian's chromium. Writes docs/img/runs-table.png, docs/img/run-artifacts.png and
docs/img/explainer-{none,smote}.png (from outputs/explainer/seed_demo.html).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from mlflow import MlflowClient
from playwright.sync_api import Page, expect, sync_playwright

from pipeline.paths import REPO_ROOT, default_store
from pipeline.ui import serve_ui, ui_url

OUT = REPO_ROOT / "docs" / "img"
COLUMNS = ("test/pr_auc", "test/recall", "test/ece", "test/accuracy", "test/baseline_accuracy")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def close_assistant(page: Page) -> None:
    page.get_by_role("button", name="Close", exact=True).click()


def runs_table(page: Page, base: str, experiment: str, parent: str) -> None:
    page.goto(ui_url(base, experiment))
    expect(page.get_by_role("heading", name="Runs")).to_be_visible(timeout=60_000)
    close_assistant(page)
    page.locator("[role=gridcell]", has_text=parent).first.locator("button").first.click()
    for column in ("Models", *COLUMNS):  # Models is empty here: make room for the metrics
        page.get_by_role("button", name="Columns", exact=True).click()
        page.locator("[role=menu], [role=dialog], [role=listbox]").first.get_by_text(column, exact=True).click()
        page.keyboard.press("Escape")
    page.wait_for_timeout(1500)
    page.screenshot(path=str(OUT / "runs-table.png"))


def run_artifacts(page: Page, base: str, experiment: str, run_id: str) -> None:
    page.goto(ui_url(base, experiment, run_id))
    page.get_by_role("tab", name="Artifacts").click()
    page.get_by_text("plots", exact=True).click()
    page.get_by_text("pr.png", exact=True).click()
    page.wait_for_timeout(2500)
    page.screenshot(path=str(OUT / "run-artifacts.png"))


def explainer(page: Page) -> None:
    """The explainer at 1% positives: no fix (accuracy at its baseline, recall near 0), then SMOTE
    with a dear missed positive (the Bayes threshold far below 0.5)."""
    path = REPO_ROOT / "outputs" / "explainer" / "seed_demo.html"
    for name, fragment in (("none", "rate=0.01&fix=none&seed=0&cfp=1&cfn=10"),
                           ("smote", "rate=0.01&fix=smote&seed=0&cfp=1&cfn=50")):  # fmt: skip
        page.goto(f"{path.as_uri()}#{fragment}")
        page.wait_for_timeout(500)
        page.screenshot(path=str(OUT / f"explainer-{name}.png"), full_page=True)


def main() -> None:
    store = f"sqlite:///{default_store()}"
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("seed_demo").experiment_id
    runs = client.search_runs([experiment], order_by=["attributes.start_time DESC"])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    child = next(r for r in runs if r.info.run_name == "smote-logreg-none-p0.05-s0")
    OUT.mkdir(parents=True, exist_ok=True)
    with serve_ui(store, 5099, Path(tempfile.mkdtemp()) / "server.log") as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1900, "height": 820})
        runs_table(page, base, experiment, parent.info.run_name)
        page.set_viewport_size({"width": 1500, "height": 820})
        run_artifacts(page, base, experiment, child.info.run_id)
        page.set_viewport_size({"width": 1300, "height": 900})
        explainer(page)
        browser.close()


if __name__ == "__main__":
    main()
