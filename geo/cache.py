"""A folder of results reused by later runs is keyed by what made it.

A run that skips work whose result file exists (``full-gpu``'s stages and schedule) first
:func:`claim`\\ s its folder with a key -- the data identity and the profile: the folder's
``made_by.json`` must hold the same key, or, in a folder without one, no result may be
there yet. Results of other data, another profile or unknown origin are never taken as
this run's; the run stops before any work with :class:`StaleCache` naming the folder and
what differs.
"""
from __future__ import annotations

import json
from pathlib import Path

from geo.results import atomic_write, dumps

KEY_FILE = "made_by.json"


class StaleCache(ValueError):
    """A folder holds results made by something else; the message names it and the difference."""


def claim(folder, key: dict, results: str = "*.json") -> Path:
    """Make ``folder`` the cache of ``key`` (a JSON-able dict), or raise
    :class:`StaleCache` when it already holds results (files matching ``results``) made
    with another key or without one. Returns the key file."""
    folder = Path(folder)
    path = folder / KEY_FILE
    key = json.loads(dumps(key))   # compared as it reads back
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = None
        if old != key:
            diff = ([f"{k}: {old.get(k)!r} there, {v!r} now" for k, v in key.items() if old.get(k) != v]
                    if isinstance(old, dict) else [f"{path.name} unreadable"])
            raise StaleCache(f"{folder}: holds results made by another run ({'; '.join(diff)}); "
                             "expected a new folder or one of this data and profile")
        return path
    found = sorted(p.name for p in folder.glob(results) if p.name != KEY_FILE) if folder.is_dir() else []
    if found:
        raise StaleCache(f"{folder}: holds results of unknown origin ({', '.join(found[:5])}) and no {KEY_FILE}; "
                         "expected a new folder (or remove them)")
    return atomic_write(path, dumps(key))
