"""Run planning, above the stages: the configuration as the rules read it (``resolve``: the
schema's defaults applied once, per dataset), run names and result paths (``RunSettings``), the
variants a table trains and Table 4's rows (``variant_train_settings``, ``ablation_variants``),
and the weights each extraction uses (with the Kinetics leak guard).

The Snakefile's ``common.smk`` reads these; no stage imports this module.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from move import layout
from move.config import dataset_config, load_schema, section_keys, stage_settings, with_defaults
from move.datasets.sources import DataSource, source_of, with_source_defaults
from move.errors import MoveError
from move.extraction.backbones import kinetics_trained
from move.extraction.weights import (
    NAMED_WEIGHTS,
    default_weights,
    is_random,
    weights_cache_dir,
    weights_file,
    weights_url,
)
from move.training.methods import (
    get_method,
    method_names,
    variant_names,
    variant_of,
    variant_settings,
)
from move.training.settings import ABLATION_ROWS


def extract_weights(config: dict, dataset: str, backbone: str) -> str:
    """The weights a dataset's extraction uses for ``backbone``; random ones only when allowed.

    ``datasets.<d>.extract.weights.<backbone>``, else ``extract.weights.<backbone>``, else the
    backbone's named weights (``imagenet``, ``kinetics``). ``none`` (random init: features that
    mean nothing) stops with one line unless ``allow_random_weights`` is true (the demo sets it).
    """
    settings = stage_settings(config, dataset, "extract")
    own = (dataset_config(config, dataset).get("extract") or {}).get("weights")
    prefix = f"datasets.{dataset}.extract" if own is not None else "extract"
    value = (settings.get("weights") or {}).get(backbone) or default_weights(backbone)
    if is_random(value) and not settings.get("allow_random_weights", False):
        raise MoveError(
            f"config key '{prefix}.weights.{backbone}' is 'none': a randomly initialised "
            f"{backbone} gives meaningless features; use {default_weights(backbone)} or a "
            f"checkpoint, or set datasets.{dataset}.extract.allow_random_weights: true"
        )
    if kinetics_trained(backbone, str(value)) and is_kinetics_subset(config, dataset):
        if not settings.get("allow_kinetics_trained_weights", False):
            raise MoveError(
                f"{backbone} '{value}' weights were trained on Kinetics-400's labelled train "
                f"videos, which hold every train video of dataset '{dataset}' (a Kinetics "
                "subset) with its label: its long tail would vanish and the numbers mean "
                "nothing (the paper uses ImageNet ResNets here); use resnet50/resnet101, or set "
                f"datasets.{dataset}.extract.allow_kinetics_trained_weights: true to study it"
            )
    return str(value)


def is_kinetics_subset(config: dict, dataset: str) -> bool:
    """Whether a dataset's videos are Kinetics-400's: Imbalanced-MiniKinetics200
    (``minikinetics``) or any dataset whose classes come from Kinetics CSVs."""
    entry = dataset_config(config, dataset)
    return dataset == "minikinetics" or bool(entry.get("kinetics_annotations"))


def cached_weights_source(config: dict, file_name: str) -> tuple[str, str]:
    """(backbone, name or URL) of the configured weights downloaded as ``file_name`` (rule
    fetch_weights): the named weights of every backbone and every URL in any extract section."""
    candidates = [(backbone, name) for backbone, names in NAMED_WEIGHTS.items() for name in names]
    configured = [config.get("backbone"), *(config.get("backbones") or [])]
    for dataset, entry in config.get("datasets", {}).items():
        candidates += (stage_settings(config, dataset, "extract").get("weights") or {}).items()
        configured += [entry.get("backbone"), *(entry.get("backbones") or [])]
    candidates += [(b, default_weights(b)) for b in configured if b and ":" in b]  # families
    for backbone, weights in candidates:
        try:
            path = weights_file(backbone, weights) if weights_url(backbone, weights) else None
        except MoveError:  # a bad entry elsewhere in config: its own job reports it
            continue
        if path == weights_cache_dir() / file_name:
            return backbone, weights
    raise MoveError(f"no configured weights are downloaded as {file_name}: check extract.weights")


def in_schema_order(values: dict, section: str) -> dict:
    """``values`` (a stage's settings) with the keys of the schema's ``$defs.<section>`` first,
    in the schema's order, then the others as given: a planned command's settings read the same
    whether config.yaml states a key or leaves it to its default, and wherever it states it."""
    known = [key for key in section_keys(section) if key in values]
    return {key: values[key] for key in known} | {
        key: value for key, value in values.items() if key not in known
    }


@dataclass(frozen=True)
class DatasetSettings:
    """One dataset's effective settings: the schema's defaults applied once (and its data
    source's: ``move.datasets.sources``), the global ``extract`` / ``train`` sections under its
    own, the global backbone where it names none. A dataset with its own split (``source`` with
    no imbalance ratios) has no ratios, ``max_per_class`` 0 and no ``table_ir``."""

    name: str
    source: DataSource
    videos: str | None
    annotations: str | None
    imbalance_ratios: tuple[float, ...]
    max_per_class: int
    groups: dict
    backbone: str
    backbones: tuple[str, ...]
    ablation_backbone: str
    table_ir: float | None
    max_missing_share: float
    lists: dict
    kinetics_annotations: tuple[str, ...]
    class_order: str | None
    extract: dict
    train: dict
    npy_features: dict  # backbone -> folder of per-video .npy features (rule npy_features)
    kinetics_mirror: dict  # the mirror's path lists etc. (rule fetch_kinetics), {} when unset
    # what the source's own conversion reads (rule videolt_features: features folders per backbone,
    # labels, test_list, dtype), {} for a source whose features rule npy_features converts
    release: dict

    @property
    def split_features(self) -> str:
        """The feature file its splits read: the first of ``backbones``, whichever backbone is
        configured, so every backbone trains on one split and switching ``backbone`` rebuilds
        no split (and retrains nothing of the other backbone)."""
        return layout.FEATURES.format(dataset=self.name, backbone=self.backbones[0])


@dataclass(frozen=True)
class Resolved:
    """The workflow's configuration as the rules read it (``resolve``)."""

    seed: int
    seeds: tuple[int, ...]
    selection: str
    datasets: dict[str, DatasetSettings]
    table_methods: tuple[str, ...]
    paper_rows: str | tuple[str, ...]
    demo: dict


def merged(base: dict, own: dict | None) -> dict:
    """``base`` (a stage's top-level settings) with ``own`` (a dataset's) over it; a mapping
    (``weights``, a method's section) is merged key by key."""
    values = dict(base)
    for key, value in (own or {}).items():
        inner = values.get(key)
        both = isinstance(value, dict) and isinstance(inner, dict)
        values[key] = {**inner, **value} if both else value
    return values


def overridden(config: dict, raw: dict, dataset: str, stage: str) -> dict:
    """A dataset's settings of ``stage``: the top-level section of ``config`` (defaults filled)
    with the dataset's own section as written in ``raw`` (no defaults) over it."""
    own = ((raw.get("datasets") or {}).get(dataset) or {}).get(stage)
    return merged(config.get(stage) or {}, own)


def resolve(config: dict) -> Resolved:
    """A validated config with the schema's defaults applied once, per dataset (what every rule
    reads: no rule restates a default).

    The defaults fill the top-level ``extract`` / ``train`` sections; a dataset's own sections
    override those keys they state, and only those: a default never overrides a top-level value
    (``overridden``). A dataset's source fills the keys it leaves out with the source's defaults
    (VideoLT's groups and backbones for ``videolt_release``).
    """
    raw = config
    schema = load_schema()
    config = with_defaults(config, schema, schema)
    datasets = {}
    for name, entry in config.get("datasets", {}).items():
        entry = with_source_defaults(entry)
        source = source_of(entry)
        sources = entry.get("kinetics_annotations") or []
        backbone = entry.get("backbone", config["backbone"])
        backbones = tuple(entry.get("backbones") or config.get("backbones") or [backbone])
        ratios = tuple(entry.get("imbalance_ratios") or ())
        folders = {b: f for b, f in (entry.get("features") or {}).items() if f}
        datasets[name] = DatasetSettings(
            name=name,
            source=source,
            videos=entry.get("videos"),
            annotations=entry.get("annotations"),
            imbalance_ratios=ratios,
            max_per_class=entry.get("max_per_class", 0),
            groups=dict(entry["groups"]),
            backbone=backbone,
            backbones=backbones,
            ablation_backbone=entry.get("ablation_backbone")
            or ("resnet101" if "resnet101" in backbones else backbone),
            table_ir=entry.get("table_ir", ratios[0] if ratios else None),
            max_missing_share=entry["max_missing_share"],
            lists=dict(entry.get("lists") or {}),
            kinetics_annotations=(sources,) if isinstance(sources, str) else tuple(sources),
            class_order=entry.get("class_order"),
            extract=in_schema_order(overridden(config, raw, name, "extract"), "extract"),
            train=in_schema_order(overridden(config, raw, name, "train"), "train"),
            npy_features={} if source.converted_release else folders,
            kinetics_mirror=dict(entry.get("kinetics_mirror") or {}),
            release=(
                {key: entry.get(key) for key in source.config_keys}
                if source.converted_release
                else {}
            ),
        )
    seeds = tuple(config.get("seeds") or [config.get("seed", 0)])
    paper_rows = (config.get("paper_table") or {}).get("rows", "paper")
    return Resolved(
        seed=config.get("seed", seeds[0]),
        seeds=seeds,
        selection=config["split"]["selection"],
        datasets=datasets,
        table_methods=tuple((config.get("table") or {}).get("methods") or variant_names()),
        paper_rows=paper_rows if isinstance(paper_rows, str) else tuple(paper_rows),
        demo=config.get("demo", {}),
    )


def effective_config(config: dict) -> dict:
    """``config`` as the workflow runs it (``figures/config.yaml``): the schema's defaults filled
    in, and each dataset's ``extract`` / ``train`` the settings its jobs read (the top-level
    section with the dataset's own keys over it), so no default is left unsaid."""
    schema = load_schema()
    effective = with_defaults(config, schema, schema)
    settings = resolve(config)
    for name, entry in effective.get("datasets", {}).items():
        entry["extract"] = dict(settings.datasets[name].extract)
        entry["train"] = dict(settings.datasets[name].train)
    return effective


ABLATION_PREFIX = "ablation_"


@dataclass(frozen=True)
class RunSettings:
    """What one training run of the workflow reads: a dataset's features of one backbone at one
    imbalance ratio (``<dataset>/<backbone>/ir<IR>``), or of one backbone where the dataset comes
    with its own split (``videolt/<backbone>``): rule train's ``{run}``, trained once per variant
    and seed."""

    name: str
    dataset: str
    backbone: str
    imbalance_ratio: float | None
    features: str
    train: dict
    groups: dict
    split_pattern: str  # '{seed}' in it: a split drawn per seed (split.selection: random)

    @property
    def variant(self) -> str:
        """The configured method's table variant: the run's main result."""
        return variant_of(self.train.get("method", "move"), self.train.get("aggregators", True))

    @property
    def recorded(self) -> str:
        """``move train`` options recording what the run is (tables and plots read them)."""
        if self.imbalance_ratio is None:
            return f"--dataset {self.dataset}"
        return f"--dataset {self.dataset} --imbalance-ratio {self.imbalance_ratio}"

    def split(self, seed: int) -> str:
        """The split file the run reads with ``seed`` (one for every seed unless drawn per seed)."""
        return self.split_pattern.format(seed=seed)

    def result(self, variant: str, seed: int, suffix: str = ".json") -> str:
        """``results/<run>/<variant>/seed<k><suffix>``: the files of one variant and seed."""
        return layout.RUN_FILES.format(run=self.name, variant=variant, seed=seed) + suffix


def run_name(dataset: str, backbone: str, ratio: float | str | None = None) -> str:
    """``demo/resnet50/ir0.1`` (a dataset at an IR) or ``videolt/resnet50`` (a dataset with its
    own split)."""
    if ratio is None:
        return layout.OWN_SPLIT_RUN.format(dataset=dataset, backbone=backbone)
    return layout.RUN.format(dataset=dataset, backbone=backbone, ir=ratio)


def run_settings(resolved: Resolved, name: str) -> RunSettings:
    """The settings of run ``name`` (``demo/resnet50/ir0.1``, ``videolt/resnet50``)."""
    parts = name.split("/")
    entry = resolved.datasets.get(parts[0])
    if entry is not None and not entry.source.imbalance_ratios:
        if len(parts) != 2:
            raise MoveError(
                f"run '{name}': dataset '{entry.name}' comes with its own split (no imbalance "
                f"ratios): its runs are {entry.name}/<backbone>"
            )
        dataset, backbone = parts
        return RunSettings(
            name, dataset, backbone, None,
            layout.FEATURES.format(dataset=dataset, backbone=backbone), entry.train, entry.groups,
            layout.OWN_SPLIT.format(dataset=dataset, backbone=backbone),
        )  # fmt: skip
    if len(parts) != 3 or not parts[2].startswith("ir"):
        raise MoveError(
            f"run '{name}' is neither <dataset>/<backbone>/ir<IR> nor <dataset>/<backbone> (a "
            "dataset with its own split)"
        )
    dataset, backbone, ratio = parts[0], parts[1], parts[2].removeprefix("ir")
    if entry is None:
        raise MoveError(f"run '{name}': dataset '{dataset}' is not configured")
    drawn = "_seed{seed}" if resolved.selection == "random" else ""  # formatted by split()
    split = layout.SPLIT.format(lists="", dataset=dataset, ir=ratio, drawn=drawn)
    return RunSettings(
        name, dataset, backbone, float(ratio),
        layout.FEATURES.format(dataset=dataset, backbone=backbone), entry.train, entry.groups,
        split,
    )  # fmt: skip


def main_run(resolved: Resolved, short: str) -> RunSettings:
    """The run behind a short target name (``demo_ir0.1``, ``videolt_resnet50``): the dataset's
    configured backbone at that IR, or, for a dataset with its own split, its features of that
    backbone."""
    dataset, _, rest = short.partition("_")  # a dataset's name has no underscore
    entry = resolved.datasets.get(dataset)
    if entry is None:
        raise MoveError(f"run '{short}': dataset '{dataset}' is not configured")
    if not entry.source.imbalance_ratios:
        return run_settings(resolved, run_name(dataset, rest))
    return run_settings(resolved, run_name(dataset, entry.backbone, rest.removeprefix("ir")))


def variant_train_settings(train: dict, variant: str) -> dict:
    """A run's train settings for one variant: a table variant (``cb_loss_agg``) or a row of
    Table 4 (``ablation_b``), the method's own section filled with its defaults and the other
    methods' sections left out (editing MOVE's settings retrains no baseline)."""
    values = dict(train)
    if variant.startswith(ABLATION_PREFIX):
        row = variant.removeprefix(ABLATION_PREFIX)
        if row not in ABLATION_ROWS:
            raise MoveError(
                f"unknown ablation row '{row}' in variant '{variant}': choose from "
                f"{', '.join(ABLATION_ROWS)}"
            )
        for key, value in ABLATION_ROWS[row].items():
            values[key] = {**(values.get(key) or {}), **value} if isinstance(value, dict) else value
    else:
        values.update(variant_settings(variant))
    method = get_method(values["method"])
    values[method.name] = dataclasses.asdict(method.options(values.get(method.name)))
    others = set(method_names()) - {method.name}
    return in_schema_order({k: v for k, v in values.items() if k not in others}, "train")


def ablation_variants(train: dict) -> dict[str, str]:
    """Table 4's rows (a)-(g) as the variants that train them: a row whose settings equal a table
    variant's (e.g. (d) is ``plain_agg``, (g) ``move``) is that variant's run, never a second
    training; the others are ``ablation_<row>``."""
    table = {variant: variant_train_settings(train, variant) for variant in variant_names()}
    rows = {}
    for row in ABLATION_ROWS:
        settings = variant_train_settings(train, ABLATION_PREFIX + row)
        same = [variant for variant, values in table.items() if values == settings]
        rows[row] = same[0] if same else ABLATION_PREFIX + row
    return rows
