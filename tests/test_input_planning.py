"""What each dataset's jobs read (move.input_planning): the list behind each fetched file, the
Kinetics CSVs, a release's folders and the seed drawing a split; an unset key is one line
naming datasets.<name>.<key>."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from move import input_planning
from move.errors import MoveError
from move.planning import resolve
from tests.conftest import REPO


@pytest.fixture
def resolved():
    return resolve(yaml.safe_load((REPO / "config.yaml").read_text()))


def test_each_fetched_list_names_its_source_and_pin(resolved):
    mini = resolved.datasets["minikinetics"]
    assert input_planning.list_source(mini, "train.txt") == mini.lists["train"]
    assert input_planning.list_source(mini, "kinetics1.csv") == mini.kinetics_annotations[1]
    assert input_planning.kinetics_list_files(mini) == [
        "data/minikinetics/lists/kinetics0.csv",
        "data/minikinetics/lists/kinetics1.csv",
    ]
    pinned = dataclasses.replace(mini, lists={**mini.lists, "sha256": {"train": "ab" * 32}})
    assert input_planning.list_sha256_option(pinned, "train.txt") == "--sha256 " + "ab" * 32
    assert input_planning.list_sha256_option(mini, "val.txt") == ""
    assert "splits/lists/minikinetics_ir0.01.csv" in input_planning.list_split_files(resolved)


def test_unset_keys_are_one_line_naming_the_key(resolved):
    demo = resolved.datasets["demo"]
    with pytest.raises(MoveError, match=r"config key 'datasets.demo.lists.train' is not set"):
        input_planning.list_source(demo, "train.txt")
    with pytest.raises(MoveError, match=r"'datasets.demo.kinetics_annotations' is not set"):
        input_planning.kinetics_list_files(demo)
    videolt = resolved.datasets["videolt"]
    with pytest.raises(MoveError, match=r"'datasets.videolt.features.resnet50' is not set"):
        input_planning.release_features_folder(videolt, "resnet50")
    with pytest.raises(MoveError, match=r"'datasets.videolt.labels' is not set"):
        input_planning.release_labels_folder(videolt)


def test_the_seed_drawing_a_split(resolved):
    assert input_planning.split_seed(resolved, "demo", "0.1", "") == 0  # `first` draws nothing
    with pytest.raises(MoveError, match=r"splits/demo_ir0.1_seed2.csv: splits per seed exist"):
        input_planning.split_seed(resolved, "demo", "0.1", "_seed2")
    drawn = dataclasses.replace(resolved, selection="random", seed=5)
    assert input_planning.split_seed(drawn, "demo", "0.1", "_seed2") == 2
    assert input_planning.split_seed(drawn, "demo", "0.1", "") == 5
