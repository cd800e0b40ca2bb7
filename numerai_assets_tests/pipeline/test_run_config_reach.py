"""Run config cannot widen a run's reach.

Whoever reaches the Dagster UI can launch a run with any run config (OSS Dagster has no
authentication). The files, store, policy and IO-manager resources have no config field, so
config pointing them elsewhere (a folder, a bucket or key prefix, the prediction cache, the
store's home or URL, the IO manager's folder or bucket, an S3 endpoint) is refused at launch and
no run is created; where runs reach is the deployment's environment, read when a run uses it.
What stays configurable, the batch and the clustering, is checked.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from numerai_assets.definitions import build_definitions
from numerai_assets.pipeline.jobs import batch_run_config
from numerai_assets.pipeline.resources import build_resources
from numerai_assets.pipeline.round_assets import ClusteringConfig
from numerai_assets.pipeline.scoring import BatchConfig
from numerai_assets.settings import MAX_BATCH_SIZE
from numerai_assets_tests.conftest import REPO
from numerai_assets_tests.s3_server import S3_TEST_CREDENTIALS

from .conftest import seed_round

ELSEWHERE = "/tmp/somewhere-else"
# Run config a UI user could type to send a run elsewhere; each must be refused at launch.
WIDENING = {
    "files: local folders at /": {"files": {"local_root": "/"}},
    "files: any upload key": {"files": {"upload_key_prefix": ""}},
    "files: another datasets bucket": {"files": {"dataset_bucket": "someone-elses"}},
    "files: another uploads bucket": {"files": {"upload_bucket": "someone-elses"}},
    "files: another dataset key": {"files": {"dataset_key_template": "../../etc/{round}"}},
    "files: the prediction cache elsewhere": {"files": {"prediction_cache": ELSEWHERE}},
    "files: another mirror bucket": {"files": {"prediction_mirror_bucket": "someone-elses"}},
    "files: another S3 endpoint": {"files": {"s3": {"endpoint_url": "http://attacker.invalid"}}},
    "files: a value from the environment": {"files": {"local_root": {"env": "HOME"}}},
    "store: home at /": {"store": {"home": "/"}},
    "store: another database": {"store": {"mongo_url": "mongodb://attacker.invalid:27017"}},
    "store: another database name": {"store": {"db_name": "someone_elses"}},
    "io manager: another folder": {"io_manager": {"base_dir": ELSEWHERE}},
    "io manager: another bucket": {"io_manager": {"s3_bucket": "someone-elses"}},
    "io manager: another prefix": {"io_manager": {"s3_prefix": "../elsewhere"}},
    "op values: anything": {"op_values": {"base_dir": ELSEWHERE}},
    "policy: anything": {"scoring_policy": {"name": "lenient"}},
    "an S3 resource": {"s3": {"endpoint_url": "http://attacker.invalid"}},
}


def with_resources(resources: dict[str, dict]) -> dict:
    """A rescore's run config, plus ``resources`` as the launchpad would send them."""
    return {
        **batch_run_config([]).to_config_dict(),
        "resources": {key: {"config": config} for key, config in resources.items()},
    }


def resource_config_fields(job: dg.JobDefinition) -> dict[str, list[str]]:
    resources = job.run_config_schema.config_type.fields["resources"].config_type.fields
    return {
        key: list(field.config_type.fields["config"].config_type.fields)
        for key, field in resources.items()
    }


# Both kinds of deployment: local folders, and S3 (nothing is contacted to validate config).
DEPLOYMENTS = {
    "local": {},
    "s3": {
        "S3_DATASET_BUCKET": "datasets",
        "S3_UPLOAD_BUCKET": "uploads",
        "DAGSTER_IO_BUCKET": "io",
        "S3_ENDPOINT_URL": "http://127.0.0.1:9",
    },
}


@pytest.fixture(params=DEPLOYMENTS.values(), ids=DEPLOYMENTS.keys())
def deployment_env(request, local_env, monkeypatch) -> None:
    for name, value in request.param.items():
        monkeypatch.setenv(name, value)


def test_no_resource_has_a_config_field(deployment_env):
    defs = build_definitions()
    for job in (defs.resolve_job_def("score_round"), defs.resolve_implicit_global_asset_job_def()):
        fields = resource_config_fields(job)
        assert set(fields) >= {"store", "files", "io_manager", "scoring_policy", "op_values"}
        assert fields == {key: [] for key in fields}, job.name


@pytest.mark.parametrize("resources", WIDENING.values(), ids=WIDENING.keys())
def test_widening_run_config_is_refused(deployment_env, resources):
    job = build_definitions().resolve_job_def("score_round")
    with pytest.raises(dg.DagsterInvalidConfigError):
        dg.validate_run_config(job, with_resources(resources))


def test_the_deployment_is_read_when_a_run_uses_it(local_env, monkeypatch, tmp_path):
    files = build_resources()["files"]
    assert files.get_buckets().root == local_env / "s3"
    monkeypatch.setenv("NUMERAI_ASSETS_HOME", str(tmp_path / "moved"))
    assert files.get_buckets().root == tmp_path / "moved" / "s3"


def test_s3_is_one_client_built_from_the_settings(local_env, monkeypatch, s3_server, s3_bucket):
    """Files and round assets both go through the client the ``S3_*`` variables describe."""
    for name, value in {
        "S3_ENDPOINT_URL": s3_server,
        "S3_DATASET_BUCKET": s3_bucket,
        "DAGSTER_IO_BUCKET": s3_bucket,
        "S3_ACCESS_KEY": S3_TEST_CREDENTIALS["access_key"],
        "S3_SECRET_KEY": S3_TEST_CREDENTIALS["secret_key"],
        "S3_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    resources = build_resources()
    assert resources["files"].get_buckets().client.meta.endpoint_url == s3_server
    io_manager = resources["io_manager"].create_io_manager(dg.build_init_resource_context())
    assert io_manager.s3.meta.endpoint_url == s3_server
    assert io_manager.bucket == s3_bucket


def test_importing_the_code_location_loads_no_s3_library():
    """boto3 and dagster_aws load when S3 is used, not whenever the definitions are imported."""
    heavy = ("boto3", "botocore", "s3transfer", "dagster_aws")
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, numerai_assets.definitions; print(*sorted(sys.modules))",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "S3_DATASET_BUCKET": "set-but-unused-until-a-run"},
    ).stdout.split()
    assert [name for name in loaded if name.split(".")[0] in heavy] == []


# What stays configurable is checked.


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (["6b0d021063a242cf3a04c28"], "submission id 0 of the batch is '6b0d021063a242cf3a04c28'"),
        (["6B0D021063A242CF3A04C286"], "not an ObjectId (24 lowercase hex digits)"),
        (["../../etc/passwd"], "submission id 0 of the batch is '../../etc/passwd'"),
        (["6b0d021063a242cf3a04c286"] * (MAX_BATCH_SIZE + 1), "at most 10,000 submissions"),
    ],
)
def test_a_batch_names_submissions_by_their_ids(ids, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        batch_run_config(ids)
    with pytest.raises(dg.Failure, match=re.escape(message)):  # as the op builds it (below)
        BatchConfig(submission_ids=ids)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"n_clusters": 0}, "n_clusters must be a whole number from 1 to 1000, got 0"),
        ({"n_clusters": 10**9}, "n_clusters must be a whole number from 1 to 1000"),
        ({"random_state": -1}, "random_state must be a whole number from 0 to 4294967295"),
    ],
)
def test_the_clustering_is_bounded_as_the_policy_is(config, message):
    with pytest.raises(dg.Failure, match=re.escape(message)):
        ClusteringConfig(**config)
    assert ClusteringConfig(n_clusters=7, random_state=0).n_clusters == 7


def test_a_run_with_a_bad_batch_fails_at_once_and_touches_nothing(deployment, instance):
    seeded = seed_round(deployment, 7)
    seeded.submit_demo(3)
    before = seeded.by_user()
    instance.add_dynamic_partitions("rounds", ["7"])
    config = batch_run_config([]).to_config_dict()
    config["ops"]["submission_scores"]["ops"]["prepare_submissions"]["config"] = {
        "submission_ids": ["not-an-id"]
    }
    result = (
        build_definitions()
        .resolve_job_def("score_round")
        .execute_in_process(
            run_config=config, instance=instance, partition_key="7", raise_on_error=False
        )
    )
    assert not result.success
    events = [e for e in result.all_events if e.step_key == "submission_scores.prepare_submissions"]
    kinds = [e.event_type for e in events]
    assert dg.DagsterEventType.STEP_UP_FOR_RETRY not in kinds  # a config error is not retried
    (failure,) = [e for e in events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert "run config: submission id 0 of the batch is 'not-an-id'" in str(
        failure.event_specific_data.error.message
    )
    assert seeded.by_user() == before  # nothing read, claimed or written


# Through a real webserver: GraphQL launchRun, as the UI's launchpad sends it.


LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message }
  }
}"""
REPOSITORIES = "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }"
START_SECONDS = 60  # the webserver and its code server start; a loaded machine is slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Webserver:
    def __init__(self, url: str, process: subprocess.Popen, log: Path) -> None:
        self.url, self.process, self.log = url, process, log

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        assert "errors" not in answer, answer
        return answer["data"]

    def launch(self, run_config: dict) -> dict[str, Any]:
        params = {
            "selector": {
                "repositoryLocationName": "numerai_assets",
                "repositoryName": "__repository__",
                "jobName": "score_round",
            },
            "runConfigData": run_config,
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": "7"}]},
        }
        return self.graphql(LAUNCH, {"params": params})["launchRun"]


@pytest.fixture
def webserver(deployment, tmp_path, monkeypatch) -> Iterator[Webserver]:
    """``dagster-webserver`` on a free loopback port with the ``make run`` instance, the
    repository's workspace, and round 7 seeded; in its own process group, ended after."""
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text((REPO / "deploy/local/dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    seed_round(deployment, 7).submit_demo(2)
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("rounds", ["7"])
    port, log = free_port(), tmp_path / "webserver.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-webserver")]
            + ["-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
            cwd=REPO,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Webserver(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                nodes = server.graphql(REPOSITORIES)["repositoriesOrError"].get("nodes")
                if nodes:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yield server
    finally:
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(process.pid, sig)
                process.wait(timeout=wait)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue


@pytest.mark.slow
def test_launch_refuses_widening_run_config_and_creates_no_run(webserver):
    """Each kind of widening run config, sent as the launchpad sends it, is answered
    ``RunConfigValidationInvalid`` and creates no run; the batch's config is still accepted."""

    def runs() -> list:
        with dg.DagsterInstance.get() as instance:
            return instance.get_run_records()

    for name, resources in WIDENING.items():
        answer = webserver.launch(with_resources(resources))
        assert answer["__typename"] == "RunConfigValidationInvalid", (name, answer)
        assert any("unexpected config entr" in e["message"] for e in answer["errors"]), answer
    bad_batch = batch_run_config([]).to_config_dict()
    bad_batch["ops"]["submission_scores"]["ops"]["prepare_submissions"]["config"] = {
        "submission_ids": "6b0d021063a242cf3a04c286"  # not a list
    }
    assert webserver.launch(bad_batch)["__typename"] == "RunConfigValidationInvalid"
    assert runs() == []

    answer = webserver.launch(batch_run_config([]).to_config_dict())
    assert answer["__typename"] == "LaunchRunSuccess", answer
    (record,) = runs()  # queued (no daemon here): the normal launch is not refused
    assert record.dagster_run.run_id == answer["run"]["runId"]
    assert record.dagster_run.run_config == batch_run_config([]).to_config_dict()
