"""The repo's promises about itself: README's commands, CI and the conda env stay in sync."""

from __future__ import annotations

import re
import tomllib

import yaml

from tests.conftest import REPO


def readme_commands() -> list[str]:
    """The first two fenced shell blocks of README.md (install + demo, tests)."""
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    return [block.strip() for block in blocks[:2]]


def test_readme_starts_with_demo_and_test_commands():
    demo, tests = readme_commands()
    assert "snakemake --cores 2 results/demo_ir0.1.json" in demo
    assert "pip install" in demo
    assert tests == "python -m pytest -q"


def test_ci_runs_readme_test_command():
    ci = (REPO / ".ci/run").read_text()
    _, tests = readme_commands()
    assert tests in ci.splitlines()
    assert "pip install -e '.[test]'" in ci


def test_conda_env_matches_pyproject_dependencies():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "envs/move.yaml").read_text())
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    assert sorted(pip) == sorted(project["dependencies"])
