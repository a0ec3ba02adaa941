"""The HTML report: self-contained, complete, and showing only controlled values."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from oncopipe.contracts.results import ResultFigure, ResultTable, StudyResult  # noqa: E402
from oncopipe.delivery.disclosure import control  # noqa: E402
from oncopipe.delivery.export_store import StudyInfo, render_figure  # noqa: E402
from oncopipe.delivery.report import render_report  # noqa: E402

STUDY = StudyInfo("rep", "Report <study> & co", "CESREES-2026-001", approval_committee="CESREES",
                  principal_investigator="Dr R")
PROVENANCE = {"extraction_date": "2026-05-31", "mart_version": "v2026-06", "dbt_invocation_id": "dbt-123",
              "gx_validations": [{"id": "v1", "name": "marts", "success": True, "evaluated": 30, "passed": 30},
                                 {"id": "v2", "name": "raw er_pha_f", "success": False, "evaluated": 20,
                                  "passed": 19}],
              "code_lists": {"atc_hormone_therapy": "2025-01"}, "row_counts": {"endocrine_adherence_monthly": 123456}}


class Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.refs.append((tag, name, value))


def controlled_result():
    frame = pd.DataFrame({"group": ["high", "low", "declining", "Total"], "n": [150, 6, 44, 200],
                          "mean_pdc": [0.95, 0.3, 0.6, 0.8]})
    table = ResultTable("trajectory_groups", frame, "Patients per adherence trajectory.", count_columns=("n",),
                        statistic_columns={"mean_pdc": "n"}, group_columns=("group",), total_value="Total")

    def draw(frames):
        fig, ax = plt.subplots(figsize=(4, 3))
        f = frames["trajectory_groups"]
        ax.bar(f["group"], f["mean_pdc"].fillna(0))
        return fig

    result = StudyResult("rep", "tradhor_adherence", {"n_groups": 3, "window": "60 months"}, [table],
                         [ResultFigure("groups", "Mean PDC by group", ("trajectory_groups",), draw)],
                         methods="Group-based trajectory modelling of monthly PDC.", notes=["Synthetic data."])
    return control(result)


def render(provenance=PROVENANCE):
    controlled = controlled_result()
    png = render_figure(controlled.result.figures[0], controlled, "rep")["png"]
    return render_report(controlled, STUDY, provenance, code_version="abc123",
                         figures=[("groups", "Mean PDC by group", png)]), png


def test_report_holds_no_run_identity():
    # Run id and dbt invocation id live in the manifest's run fields only: a re-run gives the same bytes.
    html, _ = render()
    again, _ = render({**PROVENANCE, "dbt_invocation_id": "dbt-456"})
    assert "dbt-123" not in html and html == again


def test_report_is_self_contained():
    html, png = render()
    parser = Collect()
    parser.feed(html)
    assert parser.refs, "the figure must be referenced"
    for tag, attr, value in parser.refs:
        assert value.startswith("data:image/png;base64,"), (tag, attr, value[:60])
    assert base64.b64decode(parser.refs[0][2].split(",", 1)[1]) == png
    assert "<link" not in html and "<script" not in html and "@import" not in html


def test_report_names_approval_data_version_gates_and_parameters():
    html, _ = render()
    for expected in ("CESREES-2026-001", "v2026-06", "2026-05-31", "abc123", "atc_hormone_therapy",
                     "123456", "n_groups", "60 months", "Group-based trajectory modelling", "Synthetic data.",
                     "Mean PDC by group", "19 / 20", "30 / 30"):
        assert expected in html, expected
    assert "Report &lt;study&gt; &amp; co" in html  # escaped, not injected


def test_report_shows_masked_cells_never_their_values():
    html, _ = render()
    body = html.split('id="table-trajectory_groups"')[1].split("</table>")[0]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", body)
    assert "6" not in cells and "0.3" not in cells
    assert cells.count("masked") >= 4  # low and its complement, n and mean_pdc each
    assert "small_count" in html and "complementary" in html


def test_report_has_no_clock_time():
    first, _ = render()
    second, _ = render()
    assert first == second
