"""OpenLineage events for the dbt models, so lineage (landing -> staging -> intermediate -> marts) reaches the
lineage tools operators use (Marquez, DataHub, OpenMetadata ...).

After each dbt invocation that builds or tests nodes, the artifacts dbt wrote (``manifest.json``,
``run_results.json``) are turned into OpenLineage run events by the OpenLineage dbt integration
(``openlineage-integration-common``, what ``dbt-ol`` runs): one START and one COMPLETE (or FAIL) per model and
test, whose input datasets are the relations it read (``<database>.landing.<source>`` for a staging model) and
whose output is the relation it wrote (``<database>.marts.<mart>``), in the warehouse's namespace
(``duckdb://<warehouse file>``).

Transport: the operator's OpenLineage configuration when there is one (``openlineage.yml``,
``OPENLINEAGE_CONFIG``, ``OPENLINEAGE__TRANSPORT__*`` or ``OPENLINEAGE_URL``, read by the OpenLineage client:
an HTTP endpoint in production); otherwise, the embedded default, one JSON event a line appended to
``<home>/lineage/openlineage.jsonl``. Inside Airflow, each event names the Airflow task's OpenLineage run as
its parent (:class:`LineageParent`), which Airflow's OpenLineage provider reports with the same run id.

Lineage is reporting: a failure to emit is logged and never fails the build.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oncopipe.contracts.settings import DBT_PROJECT_DIR, Settings

log = logging.getLogger(__name__)

#: The ``producer`` of every event (OpenLineage asks for a URI naming the code that emitted it).
PRODUCER = "https://github.com/oncopipe/oncopipe/tree/main/plugins/oncopipe/warehouse/lineage.py"
#: The namespace of the dbt jobs (one job per model and test).
JOB_NAMESPACE = "oncopipe"
#: The dbt commands whose artifacts describe node runs.
LINEAGE_COMMANDS = frozenset({"build", "run", "test", "seed"})


@dataclass(frozen=True)
class LineageParent:
    """The OpenLineage run of the Airflow task that ran dbt (from the OpenLineage provider's macros)."""

    run_id: str
    job_name: str
    job_namespace: str


def events_file(settings: Settings) -> Path:
    """Where the embedded default appends the events (one JSON object a line)."""
    return settings.home / "lineage" / "openlineage.jsonl"


@functools.lru_cache(maxsize=8)
def _client(default_file: Path) -> Any:
    """The operator's OpenLineage client, or one appending to ``default_file`` when nothing is configured."""
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.file import FileConfig, FileTransport

    default_file.parent.mkdir(parents=True, exist_ok=True)
    # Given a transport, the client still loads the operator's configuration (file or environment), and does not
    # warn that it found none: a transport there is the operator's choice and wins.
    client = OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=str(default_file), append=True)))
    return OpenLineageClient() if client.config.transport else client


def dbt_events(settings: Settings, *, parent: LineageParent | None = None) -> list[Any]:
    """The OpenLineage events of the last dbt invocation, from the artifacts in ``settings.dbt_target_dir``.

    Must run in the dbt environment (:func:`oncopipe.warehouse.dbt_runner.dbt_environment`): the profile's
    warehouse path is read from it.
    """
    from openlineage.common.provider.dbt.facets import ParentRunMetadata
    from openlineage.common.provider.dbt.local import DbtLocalArtifactProcessor

    processor = DbtLocalArtifactProcessor(
        producer=PRODUCER, job_namespace=JOB_NAMESPACE, project_dir=str(DBT_PROJECT_DIR),
        target_path=str(settings.dbt_target_dir), target="spark" if settings.engine == "spark" else "local",
        skip_errors=True, logger=log)
    if parent is not None:
        processor.dbt_run_metadata = ParentRunMetadata(run_id=parent.run_id, job_name=parent.job_name,
                                                       job_namespace=parent.job_namespace)
    return list(processor.parse().events())


def emit_dbt_lineage(settings: Settings, *, parent: LineageParent | None = None) -> int:
    """Emit the events of the last dbt invocation; returns how many were sent (0 when emitting failed)."""
    try:
        events = dbt_events(settings, parent=parent)
        client = _client(events_file(settings))
        for event in events:
            client.emit(event)
    except Exception:  # lineage must not fail a build that succeeded: say so in the task log
        log.exception("OpenLineage events of the dbt run not emitted")
        return 0
    return len(events)
