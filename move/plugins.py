"""Plugins of other installed packages: the objects their entry points name, loaded once.

Methods (group ``move.methods``) and backbones (group ``move.backbones``) are found this way; the
registries decide what a loaded object registers. A plugin that cannot be imported stops the run
with one line naming its entry point, not a traceback from inside another package.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from move.errors import MoveError


def loaded_entry_points(group: str, kind: str) -> Iterator[tuple[EntryPoint, Any]]:
    """Each entry point of ``group`` with the object it names (``kind`` words the error)."""
    for entry in entry_points(group=group):
        try:
            loaded = entry.load()
        except Exception as error:
            raise MoveError(
                f"{kind} entry point '{entry.name} = {entry.value}' (group {group}) cannot be "
                f"loaded ({type(error).__name__}: {error}): fix or uninstall its package"
            ) from None
        yield entry, loaded
