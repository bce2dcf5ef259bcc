"""The state file of an index kept next to a database: which files hold it and which database it reflects.

Both persistent indexes (the banks' PDQ index in :mod:`.matcher`, the stored items' index in
:mod:`.stored_index`) write their arrays to new files, then atomically replace ``state.json`` naming them and
the database they belong to (a hash of its URL without the password). A reader trusts the files only when the
state's version and database match: a copied, stale or foreign index is rebuilt, never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy.engine import make_url

from ..store.db import Database

STATE = "state.json"


def fingerprint(db: Database) -> str:
    """A stable name for the database an index reflects (its URL, password left out)."""
    return hashlib.sha256(make_url(db.url).render_as_string(hide_password=True).encode()).hexdigest()[:16]


def read_state(folder: Path, db: Database, version: int) -> dict[str, Any] | None:
    """The state written by :func:`write_state` for ``db`` at ``version``; None when there is none to trust.

    Raises OSError/ValueError for an unreadable or damaged file (callers log and rebuild)."""
    state = json.loads((folder / STATE).read_text(encoding="utf-8"))
    if not isinstance(state, dict) or state.get("version") != version or state.get("db") != fingerprint(db):
        return None
    return state


def write_state(folder: Path, db: Database, version: int, fields: dict[str, Any], keep: Iterable[str],
                patterns: Iterable[str]) -> None:
    """Atomically name the current files (``fields``), then delete older files matching ``patterns``."""
    state = {"version": version, "db": fingerprint(db), **fields, "saved_at": time.time()}
    tmp = folder / f".{STATE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(state), encoding="utf-8")
    os.replace(tmp, folder / STATE)
    kept = set(keep)
    for pattern in patterns:
        for old in folder.glob(pattern):
            if old.name not in kept:
                try:
                    old.unlink()
                except OSError:
                    pass
