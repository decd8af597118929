"""Evaluation: per-class AP, mAP over all / head / medium / tail classes, top-1 / top-5 accuracy.

AP is scikit-learn's ``average_precision_score`` on the sigmoid scores of each class, as the
paper's tables. Classes with no positive test video have no AP and are left out of every mean.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score


def per_class_average_precision(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """AP of each class (``[C]``); NaN for classes without a positive sample."""
    aps = np.full(scores.shape[1], np.nan)
    for c in range(scores.shape[1]):
        if targets[:, c].any():
            aps[c] = average_precision_score(targets[:, c] > 0, scores[:, c])
    return aps


def top_k_accuracy(scores: np.ndarray, targets: np.ndarray, k: int) -> float:
    """Share of samples with at least one true label among their k highest scores."""
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    hits = np.take_along_axis(targets > 0, top, axis=1).any(axis=1)
    return float(hits.mean())


def _nanmean(values: np.ndarray) -> float | None:
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else None


def evaluate(scores: np.ndarray, targets: np.ndarray, groups: np.ndarray) -> dict:
    """All metrics of the tables. ``groups[c]`` is 'head', 'medium' or 'tail' for class c."""
    aps = per_class_average_precision(scores, targets)
    result = {"mAP": _nanmean(aps)}
    for group in ("head", "medium", "tail"):
        result[f"{group}_mAP"] = _nanmean(aps[groups == group])
    result["top1"] = top_k_accuracy(scores, targets, 1)
    result["top5"] = top_k_accuracy(scores, targets, min(5, scores.shape[1]))
    result["per_class_AP"] = [None if np.isnan(a) else float(a) for a in aps]
    return result
