"""TRADHOR figures: parameters in captions and axes, data equal to the controlled tables, group sizes in the
legend, numbers at risk under the cumulative incidence (issue #19)."""

from __future__ import annotations

import numpy as np
import pytest
from oncopipe.delivery import disclosure
from oncopipe.delivery import figures as draw
from oncopipe.studies.kinds import get
from support.figure_checks import assert_readable, assert_same, draw_figure, legend_texts, lines_by_gid
from test_tradhor_analysis import PARAMS, _marts


@pytest.fixture(scope="module")
def controlled():
    inputs, _ = _marts()
    result = get("tradhor_adherence")(inputs, {**PARAMS, "max_months": 48, "pdc_threshold": 0.9},
                                      study_id="TRADHOR")
    return disclosure.control(result)


def test_trajectories_draw_the_fitted_means_with_group_sizes(controlled):
    spec, frames, fig = draw_figure(controlled, "trajectories")
    assert "over 48 months" in spec.title
    means, groups = frames["trajectory_means"], frames["trajectory_groups"].set_index("group")
    drawn = lines_by_gid(fig, "fitted")
    assert set(drawn) == set(means["group"])
    for group, line in drawn.items():
        rows = means[means["group"] == group].sort_values("month")
        x, y = np.asarray(line.get_xdata(), dtype=float), np.asarray(line.get_ydata(), dtype=float)
        # every month in between is drawn, a month not published as a gap (NaN), never a straight line across
        assert_same(x, np.arange(rows["month"].min(), rows["month"].max() + 1), group)
        assert_same(x[~np.isnan(y)], rows.dropna(subset=["fitted_mean"])["month"], group)
        assert_same(y[~np.isnan(y)], rows["fitted_mean"].dropna(), group)
    labels = legend_texts(fig)
    for group in sorted(drawn):
        n = groups.loc[group, "n_patients"]
        assert any(label.startswith(f"group {group} ({draw.size_label(n)}") for label in labels), labels
    assert fig.axes[0].get_xlim() == (0, 48)
    assert_readable(fig)


def test_adherence_over_time_names_the_threshold(controlled):
    spec, frames, fig = draw_figure(controlled, "adherence_over_time")
    assert "PDC >= 0.9" in spec.title and any("PDC >= 0.9" in t for t in legend_texts(fig))
    data = frames["adherence_by_month"].sort_values("month")
    series = lines_by_gid(fig, "series")
    assert_same(series["mean_pdc"].get_ydata(), data["mean_pdc"], "mean_pdc")
    assert_same(series["share_adherent"].get_ydata(), data["share_adherent"], "share_adherent")
    assert_readable(fig)


def test_cif_starts_at_0_0_with_numbers_at_risk(controlled):
    spec, frames, fig = draw_figure(controlled, "discontinuation_cif")
    data = frames["discontinuation_cif"].sort_values("month")
    line = lines_by_gid(fig, "curve")["discontinuation"]
    assert (line.get_xdata()[0], line.get_ydata()[0]) == (0, 0)
    curve = data.dropna(subset=["cif"])
    assert_same(line.get_ydata(), curve["cif"], "cif")
    ax, tab = fig.axes
    assert list(ax.get_xticks()) == [0, 12, 24, 36, 48]
    at_risk = data.set_index("month")["n_at_risk"]
    assert [t.get_text() for t in tab.texts] == [draw.at_risk_text(at_risk.get(m)) for m in (0, 12, 24, 36, 48)]
    assert all(t.get_text() in (draw.AT_RISK_DROPPED, draw.AT_RISK_MASKED) or int(t.get_text().replace(",", "")) >= 10
               for t in tab.texts)
    assert_readable(fig)
