"""Configuration errors are the operator's, never a participant's: a setting that cannot work
fails the tick (or the run) loudly, naming the variable and the value; no submission is marked
invalid or uses an attempt because of it; once the setting is fixed the round is scored as a
clean run scores it."""

from __future__ import annotations

import re

import dagster as dg
import pytest

from numerai_assets.settings import ConfigurationError
from numerai_assets.store.documents import claim_of

from .conftest import evaluate_sensor, launch
from .test_scoring_job import outcome


def untouched(seeded) -> None:
    """Every submission still as uploaded: pending, unclaimed, nothing invalid."""
    for user, doc in seeded.by_user().items():
        assert doc["original"]["pending"] and "invalid" not in doc, user
        assert claim_of(doc) is None, user


def scored_like_a_clean_round(seeded, instance, reference) -> None:
    runs = launch(instance, evaluate_sensor(instance))
    assert runs and all(r.success for r in runs)
    docs = seeded.by_user()
    assert {user: outcome(doc) for user, doc in docs.items()} == reference
    assert all(claim_of(doc) is None for doc in docs.values())  # no claim left, no attempt


@pytest.fixture
def reference(seeded, instance, tmp_path, monkeypatch) -> dict:
    """The demo round scored under the default configuration, in a deployment of its own."""
    from numerai_assets.cli.context import Deployment

    from .conftest import seed_round

    with monkeypatch.context() as other:
        other.setenv("NUMERAI_ASSETS_HOME", str(tmp_path / "reference"))
        clean = seed_round(Deployment.from_env(), seeded.round)
        clean.submit_demo(6)
        with dg.instance_for_test() as clean_instance:
            assert all(r.success for r in launch(clean_instance, evaluate_sensor(clean_instance)))
        return {user: outcome(doc) for user, doc in clean.by_user().items()}


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("NUMERAI_SCORING_POLICY", '{"nme": "strict"}', "unknown scoring policy fields ['nme']"),
        ("NUMERAI_SCORING_POLICY", '{"random_state": 4294967296}', "random_state must be"),
        ("NUMERAI_SCORING_POLICY", "[" * 2000 + "]" * 2000, "nested too deeply"),
        ("NUMERAI_SCORING_POLICY", "{not json", "is not valid JSON"),
        ("NUMERAI_BATCH_SIZE", "lots", "must be a whole number, got 'lots'"),
        ("NUMERAI_UPLOAD_KEY_PREFIX", "{user}/", "may use only {round} and {username}"),
    ],
)
def test_a_setting_that_cannot_work_fails_the_tick_and_costs_nothing(
    seeded, instance, reference, monkeypatch, variable, value, message
):
    seeded.submit_demo(6)
    monkeypatch.setenv(variable, value)
    for _ in range(3):  # every tick says so, and nothing is claimed or marked meanwhile
        with pytest.raises(ConfigurationError, match=re.escape(message)) as raised:
            evaluate_sensor(instance)
        assert variable in str(raised.value)
        untouched(seeded)
    monkeypatch.delenv(variable)
    scored_like_a_clean_round(seeded, instance, reference)


def test_a_policy_broken_after_the_tick_fails_the_run_and_costs_no_attempt(
    seeded, instance, reference, monkeypatch
):
    """The run meets the bad policy in its first step: it fails naming the variable; the sensor
    counts it lost (the deployment's fault) and plans one run again once the policy is fixed."""
    seeded.submit_demo(6)
    tick = evaluate_sensor(instance)
    monkeypatch.setenv("NUMERAI_SCORING_POLICY", '{"n_clusters": 0}')
    (run,) = launch(instance, tick, raise_on_error=False)
    assert not run.success
    failure = next(e for e in run.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "NUMERAI_SCORING_POLICY" in failure.step_failure_data.error.cause.message
    with pytest.raises(ConfigurationError):
        evaluate_sensor(instance)  # still broken: the tick says so, plans nothing
    docs = seeded.by_user()
    assert not any(doc.get("invalid") for doc in docs.values())
    monkeypatch.delenv("NUMERAI_SCORING_POLICY")
    retry = evaluate_sensor(instance)
    assert {r.tags["reason"] for r in retry.run_requests} == {"retry"}
    assert len(retry.run_requests) == 1  # one retry run for the one failed run
    assert all(r.success for r in launch(instance, retry))
    docs = seeded.by_user()
    assert {user: outcome(doc) for user, doc in docs.items()} == reference
    assert all(claim_of(doc) is None for doc in docs.values())


def test_a_missing_upload_bucket_fails_runs_not_submissions(seeded, instance, reference):
    """The uploads bucket is the deployment's: a run that cannot find it fails; nothing is
    marked; once it is back, one run again scores the round."""
    seeded.submit_demo(6)
    settings = seeded.deployment.settings
    bucket = settings.local_buckets_dir / settings.upload_bucket
    hidden = bucket.with_name("hidden")
    bucket.rename(hidden)
    (run,) = launch(instance, evaluate_sensor(instance), raise_on_error=False)
    assert not run.success
    assert not any(doc.get("invalid") for doc in seeded.by_user().values())
    hidden.rename(bucket)
    retry = evaluate_sensor(instance)
    assert [r.tags["reason"] for r in retry.run_requests] == ["retry"]
    assert all(r.success for r in launch(instance, retry))
    docs = seeded.by_user()
    assert {user: outcome(doc) for user, doc in docs.items()} == reference
    assert all(claim_of(doc) is None for doc in docs.values())
