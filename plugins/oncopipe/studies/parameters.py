"""The parameters each analysis kind accepts, as typed schemas.

A study YAML gives ``analysis.parameters``; the registry validates them against the schema of the study's
kind when the file is loaded (``oncopipe studies validate`` and the DAG processor), and the kind validates them
again when it runs (a direct call with a dict gets the same checks). A typo (``curve_grid_month``) or a value
outside what the method supports is refused with the file, the key and what is allowed.

This module imports pydantic only: the DAG processor reads it at parse time (importing the analysis modules
themselves pulls in scikit-learn and matplotlib, 2.7 s against 0.2 s measured).

Adding a parameter to a kind is one annotated field on its schema (a default keeps every existing study valid);
adding a kind is one :class:`KindParameters` subclass decorated with :func:`declare` (see docs/data-team.md)::

    @declare("my_kind")
    class MyKindParameters(KindParameters):
        horizon_years: int = Field(5, ge=1, le=15, description="follow-up horizon, in years")
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

_SCHEMAS: dict[str, type[KindParameters]] = {}


class ParameterError(ValueError):
    """Parameters an analysis kind does not accept; the message names each key and what is allowed."""


class KindParameters(BaseModel):
    """Base of every kind's schema: unknown keys are refused, values are checked strictly (no "yes" for True)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def declare(kind: str) -> Callable[[type[KindParameters]], type[KindParameters]]:
    """Declare ``schema`` as the parameters of analysis ``kind``."""

    def decorator(schema: type[KindParameters]) -> type[KindParameters]:
        if kind in _SCHEMAS and _SCHEMAS[kind] is not schema:
            raise ValueError(f"analysis kind {kind!r} declares its parameters twice")
        _SCHEMAS[kind] = schema
        return schema

    return decorator


def schema_for(kind: str) -> type[KindParameters] | None:
    """The parameter schema of ``kind``, or None when the kind declares none."""
    return _SCHEMAS.get(kind)


def declared_kinds() -> list[str]:
    """Every kind that declares a parameter schema."""
    return sorted(_SCHEMAS)


def _allowed(schema: type[KindParameters], key: str) -> str:
    field = schema.model_fields.get(key)
    if field is None or not field.description:
        return ""
    return f" (allowed: {field.description})"


def describe(kind: str, schema: type[KindParameters], error: ValidationError) -> str:
    """One line per problem: the parameter, what is wrong, and what the kind accepts."""
    known = list(schema.model_fields)
    lines = []
    for e in error.errors():
        key = ".".join(str(p) for p in e["loc"])
        top = str(e["loc"][0]) if e["loc"] else ""
        if e["type"] == "extra_forbidden":
            close = difflib.get_close_matches(top, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            lines.append(f"unknown parameter {key!r}{hint}; kind {kind} accepts: {', '.join(known)}")
        elif not e["loc"]:
            lines.append(e["msg"].removeprefix("Value error, "))
        else:
            lines.append(f"parameter {key!r} = {e['input']!r}: {e['msg']}{_allowed(schema, top)}")
    return "; ".join(lines)


def validate(kind: str, params: Mapping[str, Any]) -> KindParameters:
    """Validated parameters of ``kind`` (defaults filled in).

    Raises:
        ParameterError: unknown keys or invalid values, each named with what is allowed; or a kind that
            declares no schema.
    """
    schema = schema_for(kind)
    if schema is None:
        raise ParameterError(f"analysis kind {kind!r} declares no parameter schema; declared: "
                             f"{', '.join(declared_kinds())}")
    try:
        return schema.model_validate(dict(params))
    except ValidationError as error:
        raise ParameterError(describe(kind, schema, error)) from None


def effective(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters a run of ``kind`` uses: the study's, validated, with every default (JSON types)."""
    return validate(kind, params).model_dump(mode="json")


# --- the shipped kinds -------------------------------------------------------------------------------------


# The measures the marts carry. cma7: AdhereR's CMA7 of each follow-up month, the mart's pdc (covered days / days
# in the month, carry-over within and into the month); cma7_sliding_window: CMA7 over the trailing
# ``sliding_window_months`` months ending with each month (AdhereR's CMA_sliding_window of CMA7, calendar
# months, a step of one month; fewer months at the start of follow-up). The other CMAs need the dispensings,
# which no approved mart of this study carries (oncopipe.methods.cma computes them from dispensings).
AdherenceMeasure = Literal["cma7", "cma7_sliding_window"]
ADHERENCE_MEASURES: tuple[str, ...] = get_args(AdherenceMeasure)


@declare("tradhor_adherence")
class TradhorParameters(KindParameters):
    """TRADHOR: group-based trajectories of monthly PDC, their predictors, discontinuation."""

    min_groups: int = Field(2, ge=1, le=7, description="integer 1..7, <= max_groups")
    max_groups: int = Field(7, ge=1, le=7, description="integer 1..7, >= min_groups")
    degree: int | dict[int, list[int]] = Field(
        3, description="polynomial degree 0..5 of every group, or {k: [degree of each of the k groups]}")
    pdc_threshold: float = Field(0.8, gt=0, le=1, description="PDC counted as adherent, in (0, 1]")
    discontinuation_gap_days: int = Field(
        90, ge=1, description="gap the mart's is_discontinued was built with, in days (recorded in the methods)")
    seed: int = Field(0, ge=0, description="random seed of the k-means starts, integer >= 0")
    n_starts: int = Field(6, ge=1, le=100, description="EM starts per candidate model, 1..100")
    # One sigma per group: the adherent group's monthly PDC (mostly 1, some refill dips) is far less spread than
    # a declining group's (measured on the generator's planted groups, 20,314 women, seed 2026: sigma 0.20 for
    # the adherent group, 0.44-0.57 for the declining ones; 6-group BIC 660,938 against 778,943 with one
    # common sigma).
    common_sigma: bool = Field(False, description="true or false: one sigma shared by every group")
    max_months: int = Field(60, ge=12, le=60, description="months of follow-up analysed, 12..60 (the mart's 5 years)")
    age_scale: float = Field(10, gt=0, le=50, description="odds ratio of age per this many years, in (0, 50]")
    drop_missing_covariates: bool = Field(
        False, description="true: complete-case predictors; false: a missing covariate is an error")
    adherence_measure: AdherenceMeasure = Field(
        "cma7", description="'cma7' (the mart's monthly PDC) or 'cma7_sliding_window' (over sliding_window_months); "
                            "AdhereR's other CMAs need the dispensings, which the study's marts do not carry")
    sliding_window_months: int = Field(3, ge=1, le=12, description="months of the sliding window, 1..12")
    min_group_share: float = Field(
        0.05, ge=0, lt=0.5, description="smallest trajectory group an adequate model may have, in [0, 0.5)")

    @field_validator("degree")
    @classmethod
    def _degree(cls, value: int | dict[int, list[int]]) -> int | dict[int, list[int]]:
        degrees = [value] if isinstance(value, int) else [d for v in value.values() for d in v]
        if any(not 0 <= d <= 5 for d in degrees):
            raise ValueError("polynomial degrees must be 0..5")
        if isinstance(value, dict):
            wrong = [k for k, v in value.items() if len(v) != k]
            if wrong:
                raise ValueError(f"degree for k = {wrong[0]} must list {wrong[0]} degrees, one per group")
        return value

    @model_validator(mode="after")
    def _groups(self) -> TradhorParameters:
        if self.min_groups > self.max_groups:
            raise ValueError(f"min_groups ({self.min_groups}) must not exceed max_groups ({self.max_groups})")
        return self


#: Curve grid steps (months) that put a grid point on every whole year (the yearly at-risk marks).
GRID_MONTHS = (1, 2, 3, 4, 6, 12)


@declare("poor_prognosis_survival")
class SurvivalParameters(KindParameters):
    """Poor-prognosis survival: Kaplan-Meier, log-rank, Pohar-Perme net survival, Cox, excess hazard."""

    conf_type: Literal["log-log", "log", "plain"] = Field(
        "log-log", description="scale of the pointwise CIs: 'log-log', 'log' or 'plain'")
    years: list[int] = Field(
        default_factory=lambda: [1, 3, 5], min_length=1,
        description="increasing whole years 1..15 at which survival and net survival are reported")
    curve_grid_months: Literal[1, 2, 3, 4, 6, 12] = Field(
        1, description=f"months between curve points, one of {', '.join(map(str, GRID_MONTHS))}")
    min_site_cases_model: int = Field(
        50, ge=10, description="cases a site needs for the regression models, integer >= 10")
    ph_alpha: float = Field(0.05, gt=0, lt=1, description="level of the proportional-hazards test, in (0, 1)")

    @model_validator(mode="before")
    @classmethod
    def _retired(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "curve_step_days" in data:
            raise ValueError("parameter curve_step_days is no longer accepted: curves are published on a grid of "
                             f"whole months (curve_grid_months, one of {GRID_MONTHS})")
        return data

    @field_validator("years")
    @classmethod
    def _years(cls, value: list[int]) -> list[int]:
        if any(not 1 <= y <= 15 for y in value) or sorted(set(value)) != value:
            raise ValueError(f"years must be increasing whole years between 1 and 15, got {value}")
        return value


@declare("care_pathway_delays")
class CarePathwayParameters(KindParameters):
    """Care-pathway delays: delay summaries, case-mix-adjusted hospital comparison, landmark survival."""

    landmark_days: int = Field(90, ge=1, le=365, description="landmark of the delay-survival analysis, 1..365 days")
    min_treated_per_hospital: int = Field(
        10, ge=10, description="treated cases a hospital needs to be compared, integer >= 10")
    alpha: float = Field(0.05, gt=0, lt=1, description="family-wise level of the Holm-adjusted tests, in (0, 1)")
    fast_track_margin_days: float = Field(
        10.0, ge=0, description="days below the median hospital a fast-track candidate must be, >= 0")
