"""A workstation's GPUs shared between the jobs Snakemake runs at once: each job claims its own
(GPU, slot) lock, without GPUs here (fake device lists), in separate processes as jobs are."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from move.device import RUNS_PER_GPU_ENV, claim_gpu, runs_per_gpu
from move.errors import MoveError
from tests.conftest import REPO

CLAIM = """
import sys, time
from pathlib import Path
from move.device import claim_gpu
from move.errors import MoveError
try:
    print(claim_gpu([0, 1, 2], int(sys.argv[2]), Path(sys.argv[1])), flush=True)
except MoveError as error:
    print(f"refused: {error}", flush=True)
    sys.exit(0)
time.sleep(60)
"""


def start_job(lock_dir, per_gpu: int) -> tuple[subprocess.Popen, str]:
    """A process claiming a GPU of three, as a training job would; (process, what it printed)."""
    job = subprocess.Popen(
        [sys.executable, "-c", CLAIM, str(lock_dir), str(per_gpu)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    return job, job.stdout.readline().strip()


def test_concurrent_jobs_get_distinct_gpus_and_a_killed_job_frees_its_own(tmp_path):
    jobs = [start_job(tmp_path, 1) for _ in range(4)]
    try:
        assert [printed for _, printed in jobs[:3]] == ["0", "1", "2"]
        assert jobs[3][1].startswith("refused: every GPU slot is taken (3 GPUs x 1 run(s) each")
        jobs[1][0].send_signal(signal.SIGKILL)
        jobs[1][0].wait()
        again, printed = start_job(tmp_path, 1)
        jobs.append((again, printed))
        assert printed == "1"  # the killed job's GPU, its lock file left behind
    finally:
        for job, _ in jobs:
            job.kill()
            job.wait()


def test_runs_per_gpu_fill_every_gpu_before_sharing_one(tmp_path):
    jobs = [start_job(tmp_path, 2) for _ in range(6)]
    try:
        assert [printed for _, printed in jobs] == ["0", "1", "2", "0", "1", "2"]
    finally:
        for job, _ in jobs:
            job.kill()
            job.wait()


def test_runs_per_gpu_setting(monkeypatch):
    monkeypatch.setenv(RUNS_PER_GPU_ENV, "3")
    assert runs_per_gpu() == 3
    monkeypatch.setenv(RUNS_PER_GPU_ENV, "0")
    with pytest.raises(MoveError, match=f"{RUNS_PER_GPU_ENV}: '0' is not a count >= 1"):
        claim_gpu([0, 1])
