"""Service settings: ``[service]`` in the TOML config, overridden by ``TRIPWIRE_SERVICE_<NAME>`` variables.

Every setting has a default that is safe for a single-host deployment; nothing needs to be configured to
start. Unknown keys are an error (a typo never leaves a limit at its default without saying so).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from dataclasses import dataclass, field
from typing import Any

from ..config import PEAK_BYTES_PER_PIXEL, Config, Limits
from ..errors import UsageError

MiB = 1024 * 1024

#: what one scan slot may need at its peak: the decoded pixels of the largest item the limits accept at full
#: resolution (``DECODE_MEMORY_BUDGET``, from which ``[limits] max_decode_pixels`` is derived) plus the rest of
#: an extraction worker (interpreter, imports, the pipeline's own buffers). bench/memory.py: the worst accepted
#: image (RGBA PNG at ``max_decode_pixels``) peaked at 1.34 GiB in a service worker (1.43 GiB in ``tripwire
#: inspect``, which imports more): 1.5 GiB. It follows ``[limits] max_decode_pixels`` (:func:`item_peak_bytes`)
BASE_WORKER_BYTES = 512 * MiB


def item_peak_bytes(max_decode_pixels: int = Limits.max_decode_pixels) -> int:
    """One scan slot's peak: ``max_decode_pixels`` x ``PEAK_BYTES_PER_PIXEL`` (the decode budget) + the worker."""
    return max_decode_pixels * PEAK_BYTES_PER_PIXEL + BASE_WORKER_BYTES


#: at the default limits: 1 GiB of pixels + 0.5 GiB
ITEM_PEAK_BYTES = item_peak_bytes()
#: what a server process needs besides its scan slots: itself (measured ~165 MiB with an empty bank; the PDQ
#: index holds 36 bytes a hash), the spare extraction worker idling (~70 MiB), multiprocessing's resource tracker,
#: and uploads spooled in ``/dev/shm`` (tmpfs counts against a cgroup's memory)
SERVICE_RESERVE_BYTES = 512 * MiB


@dataclass(frozen=True)
class ServiceSettings:
    #: case (in the case database) that holds the items submitted through the API
    case: str = "service"
    #: largest request body accepted (scan uploads, lookups, bank entries), in bytes
    max_request_bytes: int = 64 * MiB
    #: largest hash-list file accepted by ``POST /v1/banks/{name}/import``
    max_import_bytes: int = 1024 * MiB
    #: most files in one ``POST /v1/scan``
    max_files_per_scan: int = 100
    #: most hashes in one ``POST /v1/lookup``
    max_lookup_hashes: int = 1000
    #: most entries in one ``POST /v1/banks/{name}/entries``
    max_entries_per_request: int = 10_000
    #: requests per second per API key (a key may carry its own rate); burst defaults to twice the rate
    rate_per_s: float = 50.0
    rate_burst: float | None = None
    #: console sessions last this long
    session_hours: float = 12.0
    #: send the session cookie with ``Secure`` (browsers accept it on http://localhost as well)
    cookie_secure: bool = True
    #: scans processed at the same time (the rest wait); default (0): sized from CPUs and memory by
    #: :func:`scan_concurrency_for` (``min(CPUs, (memory - 0.5 GiB) / 1.5 GiB)``, at least 1)
    scan_concurrency: int = 0
    #: memory this service may use, in bytes, for sizing the default ``scan_concurrency``; default (0): the
    #: cgroup's memory limit or the host's available memory, whichever is lower (:func:`available_memory`)
    memory_budget_bytes: int = 0
    #: seconds one uploaded item (or archive member) may take in a worker before it is killed and recorded as
    #: ``timeout``; default: ``[limits] item_timeout_s``
    item_timeout_s: float | None = None
    #: where uploads are spooled while they are processed (deleted right after); default: the system's
    spool_dir: str | None = None
    #: folder of preserved media named by SHA-256 (read-only; see media.py); default: no media
    media_dir: str | None = None
    #: show a case's pictures from the files the scan read, while they are still there and unchanged (grid
    #: thumbnails blurred and greyscale, the item page concealed until an audited reveal; see casefiles.py)
    case_files: bool = True
    #: origins allowed to call the API from a browser (CORS); default: none
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    #: reverse proxies (addresses or networks) whose ``X-Forwarded-For``/``-Proto`` are believed; default: none,
    #: so a client's own headers never change the address that rate limits and logs see
    trusted_proxies: tuple[str, ...] = field(default_factory=tuple)
    #: policy file (``--policy`` wins); default: the shipped default policy
    policy: str | None = None
    #: signs the console login form's CSRF token; default: random per process (``tripwire serve --workers N``
    #: shares one among its workers). Give replicas behind one load balancer the same value (environment:
    #: ``TRIPWIRE_SERVICE_SECRET_KEY``)
    secret_key: str | None = field(default=None, repr=False)
    #: this replica's name in metrics (``replica`` label); default: ``$TRIPWIRE_REPLICA_ID``, else
    #: ``<hostname>:<port>`` (docs/replicas.md)
    replica_id: str | None = None
    #: on PostgreSQL, how often each process reconciles its rate-limit buckets with the shared ``rate_buckets``
    #: table, in seconds; 0: limits per process, as on SQLite (docs/replicas.md gives the bound)
    rate_sync_s: float = 0.1
    #: on PostgreSQL, LISTEN for bank changes (migration 0011's NOTIFY) so that one made elsewhere is matched at
    #: once; off: the once-a-second poll alone (needed behind a pooler in transaction mode, which drops LISTEN)
    bank_notify: bool = True
    #: ``/readyz`` says not ready while the match index lags the banks' change log by more than this, in seconds
    index_lag_bound_s: float = 5.0

    @classmethod
    def from_config(cls, config: Config | None, environ: dict[str, str] | None = None, **overrides: Any) -> "ServiceSettings":
        environ = dict(os.environ if environ is None else environ)
        section = dict(((config.sections if config else {}) or {}).get("service") or {})
        known = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in section.items():
            if key not in known:
                raise UsageError(f"unknown setting service.{key} (known: {', '.join(sorted(known))})")
            values[key] = value
        for key in known:
            env = environ.get(f"TRIPWIRE_SERVICE_{key.upper()}")
            if env is not None:
                values[key] = env
        values.update({k: v for k, v in overrides.items() if v is not None})
        out: dict[str, Any] = {}
        defaults = cls()
        for key, value in values.items():
            out[key] = _coerce(key, getattr(defaults, key), value)
        settings = cls(**out)
        if (settings.max_request_bytes <= 0 or settings.max_lookup_hashes <= 0 or settings.rate_per_s <= 0
                or (settings.item_timeout_s is not None and settings.item_timeout_s <= 0)
                or settings.scan_concurrency < 0 or settings.memory_budget_bytes < 0
                or not 0 <= settings.rate_sync_s <= 60 or settings.index_lag_bound_s <= 0):
            raise UsageError("service limits must be positive")
        for proxy in settings.trusted_proxies:
            check_proxy(proxy)
        return settings


def scan_concurrency_for(cpus: int, memory_bytes: int, processes: int = 1, item_peak: int = ITEM_PEAK_BYTES) -> int:
    """Scan slots for one server process: ``min(cpus, (memory - reserve) // item peak)`` shared among the
    ``processes`` server processes (``tripwire serve --workers``), at least 1.

    Each slot can hold one item at its peak (``item_peak``: :func:`item_peak_bytes`, 1.5 GiB at the default
    limits); each
    server process also needs :data:`SERVICE_RESERVE_BYTES` for itself and its spare worker. Pure: the
    numbers are given (see :func:`available_memory`, :func:`available_cpus`)."""
    processes = max(1, processes)
    by_memory = max(0, memory_bytes - processes * SERVICE_RESERVE_BYTES) // max(1, item_peak)
    return max(1, min(max(1, cpus), by_memory) // processes)


def _read_int(path: str) -> int | None:
    """A cgroup memory limit in bytes, or None when absent or unlimited (``max``, v1's ~2**63)."""
    try:
        with open(path) as fh:
            text = fh.read().strip()
    except OSError:
        return None
    if not text.isdigit():
        return None
    value = int(text)
    return value if value < 1 << 60 else None


def available_memory(proc: str = "/proc", cgroup_root: str = "/sys/fs/cgroup") -> int | None:
    """Memory this process may use: the lowest of its cgroup's memory limit (v2 ``memory.max``, v1
    ``memory.limit_in_bytes``; the process's own cgroup and every parent, as mounted) and ``MemAvailable``
    in ``/proc/meminfo``. None when nothing could be read."""
    candidates: list[int] = []
    try:
        with open(f"{proc}/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    candidates.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"{proc}/self/cgroup") as fh:
            lines = fh.read().splitlines()
    except OSError:
        lines = []
    paths: list[str] = []
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":  # v2 unified hierarchy
            paths += [f"{cgroup_root}{p}/memory.max" for p in _parents(path)]
        elif "memory" in controllers.split(","):
            paths += [f"{cgroup_root}/memory{p}/memory.limit_in_bytes" for p in _parents(path)]
    # inside a container the process's own cgroup is usually mounted as the root
    paths += [f"{cgroup_root}/memory.max", f"{cgroup_root}/memory/memory.limit_in_bytes"]
    for path in dict.fromkeys(paths):
        value = _read_int(path)
        if value is not None:
            candidates.append(value)
    return min(candidates) if candidates else None


def _parents(path: str) -> list[str]:
    """``/a/b`` -> ``["/a/b", "/a"]`` (the root itself is read separately)."""
    out = []
    path = path.rstrip("/")
    while path:
        out.append(path)
        path = path.rsplit("/", 1)[0]
    return out


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which containers' cpusets set)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def sized_scan_concurrency(settings: "ServiceSettings", processes: int = 1,
                           max_decode_pixels: int = Limits.max_decode_pixels) -> tuple[int, str]:
    """The scan concurrency to use and how it was chosen (logged at start-up)."""
    if settings.scan_concurrency > 0:
        return settings.scan_concurrency, "set by [service] scan_concurrency"
    cpus = available_cpus()
    if settings.memory_budget_bytes > 0:
        memory: int | None = settings.memory_budget_bytes
        source = "[service] memory_budget_bytes"
    else:
        memory = available_memory()
        source = "detected"
    if memory is None:
        return cpus, f"one per CPU ({cpus}; memory unknown)"
    peak = item_peak_bytes(max_decode_pixels)
    n = scan_concurrency_for(cpus, memory, processes, peak)
    return n, (f"min({cpus} CPUs, ({memory / 2**30:.1f} GiB {source} - {processes} x "
               f"{SERVICE_RESERVE_BYTES / 2**30:.1f} GiB reserve) / {peak / 2**30:.2f} GiB per item)"
               + (f" / {processes} server processes" if processes > 1 else ""))


def check_proxy(value: str) -> str:
    """A trusted proxy must be an IP address or network: never ``*`` (that would trust every client)."""
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise UsageError(f"service.trusted_proxies: {value!r} is not an IP address or network (such as 10.0.0.5 "
                         "or 10.0.0.0/24); list only the reverse proxies in front of the service") from None
    return value


def _coerce(name: str, default: Any, value: Any) -> Any:
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if isinstance(default, tuple):
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            return tuple(str(v) for v in value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float) or name in ("rate_burst", "item_timeout_s"):
            return float(value)
        return None if value is None else str(value)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"service.{name}: cannot use {value!r}") from exc
