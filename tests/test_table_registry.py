"""The table registry: every table is a declaration (``move.reporting.table_declarations``) that
planning turns into result files (``move.table_planning``), the workflow into one rule each
(``workflow/rules/report.smk``) and ``move draw-table`` draws; a new table is one declaration
(``tests/example_table.py``) plus this test, also from another package's ``move.tables`` entry
point. ``move draw-table`` writes the same bytes as the older per-table commands."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from move.errors import MoveError
from move.planning import resolve
from move.reporting.registry import register_table, unregister_table
from move.reporting.table_declarations import get_table, tables
from move.table_planning import plan_table
from move.training.settings import ABLATION_ROWS
from tests.conftest import REPO, run_move
from tests.example_table import TAIL
from tests.snakemake_runs import plan, workflow_args, workflow_env
from tests.test_seed_tables import VARIANTS, ablation_runs, write_run

RULES = {
    "table": "methods_table",
    "all": "imbalance_table",
    "paper": "paper_table",
    "extended": "extended_table",
    "ablation": "ablation_table",
}


@pytest.fixture
def config():
    return yaml.safe_load((REPO / "config.yaml").read_text())


@pytest.fixture
def tail_registered():
    register_table(TAIL)
    yield TAIL
    unregister_table(TAIL.name)


def test_every_table_is_declared_with_its_old_rule_name():
    assert {name: table.rule_name for name, table in tables().items()} == RULES
    assert get_table("all").outputs("demo") == {"md": "results/demo_all.md"}
    assert get_table("paper").outputs("{table_dataset}")["csv"] == (
        "results/{table_dataset}_paper.csv"
    )
    with pytest.raises(MoveError, match="unknown table 'nope': choose one of table, all"):
        get_table("nope")


def test_planning_computes_each_tables_files(config):
    resolved = resolve(config)
    demo = resolved.datasets["demo"]
    paper = plan_table(resolved, "paper", "demo")
    cells = len(demo.backbones) * len(demo.imbalance_ratios) * len(resolved.seeds)
    rows = list(dict.fromkeys(row for row, _ in paper.results))
    assert len(paper.inputs) == cells * len(rows)
    first = f"results/demo/{demo.backbones[0]}/ir{demo.imbalance_ratios[0]}/{rows[0]}/seed"
    assert paper.inputs[: len(resolved.seeds)] == [f"{first}{s}.json" for s in resolved.seeds]
    ablation = plan_table(resolved, "ablation", "demo")
    assert [row for row, _ in ablation.results][:: len(resolved.seeds)] == list(ABLATION_ROWS)
    methods = plan_table(resolved, "table", "demo")
    assert methods.title == f"demo, {demo.backbone}, IR {demo.table_ir}, seed {resolved.seed}: " + (
        "final-epoch metrics"
    )
    assert "--title 'demo, " in methods.arguments
    assert plan_table(resolved, "all", "demo").inputs == [
        f"results/demo_ir{ir}.json" for ir in demo.imbalance_ratios
    ]
    videolt = plan_table(resolved, "paper", "videolt").inputs
    assert all(path.startswith("results/videolt/") for path in videolt) and videolt
    with pytest.raises(MoveError, match="videolt comes with its own split"):
        plan_table(resolved, "table", "videolt")
    with pytest.raises(MoveError, match="dataset 'nowhere' is not configured"):
        plan_table(resolved, "paper", "nowhere")


def test_a_new_table_is_one_declaration(tail_registered, config, tmp_path):
    """The example table, registered, is planned from its declaration and drawn by name."""
    resolved = resolve(config)
    tail = plan_table(resolved, "tail", "demo")
    assert [row for row, _ in tail.results] == [
        row for row in ("plain", "move") for _ in resolved.seeds
    ]
    for seed, (row, path) in enumerate(tail.results[: len(resolved.seeds)]):
        write_run(tmp_path / path, VARIANTS[row], seed, [0.5] * 3 + [0.25 + seed / 100, 0.5, 0.5])
    pairs = [f"{row}={tmp_path / path}" for row, path in tail.results[: len(resolved.seeds)]]
    md, csv = tmp_path / "tail.md", tmp_path / "tail.csv"
    done = run_move("draw-table", "tail", *pairs, "--out-md", md, "--out-csv", csv, "--title", "T")
    assert done.returncode == 0, done.stderr
    assert md.read_text().splitlines()[4] == "| plain | 0 | 0.250 |"
    assert len(csv.read_text().splitlines()) == 1 + len(resolved.seeds)


def test_draw_table_checks_its_files(tmp_path):
    done = run_move("draw-table", "all", "0.1=x.json", "--out-md", tmp_path / "a.md")
    assert done.returncode != 0 and "x.json" in done.stderr
    path = write_run(tmp_path / "r.json", VARIANTS["move"], 0, [0.5] * 6)
    done = run_move("draw-table", "paper", f"move={path}", "--out-md", tmp_path / "p.md")
    assert done.returncode == 1 and "pass --out-csv" in done.stderr


# --- the same bytes as the older commands --------------------------------------------------------
def drawn(tmp_path, name, *args):
    md, csv = tmp_path / f"{name}.md", tmp_path / f"{name}.csv"
    done = run_move(*args, "--out-md", md, "--out-csv", csv)
    assert done.returncode == 0, done.stderr
    return md.read_bytes(), csv.read_bytes()


def test_draw_table_writes_the_bytes_of_the_older_commands(tmp_path):
    rng = np.random.default_rng(0)
    results = []  # (row, path) in planning order: run, then row, then seed
    for backbone in ("resnet50", "resnet101"):
        for ir in (0.01, 0.1):
            for variant, switches in VARIANTS.items():
                for seed in (0, 1):
                    path = tmp_path / f"results/mk/{backbone}/ir{ir}/{variant}/seed{seed}.json"
                    values = rng.uniform(0.3, 0.7, size=6)
                    write_run(path, switches, seed, values, backbone=backbone, ir=ir)
                    results.append((variant, str(path)))
    pairs = [f"{row}={path}" for row, path in results]
    old = drawn(tmp_path, "old", "paper-table", *[p for _, p in results], "--rows", "plain", "move")
    assert drawn(tmp_path, "new", "draw-table", "paper", *pairs) == old
    assert drawn(tmp_path, "new", "draw-table", "extended", *pairs) == old

    first_run = [pair for pair in pairs if "/resnet50/ir0.01/" in pair and "seed0" in pair]
    title = ("--title", "mk, resnet50, IR 0.01, seed 0: final-epoch metrics")
    old = drawn(tmp_path, "old", "table", *first_run, *title)
    assert drawn(tmp_path, "new", "draw-table", "table", *first_run, *title) == old

    ablation, _ = ablation_runs(tmp_path / "ablation")
    old = drawn(tmp_path, "old", "ablation-table", *ablation)
    assert drawn(tmp_path, "new", "draw-table", "ablation", *ablation) == old

    main = [(ir, tmp_path / f"results/mk_ir{ir}.json") for ir in (0.01, 0.1)]
    for ir, path in main:
        write_run(path, VARIANTS["move"], 0, rng.uniform(0.3, 0.7, size=6), ir=ir)
    done = run_move("imbalance-table", *[p for _, p in main], "--out", tmp_path / "old_all.md")
    assert done.returncode == 0, done.stderr
    pairs = [f"{ir}={path}" for ir, path in main]
    done = run_move("draw-table", "all", *pairs, "--out-md", tmp_path / "new_all.md")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "new_all.md").read_bytes() == (tmp_path / "old_all.md").read_bytes()


# --- through the workflow, and from another package ---------------------------------------------
def install_plugin(folder):
    """Write ``tests/example_table.py`` as the package ``tail_table`` with a dist-info that
    declares it in the ``move.tables`` entry-point group (what ``pip install`` would leave)."""
    (folder / "tail_table.py").write_text((REPO / "tests" / "example_table.py").read_text())
    info = folder / "tail_table-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tail-table\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[move.tables]\ntail = tail_table:TAIL\n")
    return {**workflow_env(), "PYTHONPATH": os.pathsep.join([str(folder), str(REPO)])}


def test_a_table_of_another_package_is_planned_by_the_workflow(tmp_path):
    """Its rule (``tail_table``) plans its declared inputs, each table rule drawing its own
    table (no rule made in the loop draws another's); ``move draw-table --help`` lists it."""
    (tmp_path / "plugin").mkdir()
    env = install_plugin(tmp_path / "plugin")
    work = tmp_path / "work"
    work.mkdir()
    targets = ["results/demo_tail.md", "results/demo_ablation.md", "results/demo_all.md"]
    jobs = plan([*workflow_args(work), "--cores", "2", "-p", *targets], env)
    commands = {job.rule: job.command for job in jobs if job.rule.endswith("_table")}
    assert sorted(commands) == ["ablation_table", "imbalance_table", "tail_table"]
    for rule, name in (
        ("tail_table", "tail"),
        ("ablation_table", "ablation"),
        ("imbalance_table", "all"),
    ):
        assert commands[rule].startswith(f"python -m move draw-table {name} ")
    assert " plain=results/demo/resnet50/ir0.1/plain/seed0.json " in commands["tail_table"]
    assert "--out-csv results/demo_tail.csv" in commands["tail_table"]
    assert "--out-csv" not in commands["imbalance_table"]
    assert {job.rule for job in jobs} >= {"train", "tail_table"}
    helped = subprocess.run(
        [sys.executable, "-m", "move", "draw-table", "--help"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert "tail: Tail mAP of the baseline" in " ".join(helped.stdout.split())


def test_the_workflow_draws_each_table_with_its_own_declaration(tail_registered, config, tmp_path):
    """Two table jobs run by Snakemake on results that exist (``--allowed-rules``: nothing is
    trained): each draws its own table (a rule made in the loop that read the loop's variable
    when its job runs would draw the last declared table for both)."""
    (tmp_path / "plugin").mkdir()
    env = install_plugin(tmp_path / "plugin")
    work = tmp_path / "work"
    resolved = resolve(config)
    for row, path in plan_table(resolved, "tail", "demo").results:
        seed = int(path.removesuffix(".json").rsplit("seed", 1)[1])
        write_run(work / path, VARIANTS[row], seed, [0.5] * 6, "demo", "resnet50", 0.1)
    for row, path in plan_table(resolved, "all", "demo").results:
        write_run(work / path, VARIANTS["move"], 0, [0.5] * 6, "demo", "resnet50", float(row))
    rules = ("--allowed-rules", "tail_table", "imbalance_table")
    targets = ("results/demo_tail.md", "results/demo_all.md")
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", *targets, *workflow_args(work), "--cores", "1", *rules],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (work / "results/demo_tail.md").read_text().startswith("# demo, resnet50, IR 0.1: tail")
    assert (work / "results/demo_tail.csv").is_file()
    assert "| MOVE (ours) | ✓ | resnet50 | 0.1 |" in (work / "results/demo_all.md").read_text()
