"""The repo's promises about itself: README's commands, CI and the conda env stay in sync."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import yaml

from tests.conftest import REPO
from tests.snakemake_runs import workflow_args, workflow_env


def readme_commands() -> list[str]:
    """The first two fenced shell blocks of README.md (install + demo, tests)."""
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    return [block.strip() for block in blocks[:2]]


def test_readme_starts_with_demo_and_test_commands():
    demo, tests = readme_commands()
    assert "snakemake --cores 2 results/demo_ir0.1.json" in demo
    assert "pip install" in demo
    assert tests.splitlines() == ["python -m pytest -q", "python -m pytest -q --full"]


def test_ci_runs_readme_test_commands():
    ci = (REPO / ".ci/run").read_text().splitlines()
    _, tests = readme_commands()
    commands = [line for line in ci if line.startswith("python -m pytest")]
    assert commands == tests.splitlines()
    assert "python -m pip install -e '.[test]'" in ci


def test_snakemake_lint_finds_nothing(tmp_path):
    """Every rule has `log:` and `conda:` (or is a `run:` rule), no rule file holds functions,
    no environment variable is used unasserted: `snakemake --lint` prints no finding."""
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", *workflow_args(tmp_path), "--lint"],
        capture_output=True,
        text=True,
        timeout=120,
        env=workflow_env(),
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0 and "Lints for" not in output, output[-4000:]


def test_conda_env_matches_pyproject_dependencies():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "envs/move.yaml").read_text())
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    assert sorted(pip) == sorted(project["dependencies"])


def test_every_job_rule_logs_under_logs_rule_and_has_a_benchmark():
    """The runtimes figure reads every job's benchmark; every log is logs/<rule>/..."""
    import re

    rules = {}
    for path in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"(?m)^(?=rule )", path.read_text()):
            match = re.match(r"rule (\w+):", block)
            if match and "output:" in block:
                rules[match.group(1)] = block
    assert {"train", "split", "extract_shard", "plot_results", "main_result"} <= set(rules)
    for rule, block in rules.items():
        assert re.search(rf'    log:\n        "logs/{rule}/', block), rule
        assert re.search(rf'    benchmark:\n        "logs/benchmarks/{rule}/', block), rule


def test_planning_the_documented_targets_imports_no_torch(tmp_path):
    """`snakemake -n` validates the config, lists the methods and plans every documented demo
    target with torch made unimportable (a shadowing package that raises)."""
    shadow = tmp_path / "shadow" / "torch"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('planning imported torch')\n")
    env = workflow_env({"PYTHONPATH": str(shadow.parent)})
    targets = ["results/demo_ir0.1.json", "results/demo_table.md", "results/demo_all.md"]
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", *targets, "report_demo", "-n",
         *workflow_args(tmp_path)],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "planning imported torch" not in done.stdout + done.stderr
    assert "This was a dry-run" in done.stdout
