"""Line exclusions: implausible lines left out of staging and counted in a ledger, up to a ceiling.

Some faults touch a few lines of a sound delivery (a dispensing dated after the extraction date, 1,000 boxes on
one line): quarantining the whole extraction for them would stop every study for three lines, and keeping them
would move a person's end of data or coverage by years. Such a rule has the consequence *exclude*: staging
leaves the breaking lines out, the raw gate counts them per extraction, rule and source in the ledger (table
``excluded_lines`` of ``<quality>/history.sqlite``, shown on the Quality gates page), and above the rule's
``ceiling`` (a share of the source's lines) the same rule is critical and quarantines the extraction.

One definition: the rules are the dbt variable ``line_exclusions`` in ``dbt_project/dbt_project.yml``; the dbt
macro ``exclude_implausible_lines`` filters staging with the same ``breaks`` predicates this module hands to
the raw gate, so the gate counts exactly the lines staging drops. The ledger is for operators: it stays under
``<quality>`` and nothing in an export reads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from oncopipe.contracts.settings import DBT_PROJECT_DIR
from oncopipe.quality.line_rules import LineRule

EXCLUDED_SUFFIX = ".excluded"
"""The warning twin of an exclusion rule (consequence ``exclude``): ``<name>.excluded``."""
SAMPLE_KEYS = 5


@dataclass(frozen=True)
class Exclusion:
    """One exclusion rule of a source (an entry of the dbt variable ``line_exclusions``).

    Attributes:
        source: the landing source.
        name: the expectation name of the critical rule (``PHA_ACT_QSN.plausible_boxes``).
        column: the checked column.
        rule: the rule in words.
        breaks: SQL predicate over the landed columns, true on a line to exclude; ``{extraction}`` stands for
            the extraction date.
        ceiling: largest share of the source's (judged) lines excluded before the extraction is quarantined.
        basis: where the rule comes from.
    """

    source: str
    name: str
    column: str
    rule: str
    breaks: str
    ceiling: float
    basis: str

    def gate_predicate(self, extraction_date: str) -> str:
        """The predicate as the raw gate evaluates it on the landed files of ``extraction_date``."""
        return self.breaks.replace("{extraction}", f"date '{extraction_date}'")

    def line_rules(self) -> list[LineRule]:
        """The critical rule (quarantine above the ceiling) and its warning twin (exclude, any line)."""
        params = {"breaks": self.breaks}
        return [
            LineRule(self.name, "critical", f"{self.rule}; at most {self.ceiling:.2%} of lines excluded (ceiling)",
                     "sql", (self.column,), round(1.0 - self.ceiling, 10), params, self.basis),
            LineRule(self.name + EXCLUDED_SUFFIX, "warning",
                     f"{self.rule}; a breaking line is excluded in staging and counted in the ledger", "sql",
                     (self.column,), 1.0, params, self.basis, consequence="exclude"),
        ]


def definition_file(project_dir: Path = DBT_PROJECT_DIR) -> Path:
    return project_dir / "dbt_project.yml"


@cache
def _load(path: Path) -> tuple[Exclusion, ...]:
    config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    out = []
    for source_name, rules in ((config.get("vars") or {}).get("line_exclusions") or {}).items():
        for r in rules:
            out.append(Exclusion(source_name, r["name"], r["column"], r["rule"], r["breaks"], float(r["ceiling"]),
                                 r.get("basis", "")))
    return tuple(out)


def exclusions(source_name: str | None = None, project_dir: Path = DBT_PROJECT_DIR) -> list[Exclusion]:
    """The exclusion rules (of ``source_name``, or every source) as the dbt project defines them."""
    return [e for e in _load(definition_file(project_dir)) if source_name in (None, e.source)]


def ledger_rows(source_name: str, rules: Any, consequence: str) -> list[dict[str, Any]]:
    """Ledger entries of one source from its rules frame (``line_rules.rules_frame``): rules with breaking lines.

    Args:
        source_name: the landing source.
        rules: the rules frame (``metric``, ``subject``, ``value``, ``detail``).
        consequence: ``excluded`` (the extraction was accepted) or ``quarantined`` (it was not).
    """
    by_name = {e.name: e for e in exclusions(source_name)}
    out = []
    for row in rules.itertuples(index=False):
        ex = by_name.get(row.metric)
        if ex is None:
            continue
        detail = json.loads(row.detail)
        if not detail["breaking"]:
            continue
        over = detail["breaking"] > ex.ceiling * detail["judged"]
        out.append({"source": source_name, "rule": ex.name, "column": ex.column, "lines": detail["breaking"],
                    "judged": detail["judged"], "share": row.value, "ceiling": ex.ceiling,
                    "consequence": "quarantined (over the ceiling)" if over else consequence,
                    "sample": detail["sample"][:SAMPLE_KEYS]})
    return out
