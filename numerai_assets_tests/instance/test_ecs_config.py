"""The ECS instance (``deploy/ecs/dagster.yaml``), loaded the way the daemon loads it.

The run launcher is really instantiated, offline: with the task definition built from config
(not a name/ARN, which the launcher would look up) and secrets given as name/ARN pairs, the
constructor only creates boto3 clients. A hook on boto3's session fails the test on any request.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import pytest
import yaml
from dagster_aws.ecs import EcsRunLauncher

from numerai_assets_tests.conftest import PRODUCTION_YAML, REPO

ECS_YAML = REPO / "deploy" / "ecs" / "dagster.yaml"

# What the deployment sets on the daemon for the launcher (ARNs and names, never credentials).
ECS_ENV = {
    "DAGSTER_ECS_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/numerai-run-execution",
    "DAGSTER_ECS_TASK_ROLE_ARN": "arn:aws:iam::123456789012:role/numerai-run",
    "DAGSTER_ECS_LOG_GROUP": "/ecs/numerai-run",
    "DAGSTER_PG_PASSWORD_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:pg",
    "MONGO_URL_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:mongo",
}


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def _env_names(node: object) -> set[str]:
    """Every ``{env: NAME}`` in a parsed YAML tree."""
    if isinstance(node, dict):
        own = {node["env"]} if set(node) == {"env"} else set()
        return own.union(*(_env_names(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_env_names(value) for value in node))
    return set()


@pytest.fixture
def ecs_instance(postgres_env, tmp_path, monkeypatch) -> Iterator[dg.DagsterInstance]:
    for name, value in {**postgres_env, **ECS_ENV}.items():
        monkeypatch.setenv(name, value)
    # boto3 needs a region and credentials to build clients; keep ~/.aws and IMDS out of it.
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # The launcher builds its clients from boto3's default session: refuse every request there.
    session = boto3.session.Session()

    def refuse(request, **_):
        raise AssertionError(f"the test tried to call AWS: {request.method} {request.url}")

    session.events.register("before-send", refuse)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ECS_YAML, home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


def test_ecs_instance_is_postgres_queued_and_launches_on_ecs(ecs_instance):
    instance = ecs_instance
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert instance.run_coordinator.dequeue_interval_seconds == 1
    queue = instance.get_concurrency_config().run_queue_config
    assert {
        "key": "dagster/partition",
        "value": {"applyLimitPerUniqueValue": True},
        "limit": 1,
    } in [dict(limit) for limit in queue.tag_concurrency_limits]
    assert instance.run_monitoring_enabled
    assert instance.run_monitoring_start_timeout_seconds == 300
    assert instance.run_monitoring_max_runtime_seconds == 3600
    assert not instance.run_retries_enabled  # the sensor retries (README, Recovery)
    assert instance.run_coordinator.get_run_queue_config().max_user_code_failure_retries == 10
    assert not instance.telemetry_enabled

    launcher = instance.run_launcher  # constructed here, from the file's config
    assert isinstance(launcher, EcsRunLauncher)
    assert launcher.container_name == "run"
    assert launcher.task_definition is None  # registered per run from the fields below
    assert launcher.execution_role_arn == ECS_ENV["DAGSTER_ECS_EXECUTION_ROLE_ARN"]
    assert launcher.task_role_arn == ECS_ENV["DAGSTER_ECS_TASK_ROLE_ARN"]
    assert launcher.task_definition_dict["log_group"] == ECS_ENV["DAGSTER_ECS_LOG_GROUP"]
    assert launcher.task_definition_dict["requires_compatibilities"] == ["FARGATE"]
    assert launcher.use_current_ecs_task_config and not launcher.include_sidecars
    assert launcher.secrets == [
        {"name": "DAGSTER_PG_PASSWORD", "valueFrom": ECS_ENV["DAGSTER_PG_PASSWORD_SECRET_ARN"]},
        {"name": "MONGO_URL", "valueFrom": ECS_ENV["MONGO_URL_SECRET_ARN"]},
    ]
    assert launcher.secrets_tags == []  # no ListSecrets: only the secrets named above
    assert dict(launcher.run_resources) == {"cpu": "1024", "memory": "4096"}
    assert launcher.ecs.meta.region_name == "us-east-1"


def test_ecs_file_is_the_production_file_plus_a_run_launcher():
    # Storage, queue, per-round limit, monitoring, retries and telemetry cannot drift apart.
    production, ecs = _load(PRODUCTION_YAML), _load(ECS_YAML)
    assert "run_launcher" not in production
    # ...and a longer start timeout: an ECS task may take minutes to start (pulling the image).
    assert ecs["run_monitoring"].pop("start_timeout_seconds") == 300
    assert production["run_monitoring"].pop("start_timeout_seconds") == 120
    assert {key: value for key, value in ecs.items() if key != "run_launcher"} == production
    assert ecs["run_launcher"]["module"] == "dagster_aws.ecs"
    assert ecs["run_launcher"]["class"] == "EcsRunLauncher"


def test_run_tasks_get_every_variable_the_instance_reads():
    # A run task loads the instance from its ref, resolving these names in its own environment.
    ecs = _load(ECS_YAML)
    config = ecs["run_launcher"]["config"]
    passed = set(config["env_vars"]) | {secret["name"] for secret in config["secrets"]}
    assert _env_names(ecs["storage"]) <= passed
    # Credentials only as Secrets Manager references, never copied values.
    assert {"DAGSTER_PG_PASSWORD", "MONGO_URL"}.isdisjoint(config["env_vars"])
    assert all(set(secret["valueFrom"]) == {"env"} for secret in config["secrets"])
