"""A local store's folder: creating it beside its path, deleting it, what killed runs leave.

A store is built in ``.NAME.creating-<id>`` and renamed into place; it is deleted
by first renaming it to ``.NAME.deleting-<id>``. Either rename is atomic, so a kill
leaves the store whole (or absent) plus a hidden folder that the next run, holding
the store's lock, removes along with ``*.partial`` chunk files.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

__all__ = [
    "building_path",
    "delete_local_store",
    "looks_like_store_remnant",
    "remove_leftovers",
    "remove_partial_files",
]

_HIDDEN_KINDS = ("creating", "deleting")


def _hidden(store: str, kind: str, token: str) -> str:
    final = Path(store)
    return str(final.with_name(f".{final.name}.{kind}-{token}"))


def building_path(store: str, store_id: str) -> str:
    """Where a new local store is built before it is renamed to ``store``."""
    return _hidden(store, "creating", store_id[:8])


def delete_local_store(store: str) -> None:
    """Rename the folder ``store`` away, then delete it (a kill leaves no half store)."""
    doomed = _hidden(store, "deleting", uuid.uuid4().hex[:8])
    os.rename(store, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def remove_leftovers(store: str) -> list[str]:
    """Delete what killed runs left beside ``store``: half-built and half-deleted folders.

    Call only while holding the store's lock: then no other run is using them.

    Returns
    -------
    list of str
        The names removed.
    """
    final = Path(store)
    pattern = re.compile(
        rf"^\.{re.escape(final.name)}\.({'|'.join(_HIDDEN_KINDS)})-[0-9a-f]{{8}}$"
    )
    removed = []
    try:
        entries = list(os.scandir(final.parent))
    except OSError:
        return removed
    for entry in entries:
        if pattern.match(entry.name) and entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.name)
    return removed


def remove_partial_files(store: str) -> int:
    """Delete temporary ``*.partial`` chunk files a killed run left in a local store.

    Returns
    -------
    int
        How many files were removed.
    """
    removed = 0
    for root, _dirs, names in os.walk(store):
        for name in names:
            if name.endswith(".partial"):
                try:
                    os.remove(os.path.join(root, name))
                    removed += 1
                except OSError:
                    pass
    return removed


def looks_like_store_remnant(store: str, array_names: set[str]) -> bool:
    """Is the folder ``store`` what is left of a batch store whose ``zarr.json`` is gone?

    True when it holds nothing but ``zarr.json`` and folders named like the
    store's arrays (``array_names``) that are Zarr arrays or empty; such a folder
    may be deleted by ``--overwrite`` (an older napari-xray deleted stores in place,
    and a kill could leave this).
    """
    try:
        entries = list(os.scandir(store))
    except OSError:
        return False
    arrays = 0
    for entry in entries:
        if entry.name in ("zarr.json", ".DS_Store"):
            continue
        if entry.name not in array_names or not entry.is_dir(follow_symlinks=False):
            return False
        arrays += 1
    return arrays > 0
