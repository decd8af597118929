"""A workflow job killed, an input edited, the workflow rerun (issue 32): nothing the killed job
left behind is taken for work on the new inputs. A train job's resume state names the features
and split it was made from; the Kinetics mirror's shards are known by their whole URL and kept
only when their gzip stream is whole."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from move.downloads import TIMEOUT_ENV
from move.files import file_sha256
from tests.snakemake_runs import REPO, TINY_CONFIG, merged_config
from tests.test_mirror import write_lists

# Loaded by every Python started with this folder first on PYTHONPATH: while MOVE_TEST_HANG is
# set, a training run hangs right after writing a resume state (its pid in that file), so the
# test can kill the workflow there.
HANG_HOOK = """
import importlib.abc, importlib.util, os, sys, time

MARKER = os.environ.get("MOVE_TEST_HANG")


class HangAfterResumeState(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "move.training.artefacts":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            save = module.save_progress

            def save_then_hang(*args, **kwargs):
                save(*args, **kwargs)
                with open(MARKER, "w") as marker:
                    marker.write(str(os.getpid()))
                time.sleep(600)

            module.save_progress = save_then_hang

        spec.loader.exec_module = exec_module
        return spec


if MARKER:
    sys.meta_path.insert(0, HangAfterResumeState())
"""

TRAIN_CONFIG = copy.deepcopy(TINY_CONFIG)
TRAIN_CONFIG["datasets"]["demo"]["train"].update(epochs=4, resume_every_minutes=0)
TRAIN_LOG = "logs/train/demo/resnet50/ir0.5/move_seed0.log"
PARTIAL = "results/demo/resnet50/ir0.5/move/seed0.pt.partial"


def start(workdir: Path, env: dict, *args: str) -> subprocess.Popen:
    """This checkout's Snakefile in ``workdir`` on 2 cores, in its own process group."""
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d",
               str(workdir), "--cores", "2", *args]  # fmt: skip
    return subprocess.Popen(
        command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def finish(job: subprocess.Popen) -> str:
    output, _ = job.communicate(timeout=600)
    assert job.returncode == 0, output.decode()[-3000:]
    return output.decode()


def kill_when(job: subprocess.Popen, ready, what: str, pid_file: Path | None = None) -> None:
    """SIGKILL the workflow (its process group, and the job whose pid is in ``pid_file``) once
    ``ready()``."""
    deadline = time.monotonic() + 400
    while not ready():
        if job.poll() is not None or time.monotonic() > deadline:
            output = job.stdout.read().decode()[-3000:]
            job.kill()
            pytest.fail(f"the workflow ended before {what}: {output}")
        time.sleep(0.2)
    os.killpg(job.pid, signal.SIGKILL)
    if pid_file is not None:
        try:
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    job.wait()


def environment(hook: Path | None = None, **extra: str) -> dict:
    """The environment of the workflow's jobs: this checkout first (after ``hook``'s folder)."""
    env = {key: value for key, value in os.environ.items() if key != "MOVE_TEST_HANG"}
    path = [str(hook)] if hook is not None else []
    return {**env, "PYTHONPATH": os.pathsep.join([*path, str(REPO)]), **extra}


@pytest.mark.slow
def test_killed_training_resumes_but_not_after_its_split_was_edited(tmp_path):
    """Cause 1 of issue 32 through Snakemake: the train job killed after epoch 1, rerun with
    --rerun-incomplete: it resumes (the resume state is deliberately no output, so Snakemake
    keeps it). Killed again after epoch 2, `max_per_class` edited (the split is rebuilt), rerun:
    the state of the old split is set aside in one line and the run trains afresh on the new
    split. On 4e1bccc the last rerun resumed the old split's model."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HANG_HOOK)
    work = tmp_path / "work"
    work.mkdir()
    config = merged_config(TRAIN_CONFIG)
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    marker = tmp_path / "hung"
    hanging = environment(hook, MOVE_TEST_HANG=str(marker))
    target = "results/demo_ir0.5.json"

    first = start(work, hanging, target)
    kill_when(first, marker.is_file, "the first resume state", marker)
    marker.unlink()
    assert (work / PARTIAL).is_file()

    start(work, hanging, "--unlock").wait()
    again = start(work, hanging, target, "--rerun-incomplete")
    kill_when(again, marker.is_file, "the second resume state", marker)
    log = (work / TRAIN_LOG).read_text()
    assert "resuming results/demo/resnet50/ir0.5/move/seed0.pt after epoch 1" in log, log

    config["datasets"]["demo"]["max_per_class"] = 5
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    start(work, environment(hook), "--unlock").wait()
    finish(start(work, environment(hook), target, "--rerun-incomplete"))
    log = (work / TRAIN_LOG).read_text()
    assert "resuming" not in log, log
    ignoring = [line for line in log.splitlines() if line.startswith("ignoring")]
    assert ignoring == [
        f"ignoring {PARTIAL}: made from another split than splits/demo_ir0.5.csv (sha256 "
        "differs); starting afresh"
    ], log
    results = json.loads((work / target).read_text())
    split = pd.read_csv(work / "splits/demo_ir0.5.csv")
    assert results["split"]["sha256"] == file_sha256(work / "splits/demo_ir0.5.csv")
    assert results["n_train"] == (split.split == "train").sum() == 5 + 3 + 3 + 2
    assert [record["epoch"] for record in results["history"]] == [1, 2, 3, 4]
    assert not (work / PARTIAL).exists()


# --- the Kinetics mirror ---------------------------------------------------------------------


def mirrored_config(work: Path, path_lists: list[str], videos: dict) -> dict:
    """A dataset whose videos come from the mirror (rule fetch_kinetics), all ``videos`` listed."""
    annotations = work / "annotations.csv"
    pd.DataFrame({"video_id": sorted(videos)}).to_csv(annotations, index=False)
    mirrored = {
        "videos": None,
        "annotations": str(annotations),
        "kinetics_mirror": {"path_lists": path_lists, "parallel": 2},
        "imbalance_ratios": [0.5],
        "max_per_class": 6,
        "groups": {"head_min": 5, "tail_max": 3},
    }
    config = merged_config({**TINY_CONFIG, "datasets": {"mirrored": mirrored}})
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    return config


FOLDER = "data/mirrored/kinetics_videos"
COMPLETE = "data/mirrored/kinetics_videos.complete"


@pytest.mark.slow
def test_killed_fetch_rerun_with_the_val_list_added_fetches_both_shards_of_one_name(
    local_server, tmp_path
):
    """Cause 2 of issue 32 through Snakemake: fetch_kinetics killed while train/part_1 hangs
    (train/part_0 recorded), the val path list added to the config, rerun: val/part_0 is fetched
    although a shard of its name is recorded, and every listed video is kept, byte for byte. On
    4e1bccc the rerun skipped val/part_0 and lost its videos silently."""
    lists, videos = write_lists(local_server)
    work = tmp_path / "work"
    work.mkdir()
    config = mirrored_config(work, lists[:1], videos)
    local_server.faults["train/part_1.tar.gz"] = ["stall"] * 100
    env = environment(**{TIMEOUT_ENV: "60"})
    first = start(work, env, COMPLETE)
    done = work / FOLDER / ".shards"
    kill_when(first, lambda: len(list(done.glob("*.done"))) == 1, "train/part_0 was recorded")
    local_server.faults.clear()

    config["datasets"]["mirrored"]["kinetics_mirror"]["path_lists"] = lists
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    start(work, env, "--unlock").wait()
    finish(start(work, env, COMPLETE, "--rerun-incomplete"))
    kept = {path.stem: path.read_bytes() for path in (work / FOLDER).glob("*.mp4")}
    assert kept == videos
    assert pd.read_csv(work / FOLDER / "not_in_shards.csv").empty
    assert len(list(done.glob("*.done"))) == 4


@pytest.mark.slow
def test_a_shard_failing_its_crc_stops_the_job_and_the_rerun_keeps_the_original(
    local_server, tmp_path
):
    """Cause 3 of issue 32 through Snakemake: a shard with 40 changed bytes (compressed again under
    the original's trailer, ``damage``) fails the job, its log naming the shard and the CRC, none
    of its videos kept and the folder not marked complete; the mirror serves it whole again,
    rerun: every video is the original. On 4e1bccc the job succeeded with a changed video and the
    rerun had nothing to do."""
    lists, videos = write_lists(local_server, corrupt={"train/part_1.tar.gz": "content"})
    work = tmp_path / "work"
    work.mkdir()
    mirrored_config(work, lists, videos)
    env = environment()
    failed = start(work, env, COMPLETE)
    output, _ = failed.communicate(timeout=600)
    assert failed.returncode != 0, output.decode()[-3000:]
    log = (work / "logs/fetch_kinetics/mirrored.log").read_text()
    assert "1 of 4 shard(s) failed (train/part_1.tar.gz)" in log and "CRC" in log, log
    assert not (work / COMPLETE).exists()
    changed = [
        path for path in (work / FOLDER).glob("*.mp4") if path.read_bytes() != videos.get(path.stem)
    ]
    assert changed == []

    lists, videos_now = write_lists(local_server)  # the whole shard again (new random bytes)
    finish(start(work, env, COMPLETE))
    kept = {path.stem: path.read_bytes() for path in (work / FOLDER).glob("*.mp4")}
    assert kept.keys() == videos.keys()
    for video_id in kept:
        first_run = video_id.startswith("tr1")  # the refused shard's videos: fetched now
        assert kept[video_id] == (videos_now if first_run else videos)[video_id], video_id
