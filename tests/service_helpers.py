"""Shared set-up for the service tests: a migrated database with one key per role and an app around it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tripwire.config import Config
from tripwire.service.auth import create_key
from tripwire.service.settings import ServiceSettings
from tripwire.store.db import Database, open_db


@dataclass
class Keys:
    admin: str
    reviewer: str
    submitter: str
    auditor: str

    def h(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, role)}"}


def make_keys(db: Database) -> Keys:
    with db.session() as s:
        return Keys(*(create_key(s, f"test-{role}", role, "test-setup").key
                      for role in ("admin", "reviewer", "submitter", "auditor")))


def make_config(tmp_path: Path, **service: Any) -> Config:
    """A config whose PDQ index lives in tmp_path (never in the user's cache, also for PostgreSQL)."""
    return Config(sections={"banks": {"index_path": str(tmp_path / "pdqindex")}, "service": service})


def make_settings(config: Config, **overrides: Any) -> ServiceSettings:
    base = {"rate_per_s": 10_000.0}
    base.update(overrides)
    return ServiceSettings.from_config(config, environ={}, **base)


def open_service_db(db_url: str) -> Database:
    return open_db(db_url)


def scan(client, headers: dict[str, str], files: list[tuple[str, bytes]], context: dict | None = None):
    data = {"context": json.dumps(context)} if context else None
    return client.post("/v1/scan", headers=headers, files=[("files", (n, b, "application/octet-stream")) for n, b in files],
                       data=data)


def all_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every route, through included routers (old and new FastAPI layouts)."""
    out: list[tuple[str, str]] = []

    def walk(routes) -> None:
        for r in routes:
            inner = getattr(r, "original_router", None)
            if inner is not None:
                walk(inner.routes)
                continue
            methods = getattr(r, "methods", None)
            path = getattr(r, "path", None)
            if not methods or path is None:
                continue  # mounts (static assets)
            for m in sorted(methods):
                if m != "HEAD":
                    out.append((m, path))

    walk(app.routes)
    return sorted(set(out))
