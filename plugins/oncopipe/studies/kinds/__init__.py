"""The registry of analysis kinds a study YAML can name.

A study's ``analysis.kind`` is looked up here. Adding a kind of analysis is one function decorated with
:func:`register`, in a module of this package, and its parameter schema in :mod:`oncopipe.studies.parameters`
(a kind without one is refused at registration); no DAG code changes.

An analysis function has the signature::

    def run(inputs: Mapping[str, pd.DataFrame], params: Mapping[str, Any], *, study_id: str) -> StudyResult

where ``inputs`` holds exactly the published marts (and reference tables) the study's approval names.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from oncopipe.contracts.results import InputValidationError, StudyResult
from oncopipe.studies import parameters

Analysis = Callable[..., StudyResult]
_REGISTRY: dict[str, Analysis] = {}


def register(kind: str) -> Callable[[Analysis], Analysis]:
    """Register ``fn`` as the implementation of analysis ``kind``."""

    def decorator(fn: Analysis) -> Analysis:
        if parameters.schema_for(kind) is None:
            raise ValueError(f"analysis kind {kind!r} declares no parameter schema: add one to "
                             "oncopipe.studies.parameters with @declare")
        if kind in _REGISTRY and _REGISTRY[kind] is not fn:
            raise ValueError(f"analysis kind {kind!r} is registered twice")
        _REGISTRY[kind] = fn
        return fn

    return decorator


def checked_parameters(kind: str, params: Mapping[str, Any], study_id: str) -> dict[str, Any]:
    """The parameters of ``kind`` validated by its schema, defaults filled in (Python types).

    Raises:
        InputValidationError: unknown keys or invalid values, each named with what is allowed.
    """
    try:
        return parameters.validate(kind, params).model_dump()
    except parameters.ParameterError as exc:
        raise InputValidationError(study_id, str(exc)) from None


def _load_all() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def kinds() -> list[str]:
    """Names of every registered analysis kind."""
    _load_all()
    return sorted(_REGISTRY)


def get(kind: str) -> Analysis:
    """The analysis registered as ``kind``; ``KeyError`` names the known kinds."""
    _load_all()
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise KeyError(f"unknown analysis kind {kind!r}; registered: {', '.join(sorted(_REGISTRY))}") from None


def run(kind: str, inputs: Mapping[str, pd.DataFrame], params: Mapping[str, Any], *, study_id: str) -> StudyResult:
    """Look up ``kind`` and run it."""
    return get(kind)(inputs, params, study_id=study_id)
