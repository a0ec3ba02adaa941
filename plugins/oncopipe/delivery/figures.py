"""Figures of the studies, drawn from disclosure-controlled tables only, in a style a journal accepts.

Each ``draw`` function takes ``{table name: controlled frame}`` (masked cells are NaN, curve rows with fewer
than 10 at risk already dropped) and returns a matplotlib Figure (Agg canvas, no pyplot state). Nothing here
sees patient data. What every figure holds to (tests/unit/delivery/test_figures.py checks each):

- text of at least :data:`MIN_FONT_PT` points, and no two tick labels overlapping;
- curves start at (0, 1) (survival) or (0, 0) (cumulative incidence), with numbers at risk under the plot:
  ``–`` where the table has no row (fewer than 10 at risk, or fewer than 10 left since the number before: the
  curve is coarsened), ``*`` where disclosure control masked the count; a curve is drawn as steps through the
  rows it has, so a coarsened curve keeps its true value at every row shown;
- legends name only groups that are drawn, with their size (``n < 10`` / ``n masked`` never a small count);
- forest plots show each variable's reference category, one log axis shared by every panel, every interval
  inside the axis (an arrow where it runs off it) and the HR [95% CI] printed beside each row;
- the data artists carry a ``gid`` (``curve:<group>``, ``ratio:<panel>``, ...), so a test can read back what
  was drawn and compare it with the table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

MIN_FONT_PT = 8.0
#: The rc settings every figure is drawn and saved with (export_store.render_figure applies them).
STYLE: dict[str, object] = {
    "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
    "legend.fontsize": 8, "figure.titlesize": 10, "axes.spines.top": False, "axes.spines.right": False,
}
AT_RISK_DROPPED = "–"
AT_RISK_MASKED = "*"
# A row is not published when fewer than 10 are at risk, or when fewer than 10 left since the number before it
# (disclosure control coarsens the curve): "<10" would be false in the second case.
AT_RISK_NOTE = (f"{AT_RISK_DROPPED}: not shown, under 10 at risk or under 10 left since the number before; "
                f"{AT_RISK_MASKED}: masked")
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
           "#bcbd22")


def new_figure(width: float, height: float) -> Figure:
    """A figure on its own Agg canvas (no global pyplot state, safe in threads)."""
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def size_label(n: object) -> str:
    """A group size for a legend: ``n = 1,234``, or ``n masked`` (never a count below 10)."""
    if n is None or (isinstance(n, float) and math.isnan(n)) or n is pd.NA:
        return "n masked"
    return f"n = {int(n):,}" if int(n) >= 10 else "n < 10"


def at_risk_text(value: object) -> str:
    """A number at risk: the count, ``–`` for a row not published (``None``), ``*`` for a masked cell (NaN)."""
    if value is None:
        return AT_RISK_DROPPED
    if value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return AT_RISK_MASKED
    return f"{int(value):,}" if int(value) >= 10 else AT_RISK_DROPPED


def _years_text(years: Sequence[int]) -> str:
    years = [str(y) for y in years]
    return years[0] if len(years) == 1 else f"{', '.join(years[:-1])} and {years[-1]}"


def net_survival_caption(years: Sequence[int]) -> str:
    """The caption of :func:`net_survival_plot` for the study's ``years``."""
    return f"Net survival at {_years_text(years)} years by site and sex (Pohar-Perme, 95% CI)"


def at_risk_table(ax: Axes, rows: Sequence[tuple[str, str, Sequence[str]]], positions: Sequence[float]) -> None:
    """Numbers at risk under a curve plot: one row per group ``(label, colour, texts at positions)``."""
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([label for label, _, _ in rows])
    for tick, (_, colour, _) in zip(ax.get_yticklabels(), rows, strict=True):
        tick.set_color(colour)
    for i, (_, _, texts) in enumerate(rows):
        for x, text in zip(positions, texts, strict=True):
            ax.text(x, i, text, ha="center", va="center", fontsize=MIN_FONT_PT)
    ax.set_title(f"Number at risk ({AT_RISK_NOTE})", fontsize=MIN_FONT_PT, loc="left")
    for spine in ("top", "right", "left"):
        ax.spines[spine].set_visible(False)
    ax.tick_params(left=False)


def km_curves(tables: Mapping[str, pd.DataFrame], *, curves: str = "km_curves_site",
              at_risk: str = "km_site", sizes: str = "median_site", years: Sequence[int] | None = None) -> Figure:
    """Kaplan-Meier curves by site from (0, 1), pointwise CI bands, numbers at risk at each whole year.

    The curve table has no row at 0 and stops where fewer than 10 remain at risk. The number at risk at 0 is
    the group size ``n`` of ``sizes``; later ones come from the yearly ``at_risk`` table.
    """
    cur = tables[curves]
    risk = tables[at_risk]
    n0 = tables[sizes].set_index("site")["n"] if sizes in tables else pd.Series(dtype=float)
    sites = sorted(cur["site"].dropna().unique())
    last_year = int(max(years)) if years else int(np.ceil(cur["years"].max())) if len(cur) else 1
    fig = new_figure(8, 4.2 + 0.25 * len(sites))
    grid = fig.add_gridspec(2, 1, height_ratios=[4, 0.6 + 0.25 * len(sites)], hspace=0.35)
    ax = fig.add_subplot(grid[0])
    tab = fig.add_subplot(grid[1], sharex=ax)
    rows = []
    for i, site in enumerate(sites):
        # a row whose survival is masked is not a point of the curve: the step before it carries on
        c = cur[cur["site"] == site].dropna(subset=["surv"]).sort_values("years")
        c = pd.concat([pd.DataFrame({"years": [0.0], "surv": [1.0], "lower": [1.0], "upper": [1.0]}),
                       c[["years", "surv", "lower", "upper"]].astype(float)], ignore_index=True)
        colour = COLOURS[i % len(COLOURS)]
        ax.step(c["years"], c["surv"], where="post", color=colour, gid=f"curve:{site}",
                label=f"{site} ({size_label(n0.get(site, np.nan))})")
        ax.fill_between(c["years"], c["lower"], c["upper"], step="post", color=colour, alpha=0.15, linewidth=0)
        r = risk[risk["site"] == site].set_index("years")["n_risk"]
        texts = [at_risk_text(n0.get(site, np.nan)) if year == 0 else at_risk_text(r.get(float(year)))
                 for year in range(last_year + 1)]
        rows.append((site, colour, texts))
    ax.set_ylim(0, 1.02)
    ax.set_xlim(-0.25, last_year + 0.25)
    ax.set_xticks(range(last_year + 1))
    ax.set_ylabel("Overall survival (Kaplan-Meier, 95% CI)")
    ax.legend(loc="upper right", frameon=False)
    ax.grid(alpha=0.3)
    ax.tick_params(labelbottom=True)
    ax.set_xlabel("Years since diagnosis")
    at_risk_table(tab, rows, range(last_year + 1))
    tab.tick_params(bottom=False, labelbottom=False)
    tab.spines["bottom"].set_visible(False)
    return fig


def net_survival_plot(tables: Mapping[str, pd.DataFrame], *, table: str = "net_survival_site_sex",
                      years: Sequence[int] | None = None) -> Figure:
    """Net survival at the study's ``years`` by site, one panel per sex, with 95% CIs; each legend names
    only the sites drawn in its panel."""
    ns = tables[table]
    years = list(years) if years else sorted(int(y) for y in ns["years"].dropna().unique())
    sites = sorted(ns["site"].dropna().unique())
    fig = new_figure(10, 4.6)
    axes = fig.subplots(1, 2, sharey=True)
    offset = 0.08 if len(years) < 2 else min(0.08, 0.6 * min(np.diff(years)) / max(len(sites), 1))
    for ax, sex in zip(axes, ("male", "female"), strict=True):
        part = ns[ns["sex"] == sex]
        for i, site in enumerate(sites):
            s = part[(part["site"] == site)].dropna(subset=["net_survival"]).sort_values("years")
            if s.empty:
                continue
            low = (s["net_survival"] - s["lower"]).clip(lower=0).fillna(0)
            high = (s["upper"] - s["net_survival"]).clip(lower=0).fillna(0)
            bars = ax.errorbar(s["years"] + (i - (len(sites) - 1) / 2) * offset, s["net_survival"],
                               yerr=[low, high], marker="o", markersize=4, capsize=2, linewidth=1,
                               color=COLOURS[i % len(COLOURS)], label=site)
            bars.lines[0].set_gid(f"net:{sex}:{site}")
        ax.set_title(sex)
        ax.set_xlabel("Years since diagnosis")
        ax.set_xticks(years)
        ax.set_xlim(min(years) - 0.5, max(years) + 0.5)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(frameon=False, loc="upper right")
    axes[0].set_ylabel("Net survival (Pohar-Perme, 95% CI)")
    axes[0].set_ylim(0, 1.02)
    fig.tight_layout()
    return fig


def _variable(term: str) -> str:
    return term.split("=", 1)[0]


def forest_rows(frame: pd.DataFrame) -> list[tuple[str, bool]]:
    """Rows of a forest plot: per variable its reference level (``True``) then its other levels, in the
    table's order; the reference comes from the table's ``reference`` column."""
    rows: list[tuple[str, bool]] = []
    seen: set[str] = set()
    refs = frame.dropna(subset=["reference"]).groupby("term")["reference"].first() if "reference" in frame \
        else pd.Series(dtype=object)
    for term in dict.fromkeys(frame["term"]):
        variable = _variable(term)
        if variable not in seen:
            seen.add(variable)
            ref = refs.get(term)
            if isinstance(ref, str) and ref:
                rows.append((ref, True))
        rows.append((term, False))
    return rows


def _log_ticks(low: float, high: float, most: int = 7) -> list[float]:
    """Ticks in [low, high] from the densest of the 1-2-5, 1-3 and 1-per-decade series that gives at most
    ``most``, so their labels never meet."""
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    for mantissas in ((1, 2, 5), (1, 3), (1,)):
        ticks = [m * 10.0 ** d for d in decades for m in mantissas if low <= m * 10.0 ** d <= high]
        if len(ticks) <= most:
            return ticks
    return [10.0 ** d for d in decades if d % 2 == 0 and low <= 10.0 ** d <= high]


def _tick_label(value: float) -> str:
    return f"{value:g}"


def _ci_text(ratio: float, lower: float, upper: float) -> str:
    if any(math.isnan(v) for v in (ratio, lower, upper)):
        return "not estimable" if math.isnan(ratio) else f"{ratio:.2f}"
    return f"{ratio:.2f} [{lower:.2f}, {upper:.2f}]"


def forest_plot(tables: Mapping[str, pd.DataFrame], *, table: str = "cox_hazard_ratios",
                ratio: str = "hazard_ratio", lower: str = "hr_lower", upper: str = "hr_upper",
                label: str = "Hazard ratio", short: str = "HR", skip_prefix: str = "region=",
                max_ratio: float = 64.0) -> Figure:
    """Forest plot of ratios (log scale, one axis shared by every site) with 95% CIs and the value printed.

    One panel per site (two columns), the same rows in each: per variable its reference category (hollow
    marker at 1) and its levels. Not estimable levels are named and not drawn. Intervals beyond
    ``1/max_ratio .. max_ratio`` end in an arrow at the axis edge.
    """
    frame = tables[table]
    frame = frame[~frame["term"].astype(str).str.startswith(skip_prefix)] if skip_prefix else frame
    sites = sorted(frame["site"].dropna().unique())
    rows = forest_rows(frame)
    ypos = {term: i for i, (term, _) in enumerate(rows)}
    finite = frame[[ratio, lower, upper]].to_numpy(dtype=float)
    finite = finite[np.isfinite(finite) & (finite > 0)]
    low = max(min([*finite, 1.0]) / 1.25, 1 / max_ratio)
    high = min(max([*finite, 1.0]) * 1.25, max_ratio)
    ncols = 1 if len(sites) <= 1 else 2
    nrows = max(1, math.ceil(len(sites) / ncols))
    fig = new_figure(6.2 * ncols, (0.22 * len(rows) + 0.9) * nrows + 0.6)
    grid = fig.add_gridspec(nrows, 2 * ncols, width_ratios=[3, 1.5] * ncols, wspace=0.05, hspace=0.45)
    first: Axes | None = None
    for k, site in enumerate(sites):
        r, c = divmod(k, ncols)
        ax = fig.add_subplot(grid[r, 2 * c], sharex=first, sharey=first)
        text_ax = fig.add_subplot(grid[r, 2 * c + 1], sharey=ax)
        first = first or ax
        s = frame[frame["site"] == site]
        drawn = s.dropna(subset=[ratio, lower, upper])
        values = drawn[ratio].to_numpy(dtype=float)
        y = drawn["term"].map(ypos).to_numpy(dtype=float)
        lo = drawn[lower].to_numpy(dtype=float)
        hi = drawn[upper].to_numpy(dtype=float)
        ax.hlines(y, np.clip(lo, low, high), np.clip(hi, low, high), color="grey", linewidth=1,
                  gid=f"interval:{site}")
        ax.plot(values, y, "s", color="black", markersize=4, gid=f"ratio:{site}")
        for yy, l_, h_ in zip(y, lo, hi, strict=True):
            if l_ < low:
                ax.plot(low, yy, marker="<", color="grey", markersize=5)
            if h_ > high:
                ax.plot(high, yy, marker=">", color="grey", markersize=5)
        ref_y = [ypos[t] for t, is_ref in rows if is_ref]
        ax.plot([1.0] * len(ref_y), ref_y, "o", markerfacecolor="white", markeredgecolor="black", markersize=4,
                gid=f"reference:{site}")
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_xlim(low, high)
        ticks = _log_ticks(low, high)
        ax.set_xticks(ticks)
        ax.set_xticklabels([_tick_label(t) for t in ticks])
        ax.minorticks_off()
        n = s["n"].dropna()
        ax.set_title(f"{site} ({size_label(n.iloc[0] if len(n) else np.nan)})", loc="left")
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([f"{t} (reference)" if is_ref else t for t, is_ref in rows])
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.grid(alpha=0.3, axis="x")
        ax.set_xlabel(f"{label} (95% CI, log scale)")
        by_term = s.set_index("term")
        for term, is_ref in rows:
            if is_ref:
                text = "1 (reference)"
            elif term in by_term.index:
                row = by_term.loc[term]
                text = _ci_text(float(row[ratio]), float(row[lower]), float(row[upper]))
            else:
                text = ""
            text_ax.text(0.02, ypos[term], text, va="center", ha="left", fontsize=MIN_FONT_PT)
        text_ax.set_title(f"{short} [95% CI]", loc="left", fontsize=MIN_FONT_PT + 1)
        text_ax.axis("off")
        if c > 0:
            ax.tick_params(labelleft=False)
    if skip_prefix:
        fig.text(0.01, 0.005, f"Models are also adjusted for {skip_prefix.rstrip('=')} (not drawn).",
                 fontsize=MIN_FONT_PT)
    return fig


def delay_boxplots(tables: Mapping[str, pd.DataFrame], *, summary: str = "delay_by_hospital",
                   comparison: str = "hospital_comparison", within_days: int = 30) -> Figure:
    """Delay by hospital as horizontal box plots from summary quantiles (P10, Q1, median, Q3, P90).

    Hospitals whose quantiles disclosure control masked (fewer than 10 treated) are not drawn and the
    figure says how many; fast-track candidates after case-mix adjustment are green.
    """
    full = tables[summary]
    s = full.dropna(subset=["median_days", "q1_days", "q3_days", "p10_days", "p90_days"]).sort_values(
        "median_days", ascending=False)
    comp = tables.get(comparison)
    fast: set[str] = set()
    if comp is not None and "fast_track_candidate" in comp:
        flag = comp["fast_track_candidate"].astype("boolean").fillna(False).astype(bool)
        fast = set(comp.loc[flag, "hospital_id"].astype(str))
    stats_ = [{"med": r.median_days, "q1": r.q1_days, "q3": r.q3_days, "whislo": r.p10_days, "whishi": r.p90_days,
               "label": f"{r.hospital_id} ({size_label(r.n_treated)})", "fliers": []} for r in s.itertuples()]
    fig = new_figure(8, max(3.0, 0.24 * len(stats_) + 1.8))
    ax = fig.add_subplot(1, 1, 1)
    if stats_:
        boxes = ax.bxp(stats_, showfliers=False, patch_artist=True, orientation="horizontal", widths=0.6,
                       medianprops={"color": "black", "linewidth": 1.5})
        for patch, r in zip(boxes["boxes"], s.itertuples(), strict=True):
            patch.set_facecolor("tab:green" if str(r.hospital_id) in fast else "lightgrey")
            patch.set_gid(f"box:{r.hospital_id}")
    ax.axvline(within_days, color="red", linewidth=0.8, linestyle="--")
    ax.text(within_days, 1.0, f" {within_days} days", color="red", fontsize=MIN_FONT_PT, va="bottom",
            transform=ax.get_xaxis_transform())
    ax.set_xlabel("Days from diagnosis to first treatment")
    ax.set_ylabel("Diagnosing hospital")
    ax.set_xlim(left=0)
    hidden = len(full) - len(stats_)
    shown = f"{len(stats_)} of {len(full)} hospitals shown"
    if hidden:
        shown += f"; {hidden} not drawn (fewer than 10 treated cases: quantiles masked)"
    ax.set_title(f"Box: IQR; line: median; whiskers: 10th-90th percentiles. {shown}.", fontsize=MIN_FONT_PT,
                 loc="left", wrap=True)
    ax.legend(handles=[Patch(facecolor="tab:green", label="fast-track candidate (case-mix adjusted)"),
                       Patch(facecolor="lightgrey", label="other hospitals")], loc="upper center", frameon=False,
              bbox_to_anchor=(0.5, -0.12 - 0.6 / fig.get_figheight()), ncol=2)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig
