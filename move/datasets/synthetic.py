"""Synthetic long-tailed frame features with a known imbalance ratio, for tests and benchmarks.

Each class has a random centre in feature space; a video of class c is T frames of which a random
share are "foreground" (centre + noise) and the rest background noise shared by all classes, so
the classes are separable only through the right frames (what MOVE's aggregators address). Train
counts follow the long-tailing rule n_c = floor(n_max * IR^(c / (C - 1))); the test set is balanced.
Optionally multi-label (a share of videos carry a second class, written ``"3;17"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from move.features import create_feature_file, write_video_features
from move.files import write_csv_atomic


@dataclass(frozen=True)
class SyntheticSpec:
    """Size and difficulty of a synthetic long-tailed feature set."""

    classes: int = 10
    n_max: int = 60
    imbalance_ratio: float = 0.05
    test_per_class: int = 10
    frames: int = 16
    dim: int = 64
    foreground: float = 0.4  # share of frames that show the class
    signal: float = 1.0  # norm of class centres relative to unit-variance noise per dim
    multi_label: float = 0.0  # share of videos with a second class
    video_noise: float = 0.0  # std of a per-video offset shared by its frames (intra-class spread)
    frame_noise: float = 1.0  # std of independent per-frame noise
    seed: int = 0


def long_tailed_counts(classes: int, n_max: int, imbalance_ratio: float) -> list[int]:
    """n_c = floor(n_max * IR^(c / (C - 1))), at least 1, head (c = 0) to tail."""
    if classes == 1:
        return [n_max]
    return [
        max(1, int(np.floor(n_max * imbalance_ratio ** (c / (classes - 1)) + 1e-9)))
        for c in range(classes)
    ]


def make_synthetic_features(
    features_path: str | Path, split_path: str | Path, spec: SyntheticSpec = SyntheticSpec()
) -> pd.DataFrame:
    """Write an HDF5 feature file and a split CSV; returns the split table."""
    rng = np.random.default_rng(spec.seed)
    centres = rng.normal(size=(spec.classes, spec.dim))
    centres *= spec.signal * np.sqrt(spec.dim) / np.linalg.norm(centres, axis=1, keepdims=True)
    counts = long_tailed_counts(spec.classes, spec.n_max, spec.imbalance_ratio)
    rows = []
    for split, per_class in (("train", counts), ("test", [spec.test_per_class] * spec.classes)):
        for c, n in enumerate(per_class):
            for i in range(n):
                classes = [c]
                if spec.multi_label and rng.random() < spec.multi_label:
                    other = int(rng.integers(spec.classes - 1))
                    classes.append(other + (other >= c))
                rows.append((f"{split}_{c:03d}_{i:04d}", classes, split))
    with create_feature_file(
        features_path, {"backbone": "synthetic", "frames": spec.frames, "feature_dim": spec.dim}
    ) as handle:
        for video_id, classes, _ in rows:
            x = rng.normal(size=(spec.frames, spec.dim)) * spec.frame_noise
            x += rng.normal(size=spec.dim) * spec.video_noise
            shown = rng.random(spec.frames) < spec.foreground
            shown[rng.integers(spec.frames)] = True
            which = rng.choice(classes, size=spec.frames)
            x[shown] += centres[which[shown]]
            label = ";".join(f"class{c:03d}" for c in classes)
            write_video_features(handle, video_id, x.astype(np.float32), label, spec.frames)
        handle.attrs["complete"] = True
    table = pd.DataFrame(
        {
            "video_id": [r[0] for r in rows],
            "class_index": [";".join(map(str, r[1])) for r in rows],
            "label": [";".join(f"class{c:03d}" for c in r[1]) for r in rows],
            "split": [r[2] for r in rows],
        }
    )
    write_csv_atomic(table, Path(split_path))
    return table
