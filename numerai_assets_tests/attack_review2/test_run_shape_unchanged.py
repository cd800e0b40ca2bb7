"""The run-shape refactor: what the sensor requests is what it requested before (4b86198's
``_run_request``), for every kind of run, with and without the round's data, at the job
boundary."""

from __future__ import annotations

import dagster as dg
import pytest

from numerai_assets.batch.planning import PlannedRun
from numerai_assets.pipeline.jobs import IN_PROCESS_JOB, SHARDED_JOB
from numerai_assets.pipeline.scoring import BatchConfig
from numerai_assets.pipeline.sensors import _run_request
from numerai_assets.settings import Settings

IDS = [f"{i:024x}" for i in range(1, 40)]


def _before(run: PlannedRun, settings: Settings) -> dg.RunRequest:
    """4b86198's sensors._run_request, inlined."""
    round_key = str(run.round)
    job = (
        IN_PROCESS_JOB
        if 0 < len(run.submission_ids) <= settings.in_process_max_submissions
        else SHARDED_JOB
    )
    config = dg.RunConfig(
        ops={
            "submission_scores": {
                "ops": {"prepare_submissions": BatchConfig(submission_ids=run.submission_ids)}
            }
        }
    )
    keys = [dg.AssetKey("competition_data"), dg.AssetKey("kmeans_clusters")]
    return dg.RunRequest(
        job_name=job,
        run_key=run.run_key,
        partition_key=round_key,
        run_config=config,
        tags={
            "round": round_key,
            "submissions": str(len(run.submission_ids)),
            "reason": run.kind,
            **({"dagster/priority": "1"} if run.with_data or run.kind == "retry" else {}),
        },
        asset_selection=[*(keys if run.with_data else []), dg.AssetKey("submission_scores")],
    )


@pytest.mark.parametrize("kind", ["new", "requested", "retry"])
@pytest.mark.parametrize("with_data", [False, True])
@pytest.mark.parametrize("size", [1, 2, 3, 39])
def test_the_sensors_request_is_unchanged(tmp_path, kind, with_data, size):
    settings = Settings.from_env(
        {"NUMERAI_ASSETS_HOME": str(tmp_path), "NUMERAI_IN_PROCESS_MAX_SUBMISSIONS": "2"}
    )
    run = PlannedRun(kind, 7, IDS[:size], f"{kind}-key", with_data, attempt=1, retries=2)
    new, old = _run_request(run, settings), _before(run, settings)
    assert new.job_name == old.job_name
    assert new.run_key == old.run_key
    assert new.partition_key == old.partition_key
    assert new.tags == old.tags
    assert list(new.asset_selection) == list(old.asset_selection)
    assert new.run_config == old.run_config
