"""The real workflow on a real slurmctld, through the SLURM profile (`--full` only).

Installs Debian's SLURM when absent (root + apt-get), starts a one-node cluster from
tests/slurm_cluster.py (16 CPUs, 64 GB, 2 stand-in GPUs declared, whatever the machine has),
runs the demo at its smallest through `--profile workflow/profiles/slurm` unchanged, cancels the
extraction job while it runs, and checks that it was retried with the rules' doubled limits and
that every output matches a run with the local profile bit for bit, stage by stage: the demo
videos (tests/test_demo.py holds them to the same bytes in any process), the extraction threads
(features are bit-identical only for equal torch thread counts; tests/test_extract.py holds the
tolerance across counts), then features, split, checkpoint and results.
Only polling is shortened for the test (`--slurm-init-seconds-before-status-checks 1`). It skips
only when the daemons cannot start. The profile's planned resources: tests/test_profiles.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from tests.snakemake_runs import PROFILES, snakemake_args, workflow_env

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.xdist_group("slurm")]

EXTRACT_RULES = ("extract_shard",)

# The demo at its smallest: 2 classes, 8 videos of 4 frames, 2 epochs, random-init backbone.
# `device: auto`, as users run it: the jobs ask for GPUs and compute on the CPU here.
TINY_CONFIG = {
    "demo": {
        "classes": 2,
        "train_per_class": 3,
        "val_per_class": 1,
        "frames": 4,
        "size": 32,
        "fps": 4,
        "seed": 0,
    },
    "datasets": {
        "demo": {
            "imbalance_ratios": [0.5],
            "max_per_class": 3,
            "groups": {"head_min": 3, "tail_max": 1},
            "extract": {"frames": 4, "resize": 32, "crop": 32, "batch_size": 8},
            "train": {
                "epochs": 2,
                "batch_size": 4,
                "lr_milestones": [1],
                "frames_train": 4,
                "frames_test": 4,
                "eval_every": 1,
                "clusters": 2,
                "d_k": 8,
                "d_v": 8,
                "hidden_dim": 16,
                "codebook_dim": 16,
                "num_workers": 0,
            },
        }
    },
    "extract": {"weights": {"resnet50": "none"}, "num_workers": 0, "device": "auto"},
    "train": {"device": "auto", "num_workers": 0},
}
TARGET = "results/demo_ir0.5.json"
# sbatch limits the rules ask for (attempt 1): rule -> (TimeLimit, MinMemoryNode, NumCPUs)
LIMITS = {
    "demo_videos": ("00:10:00", "1000M", "1"),
    "extract_shard": ("12:00:00", "16000M", "1"),
    "split": ("00:30:00", "4000M", "1"),
    "train": ("06:00:00", "32000M", "1"),  # train.num_workers 0, + 1
}
RETRIED_EXTRACTION = ("1-00:00:00", "32000M", "1")  # attempt 2: twice the time and memory


def load_cluster_helper():
    spec = importlib.util.spec_from_file_location(
        "slurm_cluster", Path(__file__).with_name("slurm_cluster.py")
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class CancelFirst(threading.Thread):
    """Watches squeue and scancels the first running job of one of `rules`, once, after its
    command has started (its rule log exists under `workdir`), i.e. in the middle of its work."""

    def __init__(self, env: dict[str, str], rules: tuple[str, ...], workdir: Path):
        super().__init__(daemon=True)
        self.env, self.rules, self.workdir = env, rules, workdir
        self.cancelled: str | None = None
        self.halt = threading.Event()

    def run(self) -> None:
        pattern = re.compile(rf"^rule_({'|'.join(self.rules)})(_wildcards|$)")
        while not self.halt.is_set() and self.cancelled is None:
            listing = subprocess.run(
                ["squeue", "-h", "-o", "%i|%T|%k"], env=self.env, capture_output=True, text=True
            ).stdout
            for line in listing.splitlines():
                job_id, state, comment = line.split("|", 2)
                rule = pattern.match(comment.strip())
                started = rule and any((self.workdir / "logs" / rule.group(1)).glob("*.log"))
                if state == "RUNNING" and started:
                    subprocess.run(["scancel", job_id], env=self.env, check=True)
                    self.cancelled = job_id
                    return
            time.sleep(0.2)


def feature_arrays(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as handle:
        return {name: handle["videos"][name][()] for name in handle["videos"]}


def slurm_job(job_id: str, env: dict[str, str]) -> dict[str, str]:
    """`scontrol show job` as a dict (finished jobs stay for MinJobAge)."""
    text = subprocess.run(
        ["scontrol", "show", "job", "-o", job_id], env=env, capture_output=True, text=True
    ).stdout
    return dict(item.split("=", 1) for item in text.split() if "=" in item)


def extraction_threads(run: Path) -> set[int]:
    """Torch thread counts the run's extraction jobs report in their logs."""
    logs = (run / "logs" / "extract_shard").glob("*.log")
    return {int(n) for log in logs for n in re.findall(r"with (\d+) torch thread", log.read_text())}


def video_bytes(run: Path) -> dict[str, bytes]:
    videos = sorted((run / "data/demo/videos").rglob("*.mp4"))
    return {str(path.relative_to(run)): path.read_bytes() for path in videos}


def assert_same_outputs(remote: Path, local: Path) -> None:
    """Bit for bit the same as the local run, checked stage by stage (the first to differ fails)."""
    ours, theirs = video_bytes(remote), video_bytes(local)
    assert ours.keys() == theirs.keys() and len(ours) == 8
    assert not [name for name in ours if ours[name] != theirs[name]], "demo videos differ"
    assert extraction_threads(remote) == extraction_threads(local) == {1}, "thread counts differ"
    ours, theirs = (feature_arrays(d / "features/demo/resnet50.h5") for d in (remote, local))
    assert ours.keys() == theirs.keys() and len(ours) == 8
    differing = [name for name in ours if not np.array_equal(ours[name], theirs[name])]
    assert not differing, f"features differ (same threads, same videos) for {differing}"
    for path in [
        "data/demo/annotations.csv",
        "splits/demo_ir0.5.csv",
        "results/demo_ir0.5.per_class.csv",
        "results/demo/resnet50/ir0.5/move/seed0.pt",
    ]:
        assert (remote / path).read_bytes() == (local / path).read_bytes(), path
    results = [without_timings(json.loads((d / TARGET).read_text())) for d in (remote, local)]
    assert results[0] == results[1]
    assert len(results[0]["history"]) == 2


def assert_jobs_as_declared(log: str, env: dict[str, str], cancelled: str | None, partition: str):
    """Every job went through SLURM with its rule's resources; the cancelled extraction job was
    resubmitted with twice the time and memory, and nothing else failed."""
    submitted = dict(re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+?)/", log))
    assert {"demo_videos", "split", "train", *EXTRACT_RULES} <= set(submitted.values()), log[-3000:]
    jobs = {job_id: slurm_job(job_id, env) for job_id in submitted}
    for job_id, rule in submitted.items():
        job = jobs[job_id]
        assert job.get("Comment", "").startswith(f"rule_{rule}"), job
        assert job["Partition"] == partition, job
        gpus = job.get("TresPerJob", "")
        assert ("gpu:1" in gpus) == (rule in EXTRACT_RULES or rule == "train"), (rule, job)
        if rule in LIMITS:
            want = RETRIED_EXTRACTION if rule in EXTRACT_RULES and job_id != cancelled else None
            got = (job["TimeLimit"], job["MinMemoryNode"], job["NumCPUs"])
            assert got == (want or LIMITS[rule]), (rule, job_id, job)

    assert cancelled in submitted, (cancelled, submitted)
    assert jobs[cancelled]["JobState"] == "CANCELLED"
    assert f"SLURM-job '{cancelled}' failed" in log
    assert sum(rule == submitted[cancelled] for rule in submitted.values()) == 2, submitted
    finished = [job for job_id, job in jobs.items() if job_id != cancelled]
    assert all(job["JobState"] == "COMPLETED" for job in finished), finished


def test_workflow_on_real_slurm_matches_local_run(tmp_path):
    helper = load_cluster_helper()
    cluster = helper.SlurmCluster(tmp_path / "cluster", cpus=16, memory_mb=64000, gpus=2)
    try:
        helper.install_slurm()
        cluster.start()
    except helper.ClusterError as error:
        pytest.skip(f"a SLURM cluster cannot start here: {error}")
    try:
        configfile = tmp_path / "tiny.yaml"
        configfile.write_text(yaml.safe_dump(TINY_CONFIG))
        env = workflow_env(cluster.env())
        for name in ("MOVE_SLURM_PARTITION", "MOVE_SLURM_ACCOUNT", "MOVE_SLURM_GPU_MODEL"):
            env.pop(name, None)  # unset: the cluster's default partition, any GPU

        # The local reference runs meanwhile: the SLURM run mostly waits on status polls.
        local = tmp_path / "local"
        local_args = snakemake_args(local, configfile, PROFILES / "local", TARGET)
        reference = subprocess.Popen(
            [sys.executable, "-m", "snakemake", *local_args],
            env=workflow_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

        remote = tmp_path / "slurm"
        watcher = CancelFirst(env, EXTRACT_RULES, remote)
        watcher.start()
        args = snakemake_args(remote, configfile, PROFILES / "slurm", TARGET)
        polling = ["--slurm-init-seconds-before-status-checks", "1"]
        done = subprocess.run(
            [sys.executable, "-m", "snakemake", *args, *polling],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        watcher.halt.set()
        local_log = reference.communicate(timeout=600)[0]
        assert reference.returncode == 0, local_log[-3000:]
        log = done.stdout + done.stderr
        assert done.returncode == 0, log[-4000:]
        assert_jobs_as_declared(log, env, watcher.cancelled, helper.PARTITION)
        assert_same_outputs(remote, local)
    finally:
        cluster.stop()
    assert not any(_alive(pid) for pid in cluster.pids().values())


def without_timings(results: dict) -> dict:
    """Results JSON minus the per-epoch wall-clock seconds, which differ between any two runs."""
    for epoch in results["history"]:
        for key in [key for key in epoch if key.startswith("seconds_")]:
            del epoch[key]
    return results


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
