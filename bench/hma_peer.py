"""Meta's HMA (OpenMediaMatch) as a peer for bench/service.py, configured fairly and run on the same PostgreSQL.

HMA is not a dependency of tripwire: it runs from its own virtual environment, installed from a checkout of
facebook/ThreatExchange (``hasher-matcher-actioner/``), exactly as its Dockerfile does (``pip install .[prod]``,
gunicorn sync workers, jemalloc preloaded when the library is on the box). One change is made for fairness and
said out loud in the report: ``OMP_NUM_THREADS=1``, because FAISS otherwise starts one OpenMP thread per core in
every worker and a 2-core box spends its time spinning (74 vs ~200 requests per CPU-second in issue 18's runs).

Setting up (once; ~2 min):

    git clone https://github.com/facebook/ThreatExchange   # or the fetched mirror: git archive HEAD hasher-matcher-actioner
    python3 -m venv /work/hma-venv
    /work/hma-venv/bin/pip install psycopg2-binary gunicorn faiss-cpu
    /work/hma-venv/bin/pip install ./ThreatExchange/hasher-matcher-actioner   # its pyproject names psycopg2: use -binary

Then ``python bench/service.py --peer hma --hma-venv /work/hma-venv --hma-src ThreatExchange/hasher-matcher-actioner
--pg-url postgresql://USER:PASS@127.0.0.1:5432/postgres``.

The bank is loaded into HMA's own tables (``bank``, ``bank_content``, ``content_signal``) with one ``COPY`` per
table — HMA's curation API adds one hash per request, which would take hours for 1M — and HMA's own
``flask build_indices`` command builds and stores its index; each gunicorn worker then loads it from the database
(``TASK_INDEX_CACHE``), which is what "ready" (``GET /status`` = 200) waits for.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable

import httpx
from proctree import process_tree, stop_group

JEMALLOC = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
BANK = "BENCH_HOTLINE"  # HMA wants UPPER_WITH_UNDERSCORE bank names

CONFIG = """\
from OpenMediaMatch.storage.postgres.impl import DefaultOMMStore
from threatexchange.signal_type.pdq.signal import PdqSignal
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.content_type.photo import PhotoContent
from threatexchange.content_type.video import VideoContent

DATABASE_URI = {uri!r}
PRODUCTION = True
ROLE_HASHER = True
ROLE_MATCHER = True
ROLE_CURATOR = True
UI_ENABLED = False
TASK_FETCHER = False
TASK_INDEXER = False          # the index is built once, before the load, with `flask build_indices`
TASK_INDEX_CACHE = True       # every worker loads the built index from the database
TASK_INDEX_CACHE_INTERVAL_SECONDS = 30
INDEX_CACHE_MAX_STALE_SEC = 0
STORAGE_IFACE_INSTANCE = DefaultOMMStore(
    signal_types=[PdqSignal, VideoMD5Signal],
    content_types=[PhotoContent, VideoContent],
    exchange_types=[],
)
"""


def _psql_uri(pg_url: str, dbname: str) -> str:
    base = pg_url.rsplit("/", 1)[0]
    return f"{base}/{dbname}"


def existing_rows(pg_url: str, dbname: str, table: str) -> int:
    """Rows of ``table`` in database ``dbname`` (0 when either is missing): a bank kept from an earlier run."""
    import psycopg

    try:
        with psycopg.connect(_psql_uri(pg_url, dbname)) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    except psycopg.Error:
        return 0


def recreate_database(pg_url: str, dbname: str) -> str:
    """A fresh database named ``dbname`` on the server of ``pg_url``; returns its URL."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{dbname}"')
    return _psql_uri(pg_url, dbname)


class HmaPeer:
    """One HMA deployment: configuration, schema, bank, index and a gunicorn server."""

    def __init__(self, venv: Path, src: Path, pg_url: str, workdir: Path, workers: int, port: int,
                 keep: bool = False) -> None:
        """``keep``: use the database of an earlier run as it is (its bank and built index)."""
        self.venv, self.src, self.workdir, self.workers, self.port = venv, src, workdir, workers, port
        self.db_url = _psql_uri(pg_url, "hma_bench") if keep else recreate_database(pg_url, "hma_bench")
        self.base = f"http://127.0.0.1:{port}"
        self.config = workdir / "omm_config.py"
        self.config.write_text(CONFIG.format(uri=self.db_url.replace("postgresql://", "postgresql+psycopg2://", 1)))
        self.proc: subprocess.Popen | None = None
        self.log = open(workdir / "hma.log", "a")

    def env(self) -> dict[str, str]:
        env = {**os.environ, "OMM_CONFIG": str(self.config), "PYTHONPATH": str(self.src / "src"),
               "OMP_NUM_THREADS": "1"}
        if JEMALLOC.exists():
            env["LD_PRELOAD"] = str(JEMALLOC)
        return env

    def flask(self, *args: str) -> None:
        subprocess.run([str(self.venv / "bin" / "flask"), "--app", "OpenMediaMatch.app", *args],
                       cwd=self.src / "src", env={**self.env(), "MIGRATION_COMMAND": "1"} if args[0] == "db" else self.env(),
                       check=True, stdout=self.log, stderr=self.log)

    def load_bank(self, pdq_values: Iterable[str]) -> tuple[float, float]:
        """Schema by HMA's migrations, the bank by COPY, the index by HMA's build command: (load s, build s)."""
        import psycopg

        self.flask("db", "upgrade", "--directory", "OpenMediaMatch/migrations")
        started = time.monotonic()
        with psycopg.connect(self.db_url) as conn:
            bank_id = conn.execute("INSERT INTO bank (name, enabled_ratio) VALUES (%s, 1.0) RETURNING id",
                                   (BANK,)).fetchone()[0]
            values = list(pdq_values)
            with conn.cursor().copy("COPY bank_content (id, bank_id, disable_until_ts) FROM STDIN") as copy:
                for i in range(len(values)):
                    copy.write_row((i + 1, bank_id, -1))
            with conn.cursor().copy("COPY content_signal (content_id, signal_type, signal_val) FROM STDIN") as copy:
                for i, v in enumerate(values):
                    copy.write_row((i + 1, "pdq", v))
            conn.execute("SELECT setval(pg_get_serial_sequence('bank_content', 'id'), %s)", (len(values),))
        load_s = time.monotonic() - started
        started = time.monotonic()
        self.flask("build_indices")
        return load_s, time.monotonic() - started

    def start(self, timeout: float = 900) -> float:
        """gunicorn as HMA's Dockerfile runs it (sync workers); seconds until ``/status`` says the index is loaded."""
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [str(self.venv / "bin" / "gunicorn"), "--workers", str(self.workers), "--bind", f"127.0.0.1:{self.port}",
             "OpenMediaMatch.app:create_app()"],
            cwd=self.src / "src", env=self.env(), stdout=self.log, stderr=self.log, start_new_session=True)
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise SystemExit(f"HMA exited ({self.proc.returncode}); see {self.workdir / 'hma.log'}")
            try:
                # every worker must have loaded the index: ask enough times that each answers
                if all(httpx.get(f"{self.base}/status", timeout=5).status_code == 200 for _ in range(4 * self.workers)):
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise SystemExit("HMA did not become ready")

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid) if self.proc is not None else []

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc)
            self.proc = None


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run bench/service.py --peer hma (see this module's docstring)")
