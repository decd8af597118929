"""Running this checkout's Snakefile from tests: environment, arguments, and reading a dry-run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
PROFILES = REPO / "workflow" / "profiles"
# The tiny workflow config (.test/config, as the Snakemake workflow template keeps it).
TINY_CONFIG: dict = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())

# `snakemake -n` prints a rule's `message:` instead of its details; this runs the real CLI with
# the details (threads, resources, shell command) printed for every job.
PLAN = """
import sys
from snakemake import logging
from snakemake.cli import main
show = logging.DefaultFormatter.format_job_info
logging.DefaultFormatter.format_job_info = lambda self, msg: show(self, {**msg, "rule_msg": None})
main(sys.argv[1:])
"""


@dataclass
class PlannedJob:
    """One job of a dry-run: its rule, threads, resources (as printed) and shell command."""

    rule: str
    threads: int
    resources: dict[str, str]
    command: str | None
    has_output: bool


def workflow_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment in which the workflow's `move` commands import this checkout."""
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def workflow_args(workdir: Path, *configfiles: Path) -> list[str]:
    """This checkout's Snakefile run in ``workdir`` with its config.yaml, then ``configfiles``."""
    snakefile, config = REPO / "Snakefile", REPO / "config.yaml"
    return ["-s", str(snakefile), "-d", str(workdir), "--configfile", str(config), *configfiles]


def snakemake_args(workdir: Path, configfile: Path, profile: Path, *extra: str) -> list[str]:
    """Arguments for this checkout's Snakefile in ``workdir`` under ``profile``."""
    return [*workflow_args(workdir, configfile), "--profile", str(profile), *extra]


def plan(args: list[str], env: dict[str, str]) -> list[PlannedJob]:
    """Dry-run (``-n`` is added) and return every planned job; a failed plan raises."""
    done = subprocess.run(
        [sys.executable, "-c", PLAN, *args, "-n"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return parse_plan(done.stdout + done.stderr)


def parse_plan(output: str) -> list[PlannedJob]:
    """The jobs of a dry-run's output (printed with PLAN)."""
    jobs: list[PlannedJob] = []
    job: PlannedJob | None = None
    for line in output.splitlines():
        text = line.strip()
        if match := re.match(r"^(?:local)?rule (\w+):$", text):
            job = PlannedJob(match.group(1), 1, {}, None, False)
            jobs.append(job)
        elif job is None:
            continue
        elif text.startswith("output:"):
            job.has_output = True
        elif text.startswith("threads:"):
            job.threads = int(text.removeprefix("threads:"))
        elif text.startswith("resources:"):
            items = text.removeprefix("resources:").strip().split(", ")
            job.resources = dict(item.split("=", 1) for item in items)
        elif text.startswith("Shell command:"):
            command = text.removeprefix("Shell command:").strip()
            job.command = None if command == "None" else command
            job = None
    return jobs


def rule_names(workdir: Path, env: dict[str, str]) -> set[str]:
    """Every rule of the workflow (``snakemake --list-rules``, run in ``workdir``)."""
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", *workflow_args(workdir), "--list-rules"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return {line.strip() for line in done.stdout.splitlines() if re.fullmatch(r"\s*\w+\s*", line)}


def merged_config(overrides: dict) -> dict:
    """The shipped config.yaml with ``overrides`` merged in (dicts recursively)."""

    def merge(base: dict, extra: dict) -> dict:
        out = dict(base)
        for key, value in extra.items():
            out[key] = merge(base[key], value) if isinstance(value, dict) and key in base else value
        return out

    return merge(yaml.safe_load((REPO / "config.yaml").read_text()), overrides)


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """This checkout's Snakefile run in ``workdir`` (its config.yaml there) on 2 cores."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir)]
    return subprocess.run(
        [*command, "--cores", "2", *args], capture_output=True, text=True, env=env, cwd=workdir
    )


def planned_rules(result: subprocess.CompletedProcess) -> set[str]:
    """Rule names in a dry run's 'Job stats' table."""
    return set(planned_jobs(result.stdout))


def planned_jobs(output: str) -> dict[str, int]:
    """{rule: job count} of a dry run's 'Job stats' table."""
    table = output.split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}
