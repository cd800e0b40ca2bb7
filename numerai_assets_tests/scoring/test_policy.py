"""The scoring policy: configuration, version, the constant-file rule and size-aware limits."""

import dataclasses
import re

import numpy as np
import pytest

from numerai_assets.scoring.policy import ScoringPolicy, admit, refusal
from numerai_assets.scoring.submission_format import SubmissionError
from numerai_assets.settings import ConfigurationError, Settings


def test_the_defaults_are_the_tournament_rules():
    policy = ScoringPolicy()
    assert (policy.concordance_threshold, policy.n_clusters, policy.random_state) == (0.12, 5, 1337)
    assert (policy.max_correlation, policy.duplicate_ks, policy.similar_ks) == (0.95, 0.005, 0.03)
    assert (policy.min_similar, policy.ks_thresholds, policy.refuse_constant) == (1, "fixed", True)
    assert (
        policy.version.startswith("tournament-") and len(policy.version) == len("tournament-") + 10
    )


@pytest.mark.parametrize(
    "change",
    [
        {"similar_ks": 0.02},
        {"random_state": 7},
        {"refuse_constant": False},
        {"ks_thresholds": "size-aware"},
        {"min_similar": 2},
    ],
)
def test_every_rule_changes_the_version(change):
    assert dataclasses.replace(ScoringPolicy(), **change).version != ScoringPolicy().version
    assert ScoringPolicy(**change).version == ScoringPolicy(**change).version  # stable


def test_the_environment_overrides_fields_at_call_time(monkeypatch):
    monkeypatch.setenv("NUMERAI_SCORING_POLICY", '{"name": "strict", "similar_ks": 0.01}')
    policy = Settings.from_env().policy()
    assert (policy.name, policy.similar_ks, policy.duplicate_ks) == ("strict", 0.01, 0.005)
    assert policy.version.startswith("strict-")
    monkeypatch.delenv("NUMERAI_SCORING_POLICY")
    assert Settings.from_env().policy() == ScoringPolicy()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{nope", "NUMERAI_SCORING_POLICY is not valid JSON"),
        ("[1]", "NUMERAI_SCORING_POLICY must be a JSON object"),
        ('{"max_similar": 2}', "unknown scoring policy fields ['max_similar']"),
        ('{"duplicate_ks": 0.05}', "duplicate_ks <= similar_ks"),
        ('{"ks_thresholds": "magic"}', "ks_thresholds must be one of"),
        ('{"n_clusters": 0}', "n_clusters must be a whole number from 1 to 1000, got 0"),
        ('{"n_clusters": 5.0}', "n_clusters must be a whole number from 1 to 1000, got 5.0"),
        ('{"refuse_constant": "yes"}', "refuse_constant must be true or false"),
        ('{"comparison": "everyone"}', "comparison must be"),
        ('{"nme": "strict"}', "unknown scoring policy fields ['nme']"),
        # scikit-learn takes 32-bit seeds: refused when read, not by KMeans mid-run
        (
            '{"random_state": 4294967296}',
            "random_state must be a whole number from 0 to 4294967295",
        ),
        ('{"random_state": -1}', "random_state must be a whole number from 0 to"),
        ('{"name": ""}', "name must be 1 to 64 letters"),
        ('{"name": "x"}'.replace("x", "n" * 65), "name must be 1 to 64 letters"),
        ('{"name": "tab\\there"}', "name must be 1 to 64 letters"),
        ('{"name": ["list"]}', "name must be 1 to 64 letters"),
        ('{"false_alarm_level": 0}', "false_alarm_level must be a number in (0, 1), got 0"),
        ('{"false_alarm_level": 1}', "false_alarm_level must be a number in (0, 1), got 1"),
        ('{"max_correlation": NaN}', "max_correlation must be a number in [0, 1], got nan"),
        ('{"similar_ks": Infinity}', "similar_ks must be a number in [0, 1], got inf"),
        ('{"min_similar": 10000000}', "min_similar must be a whole number from 1 to 1000000"),
        ('{"duplicate_ks": true}', "duplicate_ks must be a number in [0, 1], got True"),
        ('{"concordance_threshold": {"a": 1}}', "concordance_threshold must be a number"),
        ("[" * 3000 + "]" * 3000, "is 6,000 characters long; at most 4,096 are read"),
        ("[" * 2000 + "]" * 2000, "NUMERAI_SCORING_POLICY is nested too deeply"),
        (
            '{"name": ' + "[" * 2000 + "]" * 2000 + "}",
            "NUMERAI_SCORING_POLICY is nested too deeply",
        ),
    ],
)
def test_bad_configuration_is_refused_with_the_reason(text, message):
    """Each message names the variable (the operator's to fix) and says what is wrong."""
    with pytest.raises(ConfigurationError, match=re.escape(message)) as raised:
        Settings.from_env({"NUMERAI_SCORING_POLICY": text}).policy()
    assert str(raised.value).startswith("NUMERAI_SCORING_POLICY")
    assert len(str(raised.value)) < 600


def test_a_constant_file_is_refused_with_a_reason_a_participant_understands():
    policy = ScoringPolicy()
    assert refusal(np.full(10, 0.5), policy) == (
        "every probability is 0.5: a constant file carries no prediction"
    )
    assert refusal(np.full(3, 0.0), policy).startswith("every probability is 0.0:")
    assert refusal(np.array([0.5, 0.5, 0.50001]), policy) is None
    assert refusal(np.full(10, 0.5), ScoringPolicy(refuse_constant=False)) is None
    with pytest.raises(SubmissionError, match="a constant file carries no prediction"):
        admit(np.full(4, 0.25), policy)
    values = np.array([0.1, 0.9])
    assert admit(values, policy) is values


@pytest.mark.parametrize(
    ("rows", "duplicate_below", "similar_at_most"),
    # Fixed: ceil(0.005 n) and floor(0.03 n).
    [(2000, 10, 60), (45_000, 225, 1350), (190_000, 950, 5700)],
)
def test_fixed_limits(rows, duplicate_below, similar_at_most):
    limits = ScoringPolicy().ks_limits(rows)
    assert (limits.duplicate_below, limits.similar_at_most) == (duplicate_below, similar_at_most)


def test_size_aware_limits_never_exceed_the_fixed_ones():
    policy = ScoringPolicy(ks_thresholds="size-aware")
    small = policy.ks_limits(2000)
    assert small.duplicate_below == 10  # the fixed 0.005 already holds 5 % at 2,000 rows
    assert small.similar_at_most < 60
    large = policy.ks_limits(45_000)
    assert large.duplicate_below < 225 and large.similar_at_most == large.duplicate_below - 1


@pytest.mark.parametrize("rows", [0, -3, 1.5, True, "45000"])
def test_ks_limits_refuse_a_round_size_that_is_not_a_positive_whole_number(rows):
    """ks_limits(0) once gave limits whose duplicate_ks divided by zero, and -3 or 1.5 limits."""
    with pytest.raises(ValueError, match="rows must be a positive whole number, got"):
        ScoringPolicy().ks_limits(rows)
    assert ScoringPolicy().ks_limits(np.int64(200)) == ScoringPolicy().ks_limits(200)
