"""Figures of the survival and care-pathway studies: driven by the study's parameters, drawn from exactly the
controlled tables they name, readable, and saved as SVG and 300-dpi PNG (issue #19)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection
from oncopipe.delivery import disclosure
from oncopipe.delivery import figures as draw
from oncopipe.delivery.export_store import PNG_DPI, render_figure
from oncopipe.landing.lifetables import build_life_table
from oncopipe.studies import kinds
from support.figure_checks import assert_readable, assert_same, draw_figure, legend_texts, lines_by_gid, png_dpi
from support.survival_simulation import simulate_cohort

YEARS = [1, 2, 3]


@pytest.fixture(scope="module")
def cohort():
    return simulate_cohort(1_200, build_life_table(), seed=5, n_hospitals=14)


@pytest.fixture(scope="module")
def survival(cohort):
    result = kinds.run("poor_prognosis_survival", {"poor_prognosis_cases": cohort.cases,
                                                   "french_life_tables": build_life_table()},
                       {"years": YEARS}, study_id="pps_fig")
    return disclosure.control(result)


@pytest.fixture(scope="module")
def care(cohort):
    result = kinds.run("care_pathway_delays", {"care_pathway_delays": cohort.delays,
                                               "poor_prognosis_cases": cohort.cases}, {}, study_id="cpd_fig")
    return disclosure.control(result)


def test_net_survival_caption_and_axis_follow_the_study_years(survival):
    spec, frames, fig = draw_figure(survival, "net_survival")
    assert spec.title.startswith("Net survival at 1, 2 and 3 years")
    assert "and 5" not in spec.title
    for ax in fig.axes:
        assert list(ax.get_xticks()) == YEARS
    table = frames["net_survival_site_sex"]
    drawn = lines_by_gid(fig, "net")
    expected = table.dropna(subset=["net_survival"])
    assert set(drawn) == {f"{r.sex}:{r.site}" for r in expected.itertuples()}
    for key, line in drawn.items():
        sex, site = key.split(":")
        rows = expected[(expected["sex"] == sex) & (expected["site"] == site)].sort_values("years")
        assert_same(line.get_ydata(), rows["net_survival"], key)
    # each legend names only the sites drawn in its panel
    for ax in fig.axes:
        sex = ax.get_title()
        shown = set(expected.loc[expected["sex"] == sex, "site"])
        assert {t.get_text() for t in ax.get_legend().get_texts()} == shown
    assert_readable(fig)


def test_km_curves_start_at_0_1_show_the_table_and_numbers_at_risk(survival):
    spec, frames, fig = draw_figure(survival, "km_curves")
    assert "over 3 years" in spec.title
    curves = frames["km_curves_site"]
    drawn = lines_by_gid(fig, "curve")
    assert set(drawn) == set(curves["site"])
    for site, line in drawn.items():
        x, y = line.get_xdata(), line.get_ydata()
        assert (x[0], y[0]) == (0.0, 1.0), site
        rows = curves[curves["site"] == site].dropna(subset=["surv"]).sort_values("years")
        assert_same(x[1:], rows["years"], site)
        assert_same(y[1:], rows["surv"], site)
    ax, tab = fig.axes
    assert list(ax.get_xticks()) == [0, 1, 2, 3]
    # numbers at risk: the median table's n at 0, the yearly table after; never a count below 10
    sizes = frames["median_site"].set_index("site")["n"]
    risk = frames["km_site"]
    texts = [t.get_text() for t in tab.texts]
    for site in sorted(curves["site"].unique()):
        expected = [draw.at_risk_text(sizes[site])] + [
            draw.at_risk_text(risk.loc[(risk["site"] == site) & (risk["years"] == y), "n_risk"].iloc[0])
            if ((risk["site"] == site) & (risk["years"] == y)).any() else draw.AT_RISK_DROPPED for y in YEARS]
        assert expected == texts[:4], site
        texts = texts[4:]
    for label in legend_texts(fig):
        assert " (n = " in label or "(n < 10)" in label or "(n masked)" in label
    assert_readable(fig)


def test_forest_plot_has_references_one_log_axis_whole_intervals_and_printed_hrs(survival):
    spec, frames, fig = draw_figure(survival, "cox_forest")
    table = frames["cox_hazard_ratios"]
    table = table[~table["term"].str.startswith("region=")]
    plots = [ax for ax in fig.axes if ax.get_xscale() == "log"]
    assert len(plots) == table["site"].nunique()
    limits = {ax.get_xlim() for ax in plots}
    assert len(limits) == 1  # one shared axis
    low, high = limits.pop()
    labels = [t.get_text() for t in plots[0].get_yticklabels()]
    assert "stage=I (reference)" in labels and "sex=female (reference)" in labels
    ratios = lines_by_gid(fig, "ratio")
    intervals = lines_by_gid(fig, "interval")
    texts = {t.get_text() for ax in fig.axes for t in ax.texts}
    for site, line in ratios.items():
        rows = table[table["site"] == site].dropna(subset=["hazard_ratio", "hr_lower", "hr_upper"])
        assert_same(line.get_xdata(), rows["hazard_ratio"], site)
        segments = intervals[site]
        assert isinstance(segments, LineCollection)
        ends = np.array([[s[0][0], s[1][0]] for s in segments.get_segments()])
        assert_same(ends[:, 0], rows["hr_lower"].clip(low, high), site)
        assert_same(ends[:, 1], rows["hr_upper"].clip(low, high), site)
        assert ((ends >= low) & (ends <= high)).all()
        for r in rows.itertuples():
            assert f"{r.hazard_ratio:.2f} [{r.hr_lower:.2f}, {r.hr_upper:.2f}]" in texts
    assert "1 (reference)" in texts
    assert_readable(fig)


def test_forest_ticks_never_overlap_on_a_wide_range():
    frame = pd.DataFrame({"site": ["lung"] * 3, "term": ["stage=II", "stage=III", "stage=IV"],
                          "reference": ["stage=I"] * 3, "hazard_ratio": [0.02, 1.5, 90.0],
                          "hr_lower": [0.001, 1.1, 20.0], "hr_upper": [0.5, 2.0, 400.0], "n": [500] * 3})
    fig = draw.forest_plot({"cox_hazard_ratios": frame})
    ax = next(a for a in fig.axes if a.get_xscale() == "log")
    assert len(ax.get_xticks()) <= 7
    low, high = ax.get_xlim()
    assert low >= 1 / 64 and high <= 64  # off-axis intervals end in an arrow, the axis stays readable
    assert_readable(fig)


def test_delay_boxplot_draws_the_table_says_what_is_hidden_and_labels_30_days(care):
    spec, frames, fig = draw_figure(care, "delay_by_hospital")
    table = frames["delay_by_hospital"]
    shown = table.dropna(subset=["median_days", "q1_days", "q3_days", "p10_days", "p90_days"])
    boxes = lines_by_gid(fig, "box")
    assert set(boxes) == set(shown["hospital_id"].astype(str))
    ax = fig.axes[0]
    assert f"{len(shown)} of {len(table)} hospitals shown" in ax.get_title(loc="left")
    assert any(t.get_text().strip() == "30 days" for t in ax.texts)
    medians = {t.get_text().split(" (")[0]: t for t in ax.get_yticklabels()}
    assert set(medians) == set(shown["hospital_id"].astype(str))
    assert_readable(fig)


def test_delay_boxplot_says_how_many_hospitals_are_not_drawn():
    table = pd.DataFrame({"hospital_id": ["A", "B", "C"], "n_treated": [40, np.nan, 25],
                          "median_days": [20.0, np.nan, 35.0], "q1_days": [12.0, np.nan, 25.0],
                          "q3_days": [30.0, np.nan, 44.0], "p10_days": [6.0, np.nan, 15.0],
                          "p90_days": [41.0, np.nan, 60.0]})
    comparison = pd.DataFrame({"hospital_id": ["A", "C"], "fast_track_candidate": [True, False]})
    fig = draw.delay_boxplots({"delay_by_hospital": table, "hospital_comparison": comparison})
    title = fig.axes[0].get_title(loc="left")
    assert "2 of 3 hospitals shown; 1 not drawn (fewer than 10 treated cases: quantiles masked)" in title
    boxes = lines_by_gid(fig, "box")
    assert set(boxes) == {"A", "C"} and boxes["A"].get_facecolor() != boxes["C"].get_facecolor()
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["C (n = 25)", "A (n = 40)"]
    assert_readable(fig)


def test_every_figure_renders_as_svg_and_300_dpi_png(survival, care):
    for controlled in (survival, care):
        for spec in controlled.result.figures:
            images = render_figure(spec, controlled, controlled.result.study_id)
            assert images["svg"].lstrip().startswith(b"<?xml") and b"<svg" in images["svg"]
            assert round(png_dpi(images["png"])) == PNG_DPI
            assert len(images["preview"]) < len(images["png"])
