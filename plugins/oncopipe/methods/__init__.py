"""Methods (bottom layer): the statistics, as pure functions over arrays and DataFrames.

Kaplan-Meier and log-rank (``survival``), Cox models (``cox``), Pohar-Perme net survival (``net_survival``),
competing risks (``competing_risks``), care-pathway delays (``delays``), adherence to treatment
(``adherence``), group-based trajectories (``trajectories``) and multinomial predictors (``predictors``).

May import: other ``oncopipe.methods`` modules only; no I/O, no Airflow, dbt, Great Expectations or DuckDB.
"""
