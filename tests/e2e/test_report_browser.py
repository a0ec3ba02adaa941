"""The published HTML report opens in headless Chromium with every figure rendered and no outside request."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from oncopipe.contracts.results import ResultFigure, ResultTable, StudyResult
from oncopipe.delivery.export_store import publish_export

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (apt-get install chromium)"),
]


def _km(frames):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for site, curve in frames["km"].groupby("site"):
        ax.step(curve["month"], curve["survival"], where="post", label=site)
    ax.set_xlabel("months since diagnosis")
    ax.set_ylabel("survival")
    ax.set_ylim(0, 1.02)
    ax.legend()
    return fig


def _groups(frames):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for group, curve in frames["trajectories"].groupby("group"):
        ax.plot(curve["month"], curve["mean_pdc"], label=group)  # a masked group is NaN: not drawn
    ax.set_xlabel("month")
    ax.set_ylabel("mean PDC")
    ax.legend()
    return fig


def study_result() -> StudyResult:
    months = np.arange(0, 61, 6)
    km = pd.concat([pd.DataFrame({"site": site, "month": months,
                                  "n_at_risk": (start * np.exp(-rate * months)).astype(int),
                                  "survival": np.exp(-rate * months)})
                    for site, start, rate in (("lung", 900, 0.04), ("pancreas", 300, 0.09), ("liver", 200, 0.05))])
    months = np.arange(60)
    trajectories = pd.concat([pd.DataFrame({"group": group, "month": months, "n": n,
                                            "mean_pdc": np.clip(level - slope * months, 0, 1)})
                              for group, n, level, slope in (("high", 420, 0.97, 0.0005),
                                                             ("declining", 130, 0.9, 0.012),
                                                             ("rare", 7, 0.5, 0.0))])
    return StudyResult(
        "browser_study", "demo", {"n_groups": 3},
        [ResultTable("km", km.reset_index(drop=True), "Kaplan-Meier survival.",
                     statistic_columns={"survival": "n_at_risk"}, group_columns=("site",), at_risk_column="n_at_risk"),
         ResultTable("trajectories", trajectories.reset_index(drop=True), "Mean PDC per group and month.",
                     count_columns=("n",), statistic_columns={"mean_pdc": "n"})],
        [ResultFigure("km_curves", "Observed survival by site", ("km",), _km),
         ResultFigure("trajectories", "Adherence trajectories", ("trajectories",), _groups)],
        methods="Kaplan-Meier; group-based trajectory modelling.")


def test_report_renders_every_figure_in_chromium(oncopipe_home):
    from playwright.sync_api import sync_playwright

    study = {"id": "browser_study", "title": "Browser study", "approval": {"reference": "CESREES-2026-099"},
             "recipients": ["pi@example.org"]}
    info = publish_export(study_result(), study, {"mart_version": "v1", "extraction_date": "2026-06-30"}, "run_1")
    ARTIFACTS.mkdir(exist_ok=True)
    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM),
                                    args=["--headless", "--no-sandbox", "--disable-gpu",
                                          "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
            page.goto(info.report.resolve().as_uri(), wait_until="load")
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => ({alt: e.alt, complete: e.complete, w: e.naturalWidth, "
                       "h: e.naturalHeight}))")
            assert [i["alt"] for i in images] == ["Observed survival by site", "Adherence trajectories"]
            for image in images:
                assert image["complete"] and image["w"] > 0 and image["h"] > 0, image
            assert page.inner_text("#approval") == "CESREES-2026-099"
            assert "masked" in page.text_content("#table-trajectories + p + details table")
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
            page.locator("#figures").screenshot(path=str(ARTIFACTS / "report_figures.png"))
        finally:
            browser.close()
    assert outside == []
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000
