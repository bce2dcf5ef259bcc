"""Running the ASGI app under uvicorn with several worker processes, without Nagle's algorithm.

``uvicorn.run(..., workers=N)`` binds the listening socket itself (``Config.bind_socket``) and hands it to
the worker processes. That socket is made with ``socket.socket(family)``, so its ``proto`` is 0, and every
accepted connection inherits ``proto == 0``. asyncio turns ``TCP_NODELAY`` on for an accepted connection
only when ``proto == IPPROTO_TCP`` (``asyncio.base_events._set_nodelay``), so in multi-process mode Nagle's
algorithm stayed on. uvicorn's h11 protocol writes a response's headers and body in two ``send()`` calls;
on a kept-alive connection the second waits for the ACK of the first, which the client delays (40 ms on
Linux): every request after the first on a connection took 45-48 ms instead of 1-3 ms. The one-process
path is not affected (asyncio binds from ``getaddrinfo``, which says ``IPPROTO_TCP``). Upstream:
Kludex/uvicorn#3149.

:func:`run_workers` binds the socket as uvicorn would and re-labels it ``IPPROTO_TCP`` (the kernel socket
is a TCP socket either way; only the Python object's idea of it was wrong), so asyncio in every worker sets
``TCP_NODELAY`` on each connection it accepts.
"""

from __future__ import annotations

import inspect
import socket
from typing import Any

__all__ = ["as_tcp", "run_workers"]


def as_tcp(sock: socket.socket) -> socket.socket:
    """``sock`` itself, or — for an IPv4/IPv6 stream socket whose ``proto`` is 0 — the same kernel socket
    as a Python object that says ``IPPROTO_TCP`` (which makes asyncio set ``TCP_NODELAY`` on accepted
    connections). Pickling to a worker process keeps ``proto``."""
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM and sock.proto == 0:
        inheritable = sock.get_inheritable()
        sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
        sock.set_inheritable(inheritable)
    return sock


def run_workers(app: str, *, workers: int, host: str, port: int, **options: Any) -> None:
    """``uvicorn.run(app, factory=True, workers=workers, ...)`` with a listening socket that gives every
    accepted connection ``TCP_NODELAY`` (see the module docs)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(app, factory=True, host=host, port=port, workers=workers, **options)
    sock = as_tcp(config.bind_socket())
    try:
        if "target" in inspect.signature(Multiprocess).parameters:  # uvicorn < 0.36
            server = uvicorn.Server(config=config)
            Multiprocess(config, target=server.run, sockets=[sock]).run()  # type: ignore[call-arg]
        else:
            Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:  # pragma: no cover - the supervisor handles the signals
        pass
    finally:
        sock.close()
