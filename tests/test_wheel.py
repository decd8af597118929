"""The package works from a built wheel, away from the checkout: the schema is package data, and
validating a config, planning the demo and building extraction's settings read nothing from the
repository (no ``workflow/``, no ``docs/``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO

# Run in a folder holding only the wheel's files and a copy of config.yaml (user input, which a
# wheel does not ship).
CHECKS = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import yaml

    import move
    from move.config import SCHEMA_PATH, load_config
    from move.extraction.settings import ExtractSettings
    from move.planning import ablation_variants, main_run, resolve, variant_train_settings
    from move.targets import check_targets

    site = Path(sys.argv[1]).resolve()
    assert Path(move.__file__).resolve().is_relative_to(site), move.__file__
    assert SCHEMA_PATH.resolve().is_relative_to(site), SCHEMA_PATH

    config = load_config("config.yaml")  # the schema from the wheel, with its defaults
    check_targets(["results/demo_ir0.1.json", "results/demo_table.md"], config)
    resolved = resolve(config)
    run = main_run(resolved, "demo_ir0.1")
    assert run.result(run.variant, resolved.seed) == "results/demo/resnet50/ir0.1/move/seed0.json"
    assert run.split(0) == "splits/demo_ir0.1.csv"
    assert variant_train_settings(run.train, "cb_loss_agg")["method"] == "cb_loss"
    assert ablation_variants(run.train)["g"] == "move"
    assert ExtractSettings().frames == 150  # the authors', as the workflow
    try:
        ExtractSettings(frames=0)
    except move.errors.MoveError as error:
        assert "frames" in str(error), error
    else:
        raise AssertionError("frames 0 accepted")
    print("wheel ok")
    """
)


@pytest.mark.slow
def test_the_wheel_validates_the_config_and_plans_the_demo_outside_the_checkout(tmp_path):
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info beside it
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "move", source / "move", ignore=shutil.ignore_patterns("__pycache__"))
    wheels, site, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "work"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)],
        check=True,
        cwd=tmp_path,
        timeout=300,
    )
    (wheel,) = wheels.glob("move_vltr-*.whl")
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, timeout=300
    )
    shutil.rmtree(source)
    assert (site / "move" / "schemas" / "config.schema.yaml").is_file()
    work.mkdir()
    shutil.copy(REPO / "config.yaml", work / "config.yaml")
    env = {**os.environ, "PYTHONPATH": str(site)}

    def run_there(*args: str) -> subprocess.CompletedProcess:
        """``python *args`` in ``work``, importing only the installed wheel."""
        return subprocess.run(
            [sys.executable, *args], cwd=work, env=env, capture_output=True, text=True, timeout=300
        )

    done = run_there("-c", CHECKS, str(site))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "wheel ok" in done.stdout
    checked = run_there("-m", "move", "check-config", "config.yaml")
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert "config.yaml: valid" in checked.stdout
