"""The SLURM profile: planned resources (dry-run), and the real workflow on a real slurmctld.

The cluster test installs Debian's SLURM when absent (root + apt-get), starts a one-node cluster
from tests/slurm_cluster.py (16 CPUs, 64 GB, 2 stand-in GPUs declared, whatever the machine has),
runs the demo at its smallest through `--profile workflow/profiles/slurm` unchanged, cancels the
first extraction job while it runs, and checks that it was retried and that every output matches
a run with the local profile bit for bit. Only polling is shortened for the test
(`--slurm-init-seconds-before-status-checks 1`). It skips only when the daemons cannot start.
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

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parent.parent
SLURM_PROFILE = REPO / "workflow" / "profiles" / "slurm"
LOCAL_PROFILE = REPO / "workflow" / "profiles" / "local"
EXTRACT_RULES = ("extract", "extract_shard")

# The demo at its smallest: 2 classes, 8 videos of 4 frames, 2 epochs, random-init backbone.
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
    "extract": {"weights": {"resnet50": "none"}, "num_workers": 0, "device": "cpu"},
    "train": {"device": "cpu", "num_workers": 0},
}
TARGET = "results/demo_ir0.5.json"

# `snakemake -n` prints a rule's `message:` instead of its details; this runs the real CLI with
# the details (resources included) printed for every job.
PLAN = """
import sys
from snakemake import logging
from snakemake.cli import main
show = logging.DefaultFormatter.format_job_info
logging.DefaultFormatter.format_job_info = lambda self, msg: show(self, {**msg, "rule_msg": None})
main(sys.argv[1:])
"""


def load_cluster_helper():
    spec = importlib.util.spec_from_file_location(
        "slurm_cluster", Path(__file__).with_name("slurm_cluster.py")
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def workflow_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment in which the workflow's `move` commands import this checkout."""
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def snakemake_args(workdir: Path, configfile: Path, profile: Path, *extra: str) -> list[str]:
    return [
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(workdir),
        "--configfile",
        str(REPO / "config.yaml"),
        str(configfile),
        "--profile",
        str(profile),
        *extra,
    ]


def planned_resources(output: str) -> dict[str, list[dict[str, str]]]:
    """Rule name -> the resources of each planned job, parsed from the dry-run output."""
    plans: dict[str, list[dict[str, str]]] = {}
    rule = None
    for line in output.splitlines():
        if match := re.match(r"^(?:local)?rule (\w+):$", line.strip()):
            rule = match.group(1)
        elif line.strip().startswith("resources:") and rule:
            items = line.strip().removeprefix("resources:").strip().split(", ")
            plans.setdefault(rule, []).append(dict(item.split("=", 1) for item in items))
            rule = None
    return plans


def test_slurm_profile_plans_gpu_jobs_for_minikinetics(tmp_path):
    """`--profile workflow/profiles/slurm -n results/minikinetics_ir0.01.json`: GPU for extraction
    and training, CPU for splits, site settings from the environment."""
    videos = tmp_path / "kinetics" / "videos"
    videos.mkdir(parents=True)
    annotations = tmp_path / "kinetics" / "annotations.csv"
    annotations.write_text("label,youtube_id,time_start,time_end,split\n")
    paths = tmp_path / "paths.yaml"
    paths.write_text(
        yaml.safe_dump(
            {"datasets": {"minikinetics": {"videos": str(videos), "annotations": str(annotations)}}}
        )
    )
    site = {
        "MOVE_SLURM_PARTITION": "gpu_test",
        "MOVE_SLURM_ACCOUNT": "proj42",
        "MOVE_SLURM_GPU_MODEL": "a100",
    }
    args = snakemake_args(tmp_path, paths, SLURM_PROFILE, "-n", "results/minikinetics_ir0.01.json")
    done = subprocess.run(
        [sys.executable, "-c", PLAN, *args],
        env=workflow_env(site),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    plans = planned_resources(done.stdout + done.stderr)
    assert "train" in plans and "split" in plans, plans
    extraction = [rule for rule in EXTRACT_RULES if rule in plans]
    assert extraction, f"no extraction job planned: {sorted(plans)}"

    for rule in extraction + ["train"]:
        for job in plans[rule]:
            assert job["gpu"] == "1" and job["gpu_model"] == "a100", (rule, job)
            assert int(job["mem_mb"]) >= 16000 and int(job["runtime"]) >= 240, (rule, job)
    for rule in ["split", "merge_features"]:
        for job in plans.get(rule, []):
            assert "gpu" not in job and "gres" not in job, (rule, job)
            assert job["cpus_per_task"] == "1" and int(job["runtime"]) <= 60, (rule, job)
    for jobs in plans.values():
        for job in jobs:
            assert job["slurm_partition"] == "gpu_test" and job["slurm_account"] == "proj42"
    # cpus_per_task follows each rule's `threads:`; limits are the profile's (attempt 1)
    assert (plans["train"][0]["cpus_per_task"], plans["train"][0]["runtime"]) == ("2", "360")
    if "extract" in plans:
        assert (plans["extract"][0]["cpus_per_task"], plans["extract"][0]["runtime"]) == (
            "4",
            "1440",
        )


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


@pytest.mark.slow
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
        reference = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "snakemake",
                *snakemake_args(local, configfile, LOCAL_PROFILE, TARGET),
            ],
            env=workflow_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

        remote = tmp_path / "slurm"
        watcher = CancelFirst(env, EXTRACT_RULES, remote)
        watcher.start()
        args = snakemake_args(remote, configfile, SLURM_PROFILE, TARGET)
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "snakemake",
                *args,
                "--slurm-init-seconds-before-status-checks",
                "1",
            ],
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

        # Every job went through SLURM, with the profile's resources.
        submitted = dict(
            re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+?)/", log)
        )
        rules = sorted(set(submitted.values()))
        assert {"demo_videos", "split", "train"} <= set(rules), log[-3000:]
        assert set(rules) & set(EXTRACT_RULES), rules
        jobs = {job_id: slurm_job(job_id, env) for job_id in submitted}
        for job_id, rule in submitted.items():
            assert jobs[job_id].get("Comment", "").startswith(f"rule_{rule}"), jobs[job_id]
            assert jobs[job_id]["Partition"] == helper.PARTITION, jobs[job_id]
            gpus = jobs[job_id].get("TresPerJob", "")
            if rule in EXTRACT_RULES or rule == "train":
                assert "gpu:1" in gpus, (rule, jobs[job_id])
            else:
                assert "gpu" not in gpus, (rule, jobs[job_id])

        # The cancelled extraction job failed, was resubmitted, and nothing was lost.
        assert watcher.cancelled in submitted, (watcher.cancelled, submitted)
        assert jobs[watcher.cancelled]["JobState"] == "CANCELLED"
        assert f"SLURM-job '{watcher.cancelled}' failed" in log
        retried = submitted[watcher.cancelled]
        assert sum(rule == retried for rule in submitted.values()) == 2, submitted
        finished = [job for job_id, job in jobs.items() if job_id != watcher.cancelled]
        assert all(job["JobState"] == "COMPLETED" for job in finished), finished

        # sbatch got the profile's limits (attempt 1), and twice the time and memory on the retry.
        expected = {  # rule: (TimeLimit, MinMemoryNode, NumCPUs)
            "demo_videos": ("00:10:00", "1000M", "1"),
            "extract": ("1-00:00:00", "16000M", "4"),
            "split": ("00:15:00", "2000M", "1"),
            "train": ("06:00:00", "32000M", "2"),
        }
        for job_id, rule in submitted.items():
            if rule in expected:
                job = jobs[job_id]
                want = expected[rule]
                if rule == "extract" and job_id != watcher.cancelled:  # the retry: attempt 2
                    want = ("2-00:00:00", "32000M", "4")
                got = (job["TimeLimit"], job["MinMemoryNode"], job["NumCPUs"])
                assert got == want, (rule, job_id, job)

        # Bit for bit the same as the local run.
        for path in [
            "data/demo/annotations.csv",
            "splits/demo_ir0.5.csv",
            "results/demo_ir0.5.per_class.csv",
            "results/demo_ir0.5.pt",
        ]:
            assert (remote / path).read_bytes() == (local / path).read_bytes(), path
        ours, theirs = (feature_arrays(d / "features/demo/resnet50.h5") for d in (remote, local))
        assert ours.keys() == theirs.keys() and len(ours) == 8
        for name in ours:
            assert ours[name].dtype == theirs[name].dtype
            assert np.array_equal(ours[name], theirs[name]), name
        results = [without_timings(json.loads((d / TARGET).read_text())) for d in (remote, local)]
        assert results[0] == results[1]
        assert len(results[0]["history"]) == 2
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
