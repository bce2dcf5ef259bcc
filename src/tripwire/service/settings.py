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

from ..config import Config
from ..errors import UsageError

MiB = 1024 * 1024


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
    #: scans processed at the same time (the rest wait); default: CPU cores
    scan_concurrency: int = 0
    #: seconds one uploaded item (or archive member) may take in a worker before it is killed and recorded as
    #: ``timeout``; default: ``[limits] item_timeout_s``
    item_timeout_s: float | None = None
    #: where uploads are spooled while they are processed (deleted right after); default: the system's
    spool_dir: str | None = None
    #: folder of preserved media named by SHA-256 (read-only; see media.py); default: no media
    media_dir: str | None = None
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
                or (settings.item_timeout_s is not None and settings.item_timeout_s <= 0)):
            raise UsageError("service limits must be positive")
        for proxy in settings.trusted_proxies:
            check_proxy(proxy)
        return settings


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
