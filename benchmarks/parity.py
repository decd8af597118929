"""Parity harness: the authors' training scripts beside ``move train`` on one synthetic set.

Given a checkout of the authors' code (github wjun0830/MOVE for ``VideoLT/base_main_Agg.py``,
github 17Skye17/VideoLT for ``dy_main.py``; never copied into this repository), the harness

1. writes a synthetic long-tailed feature set in both layouts: one ``<video>.npy [frames, 2048]``
   per video with the authors' lists (``train.lst``, ``test.lst``, ``count-labels-train.lst``),
   and move's HDF5 + split CSV holding the same float32 arrays;
2. runs each variant's authors' script (a subprocess of this file, which drives it: CUDA calls
   become no-ops, ``tensorboardX`` is stubbed, ``dataset/dutils.py``'s hard-coded feature path
   and label root point at the set) and ``move train`` with the same settings, over seeds;
3. prints one table per variant: mAP and tail mAP at every evaluation, authors vs ours, mean ±
   std over seeds, and the difference in units of the pooled std.

Settings the authors' code hard-codes are patched in a scratch copy of their checkout only when
asked (``--clusters``: NetVLAGD's 64 clusters, to fit a 2-core machine); the patched copy lives
under ``--work`` and is listed in the output. LDAM's DRW start (epoch 50) and EQL's tail cutoff
(100 videos) are the authors' values on both sides.

    python benchmarks/parity.py --move-code ~/MOVE --videolt-code ~/VideoLT --work /tmp/parity \
        --variants plain_agg cb_loss_agg mixup_agg framestack --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import runpy
import shutil
import subprocess
import sys
import time
import types
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
FEATURE_NAME = "synthetic"

# variant -> (which checkout, script, its arguments beyond the shared ones). Every baseline's
# shell script passes --gd 20 (the classifier's gradient norm; ours: the method's grad_clip);
# VideoLT/scripts/MOVE.sh passes none (MOVE.py clips nothing) and --lb 3.0 --calib_bias 0.5.
CLIP = ["--gd", "20"]
AUTHORS_SCRIPTS = {
    "plain_agg": ("move", "VideoLT/base_main_Agg.py", [*CLIP, "--loss_func", "BCELoss"]),
    "cb_loss_agg": ("move", "VideoLT/base_main_Agg.py", [*CLIP, "--loss_func", "CBLoss"]),
    "mixup_agg": (
        "move",
        "VideoLT/base_main_Agg.py",
        [*CLIP, "--loss_func", "BCELoss", "--augment", "mixup"],
    ),  # noqa: E501  # fmt: skip
    "ldam_drw_agg": ("move", "VideoLT/base_main_Agg.py", [*CLIP, "--loss_func", "LDAM"]),
    "eql_agg": ("move", "VideoLT/base_main_Agg.py", [*CLIP, "--loss_func", "EQL"]),
    "framestack": (
        "videolt",
        "dy_main.py",
        [*CLIP, "--loss_func", "FocalLoss", "--gamma", "1", "--warm_epoch", "0", "--ratio", "0.5"],
    ),
    "move": (
        "move",
        "VideoLT/MOVE.py",
        ["--augment", "None", "--loss_func", "BCELoss", "--lb", "3.0", "--calib_bias", "0.5"],
    ),
    # Imbalanced-MiniKinetics200's scripts (Table 3): --imb_factor 1 keeps the set's own tail
    "move_kinetics": (
        "move",
        "Imbalanced-MiniKinetics200/MOVE_kinetics.py",
        [
            "--augment",
            "None",
            "--loss_func",
            "BCELoss",
            "--lb",
            "3.0",
            "--calib_bias",
            "0.5",
            "--imb_factor",
            "1",
        ],
    ),  # fmt: skip
    "framestack_agg": (
        "move",
        "Imbalanced-MiniKinetics200/Framestack_Agg_kinetics.py",
        [
            *CLIP,
            "--gamma",
            "1",
            "--loss_func",
            "FocalLoss",
            "--warm_epoch",
            "0",
            "--ratio",
            "0.5",
            "--imb_factor",
            "1",
        ],
    ),  # fmt: skip
}
# Their MiniKinetics dataset reseeds numpy with 0 (``np.random.seed(rand_number=0)`` in its
# constructor, after the script's own seeding), so every --seed shares one numpy stream: the
# frame indices and MOVE's omega / lambda. This harness-only argument (taken out before the
# script sees its arguments) makes the dataset reseed with --seed instead.
NUMPY_SEED_FROM_RUN = "--harness-numpy-seed-from-run"
AUTHORS_SCRIPTS["move_kinetics_run_seed"] = (
    *AUTHORS_SCRIPTS["move_kinetics"][:2],
    [*AUTHORS_SCRIPTS["move_kinetics"][2], NUMPY_SEED_FROM_RUN],
)
# harness variant -> (our variant, our method's settings) where the names differ
OUR_VARIANTS = {
    "move_kinetics": ("move", {"dfs_scope": "first_sample"}),
    "move_kinetics_run_seed": ("move", {"dfs_scope": "first_sample"}),
}
# The MiniKinetics scripts' test loader takes 150 frames whatever --val_num_frames says
KINETICS_TEST_FRAMES = 150


def is_kinetics(variant: str) -> bool:
    """Whether ``variant``'s script is one of the MiniKinetics scripts (their own data layout)."""
    return AUTHORS_SCRIPTS[variant][1].startswith("Imbalanced-MiniKinetics200/")


@dataclass(frozen=True)
class SetSpec:
    """The synthetic set: long-tailed train counts n_max * IR^(c/(C-1)), balanced test."""

    classes: int = 12
    n_max: int = 120
    imbalance_ratio: float = 0.05
    test_per_class: int = 10
    frames: int = 16
    dim: int = 2048
    signal: float = 0.3
    foreground: float = 0.4
    seed: int = 0


@dataclass(frozen=True)
class RunSpec:
    """What both sides train with (the authors' script arguments and ``TrainSettings``)."""

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-4
    lr_steps: tuple[int, ...] = (6, 8)
    frames_train: int = 8
    frames_test: int = 16
    eval_every: int = 5
    clusters: int = 64
    head: int = 60  # head: more than this many training videos (the authors' --head)
    tail: int = 20  # tail: at most this many (--tail)


# ---------------------------------------------------------------------------------------------
# The synthetic set in both layouts


def make_set(folder: Path, spec: SetSpec) -> Path:
    """Write the set under ``folder`` (skipped when ``folder/set.json`` says the same spec):
    ``npy/<video>.npy``, ``labels/{train,test,validate,count-labels-train}.lst`` (VideoLT's
    formats) and ``features.h5`` + ``split.csv`` (move's). The classes are indexed head to tail."""
    from move.datasets.synthetic import SyntheticSpec, make_synthetic_features
    from move.features import open_feature_file, read_video_features

    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / "set.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == asdict(spec):
        return folder
    synthetic = SyntheticSpec(**asdict(spec))
    table = make_synthetic_features(folder / "features.h5", folder / "split.csv", synthetic)
    (folder / "npy").mkdir(exist_ok=True)
    with open_feature_file(folder / "features.h5") as handle:
        for video_id in table.video_id:
            np.save(folder / "npy" / f"{video_id}.npy", read_video_features(handle, video_id))
    write_authors_lists(table, spec.classes, folder / "labels")
    stamp.write_text(json.dumps(asdict(spec)))
    return folder


def write_kinetics_lists(folder: Path) -> Path:
    """The MiniKinetics scripts' layout of the set in ``folder``: ``kinetics/{train,val}.lst``
    (``<video> <c>``, single label) and ``kinetics/{train,val}/`` (links to ``npy/``), as their
    ``dutils_kinetics`` (feature root + 'train' / 'val') and ``./data/*.lst`` read them. (They
    re-index classes by training count, ties in ``argsort`` order, the same way for train and
    test: mAP and tail mAP do not change.)"""
    import pandas as pd

    kinetics = folder / "kinetics"
    kinetics.mkdir(exist_ok=True)
    table = pd.read_csv(folder / "split.csv", dtype=str)
    if table.class_index.str.contains(";").any():
        raise SystemExit(f"{folder}: multi-label videos; the MiniKinetics scripts are single-label")
    for split, name in (("train", "train"), ("test", "val")):
        rows = table[table.split == split]
        lines = "".join(f"{v} {c}\n" for v, c in zip(rows.video_id, rows.class_index, strict=True))
        (kinetics / f"{name}.lst").write_text(lines)
        if not (kinetics / name).exists():
            (kinetics / name).symlink_to(Path("..") / "npy")
    return kinetics


def write_authors_lists(table, classes: int, labels: Path) -> None:
    """VideoLT's lists: ``<video> <c>[,<c>...]`` per video, ``<name> <c> <count>.0`` per class."""
    labels.mkdir(parents=True, exist_ok=True)
    counts = np.zeros(classes, dtype=np.int64)
    for split, name in (("train", "train.lst"), ("test", "test.lst")):
        rows = table[table.split == split]
        lines = [
            f"{v} {c.replace(';', ',')}\n"
            for v, c in zip(rows.video_id, rows.class_index, strict=True)
        ]
        (labels / name).write_text("".join(lines))
        if split == "train":
            for value in rows.class_index:
                counts[[int(c) for c in value.split(";")]] += 1
    shutil.copyfile(labels / "test.lst", labels / "validate.lst")
    (labels / "count-labels-train.lst").write_text(
        "".join(f"class{c:03d} {c} {n}.0\n" for c, n in enumerate(counts))
    )


# ---------------------------------------------------------------------------------------------
# Mean, std, pooled std and the table


def summary(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def pooled_std(a: list[float], b: list[float]) -> float:
    """sqrt(((n_a - 1) s_a^2 + (n_b - 1) s_b^2) / (n_a + n_b - 2)): the two runs' common spread."""
    n_a, n_b = len(a), len(b)
    if n_a + n_b <= 2:
        return 0.0
    s_a, s_b = summary(a)[1], summary(b)[1]
    return math.sqrt(((n_a - 1) * s_a**2 + (n_b - 1) * s_b**2) / (n_a + n_b - 2))


def difference_in_pooled_std(ours: list[float], authors: list[float]) -> float:
    """(mean ours - mean authors) / pooled std; 0 when both agree exactly, inf when only the
    means differ."""
    delta = summary(ours)[0] - summary(authors)[0]
    spread = pooled_std(ours, authors)
    if spread == 0:
        return 0.0 if delta == 0 else math.copysign(math.inf, delta)
    return delta / spread


def format_table(variant: str, authors: dict, ours: dict) -> str:
    """One markdown table: rows per (epoch, metric), columns authors, ours, difference / pooled std.

    ``authors`` / ``ours``: ``{epoch: {"mAP": [per seed], "tail_mAP": [per seed]}}``.
    """
    lines = [
        f"### {variant}",
        "",
        "| epoch | metric | authors (mean ± std, n) | ours (mean ± std, n) | diff / pooled std |",
        "|---:|---|---:|---:|---:|",
    ]
    for epoch in sorted(set(authors) | set(ours)):
        for metric in ("mAP", "tail_mAP"):
            a = authors.get(epoch, {}).get(metric, [])
            o = ours.get(epoch, {}).get(metric, [])
            cells = [f"{summary(v)[0]:.4f} ± {summary(v)[1]:.4f} ({len(v)})" if v else "-"
                     for v in (a, o)]  # fmt: skip
            diff = f"{difference_in_pooled_std(o, a):+.2f}" if a and o else "-"
            lines.append(f"| {epoch} | {metric} | {cells[0]} | {cells[1]} | {diff} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Our side


def our_settings(variant: str, run: RunSpec, seed: int):
    """``TrainSettings`` equal to the authors' script arguments of ``variant``."""
    from move.training.methods import train_settings, variant_settings

    ours, method_values = OUR_VARIANTS.get(variant, (variant, {}))
    values = variant_settings(ours) | {
        "epochs": run.epochs,
        "batch_size": run.batch_size,
        "lr": run.lr,
        "lr_milestones": list(run.lr_steps),
        "frames_train": run.frames_train,
        "frames_test": KINETICS_TEST_FRAMES if is_kinetics(variant) else run.frames_test,
        "eval_every": run.eval_every,
        "seed": seed,
        "clusters": run.clusters,
        "device": "cpu",
        "checkpoint_dtype": "float32",
        "resume_every_minutes": 1e6,
    }
    method = values["method"]
    if method == "ldam_drw":
        values[method] = {"drw_epoch": 50}  # the authors' LDAM step_epoch
    if method == "eql":
        values[method] = {"tail_max": 100}  # the authors' EQL max_tail_num
    if method_values:
        values[method] = method_values
    return train_settings(values)


def run_ours(data: Path, out: Path, variant: str, run: RunSpec, seed: int) -> dict:
    """Train ``variant`` with ``move``; ``{epoch: {"mAP", "tail_mAP"}}`` at every evaluation."""
    from move.training.loop import train

    out.mkdir(parents=True, exist_ok=True)
    document = train(
        data / "features.h5",
        data / "split.csv",
        out / "results.json",
        out / "model.pt",
        our_settings(variant, run, seed),
        head_min=run.head + 1,  # the authors' head is "more than --head"
        tail_max=run.tail,
        progress=False,
    )
    (out / "model.pt").unlink(missing_ok=True)
    return {
        r["epoch"]: {"mAP": r["metrics"]["mAP"], "tail_mAP": r["metrics"]["tail_mAP"]}
        for r in document["history"]
        if "metrics" in r
    }


def run_ours_process(data: Path, out: Path, variant: str, run: RunSpec, seed: int) -> dict:
    """``run_ours`` in a subprocess of this file (one thread), from this checkout's ``move``."""
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, __file__, "ours", str(data), str(out), variant, str(seed)]
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        command, input=json.dumps(asdict(run)), capture_output=True, text=True, env=env
    )
    (out / "stdout.txt").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"move train failed ({variant}, seed {seed}): see {out / 'stdout.txt'}")
    return json.loads(done.stdout.splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# The authors' side


# MOVE's PSA (``MultiHeadAttention_Dynamic_Aggregator``) builds its key mask for 60 frames, the
# shell scripts' --train_num_frames; with other train frames the harness patches the count
MOVE_KEY_MASK = "mask = torch.ones(sz_b, 1, 60)"


def prepare_authors_code(
    checkout: Path, scratch: Path, clusters: int, frames_train: int = 60
) -> tuple[Path, list[str]]:
    """``checkout`` itself, or (``clusters`` != 64 or ``frames_train`` != 60) a copy under
    ``scratch`` with NetVLAGD's hard-coded 64 clusters and MOVE's PSA key mask's hard-coded 60
    frames replaced; the list of patches applied."""
    if clusters == 64 and frames_train == 60:
        return checkout, []
    name = checkout.name + (f"-clusters{clusters}" if clusters != 64 else "")
    name += f"-frames{frames_train}" if frames_train != 60 else ""
    target = scratch / name
    if not target.is_dir():  # kept: runs of another harness process may be reading it
        shutil.copytree(checkout, target, ignore=shutil.ignore_patterns(".git"))
    patches = []
    for models in sorted(target.rglob("models/models.py")):
        text = models.read_text()
        where = models.relative_to(scratch)
        if clusters != 64:
            if "cluster_size = 64" in text:
                text = text.replace("cluster_size = 64", f"cluster_size = {clusters}")
            if f"cluster_size = {clusters}" not in text:
                raise SystemExit(f"{models}: no 'cluster_size = 64' to patch; use --clusters 64")
            patches.append(f"{where}: cluster_size = 64 -> {clusters}")
        mask = MOVE_KEY_MASK.replace("60", str(frames_train))
        if frames_train != 60 and (MOVE_KEY_MASK in text or mask in text):
            text = text.replace(MOVE_KEY_MASK, mask)
            patches.append(
                f"{where}: torch.ones(sz_b, 1, 60) -> torch.ones(sz_b, 1, {frames_train})"
            )
        models.write_text(text)
    return target, patches


def authors_arguments(variant: str, run: RunSpec, seed: int, classes: int) -> list[str]:
    """The authors' shell script's arguments, at this run's sizes."""
    extra = AUTHORS_SCRIPTS[variant][2]
    return [
        "--feature_name", FEATURE_NAME, "--lr", str(run.lr),
        "--lr_steps", *map(str, run.lr_steps), "--epochs", str(run.epochs),
        "--batch-size", str(run.batch_size), "-j", "0", "--eval-freq", str(run.eval_every),
        "--print-freq", "100000", "--root_log", "log", "--root_model", "checkpoints",
        "--store_name", f"{variant}_seed{seed}", "--num_class", str(classes),
        "--model_name", "NonlinearClassifier", "--train_num_frames", str(run.frames_train),
        "--val_num_frames", str(run.frames_test), "--clip_length", str(run.frames_train),
        "--head", str(run.head), "--tail", str(run.tail), "--seed", str(seed), *extra,
    ]  # fmt: skip


TEST_EPOCH = re.compile(r"Test Epoch (\d+): .*\| mAP: ([0-9.eE+-]+) \|")
# base_main_Agg.py / MOVE*.py: "Overall, Head, Medium, Tail mAP, Acc@1, 5 = <all> <h> <m> <t> ...",
# dy_main.py: "... | Tail = <t>", Framestack_Agg_kinetics.py: "Overall mAP = <all> <h> <m> <t>"
TAIL = re.compile(
    r"(?:Tail mAP, Acc@1, 5 = \S+ \S+ \S+ |\| Tail = |Overall mAP = [0-9.]+ [0-9.]+ [0-9.]+ )"
    r"([0-9.eE+-]+)"
)


def parse_authors_log(text: str) -> dict:
    """``{epoch (1-based): {"mAP", "tail_mAP"}}`` from a script's stdout: the tail line comes
    before its ``Test Epoch`` line."""
    found, tail = {}, None
    for line in text.splitlines():
        match = TAIL.search(line)
        if match:
            tail = float(match.group(1))
        match = TEST_EPOCH.search(line)
        if match:
            found[int(match.group(1)) + 1] = {"mAP": float(match.group(2)), "tail_mAP": tail}
    return found


def run_authors(code: Path, data: Path, out: Path, variant: str, run: RunSpec, seed: int) -> dict:
    """Run the authors' script of ``variant`` in a subprocess (``drive`` below) in ``out``."""
    which, script, _ = AUTHORS_SCRIPTS[variant]
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "labels").exists():
        (out / "labels").symlink_to(data / "labels")
    if is_kinetics(variant) and not (out / "data").exists():
        (out / "data").symlink_to(write_kinetics_lists(data))  # their './data/*.lst'

    classes = len((data / "labels" / "count-labels-train.lst").read_text().splitlines())
    command = [
        sys.executable, __file__, "drive", str(code / script), str(data / "npy"),
        *authors_arguments(variant, run, seed, classes),
    ]  # fmt: skip
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, cwd=out, capture_output=True, text=True, env=env)
    (out / "stdout.txt").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed ({variant}, seed {seed}): see {out / 'stdout.txt'}")
    return parse_authors_log(done.stdout)


def silence_class_meters() -> None:
    """The authors' per-class accuracy and confidence meters are printed only (not in mAP or
    tail mAP), hold VideoLT's 1004 classes and call ``int()`` on 1-element arrays, which
    numpy 2 refuses: their ``update`` becomes a no-op."""
    from ops import utils  # the authors' module

    for name in ("LTAverageMeter", "LTconfMeter"):
        meter = getattr(utils, name, None)
        if meter is not None:
            meter.update = lambda self, *args, **kwargs: None


def drive(script: str, npy_dir: str, arguments: list[str]) -> None:
    """Run an authors' script in this process on CPU: ``.cuda()`` returns its receiver,
    ``tensorboardX`` is a stub, ``dutils`` points at the set; then the script as ``__main__``."""
    import torch

    torch.set_num_threads(1)
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.nn.Module.cuda = lambda self, *a, **k: self
    stub = types.ModuleType("tensorboardX")
    stub.SummaryWriter = lambda *a, **k: types.SimpleNamespace(add_scalar=lambda *a, **k: None)
    sys.modules["tensorboardX"] = stub
    folder = str(Path(script).parent)
    sys.path.insert(0, folder)
    if (Path(folder) / "dataset" / "dutils_kinetics.py").is_file():
        point_kinetics_scripts_at_the_set(folder, npy_dir, arguments)
    else:
        from dataset import dutils  # the authors' module, found in their checkout

        dutils.path_dict[FEATURE_NAME] = npy_dir
        dutils.dim_dict[FEATURE_NAME] = 2048
    silence_class_meters()
    sys.argv = [script, *arguments]
    runpy.run_path(script, run_name="__main__")


def point_kinetics_scripts_at_the_set(folder: str, npy_dir: str, arguments: list[str]) -> None:
    """The MiniKinetics scripts on the set: ``dutils_kinetics``'s feature root is the set's
    ``kinetics/`` (+ 'train' / 'val'); their datasets' hard-coded 200 classes become
    ``--num_class``; ``Framestack_Agg_kinetics.py`` imports ``dataset.dutils``, which that folder
    lacks (it uses nothing from it): an empty module stands in."""
    import dataset  # the authors' package, found in their checkout
    from dataset import dutils_kinetics, imbalance_minikinetics

    dutils_kinetics.path_dict[FEATURE_NAME] = str(Path(npy_dir).parent / "kinetics") + "/"
    dutils_kinetics.dim_dict[FEATURE_NAME] = 2048
    if not (Path(folder) / "dataset" / "dutils.py").is_file():
        dataset.dutils = sys.modules["dataset.dutils"] = types.ModuleType("dataset.dutils")
    classes = int(arguments[arguments.index("--num_class") + 1])
    if NUMPY_SEED_FROM_RUN in arguments:
        arguments.remove(NUMPY_SEED_FROM_RUN)
        seed = int(arguments[arguments.index("--seed") + 1])
        set_default(imbalance_minikinetics.imbalance_minikinetics.__init__, "rand_number", seed)
    imbalance_minikinetics.imbalance_minikinetics.cls_num = classes
    for dataset_class in (imbalance_minikinetics.imbalance_minikinetics,
                          imbalance_minikinetics.TestDataset):  # fmt: skip
        set_default(dataset_class.__init__, "cls_num", classes)


def set_default(function, name: str, value) -> None:
    """Replace the default value of ``function``'s argument ``name``."""
    code = function.__code__
    names = code.co_varnames[: code.co_argcount]
    defaults = list(function.__defaults__)
    defaults[names.index(name) - (len(names) - len(defaults))] = value
    function.__defaults__ = tuple(defaults)


# ---------------------------------------------------------------------------------------------
# Step by step: the same weights, batches, frames and random draws on both sides

# our parameter name -> the authors' (module, name); the classifier's first layer reads
# [PSA 2048, codebook 1024] in ours, [codebook 1024, PSA 2048] in theirs (columns swapped); the
# codebook's projection reads the descriptor cluster-major (k * D + d) in ours, dimension-major
# (d * K + k, after their permute) in theirs
WEIGHT_NAMES = {
    "psa.query.weight": ("attention", "w_qs.weight"),
    "psa.key.weight": ("attention", "w_ks.weight"),
    "psa.value.weight": ("attention", "w_vs.weight"),
    "psa.output.weight": ("attention", "fc.weight"),
    "psa.norm.weight": ("attention", "layer_norm.weight"),
    "psa.norm.bias": ("attention", "layer_norm.bias"),
    "codebook.vlad.assign.weight": ("codebook", "vlad.activation_fc.weight"),
    "codebook.vlad.gates": ("codebook", "vlad.gate_weight"),
    "codebook.project.weight": ("codebook", "hidden_fc.weight"),
    "classifier.0.weight": ("classifier", "fc1.weight"),
    "classifier.0.bias": ("classifier", "fc1.bias"),
    "classifier.3.weight": ("classifier", "project.weight"),
    "classifier.3.bias": ("classifier", "project.bias"),
}
BATCH_NORMS = {
    "codebook.input_norm": "bn1",
    "codebook.vlad.assign_norm": "vlad.bn1",
    "codebook.out_norm": "bn2",
}
AUTHORS_LOSS = {"plain_agg": "BCELoss", "cb_loss_agg": "CBLoss", "mixup_agg": "BCELoss",
                "ldam_drw_agg": "LDAM", "eql_agg": "EQL", "framestack_agg": "FocalLoss"}  # fmt: skip


def authors_state(ours: dict, psa_first: bool = False) -> dict:
    """Our ``state_dict`` as the authors' three modules' ``{module: state_dict}``; ``psa_first``:
    their classifier reads [PSA, codebook] as ours (``MOVE.py``), else [codebook, PSA]."""
    import torch

    state: dict = {"attention": {}, "codebook": {}, "classifier": {}}
    for name, (module, theirs) in WEIGHT_NAMES.items():
        value = ours[name].clone()
        if name == "classifier.0.weight" and not psa_first:
            psa = 2048
            value = torch.cat([value[:, psa:], value[:, :psa]], dim=1)
        if name == "codebook.project.weight":
            clusters = ours["codebook.vlad.gates"].shape[0]
            value = value.view(len(value), clusters, -1).transpose(1, 2).reshape(len(value), -1)
        state[module][theirs] = value
    for name, theirs in BATCH_NORMS.items():
        for part in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            state["codebook"][f"{theirs}.{part}"] = ours[f"{name}.{part}"].clone()
    return state


def compare_steps(move_code: Path, variant: str, steps: int, batch: int, classes: int,
                  epoch: int, seed: int, work: Path) -> list[str]:  # fmt: skip
    """``steps`` training steps of ``base_main_Agg.py``'s modules and of ``move``'s
    ``train_step`` from the same weights, on the same batches and frames, with the same dropout
    masks (the global RNG reseeded before each forward: both draw PSA's two dropouts, then the
    classifier's) and the same mixup / EQL draws (ours from its generator, handed to theirs);
    then both models' test logits. Full size (2048-d, 64 clusters). ``framestack_agg``: the
    MiniKinetics ``Framestack_Agg_kinetics.py`` pieces (the same aggregators, ``FrameStack`` on
    the first half of the batch, focal loss, then the running-AP forward of the unstacked batch)
    at an epoch past the warm-up, a random per-class AP and our partners handed to theirs."""
    import argparse as argparse_module

    import torch

    from move.datasets.synthetic import long_tailed_counts
    from move.training.context import Batch, RunContext
    from move.training.loop import train_step
    from move.training.methods import resolve_settings
    from move.training.model import VideoClassifier
    from move.training.vicinity import sample_interpolation_weight, tail_weighted_criterion

    stacking = variant == "framestack_agg"
    use_authors_code(move_code / ("Imbalanced-MiniKinetics200" if stacking else "VideoLT"))
    from models import models as their_models  # the authors' modules
    from ops import Augment as their_augment
    from ops import losses as their_losses

    epoch = max(epoch, 1) if stacking else epoch  # their warm_epoch 0: stacking from epoch 1
    counts = np.array(long_tailed_counts(classes, 150, 0.05))
    work.mkdir(parents=True, exist_ok=True)
    lc_list = work / "count-labels-train.lst"
    lc_list.write_text("".join(f"class{c} {c} {n}.0\n" for c, n in enumerate(counts)))
    run = RunSpec(epochs=epoch + 1, batch_size=batch, frames_train=60)
    method, settings = resolve_settings(our_settings(variant, run, seed))
    torch.manual_seed(seed)
    ours = VideoClassifier(classes, settings.model)
    theirs = {
        "classifier": their_models.NonlinearClassifier(3072, classes),
        "codebook": their_models.NetVLADModel_Aggregator(2048, classes),
        "attention": their_models.MultiHeadAttention_Aggregator(4, 2048, 512, 512, 0.1),
    }
    for module, state in authors_state(ours.state_dict()).items():
        theirs[module].load_state_dict(state)
    their_params = [
        p for m in ("classifier", "attention", "codebook") for p in theirs[m].parameters()
    ]
    our_optimizer = torch.optim.Adam(ours.parameters(), lr=1e-4)
    their_optimizer = torch.optim.Adam(their_params, lr=1e-4)
    options = method.options(settings.method_settings)
    tau = tail_weighted_criterion(torch.from_numpy(counts))
    context = RunContext(settings, method, options, tau, counts, epoch=epoch)
    arguments = argparse_module.Namespace(lc_list=str(lc_list), alpha=1, gamma=1, reset=1)
    criterion = getattr(their_losses, AUTHORS_LOSS[variant])(arguments, logits=True)
    if hasattr(criterion, "reset_epoch"):
        criterion.reset_epoch(epoch)
    data = np.random.default_rng(seed)
    class_ap = torch.from_numpy(data.random(classes).astype(np.float32)) if stacking else None
    lines = []
    for step in range(steps):
        labels = data.choice(classes, size=batch, p=counts / counts.sum())
        x = torch.from_numpy(data.normal(size=(batch, 60, 2048)).astype(np.float32))
        x[np.arange(batch), :, labels] += 3.0
        y = torch.zeros(batch, classes)
        y[np.arange(batch), labels] = 1.0
        draw_seed = 10_000 + step
        draws = torch.Generator().manual_seed(draw_seed)  # what our hooks will draw
        lam = sample_interpolation_weight(1.0, draws)
        permutation = torch.randperm(batch, generator=draws)
        eql_draws = torch.rand((batch, classes), generator=torch.Generator().manual_seed(draw_seed))
        stacked = batch // 2  # --ratio 0.5
        stack_partners = torch.randperm(stacked, generator=torch.Generator().manual_seed(draw_seed))

        context.generator = torch.Generator().manual_seed(draw_seed)
        context.state = {"class_ap": class_ap.clone()} if stacking else {}
        ours.train()
        torch.manual_seed(step)
        batch_data = Batch(x, y, torch.arange(batch), torch.full((batch,), -1))
        our_loss = train_step(ours, method, batch_data, context, our_optimizer, 20.0)
        our_grads = {n: p.grad.clone() for n, p in ours.named_parameters()}

        for module in theirs.values():
            module.train()
        torch.manual_seed(step)
        inputs, target = x, y
        randperm, rand = torch.randperm, torch.rand
        try:  # hand our draws to their code
            torch.randperm = lambda *a, _p=stack_partners, **k: _p.clone()
            if stacking:
                mixed_x, mixed_y = their_augment.FrameStack(x[:stacked], y[:stacked], 60, class_ap)
                inputs, target = (
                    torch.cat([mixed_x, x[stacked:]]),
                    torch.cat([mixed_y, y[stacked:]]),
                )
            v_feature = theirs["codebook"](inputs).unsqueeze(1)
            q_feature, _ = theirs["attention"](inputs, inputs, inputs)
            z = torch.cat([v_feature, q_feature], dim=2)
            torch.randperm = lambda *a, _p=permutation, **k: _p.clone()
            torch.rand = lambda *a, _d=eql_draws, **k: _d.clone()
            if variant == "mixup_agg":
                z, target = their_augment.mixup(z, y, lam)
            _, output = theirs["classifier"](z)
            their_loss = criterion(output, target)
        finally:
            torch.randperm, torch.rand = randperm, rand
        if stacking:  # the running-AP forward of the unstacked batch (train mode, no grad)
            with torch.no_grad():
                v_feature = theirs["codebook"](x).unsqueeze(1)
                theirs["classifier"](torch.cat([v_feature, theirs["attention"](x, x, x)[0]], 2))
        their_loss.backward()
        torch.nn.utils.clip_grad_norm_(theirs["classifier"].parameters(), 20)
        their_grads = authors_grads(theirs)
        their_optimizer.step()
        their_optimizer.zero_grad()
        worst = max(
            float((our_grads[n] - their_grads[n]).norm() / their_grads[n].norm().clamp(min=1e-30))
            for n in their_grads
        )
        lines.append(
            f"step {step}: loss ours {our_loss:.7f} authors {their_loss.item():.7f} "
            f"(rel. diff {abs(our_loss - their_loss.item()) / abs(their_loss.item()):.1e}); "
            f"largest relative gradient difference {worst:.1e}"
        )
    ours.eval()
    for module in theirs.values():
        module.eval()
    x = torch.from_numpy(data.normal(size=(2 * classes, 150, 2048)).astype(np.float32))
    with torch.no_grad():
        our_logits = ours(x)
        z = torch.cat([theirs["codebook"](x).unsqueeze(1), theirs["attention"](x, x, x)[0]], 2)
        their_logits = theirs["classifier"](z)[1]
    gap = (our_logits - their_logits).abs().max(dim=0).values
    lines.append(
        f"test logits after {steps} steps: largest difference {float(gap.max()):.1e} "
        f"(per class: {' '.join(f'{g:.0e}' for g in gap.tolist())}; logits' scale "
        f"{float(their_logits.abs().max()):.2f})"
    )
    return lines


# MOVE's scripts: variant -> (folder of the script's modules, our dfs_scope)
MOVE_SCRIPTS = {"move": ("VideoLT", "per_sample"),
                "move_kinetics": ("Imbalanced-MiniKinetics200", "first_sample")}  # fmt: skip


def dfs_draws(masks, first_only: bool) -> list:
    """Our DFS masks as the sequence of ``random.randint`` / ``random.sample`` results the
    authors' dynamic aggregators ask for, in their order: the codebook's (``NetVLAD_Dynamic_
    Aggregator`` runs first) two kept subsets per video, then PSA's two query subsets and its
    hidden key subset per video. ``first_only``: video 0 only (the MiniKinetics script)."""
    import torch

    def subset(mask) -> list:
        return [int(i) for i in torch.nonzero(mask).flatten()]

    videos = range(1 if first_only else len(masks.query))
    draws: list = []
    for i in videos:
        for view in range(2):
            kept = subset(masks.codebook[i, view])
            draws += [len(kept), kept]
    for i in videos:
        for view in range(2):
            kept = subset(masks.query[i, view])
            draws += [len(kept), kept]
        hidden = subset(1 - masks.key[i])
        draws += [len(hidden), hidden]
    return draws


def compare_move_steps(move_code: Path, variant: str, steps: int, batch: int, classes: int,
                       seed: int, frames: int = 60, clusters: int = 64) -> list[str]:  # fmt: skip
    """``steps`` MOVE steps of the authors' ``MOVE.py`` (or ``MOVE_kinetics.py``) pieces
    (``NonlinearClassifier``, ``NetVLAD_Dynamic_Aggregator``, ``MultiHeadAttention_Dynamic_
    Aggregator``, ``Augment.dynamic_extrapolation`` / ``calibrated_interpolation``, their BCE) and
    of ``move``'s ``train_step`` (no clipping) from the same weights, on the same batches, with
    the same dropout masks and our DFS subsets, omega, lambda and partners handed to their
    ``random`` / ``np.random.beta`` / ``torch.randperm`` calls; then both models' test logits.
    Full size by default (2048-d, 64 clusters, 60 frames: their PSA's key mask is built for 60);
    other ``frames`` / ``clusters`` need a checkout patched to match (``prepare_authors_code``)."""
    import argparse as argparse_module
    import random
    import types as types_module

    import torch

    from move.datasets.synthetic import long_tailed_counts
    from move.training import vicinity
    from move.training.context import Batch, RunContext
    from move.training.loop import train_step
    from move.training.methods import resolve_settings
    from move.training.methods.move import dfs_masks
    from move.training.model import VideoClassifier
    from move.training.vicinity import tail_weighted_criterion

    folder, scope = MOVE_SCRIPTS[variant]
    use_authors_code(move_code / folder)
    from models import models as their_models  # the authors' modules
    from ops import Augment as their_augment
    from ops import losses as their_losses

    counts = np.array(long_tailed_counts(classes, 150, 0.05))
    run = RunSpec(epochs=1, batch_size=batch, frames_train=frames, clusters=clusters)
    values = our_settings("move", run, seed)
    values = dataclasses_replace_method(values, dfs_scope=scope)
    method, settings = resolve_settings(values)
    torch.manual_seed(seed)
    ours = VideoClassifier(classes, settings.model)
    theirs = {
        "classifier": their_models.NonlinearClassifier(3072, classes),
        "codebook": their_models.NetVLAD_Dynamic_Aggregator(2048, classes),
        "attention": their_models.MultiHeadAttention_Dynamic_Aggregator(4, 2048, 512, 512, 0.1),
    }
    if theirs["codebook"].vlad.cluster_size != clusters:
        raise SystemExit(
            f"{move_code}: {theirs['codebook'].vlad.cluster_size} clusters, not "
            f"{clusters}: give the copy the harness patched (<work>/MOVE-clusters…)"
        )
    for module, state in authors_state(ours.state_dict(), psa_first=True).items():
        theirs[module].load_state_dict(state)
    their_params = [
        p for m in ("classifier", "codebook", "attention") for p in theirs[m].parameters()
    ]
    our_optimizer = torch.optim.Adam(ours.parameters(), lr=1e-4)
    their_optimizer = torch.optim.Adam(their_params, lr=1e-4)
    options = method.options(settings.method_settings)
    tau = tail_weighted_criterion(torch.from_numpy(counts))
    context = RunContext(settings, method, options, tau, counts, epoch=0)
    # MOVE.py's load_data: min-max normalised frequencies, their DFS bound and label factor
    share = counts / counts.sum()
    share = (share - share.min()) / (share.max() - share.min())
    sampling_prob = np.maximum(share * frames, options.lower_bound)
    smooth_factor = torch.FloatTensor(1 - share + options.calib_bias)
    criterion = their_losses.BCELoss(argparse_module.Namespace(), logits=True, reduce="mean")
    data = np.random.default_rng(seed)
    lines = []
    for step in range(steps):
        labels = data.choice(classes, size=batch, p=counts / counts.sum())
        x = torch.from_numpy(data.normal(size=(batch, frames, 2048)).astype(np.float32))
        x[np.arange(batch), :, labels] += 3.0
        y = torch.zeros(batch, classes)
        y[np.arange(batch), labels] = 1.0
        draw_seed = 10_000 + step
        replay = types_module.SimpleNamespace(
            options=options, tau=tau, generator=torch.Generator().manual_seed(draw_seed)
        )  # what move_transform will draw, in its order
        masks = dfs_masks(y, frames, replay)
        omega = vicinity.sample_extrapolation_weight(options.extrapolation_alpha, replay.generator)
        lam = vicinity.sample_interpolation_weight(options.interpolation_alpha, replay.generator)
        permutation = torch.randperm(batch, generator=replay.generator)

        context.generator = torch.Generator().manual_seed(draw_seed)
        ours.train()
        torch.manual_seed(step)
        batch_data = Batch(x, y, torch.arange(batch), torch.full((batch,), -1))
        our_loss = train_step(ours, method, batch_data, context, our_optimizer, None)
        our_grads = {
            n: torch.zeros_like(p) if p.grad is None else p.grad.clone()
            for n, p in ours.named_parameters()
        }

        for module in theirs.values():
            module.train()
        torch.manual_seed(step)
        queue = dfs_draws(masks, first_only=scope == "first_sample")
        weights = [float(omega) - 1.0, float(lam)]  # their Beta(2, 2) (+ 1 there), Beta(1, 1)
        saved = random.randint, random.sample, np.random.beta, torch.randperm
        try:  # hand our draws to their code
            random.randint = lambda *a, _q=queue, **k: _q.pop(0)
            random.sample = lambda *a, _q=queue, **k: _q.pop(0)
            np.random.beta = lambda *a, _w=weights, **k: _w.pop(0)
            torch.randperm = lambda *a, _p=permutation, **k: _p.clone()
            if scope == "first_sample":
                label = torch.from_numpy(labels)  # the MiniKinetics loader's int labels
            else:
                label = [str(int(c)) for c in labels]  # VideoLT's '<c>[,<c>...]' strings
            v1, v2 = theirs["codebook"](x, sampling_prob, label=label, train=True)
            q, _ = theirs["attention"](x, x, x, sampling_prob, label=label, train=True)
            z1, z2 = torch.cat([q[:, 0], v1], dim=1), torch.cat([q[:, 1], v2], dim=1)
            extrapolated = their_augment.dynamic_extrapolation(z1, z2)
            mixed, target = their_augment.calibrated_interpolation(
                extrapolated, extrapolated, y, smooth_factor
            )
            _, output = theirs["classifier"](mixed)
            their_loss = criterion(output, target)
        finally:
            random.randint, random.sample, np.random.beta, torch.randperm = saved
        if queue or weights:
            raise RuntimeError(f"draws not taken by the authors' code: {len(queue)} DFS, {weights}")
        their_loss.backward()
        their_grads = authors_grads(theirs, psa_first=True)
        their_optimizer.step()
        their_optimizer.zero_grad()
        worst = max(
            float((our_grads[n] - their_grads[n]).norm() / their_grads[n].norm().clamp(min=1e-30))
            for n in their_grads
            if their_grads[n].norm() > 0
        )
        unused = [n for n in their_grads if their_grads[n].norm() == 0]
        only_ours = [n for n in unused if our_grads[n].norm() > 0]
        both = [n for n in unused if n not in only_ours]
        lines.append(
            f"step {step}: loss ours {our_loss:.7f} authors {their_loss.item():.7f} "
            f"(rel. diff {abs(our_loss - their_loss.item()) / abs(their_loss.item()):.1e}); "
            f"largest relative gradient difference {worst:.1e}"
            + (f"; no gradient on either side: {', '.join(both)}" if both else "")
            + (f"; A GRADIENT ONLY OURS HAS: {', '.join(only_ours)}" if only_ours else "")
        )
    ours.eval()
    for module in theirs.values():
        module.eval()
    x = torch.from_numpy(data.normal(size=(2 * classes, 150, 2048)).astype(np.float32))
    with torch.no_grad():
        our_logits = ours(x)
        q, _ = theirs["attention"](x, x, x, train=False)
        z = torch.cat([q, theirs["codebook"](x, train=False).unsqueeze(1)], dim=2)
        their_logits = theirs["classifier"](z)[1]
    gap = (our_logits - their_logits).abs().max(dim=0).values
    lines.append(
        f"test logits after {steps} steps: largest difference {float(gap.max()):.1e} "
        f"(logits' scale {float(their_logits.abs().max()):.2f})"
    )
    return lines


def dataclasses_replace_method(settings, **method_settings):
    """``settings`` with some of its method's own settings replaced."""
    import dataclasses

    merged = dict(settings.method_settings or {}) | method_settings
    return dataclasses.replace(settings, method_settings=merged)


def use_authors_code(folder: Path) -> None:
    """Import the authors' top-level packages (``models``, ``ops``...) from ``folder``, on CPU."""
    import torch

    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.nn.Module.cuda = lambda self, *a, **k: self
    for name in [
        n for n in sys.modules if n.split(".")[0] in ("models", "ops", "dataset", "tools")
    ]:
        del sys.modules[name]
    sys.path.insert(0, str(folder))


def compare_framestack_steps(videolt_code: Path, steps: int, batch: int, classes: int,
                             seed: int) -> list[str]:  # fmt: skip
    """``steps`` FrameStack steps of ``dy_main.py``'s pieces (``NonlinearClassifier``,
    ``Augment.FrameStack``, ``FocalLoss``, clipping at 20) and of ``move``'s ``train_step``
    (framestack, no aggregators) from the same weights, batches, per-class AP, partners and
    dropout masks; then the test logits, and the per-class AP of the authors' ``APMeter`` against
    ours on the same scores."""
    import argparse as argparse_module

    import torch

    from move.datasets.synthetic import long_tailed_counts
    from move.training.context import Batch, RunContext
    from move.training.loop import train_step
    from move.training.methods import resolve_settings
    from move.training.metrics import per_class_average_precision
    from move.training.model import VideoClassifier
    from move.training.vicinity import tail_weighted_criterion

    use_authors_code(videolt_code)
    from models import models as their_models  # the authors' modules
    from ops import Augment as their_augment
    from ops import losses as their_losses
    from ops.apmeter import APMeter

    counts = np.array(long_tailed_counts(classes, 150, 0.05))
    run = RunSpec(epochs=2, batch_size=batch, frames_train=60)
    method, settings = resolve_settings(our_settings("framestack", run, seed))
    torch.manual_seed(seed)
    ours = VideoClassifier(classes, settings.model)
    theirs = their_models.NonlinearClassifier(2048, classes)
    theirs.load_state_dict(
        {
            "fc1.weight": ours.classifier[0].weight.detach().clone(),
            "fc1.bias": ours.classifier[0].bias.detach().clone(),
            "project.weight": ours.classifier[3].weight.detach().clone(),
            "project.bias": ours.classifier[3].bias.detach().clone(),
        }
    )
    our_optimizer = torch.optim.Adam(ours.parameters(), lr=1e-4)
    their_optimizer = torch.optim.Adam(theirs.parameters(), lr=1e-4)
    options = method.options(settings.method_settings)
    tau = tail_weighted_criterion(torch.from_numpy(counts))
    context = RunContext(settings, method, options, tau, counts, epoch=1)
    criterion = their_losses.FocalLoss(argparse_module.Namespace(alpha=1, gamma=1), logits=True)
    data = np.random.default_rng(seed)
    class_ap = torch.from_numpy(data.random(classes).astype(np.float32))
    lines = []
    for step in range(steps):
        labels = data.choice(classes, size=batch, p=counts / counts.sum())
        x = torch.from_numpy(data.normal(size=(batch, 60, 2048)).astype(np.float32))
        x[np.arange(batch), :, labels] += 3.0
        y = torch.zeros(batch, classes)
        y[np.arange(batch), labels] = 1.0
        stacked = int(batch * options.share)
        draw_seed = 10_000 + step
        permutation = torch.randperm(stacked, generator=torch.Generator().manual_seed(draw_seed))
        context.generator = torch.Generator().manual_seed(draw_seed)
        context.state = {"class_ap": class_ap.clone()}
        ours.train()
        torch.manual_seed(step)
        batch_data = Batch(x, y, torch.arange(batch), torch.full((batch,), -1))
        our_loss = train_step(ours, method, batch_data, context, our_optimizer, 20.0)
        our_grads = [p.grad.clone() for p in ours.classifier.parameters()]

        theirs.train()
        torch.manual_seed(step)
        randperm = torch.randperm
        try:  # hand our partners to their code
            torch.randperm = lambda *a, _p=permutation, **k: _p.clone()
            mixed_x, mixed_y = their_augment.FrameStack(x[:stacked], y[:stacked], 60, class_ap)
        finally:
            torch.randperm = randperm
        _, output = theirs(torch.cat([mixed_x, x[stacked:]]))
        their_loss = criterion(output, torch.cat([mixed_y, y[stacked:]]))
        with torch.no_grad():
            theirs(x)  # dy_main's running-AP forward (draws dropout as ours does)
        their_loss.backward()
        torch.nn.utils.clip_grad_norm_(theirs.parameters(), 20)
        their_grads = [p.grad.clone() for p in theirs.parameters()]
        their_optimizer.step()
        their_optimizer.zero_grad()
        worst = max(
            float((o - t).norm() / t.norm().clamp(min=1e-30))
            for o, t in zip(our_grads, their_grads, strict=True)
        )
        lines.append(
            f"step {step}: loss ours {our_loss:.7f} authors {their_loss.item():.7f} "
            f"(rel. diff {abs(our_loss - their_loss.item()) / abs(their_loss.item()):.1e}); "
            f"largest relative gradient difference {worst:.1e}"
        )
    ours.eval()
    theirs.eval()
    x = torch.from_numpy(data.normal(size=(2 * classes, 150, 2048)).astype(np.float32))
    with torch.no_grad():
        gap = (ours(x) - theirs(x)[1]).abs().max()
    lines.append(f"test logits after {steps} steps: largest difference {float(gap):.1e}")
    scores = data.random((200, classes)).astype(np.float32)
    targets = (data.random((200, classes)) < 0.2).astype(np.int64)
    meter = APMeter()
    meter.add(torch.from_numpy(scores), torch.from_numpy(targets))
    ap_gap = np.abs(meter.value().numpy() - per_class_average_precision(scores, targets)).max()
    lines.append(
        f"per-class AP, their APMeter vs ours (untied scores): largest difference {ap_gap:.1e}"
    )  # noqa: E501
    return lines


def authors_grads(theirs: dict, psa_first: bool = False) -> dict:
    """The authors' gradients under our parameter names (the classifier's columns swapped back
    unless ``psa_first``); a parameter without a gradient (their BatchNorm before MOVE's masked
    codebook views) as zeros."""
    import torch

    grads = {}
    for name, (module, their_name) in WEIGHT_NAMES.items():
        grad = dict(theirs[module].named_parameters())[their_name].grad.clone()
        if name == "classifier.0.weight" and not psa_first:
            grad = torch.cat([grad[:, 1024:], grad[:, :1024]], dim=1)
        if name == "codebook.project.weight":
            clusters = theirs["codebook"].vlad.cluster_size
            grad = grad.view(len(grad), -1, clusters).transpose(1, 2).reshape(len(grad), -1)
        grads[name] = grad
    for name, theirs_name in BATCH_NORMS.items():
        for part in ("weight", "bias"):
            parameter = dict(theirs["codebook"].named_parameters())[f"{theirs_name}.{part}"]
            grad = parameter.grad
            grads[f"{name}.{part}"] = torch.zeros_like(parameter) if grad is None else grad.clone()
    return grads


# ---------------------------------------------------------------------------------------------


def one_run(side: str, variant: str, seed: int, args, code: dict, data: Path, run: RunSpec):
    """One (side, variant, seed) run, cached as ``<work>/runs/<side>/<variant>/seed<k>.json``."""
    cache = args.work / "runs" / side / variant / f"seed{seed}.json"
    if cache.is_file():
        return side, variant, seed, json.loads(cache.read_text())
    folder = cache.with_suffix("")
    tick = time.perf_counter()
    if side == "ours":  # a process of its own: torch's global RNG is per process
        result = run_ours_process(data, folder, variant, run, seed)
    else:
        which = AUTHORS_SCRIPTS[variant][0]
        result = run_authors(code[which], data, folder, variant, run, seed)
    result = {str(k): v for k, v in result.items()}
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(result))
    print(f"{side:7} {variant:13} seed {seed}: {time.perf_counter() - tick:.0f} s", flush=True)
    return side, variant, seed, result


def collect(runs: list) -> dict:
    """``{variant: {side: {epoch: {metric: [per seed]}}}}``."""
    table: dict = {}
    for side, variant, _, result in runs:
        for epoch, metrics in result.items():
            cell = table.setdefault(variant, {}).setdefault(side, {}).setdefault(int(epoch), {})
            for metric, value in metrics.items():
                if value is not None:
                    cell.setdefault(metric, []).append(value)
    return table


def main(argv: list[str] | None = None) -> None:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["drive"]:
        return drive(argv[1], argv[2], argv[3:])
    if argv[:1] == ["steps"]:
        steps = argparse.ArgumentParser(description="step-by-step comparison (base_main_Agg.py)")
        steps.add_argument("--move-code", type=Path, help="for the *_agg variants")
        steps.add_argument("--videolt-code", type=Path, help="for framestack (dy_main.py)")
        steps.add_argument("--work", type=Path, required=True)
        steps.add_argument(
            "--variants", nargs="+", default=["plain_agg", "cb_loss_agg", "mixup_agg"]
        )
        steps.add_argument("--steps", type=int, default=3)
        steps.add_argument("--batch", type=int, default=8)
        steps.add_argument("--classes", type=int, default=10)
        steps.add_argument("--epoch", type=int, default=0, help="LDAM-DRW: >= 50 re-weights")
        steps.add_argument("--seed", type=int, default=0)
        steps.add_argument("--frames", type=int, default=60, help="MOVE: train frames")
        steps.add_argument("--clusters", type=int, default=64, help="MOVE: NetVLAGD's clusters")
        a = steps.parse_args(argv[1:])
        for variant in a.variants:
            print(f"{variant}:")
            if variant == "framestack":
                lines = compare_framestack_steps(
                    a.videolt_code.resolve(), a.steps, a.batch, a.classes, a.seed
                )
            elif variant in MOVE_SCRIPTS:
                lines = compare_move_steps(a.move_code.resolve(), variant, a.steps, a.batch,
                                           a.classes, a.seed, a.frames, a.clusters)  # fmt: skip
            else:
                lines = compare_steps(a.move_code.resolve(), variant, a.steps, a.batch,
                                      a.classes, a.epoch, a.seed, a.work)  # fmt: skip
            print("\n".join(f"  {line}" for line in lines), flush=True)
        return None
    if argv[:1] == ["ours"]:
        import torch

        torch.set_num_threads(1)
        spec = json.loads(sys.stdin.read())
        run = RunSpec(**(spec | {"lr_steps": tuple(spec["lr_steps"])}))
        print(json.dumps(run_ours(Path(argv[1]), Path(argv[2]), argv[3], run, int(argv[4]))))
        return None
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--move-code", type=Path, help="checkout of github wjun0830/MOVE")
    parser.add_argument("--videolt-code", type=Path, help="checkout of github 17Skye17/VideoLT")
    parser.add_argument("--work", type=Path, required=True, help="scratch folder (set, runs)")
    parser.add_argument("--variants", nargs="+", default=["plain_agg"], choices=AUTHORS_SCRIPTS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--sides", nargs="+", default=["authors", "ours"])
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (1 thread each)")
    for field, default in asdict(SetSpec()).items():
        parser.add_argument(f"--set-{field.replace('_', '-')}", type=type(default), default=default)
    for field, default in asdict(RunSpec()).items():
        kind = int if field == "lr_steps" else type(default)
        nargs = "+" if field == "lr_steps" else None
        parser.add_argument(f"--{field.replace('_', '-')}", type=kind, nargs=nargs, default=default)
    args = parser.parse_args(argv)
    args.work = args.work.resolve()  # the authors' scripts run in folders of their own
    spec = SetSpec(**{f: getattr(args, f"set_{f}") for f in asdict(SetSpec())})
    run = RunSpec(**{f: getattr(args, f) for f in asdict(RunSpec())})
    run = RunSpec(**(asdict(run) | {"lr_steps": tuple(run.lr_steps)}))
    import torch

    torch.set_num_threads(1)
    data = make_set(args.work / "set", spec)
    code, patches = {}, []
    for which, path in (("move", args.move_code), ("videolt", args.videolt_code)):
        if path is not None:
            code[which], applied = prepare_authors_code(
                path.resolve(), args.work, run.clusters, run.frames_train
            )
            patches += applied
    needed = {AUTHORS_SCRIPTS[v][0] for v in args.variants} if "authors" in args.sides else set()
    if needed - set(code):
        parser.error(f"give --{'/--'.join(sorted(needed - set(code)))}-code for these variants")
    jobs = [(s, v, k) for v in args.variants for k in args.seeds for s in args.sides]
    with ThreadPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(lambda j: one_run(*j, args, code, data, run), jobs))
    print(f"\nset {asdict(spec)}\nrun {asdict(run)}\npatches {patches or 'none'}\n")
    for variant, sides in collect(runs).items():
        print(format_table(variant, sides.get("authors", {}), sides.get("ours", {})) + "\n")


if __name__ == "__main__":
    main()
