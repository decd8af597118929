"""The parity harness's own parts that need no authors' checkout: the synthetic set in the
authors' formats, the pooled-std arithmetic and table, the log parser, the scratch patch, and
our side in a tiny run."""

from __future__ import annotations

import importlib.util
import math
import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def parity():
    spec = importlib.util.spec_from_file_location("parity", REPO / "benchmarks" / "parity.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["parity"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("parity", None)


TINY = dict(classes=4, n_max=8, imbalance_ratio=0.25, test_per_class=3, frames=5, dim=16)


def test_set_in_both_layouts_holds_the_same_videos(parity, tmp_path):
    folder = parity.make_set(tmp_path / "set", parity.SetSpec(**TINY, signal=1.0))
    split = pd.read_csv(folder / "split.csv", dtype=str)
    train = (folder / "labels" / "train.lst").read_text().splitlines()
    test = (folder / "labels" / "test.lst").read_text().splitlines()
    assert len(train) == (split.split == "train").sum() and len(test) == 12
    assert (folder / "labels" / "validate.lst").read_text().splitlines() == test
    video, label = train[-1].split()
    assert split.set_index("video_id").class_index[video] == label
    counts = (folder / "labels" / "count-labels-train.lst").read_text().splitlines()
    assert counts[0] == "class000 0 8.0" and len(counts) == 4  # <name> <index> <count>.0
    assert [float(line.split()[2]) for line in counts] == [8.0, 5.0, 3.0, 2.0]
    from move.features import open_feature_file, read_video_features

    array = np.load(folder / "npy" / f"{video}.npy")
    assert array.dtype == np.float32 and array.shape == (5, 16)
    with open_feature_file(folder / "features.h5") as handle:
        assert np.array_equal(read_video_features(handle, video), array)


def test_pooled_std_and_the_difference_in_its_units(parity):
    a, b = [1.0, 2.0, 3.0], [2.0, 4.0]  # variances 1 and 2
    assert parity.pooled_std(a, b) == pytest.approx(math.sqrt((2 * 1 + 1 * 2) / 3))
    assert parity.difference_in_pooled_std(b, a) == pytest.approx(1.0 / math.sqrt(4 / 3))
    assert parity.difference_in_pooled_std([1.0], [1.0]) == 0.0
    assert parity.difference_in_pooled_std([2.0], [1.0]) == math.inf
    table = parity.format_table(
        "plain_agg", {5: {"mAP": [0.5, 0.7], "tail_mAP": [0.1]}}, {5: {"mAP": [0.6, 0.8]}}
    )
    assert "| 5 | mAP | 0.6000 ± 0.1414 (2) | 0.7000 ± 0.1414 (2) | +0.71 |" in table
    assert "| 5 | tail_mAP | 0.1000 ± 0.0000 (1) | - | - |" in table


def test_the_authors_logs_are_read_at_every_evaluation(parity):
    base_main_agg = (
        "Overall, Head, Medium, Tail mAP, Acc@1, 5 = 0.512 0.70000 0.50000 0.31234 0.4 0.9\n"
        "Test Epoch 4: Acc@1: 0.4 | Acc@5: 0.9 | mAP: 0.5123456 | best_mAP: 0.5123456\n"
    )
    dy_main = (
        "Overall mAP = 0.600 | Head = 0.80000 | Medium = 0.60000 | Tail = 0.40000\n"
        "Test Epoch 9: Acc@1: 0.5 | Acc@5: 0.9 | mAP: 0.6001 | best_mAP: 0.6001\n"
    )
    framestack_agg_kinetics = (
        "Overall mAP = 0.172 0.21367 0.26721 0.11775\n"
        "Test Epoch 14: Acc@1: 14.0 | Acc@5: 59.0 | mAP: 0.17218 | best_mAP: 0.17218\n"
    )
    assert parity.parse_authors_log(base_main_agg + dy_main + framestack_agg_kinetics) == {
        5: {"mAP": 0.5123456, "tail_mAP": 0.31234},
        10: {"mAP": 0.6001, "tail_mAP": 0.4},
        15: {"mAP": 0.17218, "tail_mAP": 0.11775},
    }


def test_the_clusters_patch_touches_a_scratch_copy_only(parity, tmp_path):
    checkout = tmp_path / "MOVE"
    (checkout / "VideoLT" / "models").mkdir(parents=True)
    original = "        cluster_size = 64\n"
    (checkout / "VideoLT" / "models" / "models.py").write_text(original)
    assert parity.prepare_authors_code(checkout, tmp_path / "work", 64) == (checkout, [])
    copy, patches = parity.prepare_authors_code(checkout, tmp_path / "work", 4)
    assert (copy / "VideoLT" / "models" / "models.py").read_text() == "        cluster_size = 4\n"
    assert (checkout / "VideoLT" / "models" / "models.py").read_text() == original
    assert len(patches) == 1 and "64 -> 4" in patches[0]


def test_moves_key_mask_follows_the_train_frames_in_the_scratch_copy(parity, tmp_path):
    checkout = tmp_path / "MOVE"
    (checkout / "VideoLT" / "models").mkdir(parents=True)
    original = "        cluster_size = 64\n            mask = torch.ones(sz_b, 1, 60).cuda()\n"
    (checkout / "VideoLT" / "models" / "models.py").write_text(original)
    copy, patches = parity.prepare_authors_code(checkout, tmp_path / "work", 64, frames_train=8)
    assert copy.name == "MOVE-frames8"
    assert (copy / "VideoLT" / "models" / "models.py").read_text() == (
        "        cluster_size = 64\n            mask = torch.ones(sz_b, 1, 8).cuda()\n"
    )
    assert patches == [
        "MOVE-frames8/VideoLT/models/models.py: torch.ones(sz_b, 1, 60) -> torch.ones(sz_b, 1, 8)"
    ]
    copy, patches = parity.prepare_authors_code(checkout, tmp_path / "work", 4, frames_train=8)
    assert copy.name == "MOVE-clusters4-frames8" and len(patches) == 2
    assert (checkout / "VideoLT" / "models" / "models.py").read_text() == original


def test_move_runs_its_shell_scripts_arguments_without_clipping(parity):
    run = parity.RunSpec(frames_train=8)
    move = parity.authors_arguments("move", run, seed=1, classes=10)
    assert "--gd" not in move and move[-6:] == ["--loss_func", "BCELoss", "--lb", "3.0",
                                              "--calib_bias", "0.5"]  # fmt: skip
    plain = parity.authors_arguments("plain_agg", run, seed=1, classes=10)
    assert plain[plain.index("--gd") + 1] == "20"
    assert parity.AUTHORS_SCRIPTS["move"][1] == "VideoLT/MOVE.py"
    settings = parity.our_settings("move", run, seed=1)
    assert settings.method == "move" and settings.aggregators


@pytest.mark.slow  # trains: seconds alone, a minute on a loaded 2-core machine
def test_our_side_runs_the_authors_settings_in_a_tiny_mode(parity, tmp_path):
    folder = parity.make_set(tmp_path / "set", parity.SetSpec(**TINY, signal=2.0))
    run = parity.RunSpec(
        epochs=2, batch_size=6, lr_steps=(1,), frames_train=3, frames_test=5, eval_every=1,
        clusters=2, head=6, tail=2,
    )  # fmt: skip
    settings = parity.our_settings("ldam_drw_agg", run, seed=3)
    assert settings.method == "ldam_drw" and settings.aggregators
    assert settings.method_settings["drw_epoch"] == 50  # the authors' LDAM step_epoch
    assert parity.our_settings("eql_agg", run, 0).method_settings["tail_max"] == 100
    result = parity.run_ours(folder, tmp_path / "run", "plain_agg", run, seed=0)
    assert sorted(result) == [1, 2]
    assert all(0 <= result[e]["mAP"] <= 1 and 0 <= result[e]["tail_mAP"] <= 1 for e in (1, 2))
    assert not (tmp_path / "run" / "model.pt").exists()


def test_the_minikinetics_scripts_layout_of_the_set(parity, tmp_path):
    folder = parity.make_set(tmp_path / "set", parity.SetSpec(**TINY, signal=1.0))
    kinetics = parity.write_kinetics_lists(folder)
    split = pd.read_csv(folder / "split.csv", dtype=str)
    train = (kinetics / "train.lst").read_text().splitlines()
    val = (kinetics / "val.lst").read_text().splitlines()
    assert len(train) == (split.split == "train").sum() and len(val) == 12
    video, label = val[0].split(" ")
    assert split.set_index("video_id").class_index[video] == label
    # their dutils_kinetics: feature root + 'train' / 'val', one <video>.npy in each
    assert (kinetics / "train" / f"{train[0].split()[0]}.npy").is_file()
    assert (kinetics / "val" / f"{video}.npy").is_file()
    assert parity.write_kinetics_lists(folder) == kinetics  # again: nothing to redo


def test_the_minikinetics_variants_settings(parity):
    run = parity.RunSpec(frames_train=8, frames_test=16)
    assert parity.is_kinetics("move_kinetics") and parity.is_kinetics("framestack_agg")
    assert not parity.is_kinetics("move") and not parity.is_kinetics("plain_agg")
    move = parity.our_settings("move_kinetics", run, seed=0)
    assert move.method == "move" and move.method_settings["dfs_scope"] == "first_sample"
    assert move.frames_test == 150  # their test loader's hard-coded 150 frames
    assert parity.our_settings("move", run, seed=0).frames_test == 16
    framestack = parity.our_settings("framestack_agg", run, seed=0)
    assert framestack.method == "framestack" and framestack.aggregators
    arguments = parity.authors_arguments("framestack_agg", run, seed=0, classes=10)
    assert arguments[arguments.index("--imb_factor") + 1] == "1"  # keep the set's own tail
    assert arguments[arguments.index("--gd") + 1] == "20"
    reseeded = parity.authors_arguments("move_kinetics_run_seed", run, seed=3, classes=10)
    assert reseeded[-1] == parity.NUMPY_SEED_FROM_RUN  # taken out by the driver
    plain = parity.authors_arguments("move_kinetics", run, seed=3, classes=10)
    assert [a for a in reseeded[:-1] if "seed3" not in a] == [a for a in plain if "seed3" not in a]
    assert parity.our_settings("move_kinetics_run_seed", run, 0) == move


def test_a_default_argument_is_replaced_by_name(parity):
    def dataset(root, input_dir="x", cls_num=200, converter=None):
        return cls_num, converter

    parity.set_default(dataset, "cls_num", 10)
    assert dataset("r") == (10, None)


def test_our_dfs_masks_become_the_authors_random_calls_in_their_order(parity):
    import torch

    from move.training.vicinity import DfsMasks

    query = torch.tensor([[[1, 1, 0, 0], [0, 1, 1, 1]], [[1, 0, 0, 0], [1, 1, 1, 1]]])
    key = torch.tensor([[1, 0, 1, 1], [0, 0, 1, 1]])  # frames PSA's keys keep
    codebook = torch.tensor([[[0, 0, 1, 1], [1, 1, 1, 0]], [[1, 1, 1, 1], [0, 1, 0, 1]]])
    masks = DfsMasks(query.float(), key.float(), codebook.float())
    assert parity.dfs_draws(masks, first_only=False) == [
        2, [2, 3], 3, [0, 1, 2], 4, [0, 1, 2, 3], 2, [1, 3],  # codebook, video by video
        2, [0, 1], 3, [1, 2, 3], 1, [1],  # video 0: PSA's two queries, then the hidden keys
        1, [0], 4, [0, 1, 2, 3], 2, [0, 1],  # video 1
    ]  # fmt: skip
    assert parity.dfs_draws(masks, first_only=True) == [
        2, [2, 3], 3, [0, 1, 2], 2, [0, 1], 3, [1, 2, 3], 1, [1]
    ]  # fmt: skip
