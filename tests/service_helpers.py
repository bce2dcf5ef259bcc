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


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeProcess:
    """A real ``tripwire serve`` in its own process (and process group), its log in ``log``; a context manager
    that stops it with SIGTERM (SIGKILL after 30 s)."""

    def __init__(self, db: str, log: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        import os
        import subprocess
        import sys

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._log_file = open(log, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "tripwire", "serve", "--db", db, "--port", str(self.port),
                                      "--log-level", "warning", *extra],
                                     stdout=subprocess.DEVNULL, stderr=self._log_file, env={**os.environ, **(env or {})},
                                     start_new_session=True)

    def wait_ready(self, key: str, timeout: float = 120.0) -> dict[str, Any]:
        """Poll ``/readyz`` until it says ready; its answer."""
        import time

        import httpx

        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.log.read_text()}")
            try:
                r = httpx.get(f"{self.base}/readyz", headers={"Authorization": f"Bearer {key}"}, timeout=5)
                if r.status_code == 200:
                    return r.json()
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server not ready after {timeout} s: {self.log.read_text()}")
            time.sleep(0.1)

    def stop(self) -> None:
        import os
        import signal
        import subprocess

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log_file.close()

    def __enter__(self) -> "ServeProcess":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
