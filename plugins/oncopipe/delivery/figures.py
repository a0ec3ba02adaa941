"""Figures of the survival and care-pathway studies, drawn from disclosure-controlled tables only.

Each function takes ``{table name: controlled frame}`` (masked cells are NaN, curve rows with fewer than 10
at risk already dropped) and returns a matplotlib Figure (Agg backend). Nothing here sees patient data.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def km_curves(tables: Mapping[str, pd.DataFrame], *, curves: str = "km_curves_site",
              at_risk: str = "km_site", sizes: str = "median_site") -> Figure:
    """Kaplan-Meier curves by site with pointwise CI bands and a numbers-at-risk table under the plot.

    The curve table has no row at 0 (survival is 1 there) and stops where fewer than 10 remain at risk; a
    masked point leaves a gap rather than a step drawn across it. The number at risk at 0 is the group size
    ``n`` of ``sizes``, later ones come from the yearly ``at_risk`` table: a whole year without a row there
    had fewer than 10 at risk, shown as "<10"; a masked count is shown as "masked".
    """
    cur = tables[curves]
    risk = tables[at_risk]
    n0 = tables[sizes].set_index("site")["n"] if sizes in tables else pd.Series(dtype=float)
    sites = sorted(cur["site"].dropna().unique())
    last_year = int(np.ceil(max(cur["years"].max(), risk["years"].max() if len(risk) else 0)))
    fig, (ax, tab) = plt.subplots(2, 1, figsize=(9, 7), gridspec_kw={"height_ratios": [4, 1.3]}, sharex=True)
    colours = plt.cm.tab10(np.linspace(0, 1, 10))
    for i, site in enumerate(sites):
        c = cur[cur["site"] == site].sort_values("years")
        c = pd.concat([pd.DataFrame({"years": [0.0], "surv": [1.0], "lower": [1.0], "upper": [1.0]}),
                       c[["years", "surv", "lower", "upper"]].astype(float)], ignore_index=True)
        colour = colours[i % 10]
        ax.step(c["years"], c["surv"], where="post", color=colour, label=site)
        ax.fill_between(c["years"], c["lower"], c["upper"], step="post", color=colour, alpha=0.15, linewidth=0)
    ax.set_ylim(0, 1)
    ax.set_xlim(-0.3, last_year + 0.3)  # room for the at-risk numbers at 0 and at the last year
    ax.set_ylabel("Overall survival (Kaplan-Meier)")
    ax.legend(loc="upper right", frameon=False)
    ax.grid(alpha=0.3)
    tab.set_yticks(range(len(sites)))
    tab.set_yticklabels(sites)
    tab.set_ylim(-0.5, len(sites) - 0.5)
    tab.invert_yaxis()
    for i, site in enumerate(sites):
        r = risk[risk["site"] == site].set_index("years")["n_risk"]
        for year in range(last_year + 1):
            value = n0.get(site, np.nan) if year == 0 else r.get(float(year), None)
            text = "<10" if value is None else "masked" if pd.isna(value) else f"{int(value):,}"
            tab.text(year, i, text, ha="center", va="center", fontsize=7)
    tab.set_xlabel("Years since diagnosis")
    tab.set_title("Number at risk", fontsize=9, loc="left")
    for spine in ("top", "right", "left"):
        tab.spines[spine].set_visible(False)
    tab.tick_params(left=False)
    fig.tight_layout()
    return fig


def net_survival_plot(tables: Mapping[str, pd.DataFrame], *, table: str = "net_survival_site_sex") -> Figure:
    """Net survival at 1, 3 and 5 years by site and sex, with 95% CIs."""
    ns = tables[table]
    sites = sorted(ns["site"].dropna().unique())
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), sharey=True)
    for ax, sex in zip(axes, ("male", "female"), strict=True):
        part = ns[ns["sex"] == sex]
        for i, site in enumerate(sites):
            s = part[part["site"] == site].sort_values("years")
            ax.errorbar(s["years"] + (i - len(sites) / 2) * 0.06, s["net_survival"],
                        yerr=[s["net_survival"] - s["lower"], s["upper"] - s["net_survival"]],
                        marker="o", capsize=2, label=site)
        ax.set_title(sex)
        ax.set_xlabel("Years since diagnosis")
        ax.set_xticks([1, 3, 5])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("Net survival (Pohar-Perme)")
    axes[0].set_ylim(0, 1)
    axes[1].legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def forest_plot(tables: Mapping[str, pd.DataFrame], *, table: str = "cox_hazard_ratios") -> Figure:
    """Forest plot of hazard ratios (log scale) with 95% CIs, one panel per site (region terms not drawn)."""
    hr = tables[table].dropna(subset=["hazard_ratio"])
    hr = hr[~hr["term"].str.startswith("region=")]
    sites = sorted(hr["site"].unique())
    ncols = min(3, max(len(sites), 1))
    nrows = max(1, -(-len(sites) // ncols))
    terms = list(dict.fromkeys(hr["term"]))
    ypos = {t: i for i, t in enumerate(terms)}
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 0.28 * len(terms) * nrows + 1.5), sharey=True,
                             squeeze=False)
    ticks = [0.25, 0.5, 1, 2, 4, 8]
    for ax, site in zip(axes.flat, sites, strict=False):
        s = hr[hr["site"] == site]
        y = s["term"].map(ypos)
        ax.errorbar(s["hazard_ratio"], y, xerr=[s["hazard_ratio"] - s["hr_lower"], s["hr_upper"] - s["hazard_ratio"]],
                    fmt="s", color="black", ecolor="grey", capsize=2, markersize=3)
        ax.axvline(1.0, color="red", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.set_title(site)
        ax.grid(alpha=0.3, axis="x")
    for ax in axes.flat[len(sites):]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_yticks(range(len(terms)))
        row[0].set_yticklabels(terms, fontsize=7)
    axes[0][0].set_ylim(len(terms) - 0.5, -0.5)
    fig.supxlabel("Hazard ratio (95% CI, log scale); models also adjusted for region")
    fig.tight_layout()
    return fig


def delay_boxplots(tables: Mapping[str, pd.DataFrame], *, summary: str = "delay_by_hospital",
                   comparison: str = "hospital_comparison") -> Figure:
    """Delay distributions by hospital as box plots drawn from summary quantiles (P10, Q1, median, Q3, P90).

    Hospitals flagged as fast-track candidates after case-mix adjustment are drawn in green.
    """
    s = tables[summary].dropna(subset=["median_days", "q1_days", "q3_days"]).sort_values("median_days")
    comp = tables.get(comparison)
    fast = set()
    if comp is not None and "fast_track_candidate" in comp:
        fast = set(comp.loc[comp["fast_track_candidate"].fillna(False).astype(bool), "hospital_id"].astype(str))
    stats_ = [{"med": r.median_days, "q1": r.q1_days, "q3": r.q3_days, "whislo": r.p10_days, "whishi": r.p90_days,
               "label": str(r.hospital_id), "fliers": []} for r in s.itertuples()]
    fig, ax = plt.subplots(figsize=(max(8, 0.22 * len(stats_) + 2), 5))
    if stats_:
        boxes = ax.bxp(stats_, showfliers=False, patch_artist=True)
        for patch, r in zip(boxes["boxes"], s.itertuples(), strict=True):
            patch.set_facecolor("tab:green" if str(r.hospital_id) in fast else "lightgrey")
    ax.axhline(30, color="red", linewidth=0.8, linestyle="--")
    ax.set_ylabel("Days from diagnosis to first treatment")
    ax.set_xlabel("Diagnosing hospital (green: fast-track candidate after case-mix adjustment)")
    ax.tick_params(axis="x", labelrotation=90, labelsize=6)
    ax.set_title("Whiskers: 10th-90th percentiles; box: IQR; line: median", fontsize=9)
    fig.tight_layout()
    return fig
