"""CPU per ``POST /v1/lookup`` (100 hashes: 10% known, 45% random PDQ, 45% random MD5) with the ASGI app driven
directly — no sockets, no uvicorn — so the figure is the application's own cost per request.

Run from the repository root: ``N=1000000 python bench/lookup_inprocess.py [SEED]`` (the bank, N entries half PDQ
half MD5, is built once into bench/out/; 20 warm-up requests, then 3 batches of 150 requests; prints µs of process
CPU per request for each batch and hashes per CPU-second for the median batch). Compare two trees by running it
with ``PYTHONPATH=<tree>/src``, interleaved. ``PROF=1`` adds a cProfile (CPU-time) listing.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import os
import pstats
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from service_helpers import make_config, make_settings  # noqa: E402

from tripwire.banks.store import BankStore  # noqa: E402
from tripwire.service.app import create_app  # noqa: E402
from tripwire.service.auth import create_key  # noqa: E402
from tripwire.store.db import open_db  # noqa: E402

N = int(os.environ.get("N", "1000000"))
CACHE = REPO / "bench" / "out" / f"lookup-bank-{N}.db"


def values(n: int):
    rng = random.Random(7)
    for i in range(n):
        yield ("pdq", f"{rng.getrandbits(256):064x}") if i % 2 else ("md5", f"{rng.getrandbits(128):032x}")


def build() -> None:
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    db = open_db(f"sqlite:///{CACHE}")
    BankStore(db).create_bank("b", source="bench", category_scheme="none")
    BankStore(db).add_entries("b", ({"signal_type": t, "value": v} for t, v in values(N)), batch_size=20000)
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()


def main() -> None:
    if not CACHE.exists():
        build()
    tmp = Path(tempfile.mkdtemp(prefix="tw-lookup-"))
    shutil.copy(CACHE, tmp / "bank.db")
    url = f"sqlite:///{tmp / 'bank.db'}"
    db = open_db(url)
    with db.session() as s:
        key = create_key(s, "bench", "submitter", "bench", rate_per_s=1e9).key
    db.dispose()
    config = make_config(tmp)
    app = create_app(url, config, settings=make_settings(config))
    hits = list(values(20000))
    rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 3)

    def body() -> bytes:
        out = []
        for _ in range(100):
            r = rng.random()
            if r < 0.1:
                t, v = hits[rng.randrange(len(hits))]
            elif r < 0.55:
                t, v = "pdq", f"{rng.getrandbits(256):064x}"
            else:
                t, v = "md5", f"{rng.getrandbits(128):032x}"
            out.append({"signal_type": t, "value": v})
        return json.dumps({"hashes": out}).encode()

    async def call(data: bytes) -> list[dict]:
        sent: list[dict] = []
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
                 "path": "/v1/lookup", "raw_path": b"/v1/lookup", "query_string": b"", "root_path": "",
                 "headers": [(b"host", b"bench"), (b"content-type", b"application/json"),
                             (b"content-length", str(len(data)).encode()), (b"authorization", f"Bearer {key}".encode())],
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
        given = [False]

        async def receive() -> dict:
            if given[0]:
                await asyncio.sleep(3600)
            given[0] = True
            return {"type": "http.request", "body": data, "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)

        await app(scope, receive, send)
        return sent

    async def run() -> None:
        started = asyncio.Event()
        queue: asyncio.Queue = asyncio.Queue()
        await queue.put({"type": "lifespan.startup"})

        async def receive() -> dict:
            return await queue.get()

        async def send(message: dict) -> None:
            if "startup" in message["type"]:
                started.set()

        asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
        await started.wait()
        for _ in range(20):
            await call(body())
        per_request = []
        for _ in range(3):
            bodies = [body() for _ in range(150)]
            t = time.process_time()
            for data in bodies:
                sent = await call(data)
                assert sent[0]["status"] == 200, sent
            per_request.append((time.process_time() - t) / len(bodies) * 1e6)
        median = sorted(per_request)[1]
        print(f"µs CPU per /v1/lookup x100: {[round(x) for x in per_request]} -> hashes per CPU-s: {round(1e8 / median)}")

    if os.environ.get("PROF"):
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        asyncio.run(run())
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(30)
    else:
        asyncio.run(run())


if __name__ == "__main__":
    main()
