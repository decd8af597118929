"""Frame sampling of the training and test datasets."""

import numpy as np
import pandas as pd
import torch

from move.data import (
    FeatureDataset,
    multi_hot,
    parse_class_indices,
    random_frame_indices,
    uniform_frame_indices,
)
from move.features import create_feature_file, write_video_features


def test_uniform_indices_cover_the_video_and_pad_short_ones():
    assert uniform_frame_indices(150, 150).tolist() == list(range(150))
    idx = uniform_frame_indices(150, 60)
    assert len(idx) == 60 and idx[0] == 0 and idx[-1] == 149 and np.all(np.diff(idx) > 0)
    short = uniform_frame_indices(4, 8)
    assert len(short) == 8 and set(short.tolist()) == {0, 1, 2, 3}


def test_random_indices_sorted_with_replacement():
    idx = random_frame_indices(5, 60, np.random.default_rng(0))
    assert len(idx) == 60 and np.all(np.diff(idx) >= 0) and idx.max() <= 4


def test_multi_label_targets():
    assert parse_class_indices("3;17") == [3, 17] and parse_class_indices("4") == [4]
    targets = multi_hot([[0, 2], [1]], 3)
    assert targets.tolist() == [[1, 0, 1], [0, 1, 0]]


def test_videos_of_different_lengths_batch_together(tmp_path):
    path = tmp_path / "f.h5"
    with create_feature_file(path, {"backbone": "x", "frames": 9, "feature_dim": 4}) as handle:
        write_video_features(handle, "a", np.ones((9, 4), np.float32), "c0", 9)
        write_video_features(handle, "b", np.zeros((3, 4), np.float32), "c1;c0", 3)
        handle.attrs["complete"] = True
    split = pd.DataFrame({"video_id": ["a", "b"], "class_index": ["0", "1;0"]})
    test = FeatureDataset(path, split, 2, 6, train=False)
    batch = torch.utils.data.default_collate([test[0], test[1]])
    assert batch[0].shape == (2, 6, 4) and batch[1].tolist() == [[1, 0], [1, 1]]
    train = FeatureDataset(path, split, 2, 5, train=True, seed=1)
    first = train[1][0]
    train.set_epoch(0)
    assert torch.equal(first, train[1][0])  # same (seed, epoch, index) -> same frames
