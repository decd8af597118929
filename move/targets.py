"""The workflow's targets checked at planning: a file asked for names a configured dataset, a known
backbone (of the registry, ``move.extraction.backbones``) and an imbalance ratio in (0, 1] written the one way rules write it, or the run stops
before any job with one line naming the problem and the fix.

Reads only the target paths and the config (``snakemake -n`` calls it; no torch).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from move.datasets.sources import dataset_source
from move.errors import MoveError
from move.extraction.backbones import backbone_pattern, backbones_help
from move.reporting.table_declarations import tables


def table_patterns() -> list[str]:
    """The declared tables' files (``move.reporting.registry``): those only a dataset with
    imbalance ratios has (``table``), then the others."""
    own, other = [], []
    for table in tables().values():
        names = [
            re.escape(path.removeprefix("results/{d}_")) for path in table.outputs("{d}").values()
        ]
        (own if table.needs_imbalance_ratios else other).extend(names)
    return [
        rf"^results/(?P<d>[^/_]+)_(?P<table>{'|'.join(own) or '(?!)'})$",
        rf"^results/(?P<d>[^/_]+)_({'|'.join(other) or '(?!)'})$",
    ]


def target_patterns() -> list[re.Pattern]:
    """Target paths that name a dataset (d), an imbalance ratio (ir) or a backbone (b); the
    tables' as registered now."""
    return [
        re.compile(p)
        for p in (
            r"^results/(?P<d>[^/_]+)_ir(?P<ir>[^/]*?)\.(json|per_class\.csv)$",
            *table_patterns(),
            r"^results/(?P<d>[^/_]+)_(?P<short>[^/.]+)\.(json|per_class\.csv)$",
            r"^results/(?P<d>[^/_]+)/(?P<b>[^/]+)(/ir(?P<ir>[^/]*))?/[^/]+/seed\d+\.(json|per_class\.csv|pt)$",
            r"^features/(?P<d>[^/]+)/(?P<b>[^/.]+)(\.shard\d+of\d+)?(\.failures\.csv|\.h5)$",
            r"^splits/(lists/)?(?P<d>[^/_]+)_ir(?P<ir>[^/]*?)(_seed\d+)?(\.class_counts)?\.csv$",
            r"^splits/(?P<d>[^/_]+)_missing\.csv$",
            r"^figures/(?P<d>[^/_]+)(_ir(?P<ir>[^/]*))?/[^/]+$",
        )
    ]


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
