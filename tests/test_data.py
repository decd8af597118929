"""Frame sampling of the training and test datasets, and the batched loader."""

import numpy as np
import pandas as pd
import pytest
import torch

from move.errors import MoveError
from move.features import create_feature_file, write_video_features
from move.training.data import (
    FeatureDataset,
    feature_loader,
    multi_hot,
    parse_class_indices,
    random_frame_indices,
    uniform_frame_indices,
)


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


def feature_file(path, compressed: bool = False, nan_video: str | None = None):
    """Eight float16 videos of 5-9 stored frames (contiguous, or gzip-chunked)."""
    rng = np.random.default_rng(0)
    with create_feature_file(path, {"backbone": "x", "frames": 9, "feature_dim": 6}) as handle:
        for i in range(8):
            features = rng.standard_normal((5 + i % 5, 6)).astype(np.float16)
            if f"v{i}" == nan_video:
                features[2, 3] = np.inf
            if compressed:
                dataset = handle["videos"].create_dataset(
                    f"v{i}", data=features, compression="gzip"
                )
                dataset.attrs.update(label=f"c{i % 3}", n_frames=len(features))
            else:
                write_video_features(handle, f"v{i}", features, f"c{i % 3}", len(features))
        handle.attrs["complete"] = True
    return pd.DataFrame(
        {"video_id": [f"v{i}" for i in range(8)], "class_index": ["0", "1", "2"] * 2 + ["0", "1"]}
    )


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_batches_equal_the_videos_one_by_one_in_every_epoch(tmp_path, workers):
    split = feature_file(tmp_path / "f.h5")
    dataset = FeatureDataset(tmp_path / "f.h5", split, 3, 7, train=True, seed=4)
    reference = FeatureDataset(tmp_path / "f.h5", split, 3, 7, train=True, seed=4)
    order = torch.utils.data.SubsetRandomSampler(range(8), torch.Generator().manual_seed(0))
    loader = feature_loader(dataset, 3, order, num_workers=workers, drop_last=True)
    assert len(loader) == 2
    draws = []
    for epoch in range(3):  # persistent workers must see each new epoch
        loader.sampler.set_epoch(epoch)
        reference.set_epoch(epoch)
        for features, targets, indices in loader:
            assert features.dtype == torch.float16 and features.shape == (3, 7, 6)
            for row, index in enumerate(indices.tolist()):
                alone, target, _ = reference[index]
                assert torch.equal(features[row].float(), alone)
                assert torch.equal(targets[row], target)
            draws.append(features.sum().item())
    assert len(set(draws)) == len(draws)  # frames drawn anew each epoch


def test_chunked_compressed_features_read_like_contiguous_ones(tmp_path):
    split = feature_file(tmp_path / "plain.h5")
    feature_file(tmp_path / "gzip.h5", compressed=True)
    plain = FeatureDataset(tmp_path / "plain.h5", split, 3, 9, train=False)
    gzip = FeatureDataset(tmp_path / "gzip.h5", split, 3, 9, train=False)
    for a, b in zip(plain[list(range(8))], gzip[list(range(8))], strict=True):
        assert torch.equal(a, b)


def test_nan_features_name_the_video(tmp_path):
    split = feature_file(tmp_path / "f.h5", nan_video="v5")
    dataset = FeatureDataset(tmp_path / "f.h5", split, 3, 9, train=False)
    dataset[[0, 1, 2]]
    with pytest.raises(MoveError, match="video v5 .* NaN/inf"):
        dataset[[4, 5, 6]]


def test_features_kept_on_the_device_give_the_worker_loaders_batches_and_numbers(
    tmp_path, monkeypatch
):
    """The resident loader (forced on the CPU here: it is chosen on CUDA where the features fit)
    yields the same batches as the worker loader, epoch after epoch, and a run the same metrics."""
    import move.training.loading as loading
    from move.training.loop import train
    from move.training.methods import resolve_settings
    from move.training.settings import TrainSettings
    from tests.conftest import tiny_train, write_features_and_split

    features, split = write_features_and_split(tmp_path, per_class=10, train_per_class=7)
    problem = loading.load_problem(split, features, 6, 2)
    method, settings = resolve_settings(
        TrainSettings.from_dict(tiny_train(method="cbs", feature_dim=16))
    )
    options = method.options(settings.method_settings)
    reference = loading.make_loaders(problem, features, settings, method.sampler, options)
    monkeypatch.setattr(loading, "keep_on_device", lambda *args: True)
    resident = loading.make_loaders(problem, features, settings, method.sampler, options)
    assert type(resident[0]).__name__ == "ResidentLoader"
    for epoch in range(2):
        for ours, theirs in zip(resident, reference, strict=True):
            ours.sampler.set_epoch(epoch)
            theirs.sampler.set_epoch(epoch)
            assert len(ours) == len(theirs)
            for a, b in zip(ours, theirs, strict=True):
                assert len(a) == len(b)
                for x, y in zip(a, b, strict=True):
                    assert torch.equal(x, y)
    runs = {}
    for name in ("resident", "workers"):
        if name == "workers":
            monkeypatch.setattr(loading, "keep_on_device", lambda *args: False)
        out = tmp_path / f"{name}.json"
        runs[name] = train(
            features, split, out, tmp_path / f"{name}.pt", settings, 6, 2, progress=False
        )
    assert runs["resident"]["final"] == runs["workers"]["final"]
