"""Kept-alive connections to ``tripwire serve --workers N`` must not stall.

uvicorn's multi-process mode bound its listening socket with ``proto`` 0, so asyncio left Nagle's algorithm
on for every accepted connection; with a response written as headers + body, every request after the first
on a kept-alive connection waited for the client's delayed ACK (~40 ms). ``tripwire serve`` now binds the
socket so that ``TCP_NODELAY`` is set (``service/server.py``).

The bound below is a correctness bar for a 40 ms stall, not a benchmark: the median of 20 requests, each
normally 1-3 ms on loopback, must stay under 20 ms even on a loaded machine.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

import pytest
from helpers import tripwire
from service_helpers import free_port

from tripwire.banks.store import BankStore
from tripwire.service.server import as_tcp
from tripwire.store.db import open_db

STALL_BOUND_MS = 20.0
PDQ = "f" * 64


def test_a_bound_listener_gives_accepted_connections_tcp_nodelay():
    """The cause, on its own: a socket made like uvicorn's ``bind_socket`` (proto 0) makes asyncio skip
    TCP_NODELAY; the same socket through :func:`as_tcp` does not."""

    async def accepted_nodelay(listener: socket.socket) -> int:
        seen: list[int] = []

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        loop = asyncio.get_running_loop()
        server = await loop.create_server(Probe, sock=listener)
        port = listener.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)
        writer.close()
        server.close()
        await server.wait_closed()
        return seen[0]

    def listener() -> socket.socket:
        sock = socket.socket(family=socket.AF_INET)  # what uvicorn's Config.bind_socket does
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        return sock

    plain = listener()
    assert plain.proto == 0
    assert asyncio.run(accepted_nodelay(plain)) == 0  # Nagle on: the stall
    fixed = as_tcp(listener())
    assert fixed.proto == socket.IPPROTO_TCP
    assert asyncio.run(accepted_nodelay(fixed)) != 0
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    assert as_tcp(unix) is unix  # only TCP sockets are touched
    unix.close()


def _timings(port: int, path: str, key: str, n: int = 20) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    out = []
    try:
        for _ in range(n):
            started = time.perf_counter()
            conn.request("GET", path, headers={"Authorization": f"Bearer {key}"})
            response = conn.getresponse()
            body = response.read()
            out.append((time.perf_counter() - started) * 1000)
            assert response.status == 200, body
            assert (response.getheader("connection") or "").lower() != "close"
    finally:
        conn.close()
    return out


@pytest.mark.parametrize("workers", [2])
def test_kept_alive_requests_do_not_stall_with_several_workers(tmp_path, workers):
    db_path = tmp_path / "svc.db"
    db = open_db(str(db_path))
    store = BankStore(db)
    store.create_bank("bench", source="test", category_scheme="none")
    store.add_entries("bench", [{"signal_type": "pdq", "value": PDQ}])
    db.dispose()
    key = tripwire("keys", "create", "--role", "submitter", "--name", "client", "--rate", "100000",
                   "--db", str(db_path)).stdout.strip()
    port = free_port()
    env = {**os.environ, "TRIPWIRE_BANKS_INDEX_PATH": str(tmp_path / "idx")}
    proc = subprocess.Popen([sys.executable, "-m", "tripwire", "serve", "--db", str(db_path), "--port", str(port),
                             "--workers", str(workers), "--log-level", "warning"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
            try:
                _timings(port, "/healthz", key, 1)
                break
            except (OSError, http.client.HTTPException):
                if time.monotonic() > deadline:
                    pytest.fail("server did not start")
                time.sleep(0.2)
        lookup = f"/m/raw_lookup?signal={PDQ}&signal_type=pdq"
        for path in ("/healthz", lookup):
            _timings(port, path, key, 3)  # warm every worker's first request (imports, index)
            times = _timings(port, path, key)
            median = statistics.median(times[1:])
            assert median < STALL_BOUND_MS, f"{path}: kept-alive requests took {sorted(times)} ms"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    stderr = proc.stderr.read() if proc.stderr else ""
    assert "Traceback" not in stderr, stderr
