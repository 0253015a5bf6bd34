"""The explainer page, built from a real sweep's store and driven in headless Chromium from
disk with the network blocked: what it shows is what the runs logged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import explain
from pipeline.paths import REPO_ROOT
from tests.conftest import client
from tests.test_ui import CHROMIUM, CHROMIUM_ARGS, _need_browser

#: 0.002 of 4,000 rows leaves too few positives: those two jobs fail, and the page must say so.
SWEEP = ["fix=none,smote", "imbalance.positive_rate=0.1,0.002", "seed=0,1", "dataset.n_samples=4000",
         "split.min_positives=10", "metrics.n_boot=0", "tracking.log_model=false"]  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    """(store, page, explain's output) for an 8-job sweep with 4 failed jobs."""
    tmp = tmp_path_factory.mktemp("explain")
    store = tmp / "mlflow.db"
    sweep = subprocess.run(
        [sys.executable, "-m", "pipeline", "--multirun", *SWEEP, "study=explained",
         f"tracking.uri=sqlite:///{store}", f"hydra.sweep.dir={tmp}/sweep"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert sweep.returncode == 2, sweep.stderr  # the failed jobs were bad input (too few positives)
    page = tmp / "page.html"
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.explain", "explained", "--tracking-uri", f"sqlite:///{store}",
         "--out", str(page)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return store, page, done


def _runs(store: Path) -> dict[tuple[str, str, str], object]:
    c = client(store)
    runs = c.search_runs([c.get_experiment_by_name("explained").experiment_id])
    return {
        (r.data.params["fix.name"], r.data.params["imbalance.positive_rate"], r.data.params["seed"]): r
        for r in runs
        if r.info.status == "FINISHED" and "mlflow.parentRunId" in r.data.tags
    }


def test_the_page_is_built_from_the_store_and_logged_to_the_parent(
    built: tuple[Path, Path, subprocess.CompletedProcess[str]],
) -> None:
    store, page, done = built
    assert str(page) in done.stdout
    html = page.read_text()
    assert "<script src" not in html and 'src="http' not in html and "<link" not in html  # nothing to fetch
    assert len(html) < 2_000_000
    c = client(store)
    parent = next(
        r for r in c.search_runs([c.get_experiment_by_name("explained").experiment_id]) if r.data.tags.get("sweep")
    )
    assert [a.path for a in c.list_artifacts(parent.info.run_id, "explainer")] == ["explainer/page.html"]
    assert len(_runs(store)) == 4  # the rate 0.002 jobs failed


def test_option_docs_come_from_the_config_files() -> None:
    assert explain.option_doc("fix", "smote").startswith("Synthesise positives")
    assert explain.option_doc("fix", "no_such_fix") == ""


def test_the_page_shows_logged_numbers_and_recomputes_costs_offline(
    built: tuple[Path, Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    _need_browser()
    from playwright.sync_api import sync_playwright

    store, page_path, _ = built
    runs = _runs(store)
    smote, none = runs[("smote", "0.1", "1")], runs[("none", "0.1", "1")]
    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1300, "height": 1000})

            def block(route):  # type: ignore[no-untyped-def]
                if route.request.url.startswith("file:"):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            context.route("**/*", block)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"file://{page_path}#rate=0.1&fix=smote&seed=1&cfn=20")

            def shown(metric: str) -> tuple[float, str]:
                cell = page.locator(f"#metric-{metric} td.v")
                return float(cell.get_attribute("data-exact") or "nan"), cell.inner_text()

            assert page.locator(".run-name").inner_text() == smote.info.run_name
            for metric in ("recall", "pr_auc"):
                value, text = shown(metric)
                assert value == smote.data.metrics[f"test/{metric}"]
                assert text == f"{value:.3f}"
            # the costs from the fragment: the Bayes threshold is cFP / (cFP + cFN) = 1 / 21
            assert float(page.locator("#bayes-threshold").get_attribute("data-exact") or "nan") == 1 / 21

            page.locator("button[data-axis='fix.name'][data-value='none']").click()
            assert page.locator(".run-name").inner_text() == none.info.run_name
            assert shown("recall")[0] == none.data.metrics["test/recall"]
            assert "fix=none" in page.url

            page.locator("#cfn-slider").fill("2")  # log10 scale: cFN = 100
            cfn = float(page.locator("#cfn-value").inner_text())
            assert cfn == 100
            bayes = float(page.locator("#bayes-threshold").get_attribute("data-exact") or "nan")
            assert bayes == 1 / (1 + cfn)
            pred = pd.read_parquet(
                client(store).download_artifacts(none.info.run_id, "predictions/test.parquet", str(tmp_path))
            )
            s, y = pred.score.round(3).to_numpy(), pred.y_true.to_numpy()
            expected = (np.sum((s >= bayes) & (y == 0)) + cfn * np.sum((s < bayes) & (y == 1))) / len(y)
            assert float(page.locator("#cost-at-bayes").get_attribute("data-exact") or "nan") == pytest.approx(
                expected, rel=1e-12
            )

            page.locator("#rate-slider").fill("1")  # the rarer rate: its jobs failed
            notice = page.locator("#notice").inner_text()
            assert "No finished run for" in notice and "rate=0.002" in notice and "FAILED" in notice
            page.screenshot(path=str(tmp_path / "explainer.png"), full_page=True)
            assert not errors
        finally:
            browser.close()
    assert outside == []


@pytest.mark.fault(
    "`pipeline.explain --out` naming a file the explainer did not write (or a folder)",
    "exit 2 in one line naming `--out`; the file unchanged; a page it wrote is replaced",
)
def test_explain_overwrites_only_its_own_page(
    built: tuple[Path, Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    store, page, _ = built
    mine = tmp_path / "notes.html"
    mine.write_text("<p>mine</p>")
    for out in (mine, tmp_path):
        done = subprocess.run(
            [sys.executable, "-m", "pipeline.explain", "explained", "--tracking-uri", f"sqlite:///{store}",
             "--out", str(out), "--no-log"],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 2 and done.stderr.startswith(f"error: --out={out} is not accepted"), done.stderr
        assert done.stderr.count("\n") == 1
    assert mine.read_text() == "<p>mine</p>"
    again = subprocess.run(
        [sys.executable, "-m", "pipeline.explain", "explained", "--tracking-uri", f"sqlite:///{store}",
         "--out", str(page), "--no-log"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
