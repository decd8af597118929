"""What a dataset's jobs read, planned above the stages: the authors' list behind each fetched
file, the Kinetics-400 CSVs, a release's folders, and the seed drawing a split. Each unset key is
a one-line ``MoveError`` naming ``datasets.<name>.<key>`` and the fix.

``workflow/rules/common.smk`` adapts these to Snakemake's input and params functions.
"""

from __future__ import annotations

from move import layout
from move.errors import MoveError
from move.planning import DatasetSettings, Resolved


def unset(dataset: str, key: str, fix: str) -> MoveError:
    """The one-line error of a config key a job needs and the config leaves unset."""
    return MoveError(f"config key 'datasets.{dataset}.{key}' is not set: {fix}")


def list_source(entry: DatasetSettings, name: str) -> str:
    """The URL or path behind ``data/<d>/lists/<name>``: ``train.txt`` / ``val.txt`` (the
    authors' lists) or ``kinetics<i>.csv`` (the i-th Kinetics-400 annotations CSV)."""
    stem = name.split(".")[0]
    if stem.startswith("kinetics"):
        key, index = "kinetics_annotations", int(stem.removeprefix("kinetics"))
        sources = entry.kinetics_annotations
        source = sources[index] if index < len(sources) else None
    else:
        key, source = f"lists.{stem}", entry.lists.get(stem)
    if not source:
        raise unset(entry.name, key, "give the URL or path of the authors' file")
    return source


def list_sha256_option(entry: DatasetSettings, name: str) -> str:
    """``--sha256 <hex>`` when ``datasets.<d>.lists.sha256.<stem>`` pins the list, else ''."""
    pinned = (entry.lists.get("sha256") or {}).get(name.split(".")[0])
    return f"--sha256 {pinned}" if pinned else ""


def kinetics_list_files(entry: DatasetSettings) -> list[str]:
    """The fetched copies of a dataset's Kinetics-400 CSVs (``data/<d>/lists/kinetics<i>.csv``)."""
    if not entry.kinetics_annotations:
        raise unset(
            entry.name,
            "kinetics_annotations",
            "point it at the Kinetics-400 annotation CSV(s) (URL or path)",
        )
    count = len(entry.kinetics_annotations)
    return [layout.KINETICS_LIST.format(dataset=entry.name, index=i) for i in range(count)]


def list_split_files(resolved: Resolved) -> list[str]:
    """The split of every IR from the lists alone, of each dataset with the authors' lists."""
    return [
        layout.SPLIT.format(lists="lists/", dataset=name, ir=ir, drawn="")
        for name, entry in resolved.datasets.items()
        if entry.lists
        for ir in entry.imbalance_ratios
    ]


def split_seed(resolved: Resolved, dataset: str, ratio: str, drawn: str) -> int:
    """The seed drawing a split: ``_seed<k>`` in its name (``split.selection: random``), else
    the configured seed (unused by the authors' ``first`` selection, which draws nothing)."""
    if not drawn:
        return resolved.seed if resolved.selection == "random" else 0
    if resolved.selection != "random":
        split = layout.fill(layout.SPLIT, lists="", dataset=dataset, ir=ratio)
        raise MoveError(
            f"{split.format(drawn=drawn)}: splits per seed exist only with split.selection: "
            f"random (the `first` one is the same for every seed: {split.format(drawn='')})"
        )
    return int(drawn.removeprefix("_seed"))


def release_features_folder(entry: DatasetSettings, backbone: str) -> str:
    """The folder of a released dataset's per-video .npy features of ``backbone``."""
    folder = (entry.release.get("features") or {}).get(backbone)
    if not folder:
        raise unset(
            entry.name,
            f"features.{backbone}",
            "point it at the folder of the released .npy features for that backbone",
        )
    return folder


def release_labels_folder(entry: DatasetSettings) -> str:
    """A released dataset's label folder (VideoLT: train.lst, test.lst, count-labels-train.lst)."""
    if not entry.release.get("labels"):
        raise unset(entry.name, "labels", "point it at the release's label folder")
    return entry.release["labels"]
