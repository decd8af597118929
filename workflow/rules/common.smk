# Config loading and validation, and every function the rules share (the other .smk files hold
# rules only): input/params functions, the resources each job asks for, the report's targets.
import json
import math
import re
import os
import shlex
from pathlib import Path
import sys

from move.config import (
    coerce_command_line_values,
    mirror_videos,
    required_path,
    validate_config,
)
from move.planning import (
    cached_weights_source,
    effective_config,
    extract_weights,
    main_run,
    resolve,
    run_name,
    run_settings,
    variant_train_settings,
)
from move import input_planning, layout
from move.errors import MoveError
from move.reporting.table_declarations import tables
from move.table_planning import plan_table
from move.targets import check_targets
from move.extraction.weights import weights_cache_dir


def stop(error):
    """End the run with the error's one-line message (no traceback): the user's input is wrong."""
    print(f"Error: {error}", file=sys.stderr)
    sys.exit(1)


def stop_on_error(function, *args, **kwargs):
    """``function(*args, **kwargs)``; its one-line ``MoveError`` ends the run (``stop``)."""
    try:
        return function(*args, **kwargs)
    except MoveError as error:
        stop(error)


# Rules run `python -m move` with this repository's package first on the path, so jobs use the
# checkout's code inside any environment (a conda env from envs/, a SLURM node); the user's own
# PYTHONPATH, if any, follows it. (Snakemake formats the prefix: braces are doubled; it replaces
# the default prefix, so bash's strict mode is restated.)
checkout = shlex.quote(workflow.basedir).replace("{", "{{").replace("}", "}}")
shell.prefix(f"set -euo pipefail; export PYTHONPATH={checkout}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; ")

# --config hands list items and nested values over as text ('seeds=[0, 1, 2]' gives
# ['0', '1', '2']): numbers and booleans where the schema asks for them are read as such.
stop_on_error(coerce_command_line_values, config)
stop_on_error(validate_config, config, source="config")
# Snakemake tells a Snakefile its targets only after planning them: the command line's words
# that look like our target paths are checked here, before any job is planned.
stop_on_error(check_targets, sys.argv[1:], config)

# The config as the rules read it (the schema's defaults applied once, per dataset).
SETTINGS = resolve(config)


def dataset_settings(dataset):
    """The effective settings of a dataset (``move.planning.DatasetSettings``)."""
    return SETTINGS.datasets[dataset]


# Datasets whose splits are drawn at imbalance ratios (rules extract, splits, figures), and those
# that come with their own split (their data source's rule, e.g. videolt_features: no ratios).
DRAWN_DATASETS = [name for name, entry in SETTINGS.datasets.items() if entry.source.imbalance_ratios]
OWN_SPLIT_DATASETS = [name for name in SETTINGS.datasets if name not in DRAWN_DATASETS]
DATASET_NAMES = "|".join(map(re.escape, DRAWN_DATASETS)) or "(?!)"
OWN_SPLIT_NAMES = "|".join(map(re.escape, OWN_SPLIT_DATASETS)) or "(?!)"


def datasets_made_by(rule_name):
    """Wildcard pattern: the datasets whose data source makes their features by ``rule_name``."""
    names = [name for name, entry in SETTINGS.datasets.items() if entry.source.features_rule == rule_name]
    return "|".join(map(re.escape, names)) or "(?!)"


IR_PATTERN = "[0-9]*\\.?[0-9]+"

# (dataset, backbone) pairs whose features come from per-video .npy files (rule npy_features)
NPY_PAIRS = "|".join(
    re.escape(f"{name}/{backbone}")
    for name, entry in SETTINGS.datasets.items()
    for backbone in entry.npy_features
) or "(?!)"

# a backbone in a file name: a registered one or <family>:<model> (timm:vit_base_patch16_clip_224.openai)
BACKBONE_FILE_PATTERN = r"[A-Za-z0-9_]+(?::[A-Za-z0-9_\-]+(?:\.(?!shard[0-9])[A-Za-z0-9_\-]+)*)?"

wildcard_constraints:
    dataset=DATASET_NAMES,  # a dataset with its own split has its source's rules
    own_split_dataset=OWN_SPLIT_NAMES,
    npy_pair=NPY_PAIRS,
    # a training run: a dataset's features of a backbone at an imbalance ratio, or of a backbone
    # where the dataset comes with its own split
    run=f"(?:{DATASET_NAMES})/{BACKBONE_FILE_PATTERN}/ir{IR_PATTERN}|(?:{OWN_SPLIT_NAMES})/[A-Za-z0-9_]+",
    # a short run name (results/<short>.json): the configured backbone, method and seed
    short=f"(?:{DATASET_NAMES})_ir{IR_PATTERN}|(?:{OWN_SPLIT_NAMES})_[A-Za-z0-9_]+",
    table_dataset=f"{DATASET_NAMES}|{OWN_SPLIT_NAMES}",
    backbone=BACKBONE_FILE_PATTERN,
    ir=IR_PATTERN,


def dataset_path(dataset, key):
    """A dataset's configured path (videos/annotations); unset -> one-line error."""
    return stop_on_error(required_path, config, dataset, key)


def dataset_input(key):
    """Input function: ``dataset_path`` of the wildcards' dataset."""
    return lambda wildcards: dataset_path(wildcards.dataset, key)


def settings(stage):
    """Params function: the effective settings of a stage for the wildcard's dataset."""
    return lambda wildcards: getattr(dataset_settings(wildcards.dataset), stage)


def extract_sizes(wildcards):
    """Params: resize and crop of a (dataset, backbone): the extract settings', else the
    backbone's own (its registry entry: input size and the shorter side it resizes to)."""
    from move.extraction.backbones import get_backbone

    extract = dataset_settings(wildcards.dataset).extract
    entry = stop_on_error(get_backbone, wildcards.backbone)
    return {
        "resize": extract.get("resize") or entry.resize,
        "crop": extract.get("crop") or entry.input_size,
    }


def groups(wildcards):
    return dataset_settings(wildcards.dataset).groups



def features_file(wildcards):
    """Input: the feature file a dataset's splits read (the first of its backbones')."""
    return dataset_settings(wildcards.dataset).split_features


def failures_file(wildcards):
    """Input: the extraction failures CSV beside ``features_file``."""
    entry = dataset_settings(wildcards.dataset)
    return layout.FEATURE_FAILURES.format(dataset=entry.name, backbone=entry.backbones[0])


def parse_run(name):
    """The settings of a training run (``move.planning.RunSettings``)."""
    return stop_on_error(run_settings, SETTINGS, name)


def training_features(wildcards):
    """Input: a run's feature file; Kinetics-trained features of a Kinetics subset stop here
    (the leak guard of ``move.planning.extract_weights``), whether or not they exist yet."""
    run = parse_run(wildcards.run)
    if dataset_settings(run.dataset).source.weights_guarded:
        stop_on_error(extract_weights, config, run.dataset, run.backbone)
    return run.features


def main_result_file(short, suffix):
    """The file (``suffix``) of the configured backbone, variant and seed behind a short run."""
    run = stop_on_error(main_run, SETTINGS, short)
    return run.result(run.variant, SETTINGS.seed, suffix)


def ratio_short(wildcards):
    """The short run name of a dataset at the wildcards' IR (``demo_ir0.1``)."""
    return layout.SHORT.format(dataset=wildcards.dataset, ir=wildcards.ir)


def main_run_file(wildcards, suffix):
    """Input: the main result's file (``suffix``) of a dataset at the wildcards' IR."""
    return main_result_file(ratio_short(wildcards), suffix)


def main_run_features(wildcards):
    """Input: the features the main result of a dataset at the wildcards' IR trained on."""
    return main_run(SETTINGS, ratio_short(wildcards)).features


def main_run_split(wildcards):
    return main_run(SETTINGS, ratio_short(wildcards)).split(SETTINGS.seed)


# A run's memory and time are its data source's (VideoLT's release: more than MiniKinetics200).
def run_memory(wildcards):
    return dataset_settings(parse_run(wildcards.run).dataset).source.run_memory_mb


def run_minutes(wildcards):
    return dataset_settings(parse_run(wildcards.run).dataset).source.run_minutes


def train_threads(wildcards):
    """The training loader's workers plus the main process (as extract_threads)."""
    return int(parse_run(wildcards.run).train["num_workers"]) + 1


def run_gpus(wildcards):
    """Resource: 1 GPU unless the run's training `device` is the CPU."""
    return 0 if parse_run(wildcards.run).train.get("device") == "cpu" else 1


def backbone_weights(wildcards):
    """Param: the weights of a (dataset, backbone); 'none' without allow_random_weights stops."""
    return stop_on_error(extract_weights, config, wildcards.dataset, wildcards.backbone)


def weights_input(wildcards):
    """Input: the checkpoint file (rule fetch_weights makes named ones in torch.hub's cache)."""
    from move.extraction.weights import weights_file

    path = stop_on_error(weights_file, wildcards.backbone, backbone_weights(wildcards))
    return [str(path)] if path else []


def weights_source(file_name):
    """Params of the fetch_weights rule, (backbone, weights name or URL) cached as ``file_name``."""
    return stop_on_error(cached_weights_source, config, file_name)


def default_targets():
    """`snakemake` with no target: the demo at each of its imbalance ratios."""
    return [
        layout.MAIN_RESULT.format(short=layout.SHORT.format(dataset="demo", ir=ir))
        for ir in dataset_settings("demo").imbalance_ratios
    ]


# What each job asks of a cluster, declared by every rule (`threads`, and `**job_resources(...)`
# under `resources`: memory, time limit, GPUs). The profiles map these names and name no rule,
# so a new rule is covered as soon as it declares them (tests/test_profiles.py fails one that
# does not).
def job_resources(mem_mb, runtime, gpu=0):
    """Resources of one job: ``mem_mb`` (MB) and ``runtime`` (minutes), each an int or a function
    of the wildcards, multiplied by the attempt (a job killed for memory or time is resubmitted
    with twice, then three times as much); ``gpu`` (int or function) adds ``gpu`` and ``gpu_model``.
    """
    resources = {"mem_mb": attempt_scaled(mem_mb), "runtime": attempt_scaled(runtime)}
    if gpu:
        resources.update(gpu=gpu, gpu_model=gpu_model(gpu))
    return resources


def attempt_scaled(amount):
    """Resource function: ``amount`` (int or function of the wildcards) times the attempt."""
    return lambda wildcards, attempt: (amount(wildcards) if callable(amount) else amount) * attempt


def gpu_model(gpu):
    """Resource function: the site's GPU type (MOVE_SLURM_GPU_MODEL, optional) for a job that
    gets a GPU, '' otherwise (the SLURM plugin then asks for any GPU, or none)."""
    model = os.environ.get("MOVE_SLURM_GPU_MODEL", "")
    return lambda wildcards: model if (gpu(wildcards) if callable(gpu) else gpu) else ""


def stage_gpus(stage):
    """Resource function: 1 GPU unless the stage's `device` is the CPU (auto takes a GPU where the
    node has one)."""

    def gpus(wildcards):
        return 0 if getattr(dataset_settings(wildcards.dataset), stage).get("device") == "cpu" else 1

    return gpus


# Extraction (workflow/rules/extract.smk): `extract.shards` jobs, merged after.
def extract_shards(wildcards):
    return int(dataset_settings(wildcards.dataset).extract["shards"])


def shard_parts(suffix):
    """Input function: every shard file of a (dataset, backbone), e.g. ``.h5``."""

    def parts(wildcards):
        n = extract_shards(wildcards)
        pattern = layout.FEATURE_SHARD if suffix == ".h5" else layout.FEATURE_SHARD_FAILURES
        return [
            pattern.format(dataset=wildcards.dataset, backbone=wildcards.backbone, i=i, n=n)
            for i in range(n)
        ]

    return parts


def extract_threads(wildcards):
    """Decode workers plus the main process (the job's workers follow its threads, see extract.smk)."""
    return int(dataset_settings(wildcards.dataset).extract["num_workers"]) + 1


def shard_runtime(wildcards):
    """Minutes for one shard: 12 h for a whole dataset, split across the shards (at least 1 h)."""
    return max(60, math.ceil(12 * 60 / int(wildcards.n)))


# Training (workflow/rules/train.smk): per-variant settings.
def variant_settings_json(wildcards):
    """Param: a run's train settings for one variant (a table variant or ``ablation_<row>``)."""
    train = parse_run(wildcards.run).train
    values = stop_on_error(variant_train_settings, train, wildcards.variant)
    return json.dumps(values)


# Tables (workflow/rules/report.smk): one rule per declared table (move.reporting.registry),
# its files planned by move.table_planning.
def table_plan(name, dataset):
    """The planned files and heading of table ``name`` of ``dataset`` (``TablePlan``)."""
    return stop_on_error(plan_table, SETTINGS, name, dataset)


def table_inputs(name, wildcard):
    """Input function: the results files table ``name`` reads (its dataset in ``wildcard``)."""
    return lambda wildcards: table_plan(name, wildcards[wildcard]).inputs


def table_arguments(name, wildcard):
    """Params function: the arguments of `move draw-table`: the table's name, its ROW=PATH
    pairs and title, and its files (--out-md, and --out-csv where it has one)."""

    def arguments(wildcards, output):
        files = [f"--out-{suffix} {shlex.quote(path)}" for suffix, path in output.items()]
        return " ".join([name, table_plan(name, wildcards[wildcard]).arguments, *files])

    return arguments


# Splits from the authors' lists (workflow/rules/splits.smk).
def list_source(wildcards):
    """Param: URL or path of data/<d>/lists/<name> (train.txt, val.txt, kinetics<i>.csv)."""
    return stop_on_error(
        input_planning.list_source, dataset_settings(wildcards.dataset), wildcards.name
    )


def dataset_list_sha256(wildcards):
    """Param: '--sha256 <hex>' when datasets.<d>.lists.sha256.<name> pins the list, else ''."""
    return input_planning.list_sha256_option(dataset_settings(wildcards.dataset), wildcards.name)


def kinetics_annotations(wildcards):
    """Input: the fetched copies of the Kinetics-400 CSV(s); unset -> one-line error."""
    return stop_on_error(input_planning.kinetics_list_files, dataset_settings(wildcards.dataset))


def list_split_targets():
    """The split of every IR, from the lists alone, of each dataset with authors' lists."""
    return input_planning.list_split_files(SETTINGS)


def split_seed(wildcards):
    """Param: the seed drawing a split (``move.input_planning.split_seed``)."""
    return stop_on_error(
        input_planning.split_seed, SETTINGS, wildcards.dataset, wildcards.ir, wildcards.drawn
    )


def max_missing_share(dataset):
    return dataset_settings(dataset).max_missing_share


def with_features(path):
    """Input function: ``path`` (a pattern or a function) for a split from the videos with
    features, nothing for a split from the lists alone (``splits/lists/...``)."""

    def inputs(wildcards):
        if wildcards.lists:
            return []
        return path(wildcards) if callable(path) else path.format(**wildcards)

    return inputs


def feature_options(wildcards, input):
    """Param: (what the message says, the options) of a split from the features or the lists."""
    if wildcards.lists:
        return "from its lists alone", ""
    share = max_missing_share(wildcards.dataset)
    return "from the videos with features", (
        f"--features {input.features} --failures {input.failures} --max-missing-share {share}"
        f" --share-key datasets.{wildcards.dataset}.max_missing_share"
    )


def class_order_option(wildcards):
    path = dataset_settings(wildcards.dataset).class_order
    return f"--class-order {path}" if path else ""


# Videos from the Kinetics-400 mirror (workflow/rules/extract.smk, rule fetch_kinetics).
def mirror_settings(wildcards):
    """A dataset's ``kinetics_mirror`` settings (path lists, parallel downloads, what to keep)."""
    return dataset_settings(wildcards.dataset).kinetics_mirror


def mirror_folder(wildcards):
    return mirror_videos(wildcards.dataset)


def videos_input(wildcards):
    """Input of extraction: the video folder, or the completion marker of rule fetch_kinetics
    when the videos come from the mirror (the folder itself is passed as a param)."""
    folder = dataset_input("videos")(wildcards)
    if folder == mirror_videos(wildcards.dataset) and not dataset_settings(wildcards.dataset).videos:
        return layout.MIRROR_COMPLETE.format(dataset=wildcards.dataset)
    return folder


# Per-video .npy features instead of videos (workflow/rules/extract.smk, rule npy_features).
def npy_parts(wildcards):
    """(dataset, backbone) of the ``npy_pair`` wildcard (``minikinetics/resnet50``)."""
    return Path(wildcards.npy_pair).parts


def npy_folder(wildcards):
    """Input: the folder of .npy features of a (dataset, backbone) pair."""
    dataset, backbone = npy_parts(wildcards)
    return dataset_settings(dataset).npy_features[backbone]


def npy_annotations(wildcards):
    """Input: the annotations of the pair's dataset (labels of the converted videos)."""
    return dataset_path(npy_parts(wildcards)[0], "annotations")


# A released dataset converted by its source's rule (workflow/rules/videolt.smk).
def release_settings(wildcards):
    """Params: what the conversion of a dataset with its own split reads (test_list, dtype,
    max_missing_share: its settings, else its source's defaults)."""
    return dataset_settings(wildcards.own_split_dataset).release


def release_features_dir(wildcards):
    """Input: the folder of a released dataset's .npy features for a backbone."""
    entry = dataset_settings(wildcards.own_split_dataset)
    return stop_on_error(input_planning.release_features_folder, entry, wildcards.backbone)


def release_labels_dir(wildcards):
    """Input: a released dataset's label folder."""
    entry = dataset_settings(wildcards.own_split_dataset)
    return stop_on_error(input_planning.release_labels_folder, entry)


# Figures and the report (workflow/rules/report.smk).
def dataset_results(wildcards):
    """Results JSONs of the main result's backbone and variant at every configured imbalance
    ratio of a dataset, each seed (the figures draw the spread over seeds)."""
    entry = dataset_settings(wildcards.dataset)
    runs = [parse_run(run_name(wildcards.dataset, entry.backbone, ir)) for ir in entry.imbalance_ratios]
    return [run.result(run.variant, seed) for run in runs for seed in SETTINGS.seeds]


def dataset_figures(dataset):
    """Every figure of a dataset but its runtimes (which are drawn after these)."""
    folder = layout.FIGURES.format(dataset=dataset)
    names = ("per_class_ap", "map_vs_ir", "curves")
    targets = [layout.FIGURE.format(folder=folder, figure=name) for name in names]
    for ir in dataset_settings(dataset).imbalance_ratios:
        folder = layout.IR_FIGURES.format(dataset=dataset, ir=ir)
        names = ("attention", "confidence")
        targets += [layout.FIGURE.format(folder=folder, figure=name) for name in names]
    return targets


def for_attention(path):
    """Input function: ``path`` (a function) for the attention figure, which shows frames."""
    return lambda wildcards: path(wildcards) if wildcards.figure == "attention" else []


def model_figure_options(wildcards, input):
    """Param: the options of `move plot attention` (videos to show) or `confidence`."""
    if wildcards.figure == "attention":
        return f"--annotations {shlex.quote(input.annotations)} --videos {shlex.quote(input.videos)} --count 2"
    return "--subset train"


def report_targets(dataset):
    """What `report_<dataset>` builds: the dataset's figures, their runtimes, the config."""
    runtimes = layout.FIGURE.format(folder=layout.FIGURES.format(dataset=dataset), figure="runtimes")
    return [*dataset_figures(dataset), runtimes, layout.EFFECTIVE_CONFIG]


def figure(name, caption, folder=layout.FIGURES):
    """Output: a figure (``layout.FIGURE`` in ``folder``), shown in the report under its folder."""
    subcategory = folder.removeprefix(f"{layout.FIGURE_ROOT}/")
    return report(
        layout.FIGURE.format(folder=folder, figure=name),
        caption=f"../report/{caption}.rst",
        category="Figures",
        subcategory=subcategory,
        labels={"figure": name},
    )


def table(name, folder=layout.FIGURES):
    """Output: the numbers a figure draws (a CSV beside it), in the report's tables."""
    subcategory = folder.removeprefix(f"{layout.FIGURE_ROOT}/")
    return report(
        layout.FIGURE_NUMBERS.format(folder=folder, figure=name),
        caption="../report/table.rst",
        category="Tables",
        subcategory=subcategory,
        labels={"table": name.replace("_", " ")},
    )
