"""The data-source registry (move/datasets/sources.py): a dataset names how its data come in, and
planning reads the source's properties, never the dataset's name. VideoLT is a dataset of source
``videolt_release``; one of that source under another name plans and trains the same way."""

from __future__ import annotations

import copy
import json
import re

import pytest
import yaml

from move.config import load_config, validate_config
from move.datasets.sources import dataset_source, get_source, source_names, source_of
from move.errors import MoveError
from move.planning import main_run, resolve, run_settings
from move.targets import check_targets
from tests.conftest import REPO, VIDEOLT_CLASSES, make_release, tiny_train
from tests.snakemake_runs import TINY_CONFIG, merged_config, snakemake

CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
# Where the name "videolt" may stand as a string of its own: VideoLT's module and the paper's
# numbers (its tables are VideoLT's). Anywhere else a check of the name would be a special case.
NAME_ALLOWED = ("move/datasets/videolt/", "move/reporting/paper.py")
NAME_AS_STRING = re.compile(r"""["']videolt(["'/]|_["'{])|/videolt[/_]\{|\bVIDEOLT\s*=""")


def released(name: str, root, **more) -> dict:
    """The shipped config with a videolt_release dataset ``name`` (VideoLT's taken out)."""
    config = copy.deepcopy(CONFIG)
    del config["datasets"]["videolt"]
    config["datasets"][name] = {
        "source": "videolt_release",
        "features": {"resnet50": str(root / "feats")},
        "labels": str(root / "labels"),
        **more,
    }
    return config


def test_each_source_says_what_planning_needs():
    assert set(source_names()) >= {"videos", "npy_features", "kinetics_mirror", "videolt_release"}
    release = get_source("videolt_release")
    assert not release.imbalance_ratios and release.multi_label and not release.weights_guarded
    assert release.features_rule == "videolt_features" and release.run_memory_mb == 64000
    assert release.defaults["groups"] == {"head_min": 501, "tail_max": 100}
    videos = get_source("videos")
    assert videos.imbalance_ratios and not videos.multi_label and videos.run_minutes == 6 * 60
    with pytest.raises(MoveError, match="unknown data source 'tape'.*choose one of videos"):
        get_source("tape")


def test_a_dataset_without_source_keeps_its_meaning():
    """No ``source``: videos, or the mirror / the .npy features where only those are given."""
    assert source_of(CONFIG["datasets"]["demo"]).name == "videos"
    assert source_of({"videos": None, "kinetics_mirror": {"path_lists": ["u"]}}).name == (
        "kinetics_mirror"
    )
    assert source_of({"videos": None, "features": {"resnet50": "/f"}}).name == "npy_features"
    assert dataset_source(CONFIG, "videolt").name == "videolt_release"
    assert dataset_source(CONFIG, "nope") is None


def test_the_old_top_level_videolt_key_stops_saying_how_to_move_it(tmp_path):
    """In the workflow and in ``move check-config`` (the shipped schema's ``x-moved``)."""
    config = copy.deepcopy(CONFIG)
    config["videolt"] = config["datasets"].pop("videolt")
    del config["videolt"]["source"]
    with pytest.raises(MoveError) as error:
        validate_config(config)
    message = str(error.value)
    assert "\n" not in message
    assert "config key 'videolt' has moved" in message
    assert "under 'datasets'" in message and "source: videolt_release" in message
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump(config))
    with pytest.raises(MoveError, match=f"{re.escape(str(old))}: config key 'videolt' has moved"):
        load_config(old)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"imbalance_ratios": [0.1]},
            "'datasets.vlt.imbalance_ratios': a videolt_release dataset does not use it",
        ),
        ({"videos": "/v"}, "'datasets.vlt.videos': a videolt_release dataset does not use it"),
        ({"labels": None, "source": "videos"}, "'datasets.vlt.videos' is missing"),
    ],
)
def test_a_source_refuses_keys_it_does_not_read_and_asks_for_those_it_needs(
    change, expected, tmp_path
):
    config = released("vlt", tmp_path)
    config["datasets"]["vlt"].update(change)
    with pytest.raises(MoveError, match=re.escape(expected)):
        validate_config(config)


def test_a_release_under_another_name_plans_as_videolt(tmp_path):
    """Runs ``<dataset>/<backbone>``, VideoLT's defaults, VideoLT's file layout under its name."""
    config = released("vlt", tmp_path, groups={"head_min": 9, "tail_max": 8})
    validate_config(config)
    resolved = resolve(config)
    run = main_run(resolved, "vlt_resnet50")
    assert run.name == "vlt/resnet50" and run.imbalance_ratio is None
    assert run.features == "features/vlt/resnet50.h5" and run.split(0) == "splits/vlt_resnet50.csv"
    assert run.groups == {"head_min": 9, "tail_max": 8} and run.recorded == "--dataset vlt"
    assert resolved.datasets["vlt"].backbones == ("resnet50", "resnet101", "tsm_resnet50")
    assert resolved.datasets["vlt"].release["dtype"] == "float16"
    with pytest.raises(
        MoveError, match=r"own split \(no imbalance ratios\): its runs are vlt/<backbone>"
    ):
        run_settings(resolved, "vlt/resnet50/ir0.1")
    check_targets(["results/vlt_resnet50.json", "results/vlt_paper.md"], config)
    with pytest.raises(MoveError, match="vlt comes with its own split, no imbalance ratios"):
        check_targets(["results/vlt_ir0.1.json"], config)


def test_no_check_of_videolts_name_outside_its_module_and_the_papers_numbers():
    files = [*(REPO / "move").rglob("*.py"), *(REPO / "workflow").rglob("*.smk")]
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in [*files, REPO / "Snakefile"]
        if not str(path.relative_to(REPO)).startswith(NAME_ALLOWED)
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if NAME_AS_STRING.search(line)
    ]
    assert not found, "VideoLT's name checked outside its module: ask its source instead:\n" + (
        "\n".join(found)
    )
    assert NAME_AS_STRING.search('if dataset == "videolt":')  # what it catches
    assert NAME_AS_STRING.search('f"results/videolt_{backbone}.json"')
    assert not NAME_AS_STRING.search('features_rule="videolt_features"')  # a rule's name


@pytest.mark.slow
def test_a_release_under_another_name_trains_through_the_workflow(tmp_path):
    """VideoLT's miniature release as dataset ``vlt``: converted by rule videolt_features, trained
    by rule train, its main result results/vlt_resnet50.json."""
    root = make_release(tmp_path / "release")
    train = tiny_train(frames_train=4, frames_test=8, num_workers=0, eval_every=3)
    config = merged_config(TINY_CONFIG)
    del config["datasets"]["videolt"]
    config["datasets"]["vlt"] = {
        "source": "videolt_release",
        "features": {"resnet50": str(root / "feats")},
        "labels": str(root / "labels"),
        "groups": {"head_min": 9, "tail_max": 8},
        "train": train,
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    done = snakemake(tmp_path, "results/vlt_resnet50.json")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "features" / "vlt" / "resnet50.h5").is_file()
    assert (tmp_path / "splits" / "vlt_resnet50.csv").is_file()
    assert (tmp_path / "logs" / "videolt_features" / "vlt_resnet50.log").is_file()
    results = json.loads((tmp_path / "results" / "vlt_resnet50.json").read_text())
    assert results["n_classes"] == VIDEOLT_CLASSES and results["n_test"] == 8
    assert results["groups"] == {"head_min": 9, "tail_max": 8}
    assert (tmp_path / "results" / "vlt" / "resnet50" / "move" / "seed0.json").is_file()


@pytest.mark.parametrize(
    ("unset", "expected"),
    [
        ("labels", "config key 'datasets.vlt.labels' is not set"),
        ("features", "config key 'datasets.vlt.features.resnet50' is not set"),
    ],
)
def test_an_unset_release_path_stops_planning_naming_the_key(unset, expected, tmp_path):
    root = make_release(tmp_path / "release")
    config = released("vlt", root)
    config["datasets"]["vlt"][unset] = {"resnet50": None} if unset == "features" else None
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    done = snakemake(tmp_path, "-n", "results/vlt_resnet50.json")
    assert done.returncode != 0
    assert expected in done.stderr and "Traceback" not in done.stderr
