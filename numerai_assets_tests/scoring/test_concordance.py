import json
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy.stats import ks_2samp

from numerai_assets.scoring.concordance import (
    SPLITS,
    RoundClusters,
    cluster_round,
    concordance,
    fit_clusters,
)
from numerai_assets.scoring.policy import ScoringPolicy
from numerai_assets_tests.conftest import REPO


def clusters_of(labels, data_types, n_clusters=2):
    return RoundClusters.from_data_types(np.array(labels), np.array(data_types), n_clusters)


def test_identical_distributions_score_zero_and_are_concordant():
    # Two clusters, each with the same values in every split.
    labels = [0] * 6 + [1] * 6
    types = ["validation", "validation", "test", "test", "live", "live"] * 2
    p = np.array([0.2, 0.4, 0.4, 0.2, 0.2, 0.4, 0.7, 0.8, 0.8, 0.7, 0.7, 0.8])
    result = concordance(p, clusters_of(labels, types))
    assert result.score == 0.0 and result.concordant
    assert [c.sizes for c in result.clusters] == [{"validation": 2, "test": 2, "live": 2}] * 2


def test_known_score_from_hand_computed_ks():
    # Cluster 0: validation {0.1, 0.2}, test {0.1, 0.9}, live {0.8, 0.9}
    #   KS v/t = 0.5, v/l = 1.0, t/l = 0.5 -> max 1.0
    # Cluster 1: validation {0.5}, test {0.5}, live {0.5, 0.6} -> v/l = t/l = 0.5 -> max 0.5
    labels = [0] * 6 + [1] * 4
    types = ["validation", "validation", "test", "test", "live", "live"]
    types += ["validation", "test", "live", "live"]
    p = np.array([0.1, 0.2, 0.1, 0.9, 0.8, 0.9, 0.5, 0.5, 0.5, 0.6])
    result = concordance(p, clusters_of(labels, types))
    assert result.clusters[0].ks == {
        "validation/test": 0.5,
        "validation/live": 1.0,
        "test/live": 0.5,
    }
    assert [c.max_ks for c in result.clusters] == [1.0, 0.5]
    assert result.score == 0.75 and not result.concordant


def test_threshold_is_strict():
    labels = [0] * 20
    types = ["validation"] * 10 + ["test"] * 10
    p = np.r_[np.arange(10) / 10, np.arange(10) / 10]
    p[10] = 5 / 10 + 0.05  # one test value moves: KS = 0.1
    result = concordance(
        np.clip(p, 0, 1),
        clusters_of(labels, types, 1),
        policy=ScoringPolicy(concordance_threshold=0.1),
    )
    assert result.score == pytest.approx(0.1) and not result.concordant


def test_clusters_with_empty_splits():
    # Cluster 0 has only validation rows: nothing to compare, left out of the mean.
    # Cluster 1 has no live rows: only validation/test is compared.
    labels = [0, 0, 1, 1, 1, 1]
    types = ["validation", "validation", "validation", "validation", "test", "test"]
    p = np.array([0.1, 0.9, 0.3, 0.4, 0.3, 0.5])
    result = concordance(p, clusters_of(labels, types))
    first, second = result.clusters
    assert first.max_ks is None and set(first.ks.values()) == {None}
    assert second.ks == {"validation/test": 0.5, "validation/live": None, "test/live": None}
    assert result.score == 0.5


def test_round_with_nothing_to_compare_is_an_error():
    with pytest.raises(ValueError, match="no cluster has rows in two splits"):
        concordance(np.array([0.1, 0.2]), clusters_of([0, 1], ["validation", "test"]))


def test_misaligned_probabilities_and_unknown_split():
    clusters = clusters_of([0, 0], ["validation", "test"])
    with pytest.raises(ValueError, match="probabilities has 3 values but the round has 2"):
        concordance(np.ones(3), clusters)
    with pytest.raises(ValueError, match=r"unknown data_type values \['train'\]"):
        clusters_of([0, 0], ["validation", "train"])


def test_sample_round_matches_a_scipy_reference(sample_round, sample_submission):
    model = fit_clusters(sample_round.all_features(), random_state=5)
    features = sample_round.tournament[list(sample_round.features)].to_numpy()
    labels = model.predict(features)
    clusters = RoundClusters.from_data_types(labels, sample_round.data_types)
    p = sample_submission.set_index("id").loc[sample_round.tournament_ids, "probability"]
    p = p.to_numpy()
    result = concordance(p, clusters)

    expected = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for c in range(5):
            by_split = [p[(labels == c) & (sample_round.data_types == s)] for s in SPLITS]
            pairs = [(0, 1), (0, 2), (1, 2)]
            expected.append(max(ks_2samp(by_split[i], by_split[j]).statistic for i, j in pairs))
    assert [c.max_ks for c in result.clusters] == pytest.approx(expected, abs=1e-12)
    assert result.score == pytest.approx(np.mean(expected), abs=1e-12)


def test_fitting_is_reproducible(sample_round):
    x = sample_round.all_features()
    first = fit_clusters(x, random_state=11).predict(x)
    again = fit_clusters(x, random_state=11).predict(x)
    np.testing.assert_array_equal(first, again)
    assert len(np.unique(first)) == 5


def test_fit_refuses_bad_features():
    with pytest.raises(ValueError, match="at least 5 rows"):
        fit_clusters(np.ones((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        fit_clusters(np.full((10, 2), np.nan))


@pytest.mark.parametrize(
    ("labels", "splits", "n_clusters", "message"),
    [
        ([0, 0, 2], [0, 1, 0], 2, "labels must be whole numbers from 0 to 1"),
        ([0, -1, 1], [0, 1, 0], 2, "labels must be whole numbers from 0 to 1"),
        ([0, 0, 1], [0, 3, 0], 2, "splits must be whole numbers from 0 to 2"),
        ([0.0, 1.0, 1.0], [0, 1, 0], 2, "labels must be whole numbers"),
        ([0, 0, 1], [0, 1], 2, r"same length, got shapes \(3,\) and \(2,\)"),
        ([0, 0, 0], [0, 1, 2], 0, "n_clusters must be a positive whole number, got 0"),
    ],
)
def test_round_clusters_refuse_labels_and_splits_out_of_range(labels, splits, n_clusters, message):
    """A label of 2 with 2 clusters, or a split of 3, once put its row in no group, or in the
    next cluster's validation rows, without a word."""
    with pytest.raises(ValueError, match=message):
        RoundClusters(np.array(labels), np.array(splits), n_clusters)


def test_stored_clusters_load_without_scikit_learn_until_the_model_is_read(tmp_path):
    """A scoring run reads only each row's cluster: loading the round's clusters must not import
    scikit-learn (a second of every run), and the model must still be all there when read."""
    rng = np.random.default_rng(3)
    tournament = np.vstack([rng.normal(0, 0.1, (6, 2)), rng.normal(5, 0.1, (6, 2))])
    fitted = cluster_round(
        np.vstack([rng.normal(0, 0.1, (10, 2)), tournament]),
        tournament,
        np.tile(SPLITS, 4),
        np.arange(12),
        n_clusters=2,
    )
    path = tmp_path / "kmeans_clusters.pkl"
    path.write_bytes(pickle.dumps(pickle.loads(pickle.dumps(fitted))))  # stored twice over
    script = (
        "import json, pickle, sys\n"
        f"fitted = pickle.loads(open({str(path)!r}, 'rb').read())\n"
        "before = 'sklearn' in sys.modules\n"
        "sizes = fitted.clusters.sizes()\n"
        "print(json.dumps([before, 'sklearn' in sys.modules, sizes, fitted.inertia,\n"
        "                  fitted.model.predict(fitted.model.cluster_centers_).tolist()]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    before, after_sizes, sizes, inertia, centres = json.loads(out)
    assert (before, after_sizes) == (False, False)
    assert sizes == fitted.clusters.sizes()
    assert inertia == fitted.inertia
    assert centres == [0, 1]
