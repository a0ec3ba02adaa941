"""How the embedded runner reports a DAG run: tasks skipped because a gate failed are not failures."""

from __future__ import annotations

from oncopipe.orchestration.embedded import DagRunOutcome, TaskTiming, split_failures


def _task(task_id: str, state: str) -> TaskTiming:
    return TaskTiming("platform_refresh", "run_1", task_id, state, 0.0)


def test_a_raw_gate_failure_lists_one_failed_task_and_the_rest_as_skipped():
    tasks = [_task("find_extraction", "success"), _task("raw_gate", "failed"),
             *(_task(f"transform.model_{i}", "upstream_failed") for i in range(33)),
             _task("publish", "upstream_failed")]
    failed, skipped = split_failures(tasks)
    assert failed == ["raw_gate"]
    assert len(skipped) == 34 and "publish" in skipped
    outcome = DagRunOutcome("platform_refresh", "run_1", "failed", 12.0, tasks, failed, skipped_tasks=skipped)
    assert outcome.describe() == ("failed in 12.0s; failed: raw_gate; 34 downstream task(s) skipped "
                                  "(upstream failed)")
