"""MOVE and the baselines of Tables 1-3, one file each, the long-tail baselines since (logit
adjustment, decoupling, weight balancing: the extended table), and the registry's queries.

Importing this package registers the built-in methods (it imports their files, as timm's
``models/__init__`` imports its families), then the methods other installed packages declare in
the entry-point group ``move.methods`` (an entry point names a module that registers its method
on import, or a ``Method``). Every list of methods (config schema, CLI help, tables) reads the
queries below. Adding a method is one file here, or one module and an entry point elsewhere:
see README's "Adding a method".

Each follows the authors' script of that method (VideoLT ``base_main.py`` /
``base_main_Agg.py`` / ``MOVE.py``, the Framestack scripts): every baseline clips the classifier's
gradient norm at 20 (their ``--gd 20``), MOVE clips nothing. No torch at import.
"""

from __future__ import annotations

import dataclasses

from move.config import register_schema_part
from move.errors import MoveError
from move.plugins import loaded_entry_points
from move.training.methods import (  # noqa: F401  (each registers its method)
    cb_loss,
    cbs,
    decoupling,
    eql,
    framestack,
    ldam_drw,
    logit_adjustment,
    mixup,
    move,
    plain,
    weight_balancing,
)
from move.training.registry import Method, register_method, registered
from move.training.settings import TrainSettings

ENTRY_POINT_GROUP = "move.methods"
# The paper's row order (Tables 1-3); methods registered elsewhere follow, as they registered.
PAPER_ORDER = ("plain", "ldam_drw", "eql", "cbs", "cb_loss", "mixup", "framestack", "move")
# The extended table's rows after the paper's: the long-tail baselines since 2020, in this order.
EXTENDED_ORDER = (
    "logit_adjusted_loss", "logit_adjustment_post_hoc", "crt", "tau_norm", "lws", "weight_balancing"
)  # fmt: skip


def _load_entry_points() -> None:
    """Register the methods of other packages (group ``move.methods``); a broken one stops with
    one line naming it."""
    for entry, loaded in loaded_entry_points(ENTRY_POINT_GROUP, "method"):
        if isinstance(loaded, Method) and loaded.name not in registered():
            register_method(loaded, module=entry.module)


_load_entry_points()


def _in_order() -> list[Method]:
    """The registered methods, the built-in ones in the paper's order first."""
    rank = {name: i for i, name in enumerate(PAPER_ORDER + EXTENDED_ORDER)}
    names = sorted(registered(), key=lambda name: rank.get(name, len(rank)))  # stable
    return [registered()[name] for name in names]


def extended_variants() -> tuple[str, ...]:
    """The variants of the long-tail baselines since 2020 (the extended table's added rows)."""
    return tuple(v for name in EXTENDED_ORDER for v in get_method(name).variants())


def method_names() -> tuple[str, ...]:
    """Every registered method: the built-in ones in the paper's order, then the others."""
    return tuple(method.name for method in _in_order())


def get_method(name: str) -> Method:
    """The registered method ``name``; unknown -> ``MoveError`` listing the choices."""
    if name not in registered():
        raise MoveError(f"unknown method '{name}': choose one of {', '.join(method_names())}")
    return registered()[name]


def variant_names() -> tuple[str, ...]:
    """Every table variant: ``<method>`` / ``<method>_agg`` of each method (MOVE: ``move`` only)."""
    return tuple(v for method in _in_order() for v in method.variants())


def variant_settings(variant: str) -> dict:
    """``'cb_loss_agg'`` -> ``{'method': 'cb_loss', 'aggregators': True}``; unknown -> MoveError."""
    for method in _in_order():
        if variant in method.variants():
            aggregators = method.needs_aggregators or variant.endswith("_agg")
            return {"method": method.name, "aggregators": aggregators}
    raise MoveError(f"unknown method variant '{variant}': choose from {', '.join(variant_names())}")


def variant_of(method: str, aggregators: bool) -> str:
    """The table variant a run belongs to: ``cb_loss`` + aggregators -> ``cb_loss_agg``."""
    return get_method(method).variant(aggregators)


def resolve_settings(settings: TrainSettings) -> tuple[Method, TrainSettings]:
    """The run's method, resolved once, and ``settings`` with every setting of that method filled
    in (what results and checkpoints record); refuses what the method cannot run."""
    method = get_method(settings.method)
    if method.needs_aggregators and not settings.aggregators:
        raise MoveError(f"method '{method.name}' needs aggregators: set train.aggregators to true")
    options = dataclasses.asdict(method.options(settings.method_settings))
    return method, dataclasses.replace(settings, method_settings=options)


def train_settings(values: dict) -> TrainSettings:
    """TrainSettings from a config's train section, the method's own section filled in."""
    return resolve_settings(TrainSettings.from_dict(values))[1]


def fill_schema(schema: dict) -> dict:
    """The config schema's method parts from this registry, in place (returns ``schema``).

    ``train.method`` lists the methods and each method's settings section (``train.<method>``)
    is generated from its settings dataclass; ``table.methods`` and ``paper_table.rows`` list
    the variants; ``$defs.aggregator_variants`` / ``$defs.aggregator_methods`` name the variants
    that run the aggregators and the methods that need them (the batch-size rule of
    ``move.config.check_consistency`` reads them). The shipped schema holds these parts for the
    built-in methods (``move docs`` writes them); planning fills them again for methods
    registered since (entry points, tests).
    """
    from move.training.registry import settings_schema

    train = schema["$defs"]["train"]["properties"]
    for stale in set(train["method"].get("enum", [])) - set(method_names()):
        train.pop(stale, None)  # the section of a method no longer registered
    train["method"]["enum"] = list(method_names())
    for name in method_names():  # a section keeps its place in the file (the settings' order)
        method = get_method(name)
        train[name] = settings_schema(method.settings, f"settings of {method.display}")
    schema["properties"]["table"]["properties"]["methods"]["items"]["enum"] = list(variant_names())
    rows = schema["properties"]["paper_table"]["properties"]["rows"]["oneOf"][1]
    rows["items"]["enum"] = list(variant_names())
    aggregators = [v for v in variant_names() if variant_settings(v)["aggregators"]]
    schema["$defs"]["aggregator_variants"] = {"enum": aggregators}
    needing = [name for name in method_names() if get_method(name).needs_aggregators]
    schema["$defs"]["aggregator_methods"] = {"enum": needing}
    return schema


register_schema_part("methods", fill_schema, method_names)
