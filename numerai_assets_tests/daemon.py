"""What the Dagster daemon does, done in the test's process: the one emulation the tests share.

A tick of the ``new_submissions`` sensor with this process's environment
(:func:`evaluate_sensor`), the partitions it asks for (:func:`add_partitions`), and a run request
executed as the daemon launches it: the request's tags with its run key, the daemon's
de-duplication of run keys (:func:`execute`, :func:`launch`). The queue's one-run-per-round
limit and the run launcher are not emulated: the tests that need them start the real daemon
(``numerai_assets_tests/instance``, ``numerai_assets_tests/faults/test_daemon_faults.py``).
"""

from __future__ import annotations

import dagster as dg

from numerai_assets.definitions import build_definitions


def evaluate_sensor(
    instance: dg.DagsterInstance, cursor: str | None = None
) -> dg.SensorResult | dg.SkipReason:
    """One tick of ``new_submissions`` as the daemon would run it, with this environment."""
    defs = build_definitions()
    with dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        definitions=defs,
        resources={"store": defs.resources["store"], "files": defs.resources["files"]},
    ) as context:
        return defs.resolve_sensor_def("new_submissions")(context)


def add_partitions(instance: dg.DagsterInstance, result: dg.SensorResult | dg.SkipReason) -> None:
    """Add the round partitions a tick asked for."""
    if isinstance(result, dg.SensorResult):
        for request in result.dynamic_partitions_requests:
            instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)


def execute(
    instance: dg.DagsterInstance, request: dg.RunRequest, *, raise_on_error: bool = True
) -> dg.ExecuteInProcessResult:
    """Run one request as the daemon launches it (its tags and run key), in this process."""
    run_key = {"dagster/run_key": request.run_key} if request.run_key else {}
    return (
        build_definitions()
        .resolve_job_def(request.job_name or "score_round")
        .execute_in_process(
            run_config=request.run_config,
            instance=instance,
            partition_key=request.partition_key,
            asset_selection=request.asset_selection,
            tags={**request.tags, **run_key},
            raise_on_error=raise_on_error,
        )
    )


def launch(
    instance: dg.DagsterInstance,
    result: dg.SensorResult | dg.SkipReason,
    *,
    raise_on_error: bool = True,
) -> list[dg.ExecuteInProcessResult]:
    """Do what the daemon does with a tick's result: add its partitions, then run each request
    whose run key has not been used yet (the daemon's de-duplication)."""
    if isinstance(result, dg.SkipReason) or not result.run_requests:
        return []
    add_partitions(instance, result)
    return [
        execute(instance, request, raise_on_error=raise_on_error)
        for request in result.run_requests
        if not instance.get_run_records(dg.RunsFilter(tags={"dagster/run_key": request.run_key}))
    ]
