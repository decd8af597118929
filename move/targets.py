"""The workflow's targets checked at planning: a file asked for names a configured dataset, a known
backbone (of the registry, ``move.extraction.backbones``) and an imbalance ratio in (0, 1] written the one way rules write it, or the run stops
before any job with one line naming the problem and the fix.

Reads only the target paths and the config (``snakemake -n`` calls it; no torch).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from move import layout
from move.datasets.sources import dataset_source
from move.errors import MoveError
from move.extraction.backbones import backbone_pattern, backbones_help
from move.reporting.table_declarations import tables

# How a target's parts are read (named groups: d the dataset, ir its IR, b the backbone).
DATASET = r"(?P<d>[^/_]+)"
RATIO = r"(?P<ir>[^/]*?)"
BACKBONE = r"(?P<b>[^/.]+)"


def table_patterns() -> list[str]:
    """The declared tables' files (``move.reporting.registry``); a table only a dataset with
    imbalance ratios has names itself in the group ``table``."""
    patterns = []
    for table in tables().values():
        name = re.escape(table.name)
        formats = "|".join(map(re.escape, table.outputs("-")))
        patterns.append(
            layout.regex(
                layout.TABLE,
                dataset=DATASET,
                table=f"(?P<table>{name})" if table.needs_imbalance_ratios else name,
                format=f"(?:{formats})",
            )
        )
    return patterns


def target_patterns() -> list[re.Pattern]:
    """Target paths that name a dataset (d), an imbalance ratio (ir) or a backbone (b), from the
    file layout (``move.layout``) and the tables as registered now; the first that matches is
    read."""
    short = layout.regex(layout.SHORT, False, dataset=DATASET, ir=RATIO)
    own_short = layout.regex(
        layout.OWN_SPLIT_SHORT, False, dataset=DATASET, backbone="(?P<short>[^/.]+)"
    )
    run = layout.regex(
        layout.RUN, False, dataset=DATASET, backbone="(?P<b>[^/]+)", ir="(?P<ir>[^/]*)"
    )
    own_run = layout.regex(layout.OWN_SPLIT_RUN, False, dataset=DATASET, backbone="(?P<b>[^/]+)")
    run_files = (layout.RESULT, layout.RESULT_PER_CLASS, layout.CHECKPOINT)
    features = (
        layout.FEATURES, layout.FEATURE_FAILURES, layout.FEATURE_SHARD, layout.FEATURE_SHARD_FAILURES
    )  # fmt: skip
    split = {"lists": "(?:lists/)?", "dataset": DATASET, "ir": RATIO, "drawn": r"(?:_seed\d+)?"}
    any_file = "/[^/]+$"
    patterns = [
        *(layout.regex(path, short=short) for path in (layout.MAIN_RESULT, layout.MAIN_PER_CLASS)),
        *table_patterns(),
        *(
            layout.regex(path, short=own_short)
            for path in (layout.MAIN_RESULT, layout.MAIN_PER_CLASS)
        ),
        *(layout.regex(path, run=run, seed=r"\d+") for path in run_files),
        *(layout.regex(path, run=own_run, seed=r"\d+") for path in run_files),
        *(
            layout.regex(path, dataset="(?P<d>[^/]+)", backbone=BACKBONE, i=r"\d+", n=r"\d+")
            for path in features
        ),
        *(layout.regex(path, **split) for path in (layout.SPLIT, layout.SPLIT_CLASS_COUNTS)),
        layout.regex(layout.MISSING, dataset=DATASET),
        "^"
        + layout.regex(layout.IR_FIGURES, False, dataset=DATASET, ir="(?P<ir>[^/]*)")
        + any_file,
        "^" + layout.regex(layout.FIGURES, False, dataset=DATASET) + any_file,
    ]
    return [re.compile(pattern) for pattern in patterns]


def canonical_ratio(text: str) -> str:
    """The one spelling of an imbalance ratio the rules use: Python's shortest float text
    (``0.10`` -> ``0.1``, ``1e-2`` -> ``0.01``)."""
    return repr(float(text))


def check_ratio(text: str, target: str) -> None:
    """An IR in a target: a number in (0, 1], written canonically."""
    try:
        value = float(text)
    except ValueError:
        raise MoveError(f"target {target}: imbalance ratio '{text}' is not a number") from None
    if not 0 < value <= 1:
        raise MoveError(
            f"target {target}: imbalance ratio {text} is outside (0, 1]; the paper's are 0.01, "
            "0.02, 0.05 and 0.1"
        )
    if canonical_ratio(text) != text:
        fixed = target.replace(f"ir{text}", f"ir{canonical_ratio(text)}")
        raise MoveError(
            f"target {target}: write the imbalance ratio as {canonical_ratio(text)} ({fixed}); "
            "another spelling would train the same run again under another name"
        )


def check_target(target: str, config: dict) -> None:
    """Refuse a target naming an unknown dataset or backbone, or a bad imbalance ratio."""
    datasets = sorted(config.get("datasets", {}))
    for pattern in target_patterns():
        match = pattern.match(target)
        if match is None:
            continue
        fields = match.groupdict()
        dataset, ratio, backbone = fields.get("d"), fields.get("ir"), fields.get("b")
        source = None if dataset is None else dataset_source(config, dataset)
        if source is not None and not source.imbalance_ratios:
            backbone = fields.get("short", backbone)
            if ratio is not None or fields.get("table"):
                own = sorted(config["datasets"][dataset].get("features") or {})
                own_tables = [
                    table.outputs(dataset)["md"]
                    for table in tables().values()
                    if not table.needs_imbalance_ratios
                ]
                raise MoveError(
                    f"target {target}: {dataset} comes with its own split, no imbalance ratios; "
                    f"its results are results/{dataset}_<backbone>.json (backbones: "
                    f"{', '.join(own)}) and {', '.join(own_tables)}"
                )
        elif target.startswith("results/") and (backbone or fields.get("short")) and ratio is None:
            raise MoveError(
                f"target {target}: a run of {dataset} names its imbalance ratio: "
                f"results/{dataset}/<backbone>/ir<IR>/<variant>/seed<k>.json"
            )
        if dataset is not None and dataset not in datasets:
            raise MoveError(
                f"target {target}: dataset '{dataset}' is not configured (config key 'datasets' "
                f"has {', '.join(datasets)}): add it to config.yaml or fix the name"
            )
        if backbone is not None and not re.match(backbone_pattern(), backbone):
            raise MoveError(
                f"target {target}: unknown backbone '{backbone}' (choose one of {backbones_help()})"
            )
        if ratio is not None:
            check_ratio(ratio, target)
        return


def check_targets(targets: Iterable[str], config: dict) -> None:
    """``check_target`` on each word that has the shape of a target path (rule names, options and
    other paths match no pattern and pass: Snakemake checks those)."""
    for target in targets:
        check_target(str(target), config)
