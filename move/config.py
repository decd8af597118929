"""The workflow's one configuration: validation against the schema and per-dataset settings.

Reads ``config.yaml`` (or a dict Snakemake loaded) and ``workflow/schemas/config.schema.yaml``.
A wrong key or value raises ``MoveError`` with one line naming the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml

from move.errors import MoveError
from move.training.methods import (
    get_method,
    method_names,
    registered,
    variant_names,
    variant_of,
    variant_settings,
)
from move.training.registry import settings_schema
from move.validation import check_batch_size, describe_error

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    """The config JSON schema (YAML on disk), its method parts generated from the registry.

    ``train.method`` and ``table.methods`` list what ``move.training.methods`` holds, and each
    method's settings section (``train.<method>``) is generated from its settings dataclass, so
    a registered method is valid in the config without editing the schema.
    """
    schema = yaml.safe_load(Path(path).read_text())
    train = schema["$defs"]["train"]["properties"]
    train["method"]["enum"] = list(method_names())
    for name in method_names():
        method = get_method(name)
        train[name] = settings_schema(method.settings, f"settings of {method.display}")
    schema["properties"]["table"]["properties"]["methods"]["items"]["enum"] = list(variant_names())
    rows = schema["properties"]["paper_table"]["properties"]["rows"]["oneOf"][1]
    rows["items"]["enum"] = list(variant_names())
    _fill_backbones(schema)
    return schema


def _fill_backbones(schema: dict) -> None:
    """Every backbone key and list of the schema from ``move.extraction.backbones``: a named
    backbone or ``<prefix>:<model>`` of a family; ``extract.weights`` and a dataset's
    ``features`` take a key per named backbone (weights defaulting to its named weights) and
    per family pattern."""
    from move.extraction.backbones import backbone_names, backbone_schema, get_backbone

    name = backbone_schema()
    families = [rule["pattern"] for rule in name.get("anyOf", [])[1:]]
    dataset = schema["properties"]["datasets"]["additionalProperties"]["properties"]
    schema["$defs"]["backbones"]["items"] = name
    for rule in (
        schema["properties"]["backbone"],
        dataset["backbone"],
        dataset["ablation_backbone"],
    ):
        rule.update(name)
    weights = schema["$defs"]["extract"]["properties"]["weights"]
    weights["properties"] = {
        b: {"type": "string", "default": get_backbone(b).default_weights()}
        for b in backbone_names()
    }
    weights["patternProperties"] = {pattern: {"type": "string"} for pattern in families}
    features = dataset["features"]
    features["properties"] = {b: {"$ref": "#/$defs/path_or_null"} for b in backbone_names()}
    features["patternProperties"] = {p: {"$ref": "#/$defs/path_or_null"} for p in families}


_TEXT_PARSERS = {
    "integer": int,
    "number": float,
    "boolean": {"true": True, "false": False}.__getitem__,
}


def _parse_text(text: str, types: list[str]):
    """``text`` as the first of the schema's ``types`` it reads as, or ``None``."""
    for kind in ("integer", "number", "boolean"):
        if kind in types:
            try:
                return _TEXT_PARSERS[kind](text.strip().lower() if kind == "boolean" else text)
            except (KeyError, ValueError):
                continue
    return None


def _text_type_errors(errors):
    """The type errors of ``errors`` and of their ``oneOf``/``anyOf`` branches, depth first."""
    for error in errors:
        if error.validator == "type" and isinstance(error.instance, str):
            yield error
        yield from _text_type_errors(error.context or [])


def coerce_command_line_values(config: dict, schema: dict | None = None) -> dict:
    """Turn numbers and booleans that arrive as text where the schema asks for one into that
    type, in place; returns ``config``.

    Snakemake's ``--config`` reads a value's lists and mappings with YAML's base loader, so
    ``seeds=[0, 1, 2]`` arrives as ``['0', '1', '2']`` and ``train={epochs: 5}`` as
    ``{'epochs': '5'}``; config.yaml read by Snakemake keeps its types and is left as it is.
    Text that does not read as the type is left for validation to refuse, naming the key.
    """
    validator = jsonschema.Draft202012Validator(schema or load_schema())
    for _ in range(1000):  # each pass fixes at least one value; a config has fewer
        changed = False
        for error in _text_type_errors(validator.iter_errors(config)):
            types = error.validator_value
            value = _parse_text(error.instance, [types] if isinstance(types, str) else types)
            path = list(error.absolute_path)
            if value is None or not path:
                continue
            parent = config
            for part in path[:-1]:
                parent = parent[part]
            if parent[path[-1]] == error.instance:
                parent[path[-1]] = value
                changed = True
        if not changed:
            return config
    return config


def validate_config(config: dict, schema: dict | None = None, source: str = "config") -> None:
    """Raise ``MoveError`` naming the first invalid key (the one deepest in the tree)."""
    validator = jsonschema.Draft202012Validator(schema or load_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise MoveError(f"{source}: {describe_error(error)}")
    try:
        check_consistency(config)
    except MoveError as error:
        raise MoveError(f"{source}: {error}") from None


def _shipped_schema() -> dict:
    """The shipped schema, read once per set of registered methods (tests register more)."""
    return _schema_for_methods(method_names())


@functools.lru_cache(maxsize=4)
def _schema_for_methods(methods: tuple[str, ...]) -> dict:
    return load_schema()


def check_settings(values: dict, section: str, noun: str) -> None:
    """Refuse a stage's settings given outside config (``--settings``, ``--frames``) that the
    schema's ``$defs/<section>`` would refuse, naming the allowed range.

    Keys the section does not define (and object-valued ones but the methods' sections) are left
    to the caller; ``seed`` is checked as the top-level key.
    """
    schema = _shipped_schema()
    properties = {
        key: rule
        for key, rule in schema["$defs"][section]["properties"].items()
        if rule.get("type") != "object" or key in registered()
    }
    properties["seed"] = schema["properties"]["seed"]
    known = {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in values.items()
        if key in properties
    }
    validator = jsonschema.Draft202012Validator(
        {"$defs": schema["$defs"], "properties": properties}
    )
    error = jsonschema.exceptions.best_match(validator.iter_errors(known))
    if error is not None:
        raise MoveError(describe_error(error, noun))


def _uses_aggregators(train: dict, config: dict) -> bool:
    """Whether a dataset's training or one of its table's methods runs the aggregators."""
    methods = (config.get("table") or {}).get("methods") or variant_names()
    in_table = any(variant_settings(m)["aggregators"] for m in methods if m in variant_names())
    method = train.get("method", "move")
    needs = method in variant_names() and get_method(method).needs_aggregators
    return bool(train.get("aggregators", True)) or needs or in_table


def check_consistency(config: dict) -> None:
    """Rules across keys that the schema cannot state, each one line naming the key and range:
    head_min > tail_max, imbalance ratios that leave the tail classes a video, and the batch
    size the aggregators need."""
    datasets = config.get("datasets", {})
    videolt = config.get("videolt") or {}
    groups = [(f"datasets.{name}", entry["groups"]) for name, entry in datasets.items()]
    for key, group in groups + ([("videolt", videolt["groups"])] if "groups" in videolt else []):
        if group["head_min"] <= group["tail_max"]:
            raise MoveError(
                f"config key '{key}.groups': head_min ({group['head_min']}) must be greater than "
                f"tail_max ({group['tail_max']}); head is count >= head_min, tail <= tail_max"
            )
    for name, entry in datasets.items():
        ratios = [("imbalance_ratios", r) for r in entry["imbalance_ratios"]]
        for key, ratio in ratios + [("table_ir", entry.get("table_ir", 1))]:
            if math.floor(entry["max_per_class"] * ratio) < 1:
                raise MoveError(
                    f"config key 'datasets.{name}.{key}': {ratio} leaves the tail classes "
                    f"floor(max_per_class x {ratio}) = 0 videos: use ratios of at least "
                    f"1/max_per_class = {1 / entry['max_per_class']:.4g}"
                )
    trains = [(f"datasets.{name}.train", entry.get("train")) for name, entry in datasets.items()]
    for key, own in trains + [("videolt.train", videolt.get("train"))]:
        train = {**config.get("train", {}), **(own or {})}
        if "batch_size" in train:
            where = key if "batch_size" in (own or {}) else "train"
            name = f"config key '{where}.batch_size'"
            check_batch_size(train["batch_size"], _uses_aggregators(train, config), name)


def load_config(path: str | Path) -> dict:
    """Read and validate a config file."""
    path = Path(path)
    if not path.is_file():
        raise MoveError(f"config file {path} not found")
    config = yaml.safe_load(path.read_text()) or {}
    validate_config(config, source=str(path))
    return config


def dataset_config(config: dict, dataset: str) -> dict:
    """The entry of ``dataset`` under ``datasets``, or a one-line error listing the known ones."""
    datasets = config.get("datasets", {})
    if dataset not in datasets:
        raise MoveError(
            f"dataset '{dataset}' is not in config key 'datasets' (known: {', '.join(sorted(datasets))})"
        )
    return datasets[dataset]


def stage_settings(config: dict, dataset: str, stage: str) -> dict:
    """Global ``config[stage]`` updated with ``datasets.<dataset>.<stage>`` (dataset wins)."""
    merged = dict(config.get(stage, {}))
    merged.update(dataset_config(config, dataset).get(stage, {}) or {})
    return merged


def required_path(config: dict, dataset: str, key: str) -> str:
    """A dataset's input path; unset (null) stops with the config key to set. The videos of a
    dataset fetched from the Kinetics mirror (``kinetics_mirror``, no ``videos``) are
    ``mirror_videos(dataset)``."""
    entry = dataset_config(config, dataset)
    value = entry.get(key)
    if not value and key == "videos" and (entry.get("kinetics_mirror") or {}).get("path_lists"):
        return mirror_videos(dataset)
    if not value:
        hint = (
            "point it at your video folder, or set kinetics_mirror.path_lists to fetch them"
            if key == "videos"
            else f"point it at your {key} file"
        )
        raise MoveError(
            f"config key 'datasets.{dataset}.{key}' is not set: {hint} (edit config.yaml or "
            "pass --config)"
        )
    return str(value)


def mirror_videos(dataset: str) -> str:
    """The folder rule fetch_kinetics fills with a dataset's videos from the Kinetics mirror."""
    return f"data/{dataset}/kinetics_videos"


def extract_weights(config: dict, dataset: str, backbone: str) -> str:
    """The weights a dataset's extraction uses for ``backbone``; random ones only when allowed.

    ``datasets.<d>.extract.weights.<backbone>``, else ``extract.weights.<backbone>``, else the
    backbone's named weights (``imagenet``, ``kinetics``). ``none`` (random init: features that
    mean nothing) stops with one line unless ``allow_random_weights`` is true (the demo sets it).
    """
    from move.extraction.weights import default_weights, is_random

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


def kinetics_trained(backbone: str, weights: str) -> bool:
    """Whether ``weights`` of ``backbone`` (a name, or a named weight's URL) were trained on
    Kinetics-400: what the registry entry's named weights say they were trained on
    (``NamedWeights.trained_on``), whatever the backbone or weights are called."""
    from move.extraction.backbones import get_backbone
    from move.extraction.registry import KINETICS_400

    try:
        entry = get_backbone(backbone)
    except MoveError:
        return False
    return entry.trained_on(weights) == KINETICS_400


def is_kinetics_subset(config: dict, dataset: str) -> bool:
    """Whether a dataset's videos are Kinetics-400's: Imbalanced-MiniKinetics200
    (``minikinetics``) or any dataset whose classes come from Kinetics CSVs."""
    entry = dataset_config(config, dataset)
    return dataset == "minikinetics" or bool(entry.get("kinetics_annotations"))


def cached_weights_source(config: dict, file_name: str) -> tuple[str, str]:
    """(backbone, name or URL) of the configured weights downloaded as ``file_name`` (rule
    fetch_weights): the named weights of every backbone and every URL in any extract section."""
    from move.extraction.weights import (
        NAMED_WEIGHTS,
        default_weights,
        weights_cache_dir,
        weights_file,
        weights_url,
    )

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


def check_config_command(args) -> str:
    """``move check-config``: validate a config file against the schema."""
    load_config(args.config)
    return f"{args.config}: valid"


def with_defaults(instance, schema: dict, root: dict):
    """``instance`` (a config or a part of it) with every ``default`` its schema declares filled
    in where the key is absent, recursively (objects, ``additionalProperties`` maps, ``$ref``)."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        schema = {**root["$defs"][name], **{k: v for k, v in schema.items() if k != "$ref"}}
    if not isinstance(instance, dict):
        return instance
    filled = dict(instance)
    for key, rule in schema.get("properties", {}).items():
        if key not in filled and "default" in rule:
            filled[key] = rule["default"]
        if key in filled:
            filled[key] = with_defaults(filled[key], rule, root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in set(filled) - set(schema.get("properties", {})):
            filled[key] = with_defaults(filled[key], extra, root)
    return filled


@dataclass(frozen=True)
class DatasetSettings:
    """One dataset's effective settings: the schema's defaults applied once, the global
    ``extract`` / ``train`` sections under its own, the global backbone where it names none."""

    name: str
    videos: str | None
    annotations: str | None
    imbalance_ratios: tuple[float, ...]
    max_per_class: int
    groups: dict
    backbone: str
    backbones: tuple[str, ...]
    ablation_backbone: str
    table_ir: float
    max_missing_share: float
    lists: dict
    kinetics_annotations: tuple[str, ...]
    class_order: str | None
    extract: dict
    train: dict
    npy_features: dict  # backbone -> folder of per-video .npy features (instead of videos)
    kinetics_mirror: dict  # the mirror's path lists etc. (rule fetch_kinetics), {} when unset

    @property
    def split_features(self) -> str:
        """The feature file its splits read: the first of ``backbones``, whichever backbone is
        configured, so every backbone trains on one split and switching ``backbone`` rebuilds
        no split (and retrains nothing of the other backbone)."""
        return f"features/{self.name}/{self.backbones[0]}.h5"


@dataclass(frozen=True)
class Resolved:
    """The workflow's configuration as the rules read it (``resolve``)."""

    seed: int
    seeds: tuple[int, ...]
    selection: str
    datasets: dict[str, DatasetSettings]
    table_methods: tuple[str, ...]
    paper_rows: str | tuple[str, ...]
    videolt: dict
    videolt_train: dict
    demo: dict


def resolve(config: dict) -> Resolved:
    """A validated config with the schema's defaults applied once, per dataset (what every rule
    reads: no rule restates a default)."""
    config = with_defaults(config, _shipped_schema(), _shipped_schema())
    datasets = {}
    for name, entry in config.get("datasets", {}).items():
        sources = entry.get("kinetics_annotations") or []
        backbone = entry.get("backbone", config["backbone"])
        backbones = tuple(entry.get("backbones") or config.get("backbones") or [backbone])
        datasets[name] = DatasetSettings(
            name=name,
            videos=entry.get("videos"),
            annotations=entry.get("annotations"),
            imbalance_ratios=tuple(entry["imbalance_ratios"]),
            max_per_class=entry["max_per_class"],
            groups=dict(entry["groups"]),
            backbone=backbone,
            backbones=backbones,
            ablation_backbone=entry.get("ablation_backbone")
            or ("resnet101" if "resnet101" in backbones else backbone),
            table_ir=entry.get("table_ir", entry["imbalance_ratios"][0]),
            max_missing_share=entry["max_missing_share"],
            lists=dict(entry.get("lists") or {}),
            kinetics_annotations=(sources,) if isinstance(sources, str) else tuple(sources),
            class_order=entry.get("class_order"),
            extract=stage_settings(config, name, "extract"),
            train=stage_settings(config, name, "train"),
            npy_features={b: f for b, f in (entry.get("features") or {}).items() if f},
            kinetics_mirror=dict(entry.get("kinetics_mirror") or {}),
        )
    videolt = config.get("videolt") or {}
    seeds = tuple(config.get("seeds") or [config.get("seed", 0)])
    paper_rows = (config.get("paper_table") or {}).get("rows", "paper")
    return Resolved(
        seed=config.get("seed", seeds[0]),
        seeds=seeds,
        selection=config["split"]["selection"],
        datasets=datasets,
        table_methods=tuple((config.get("table") or {}).get("methods") or variant_names()),
        paper_rows=paper_rows if isinstance(paper_rows, str) else tuple(paper_rows),
        videolt=videolt,
        videolt_train={**config.get("train", {}), **(videolt.get("train") or {})},
        demo=config.get("demo", {}),
    )


VIDEOLT = "videolt"
ABLATION_PREFIX = "ablation_"


@dataclass(frozen=True)
class RunSettings:
    """What one training run of the workflow reads: a dataset's features of one backbone at one
    imbalance ratio (``<dataset>/<backbone>/ir<IR>``), or VideoLT's of one backbone
    (``videolt/<backbone>``): rule train's ``{run}``, trained once per variant and seed."""

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
        return f"results/{self.name}/{variant}/seed{seed}{suffix}"


def run_name(dataset: str, backbone: str, ratio: float | str | None = None) -> str:
    """``demo/resnet50/ir0.1`` (a dataset at an IR) or ``videolt/resnet50`` (VideoLT)."""
    return f"{dataset}/{backbone}" if ratio is None else f"{dataset}/{backbone}/ir{ratio}"


def run_settings(resolved: Resolved, name: str) -> RunSettings:
    """The settings of run ``name`` (``demo/resnet50/ir0.1``, ``videolt/resnet50``)."""
    parts = name.split("/")
    if len(parts) == 2 and parts[0] == VIDEOLT:
        backbone = parts[1]
        return RunSettings(
            name, VIDEOLT, backbone, None, f"features/videolt/{backbone}.h5",
            resolved.videolt_train, resolved.videolt["groups"], f"splits/videolt_{backbone}.csv",
        )  # fmt: skip
    if len(parts) != 3 or not parts[2].startswith("ir"):
        raise MoveError(
            f"run '{name}' is neither <dataset>/<backbone>/ir<IR> nor videolt/<backbone>"
        )
    dataset, backbone, ratio = parts[0], parts[1], parts[2].removeprefix("ir")
    if dataset not in resolved.datasets:
        raise MoveError(f"run '{name}': dataset '{dataset}' is not configured")
    entry = resolved.datasets[dataset]
    drawn = "_seed{seed}" if resolved.selection == "random" else ""
    return RunSettings(
        name, dataset, backbone, float(ratio), f"features/{dataset}/{backbone}.h5",
        entry.train, entry.groups, f"splits/{dataset}_ir{ratio}{drawn}.csv",
    )  # fmt: skip


def main_run(resolved: Resolved, short: str) -> RunSettings:
    """The run behind a short target name (``demo_ir0.1``, ``videolt_resnet50``): the dataset's
    configured backbone at that IR, or VideoLT's features of that backbone."""
    if short.startswith(VIDEOLT + "_"):
        return run_settings(resolved, run_name(VIDEOLT, short.removeprefix(VIDEOLT + "_")))
    dataset, _, ratio = short.rpartition("_ir")
    if dataset not in resolved.datasets:
        raise MoveError(f"run '{short}': dataset '{dataset}' is not configured")
    return run_settings(resolved, run_name(dataset, resolved.datasets[dataset].backbone, ratio))


def variant_train_settings(train: dict, variant: str) -> dict:
    """A run's train settings for one variant: a table variant (``cb_loss_agg``) or a row of
    Table 4 (``ablation_b``), the method's own section filled with its defaults and the other
    methods' sections left out (editing MOVE's settings retrains no baseline)."""
    values = dict(train)
    if variant.startswith(ABLATION_PREFIX):
        from move.training.settings import ABLATION_ROWS

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
    return {key: value for key, value in values.items() if key not in others}


def ablation_variants(train: dict) -> dict[str, str]:
    """Table 4's rows (a)-(g) as the variants that train them: a row whose settings equal a table
    variant's (e.g. (d) is ``plain_agg``, (g) ``move``) is that variant's run, never a second
    training; the others are ``ablation_<row>``."""
    from move.training.settings import ABLATION_ROWS

    table = {variant: variant_train_settings(train, variant) for variant in variant_names()}
    rows = {}
    for row in ABLATION_ROWS:
        settings = variant_train_settings(train, ABLATION_PREFIX + row)
        same = [variant for variant, values in table.items() if values == settings]
        rows[row] = same[0] if same else ABLATION_PREFIX + row
    return rows
