"""Every documented target plans the same jobs as when tests/planned_jobs.json was recorded: the
same rules, threads, resources and shell commands (a refactor of the rules, the planning or the
file layout changes no result).

The record holds, per target, the job count of each rule and a sha256 of the sorted job lines.
After a deliberate change, re-record with ``MOVE_RECORD_PLANNED_JOBS=1 python -m pytest
tests/test_planned_jobs.py --full -n 0`` and say in the commit why the plan changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.snakemake_runs import REPO, PlannedJob, plan, workflow_args, workflow_env

RECORD = Path(__file__).with_name("planned_jobs.json")
# The targets README.md and docs/ tell users to build, on the shipped config with MiniKinetics'
# videos and VideoLT's features set (a dry run: nothing exists yet).
TARGETS = [
    "all",
    "results/demo_ir0.1.json",
    "results/demo_table.md",
    "results/demo_paper.md",
    "results/demo_extended.md",
    "results/demo_ablation.md",
    "report_demo",
    "list_splits",
    "results/minikinetics_ir0.01.json",
    "results/minikinetics_table.md",
    "results/minikinetics_all.md",
    "results/minikinetics_paper.md",
    "results/minikinetics_extended.md",
    "results/minikinetics_ablation.md",
    "report_minikinetics",
    "results/videolt_resnet50.json",
    "results/videolt_paper.md",
    "results/videolt_extended.md",
    "results/videolt_ablation.md",
]


def documented_config(workdir: Path) -> Path:
    """The shipped config with MiniKinetics' video folder and VideoLT's features and labels set
    to (empty) folders in ``workdir``."""
    for folder in ("kinetics400", "videolt/labels", *(f"videolt/{b}" for b in BACKBONES)):
        (workdir / folder).mkdir(parents=True, exist_ok=True)
    overrides = {
        "datasets": {
            "minikinetics": {"videos": str(workdir / "kinetics400")},
            "videolt": {
                "features": {b: str(workdir / "videolt" / b) for b in BACKBONES},
                "labels": str(workdir / "videolt" / "labels"),
            },
        },
    }
    path = workdir / "documented.yaml"
    path.write_text(yaml.safe_dump(overrides))
    return path


BACKBONES = ("resnet50", "resnet101", "tsm_resnet50")


def job_line(job: PlannedJob, workdir: Path) -> str:
    """One job as text, with the run's own folders written as placeholders."""
    resources = ",".join(f"{k}={v}" for k, v in sorted(job.resources.items()) if k != "tmpdir")
    text = f"{job.rule} | {job.threads} | {resources} | {job.command}"
    return text.replace(str(workdir), "<work>").replace(str(REPO), "<repo>")


def planned(target: str, workdir: Path) -> dict:
    """{'jobs': {rule: count}, 'sha256': digest of the sorted job lines} of a dry run of target."""
    env = workflow_env({"TORCH_HOME": str(workdir / "torch")})
    args = [*workflow_args(workdir, documented_config(workdir)), "--cores", "8", "-p", target]
    jobs = plan(args, env)
    assert any(job.command for job in jobs), "no shell command printed: the plan needs -p"
    lines = sorted(job_line(job, workdir) for job in jobs)
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    return {"jobs": dict(sorted(Counter(job.rule for job in jobs).items())), "sha256": digest}


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_documented_target_plans_the_recorded_jobs(target, tmp_path):
    got = planned(target, tmp_path)
    record = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    if os.environ.get("MOVE_RECORD_PLANNED_JOBS"):
        assert "PYTEST_XDIST_WORKER" not in os.environ, "record in one process: add -n 0"
        record[target] = got
        RECORD.write_text(json.dumps(dict(sorted(record.items())), indent=1) + "\n")
        return
    assert target in record, f"{target} is not recorded: run with MOVE_RECORD_PLANNED_JOBS=1"
    assert got["jobs"] == record[target]["jobs"], f"{target}: other jobs planned"
    assert got["sha256"] == record[target]["sha256"], (
        f"{target}: the same rules, but a job's threads, resources or command differ"
    )


def test_every_recorded_target_is_still_documented():
    """The record names exactly the targets above (a target taken out is taken out of both)."""
    assert sorted(json.loads(RECORD.read_text())) == sorted(TARGETS)
