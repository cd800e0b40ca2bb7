"""The deployments' executors, validated offline (no AWS, no cluster): ``NUMERAI_EXECUTOR=ecs``
under ``deploy/ecs/dagster.yaml`` and ``NUMERAI_EXECUTOR=k8s`` under ``deploy/k8s/dagster.yaml``.

What can be checked without them: the definitions load with each executor (in this process and
with ``dagster definitions validate``), the sharded job's executor is the deployment's and its
config (fixed in ``pipeline/jobs.py``) is valid for the executor's own schema, run config cannot
change it, and each instance file's run launcher is valid for the launcher's own schema and
gives the run what the executor needs (``NUMERAI_EXECUTOR``, the shared state mounted). Whether
ECS or a cluster accepts the tasks they describe is not.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._config import process_config, resolve_to_config_type
from dagster._core.instance.config import dagster_instance_config
from dagster_aws.ecs import EcsRunLauncher
from dagster_k8s import K8sRunLauncher

from numerai_assets.definitions import build_definitions
from numerai_assets.pipeline.jobs import IN_PROCESS_JOB, SHARDED_JOB, batch_run_config
from numerai_assets.settings import EXECUTORS
from numerai_assets_tests.conftest import PRODUCTION_YAML, REPO
from numerai_assets_tests.instance.test_ecs_config import ECS_ENV

DEPLOY = {
    "ecs": (REPO / "deploy" / "ecs" / "dagster.yaml", EcsRunLauncher),
    "k8s": (REPO / "deploy" / "k8s" / "dagster.yaml", K8sRunLauncher),
}
# Where the image keeps NUMERAI_ASSETS_HOME: what every step of a run must share.
ASSETS_HOME = re.search(r"NUMERAI_ASSETS_HOME=(\S+)", (REPO / "Dockerfile").read_text()).group(1)
# Set where the instance files are read (the daemon's environment); the storage's variables too.
DEPLOY_ENV = {
    **ECS_ENV,
    "DAGSTER_PG_HOST": "db",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_DB": "dagster",
    "DAGSTER_PG_USERNAME": "dagster",
    "DAGSTER_PG_PASSWORD": "x",
}
BATCH = ["0123456789abcdef01234567"]


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("kind", EXECUTORS)
def test_the_sharded_job_runs_on_the_deployments_executor(kind):
    defs = build_definitions({"NUMERAI_EXECUTOR": kind})
    dg.Definitions.validate_loadable(defs)
    sharded, in_process = defs.resolve_job_def(SHARDED_JOB), defs.resolve_job_def(IN_PROCESS_JOB)
    assert (sharded.executor_def.name, in_process.executor_def.name) == (kind, "in_process")
    # The config jobs.py fixes is valid for the executor's own schema (checked when a run
    # starts, otherwise: too late to find out).
    resolved = sharded.executor_def.apply_config_mapping({"config": {}})
    assert resolved.success, resolved.errors
    # Run config: the sensor's batch is taken; nothing of the executor can be set from it (the
    # launchpad is open to whoever reaches the UI).
    batch = batch_run_config(BATCH).to_config_dict()
    dg.validate_run_config(sharded, batch)
    override = {"job_image": "elsewhere"} if kind == "k8s" else {"max_concurrent": 64}
    with pytest.raises(dg.DagsterInvalidConfigError, match="unexpected config entry"):
        dg.validate_run_config(sharded, {**batch, "execution": {"config": override}})


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["ecs", "k8s"])
def test_dagster_loads_the_code_location_with_the_executor(kind, tmp_path):
    """``dagster definitions validate``, as CI runs it for the local default, in a fresh process
    with the deployment's variable: the executor's library imports and the location loads."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home), "NUMERAI_EXECUTOR": kind}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    validate = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate"]
        + ["-m", "numerai_assets.definitions"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr


def test_the_k8s_file_is_the_production_file_plus_a_run_launcher():
    production, k8s = _load(PRODUCTION_YAML), _load(DEPLOY["k8s"][0])
    assert {key: value for key, value in k8s.items() if key != "run_launcher"} == production
    assert (k8s["run_launcher"]["module"], k8s["run_launcher"]["class"]) == (
        "dagster_k8s",
        "K8sRunLauncher",
    )


@pytest.mark.parametrize("kind", DEPLOY)
def test_the_instance_file_is_valid_and_gives_the_run_its_executor(kind, tmp_path, monkeypatch):
    path, launcher = DEPLOY[kind]
    for name, value in DEPLOY_ENV.items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(path.read_text())
    dagster_instance_config(str(home))  # the instance's own schema (raises when invalid)
    config = _load(path)["run_launcher"]
    assert f"{config['module']}.{config['class']}".endswith(launcher.__name__)
    checked = process_config(resolve_to_config_type(launcher.config_type()), config["config"])
    assert checked.success, checked.errors
    launcher_config = checked.value

    # The run builds the sharded job with this executor: the variable reaches its task or pod.
    assert f"NUMERAI_EXECUTOR={kind}" in launcher_config["env_vars"]
    # Every step's task or pod mounts the shared state where the image keeps it.
    if kind == "ecs":
        task = launcher_config["task_definition"]
        (volume,) = task["volumes"]
        assert "efsVolumeConfiguration" in volume
        mounts = {m["sourceVolume"]: m["containerPath"] for m in task["mount_points"]}
    else:
        (volume,) = launcher_config["volumes"]
        assert "persistentVolumeClaim" in volume
        mounts = {m["name"]: m["mountPath"] for m in launcher_config["volume_mounts"]}
    assert mounts == {volume["name"]: ASSETS_HOME}


OFFLINE_KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: offline, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: offline, user: {token: offline}}]
contexts: [{name: offline, context: {cluster: offline, user: offline}}]
current-context: offline
"""


def test_the_k8s_launcher_builds_the_run_pod_the_executor_needs(tmp_path):
    """dagster-k8s's own code, from deploy/k8s's config, builds the Job of a run (what it would
    send to the cluster): the run pod gets the executor's variable and the shared state, and a
    run's tags cannot give it another image. The launcher reads a kubeconfig naming no real
    cluster instead of the in-cluster one; nothing is sent."""
    from dagster_k8s.job import construct_dagster_k8s_job

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(OFFLINE_KUBECONFIG)
    config = {
        **_load(DEPLOY["k8s"][0])["run_launcher"]["config"],
        "load_incluster_config": False,
        "kubeconfig_file": str(kubeconfig),
    }
    checked = process_config(resolve_to_config_type(K8sRunLauncher.config_type()), config)
    assert checked.success, checked.errors
    launcher = K8sRunLauncher(**checked.value)

    tagged = dg.DagsterRun(
        job_name=SHARDED_JOB,
        run_id="0" * 36,
        tags={"dagster-k8s/config": '{"container_config": {"image": "elsewhere"}}'},
    )
    with pytest.raises(Exception, match="violated the allowed list: container_config.image"):
        launcher.get_container_context_for_run(tagged)

    context = launcher.get_container_context_for_run(dg.DagsterRun(SHARDED_JOB, run_id="0" * 36))
    job = construct_dagster_k8s_job(
        job_config=context.get_k8s_job_config(job_image="numerai-assets:1", run_launcher=launcher),
        args=["dagster", "api", "execute_run", "{}"],
        job_name="dagster-run-0",
        pod_name="dagster-run-0",
        component="run_worker",
        user_defined_k8s_config=context.run_k8s_config,
        labels={},
        env_vars=[],
    )
    pod = job.spec.template.spec
    (container,) = pod.containers
    env = {variable.name: variable.value for variable in container.env}
    assert env["NUMERAI_EXECUTOR"] == "k8s"
    assert "DAGSTER_PG_PASSWORD" in env  # from the secret, not a value
    assert {source.config_map_ref.name for source in container.env_from if source.config_map_ref}
    assert {(m.name, m.mount_path) for m in container.volume_mounts} == {
        ("numerai-state", ASSETS_HOME)
    }
    (volume,) = pod.volumes
    assert volume.persistent_volume_claim.claim_name == "numerai-state"
    assert pod.service_account_name == "numerai-run"
    assert container.resources.requests == {"cpu": "1", "memory": "4Gi"}
