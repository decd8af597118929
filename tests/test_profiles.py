"""The execution profiles against the rules: every documented target, planned under the SLURM
profile, gets from its own rules what its jobs need (GPU where they train or extract, their own
memory and time limits, CPUs = threads), and no profile names a rule that does not exist.

A new rule is caught here when no documented target reaches it, when it declares no resources
(it would get the profile's fallback), or when it trains or extracts without asking for a GPU.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil

import yaml

from tests.snakemake_runs import (
    PROFILES,
    REPO,
    plan,
    rule_names,
    snakemake_args,
    workflow_env,
)

SITE = {
    "MOVE_SLURM_PARTITION": "gpu_test",
    "MOVE_SLURM_ACCOUNT": "proj42",
    "MOVE_SLURM_GPU_MODEL": "a100",
}
FALLBACK = "7"  # the planning copy of the profile gives this memory and time to undeclared jobs
TRAINS_OR_EXTRACTS = re.compile(r"python -m move (train|extract)\b")
README_TARGET = re.compile(
    r"^(?:(?:results|figures|splits)/\S+\.(?:json|md|png|csv)|report_\w+|list_splits)$"
)


def readme_targets() -> set[str]:
    """Targets of the `snakemake` commands in README.md and docs/ (not the file given to
    --report)."""
    targets = set()
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    for line in (line for page in pages for line in page.read_text().splitlines()):
        for command in re.findall(r"snakemake [^`\n]*", line):
            tokens = command.split()
            for before, token in zip(tokens, tokens[1:], strict=False):
                if README_TARGET.match(token) and before != "--report":
                    targets.add(token)
    return targets


def configured_targets(config: dict) -> set[str]:
    """Every result the shipped config names: each dataset at each IR, its Table-3 layout,
    methods table and report, each backbone of a dataset with its own split (VideoLT), and the
    default target."""
    from move.datasets.sources import source_of

    targets = {"all"}
    for dataset, entry in config["datasets"].items():
        targets |= {f"results/{dataset}_paper.md", f"results/{dataset}_ablation.md"}
        targets.add(f"results/{dataset}_extended.md")
        if not source_of(entry).imbalance_ratios:
            targets |= {f"results/{dataset}_{backbone}.json" for backbone in entry["features"]}
            continue
        targets |= {f"results/{dataset}_ir{ir}.json" for ir in entry["imbalance_ratios"]}
        targets |= {f"results/{dataset}_all.md", f"results/{dataset}_table.md", f"report_{dataset}"}
    return targets


def site_paths(root, config: dict) -> dict:
    """Config that points every dataset at (empty) inputs under ``root``, so all can be planned."""
    kinetics = root / "kinetics"
    (kinetics / "videos").mkdir(parents=True)
    for name in ("k400.csv", "train.txt", "val.txt"):
        (kinetics / name).touch()
    (kinetics / "ResNet101").mkdir()
    videolt = root / "videolt"
    (videolt / "labels").mkdir(parents=True)
    features = {}
    for backbone in config["datasets"]["videolt"]["features"]:
        (videolt / backbone).mkdir()
        features[backbone] = str(videolt / backbone)
    return {
        "datasets": {
            "minikinetics": {
                "videos": str(kinetics / "videos"),
                "kinetics_annotations": str(kinetics / "k400.csv"),
                "lists": {"train": str(kinetics / "train.txt"), "val": str(kinetics / "val.txt")},
                # ResNet-101 from the authors' .npy features (rule npy_features), ResNet-50 extracted
                "features": {"resnet101": str(kinetics / "ResNet101")},
            },
            "mirrored": {  # a dataset whose videos come from the Kinetics mirror (fetch_kinetics)
                "videos": None,
                "annotations": "data/mirrored/list_annotations.csv",
                "kinetics_mirror": {"path_lists": ["https://mirror.example/k400_train_path.txt"]},
                "kinetics_annotations": str(kinetics / "k400.csv"),
                "lists": {"train": str(kinetics / "train.txt"), "val": str(kinetics / "val.txt")},
                "imbalance_ratios": [0.01],
                "max_per_class": 400,
                "groups": {"head_min": 301, "tail_max": 40},
            },
            "videolt": {"features": features, "labels": str(videolt / "labels")},
        },
    }


def planning_profile(root):
    """A copy of the SLURM profile whose fallback memory and time are FALLBACK."""
    profile = root / "slurm_profile"
    shutil.copytree(PROFILES / "slurm", profile)
    settings_file = profile / "config.v8+.yaml"
    settings = yaml.safe_load(settings_file.read_text())
    settings["default-resources"].update(mem_mb=int(FALLBACK), runtime=int(FALLBACK))
    settings_file.write_text(yaml.safe_dump(settings))
    return profile


def test_slurm_profile_gives_every_job_of_every_documented_target_its_resources(tmp_path):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    paths = tmp_path / "paths.yaml"
    paths.write_text(yaml.safe_dump(site_paths(tmp_path, config)))
    documented = readme_targets()
    assert {"results/demo_ir0.1.json", "results/minikinetics_all.md"} <= documented, documented
    targets = sorted(documented | configured_targets(config) | {"results/mirrored_ir0.01.json"})
    workdir = tmp_path / "work"
    args = snakemake_args(workdir, paths, planning_profile(tmp_path), *targets)
    env = workflow_env(SITE)
    jobs = plan(args, env)

    unplanned = rule_names(workdir, env) - {job.rule for job in jobs}
    assert not unplanned, f"rules no documented target reaches (document one): {sorted(unplanned)}"
    # `all` and `report_<dataset>` only gather their inputs: no job runs for them
    working = [job for job in jobs if job.has_output]

    def rules(predicate) -> list[str]:
        return sorted({job.rule for job in working if predicate(job)})

    fallback = rules(lambda job: FALLBACK in (job.resources["mem_mb"], job.resources["runtime"]))
    assert not fallback, (
        f"rules without their own mem_mb/runtime (use **job_resources(...)): {fallback}"
    )
    heavy = rules(lambda job: bool(TRAINS_OR_EXTRACTS.search(job.command or "")))
    assert {"extract_shard", "train"} <= set(heavy), heavy
    no_gpu = rules(
        lambda job: (
            job.rule in heavy
            and (job.resources.get("gpu") != "1" or job.resources.get("gpu_model") != "a100")
        )
    )
    assert not no_gpu, f"rules that train or extract without a GPU: {no_gpu}"
    needless_gpu = rules(
        lambda job: (
            job.rule not in heavy
            and (job.resources.get("gpu", "0") != "0" or job.resources.get("gpu_model"))
        )
    )
    assert not needless_gpu, f"rules asking for a GPU they do not use: {needless_gpu}"
    for job in working:
        assert job.resources["cpus_per_task"] == str(job.threads), (job.rule, job.resources)
        assert job.resources["slurm_partition"] == "gpu_test", (job.rule, job.resources)
        assert job.resources["slurm_account"] == "proj42", (job.rule, job.resources)
    memory = {job.rule: int(job.resources["mem_mb"]) for job in working}
    assert memory["extract_shard"] >= 16000 and memory["train"] >= 16000, memory
    assert_each_run_trained_once([job for job in working if job.rule == "train"])


def assert_each_run_trained_once(trainings: list, documented: bool = True) -> None:
    """No two training jobs of a plan train the same settings, seed and split: the main result
    and the methods table share their runs, never train one again."""
    seen: dict[tuple, str] = {}
    for job in trainings:
        words = shlex.split(job.command)
        option = {
            words[i]: words[i + 1] for i in range(len(words) - 1) if words[i].startswith("--")
        }
        settings = json.loads(option["--settings"])
        key = (
            option["--features"],
            option["--split"],
            option["--seed"],
            json.dumps(settings, sort_keys=True),
        )
        assert key not in seen, f"{option['--out']} trains what {seen[key]} trains"
        seen[key] = option["--out"]
    outs = sorted(seen.values())
    if not documented:  # the plan of one table, not of every documented target
        return
    main_runs = ("results/demo/resnet50/ir0.1/move/seed0.json",)
    main_runs += ("results/minikinetics/resnet50/ir0.01/move/seed0.json",)
    assert set(main_runs) <= set(outs), outs
    table = [out for out in outs if re.match(r"results/demo/resnet50/ir0\.1/\w+/seed0\.json", out)]
    assert len(table) == 27, table  # every variant: the paper's 15 and the extended table's 12


def test_table_3_plans_each_variant_backbone_ratio_and_seed_once_each_a_gpu_job(tmp_path):
    """With only the video folder set, the paper's Table 3 over the configured seeds: its seven
    rows × two backbones × four IRs, once per seed, each one SLURM job with one GPU; each
    backbone's features extracted once."""
    from move.reporting.paper import MINIKINETICS_RATIOS, TABLE_3_ROWS

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    videos = tmp_path / "videos"
    videos.mkdir()
    paths = tmp_path / "paths.yaml"
    paths.write_text(yaml.safe_dump({"datasets": {"minikinetics": {"videos": str(videos)}}}))
    args = snakemake_args(
        tmp_path / "work", paths, planning_profile(tmp_path), "results/minikinetics_paper.md"
    )
    jobs = plan(args, workflow_env(SITE))
    trainings = [job for job in jobs if job.rule == "train"]
    planned = set()
    for job in trainings:
        out = dict(re.findall(r"--(out) (\S+)", job.command or ""))["out"]
        match = re.fullmatch(r"results/minikinetics/(\w+)/ir([0-9.]+)/(\w+)/seed(\d+)\.json", out)
        assert match, out
        backbone, ratio, variant, seed = match.groups()
        assert (variant, backbone, float(ratio), int(seed)) not in planned, out
        planned.add((variant, backbone, float(ratio), int(seed)))
        assert (job.resources.get("gpu"), job.resources.get("gpu_model")) == ("1", "a100")
    seeds, backbones = config["seeds"], config["backbones"]
    assert len(trainings) == 56 * len(seeds) and len(seeds) == 3
    assert planned == {
        (variant, backbone, ratio, seed)
        for variant in TABLE_3_ROWS
        for backbone in backbones
        for ratio in MINIKINETICS_RATIOS
        for seed in seeds
    }
    extractions = sorted(
        job.command.split("--backbone ")[1].split()[0]
        for job in jobs
        if job.rule == "extract_shard"
    )
    assert extractions == sorted(backbones), extractions
    assert_each_run_trained_once(trainings, documented=False)


def test_gpu_follows_the_configured_device(tmp_path):
    """`device: cpu` jobs ask for no GPU, and without MOVE_SLURM_GPU_MODEL GPUs are of any type."""
    config = tmp_path / "cpu.yaml"
    config.write_text(yaml.safe_dump({"extract": {"device": "cpu"}}))
    env = workflow_env()
    env.pop("MOVE_SLURM_GPU_MODEL", None)
    args = snakemake_args(tmp_path / "work", config, PROFILES / "slurm", "results/demo_ir0.1.json")
    jobs = {job.rule: job.resources for job in plan(args, env)}
    assert jobs["extract_shard"].get("gpu", "0") == "0", jobs["extract_shard"]
    assert (jobs["train"]["gpu"], jobs["train"]["gpu_model"]) == ("1", ""), jobs["train"]


def test_profiles_name_only_existing_rules(tmp_path):
    rules = rule_names(tmp_path, workflow_env())
    assert {"extract_shard", "train", "plot_runtimes"} <= rules, rules
    for settings_file in sorted(PROFILES.glob("*/config.v8+.yaml")):
        settings = yaml.safe_load(settings_file.read_text())
        named = set()
        for key in ("set-resources", "set-threads"):
            named |= set(settings.get(key) or {})
        assert named <= rules, f"{settings_file} names rules that do not exist: {named - rules}"
