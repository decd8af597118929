import numpy as np
import pytest

from move.training.metrics import evaluate, per_class_average_precision, top_k_accuracy


def test_ap_is_one_for_perfect_ranking_and_nan_without_positives():
    scores = np.array([[0.9, 0.1, 0.2], [0.2, 0.8, 0.1], [0.3, 0.7, 0.3]])
    targets = np.array([[1, 0, 0], [0, 1, 0], [0, 1, 0]])
    aps = per_class_average_precision(scores, targets)
    assert aps[0] == 1 and aps[1] == 1 and np.isnan(aps[2])


def test_ap_matches_hand_computation():
    scores = np.array([[0.9], [0.8], [0.7], [0.6]])
    targets = np.array([[1], [0], [1], [0]])
    assert per_class_average_precision(scores, targets)[0] == pytest.approx((1 + 2 / 3) / 2)


def test_top_k_counts_any_true_label():
    scores = np.array([[0.1, 0.9, 0.5], [0.8, 0.1, 0.3]])
    targets = np.array([[1, 0, 0], [1, 0, 1]])
    assert top_k_accuracy(scores, targets, 1) == 0.5
    assert top_k_accuracy(scores, targets, 2) == 0.5
    assert top_k_accuracy(scores, targets, 3) == 1.0


def test_group_means_use_group_classes_only():
    rng = np.random.default_rng(0)
    targets = np.eye(6)[rng.integers(0, 6, size=60)]
    scores = targets * 0.5 + rng.random((60, 6))
    groups = np.array(["head", "head", "medium", "medium", "tail", "tail"])
    result = evaluate(scores, targets, groups)
    aps = np.array(result["per_class_AP"])
    assert result["mAP"] == pytest.approx(aps.mean())
    assert result["head_mAP"] == pytest.approx(aps[:2].mean())
    assert result["tail_mAP"] == pytest.approx(aps[4:].mean())
    assert 0 <= result["top1"] <= result["top5"] <= 1
