"""The exchange APIs tripwire fetches through: python-threatexchange's own implementations, by their names.

Each entry names the ``SignalExchangeAPI`` class, how to build an authenticated instance (credentials from the
configuration or the environment, and an optional ``base_url`` pointing its client elsewhere: a proxy, a test
server), and how to step over a page the source cannot deliver well-formed. Conversion from the API's records
to bank values is the API's own ``naive_convert_to_signal_type``, one record at a time, so that every value is
tied to the record key that brought it (deletions and updates name keys, not values).

Credentials are looked up, first found wins: ``$TRIPWIRE_EXCHANGE_CREDENTIALS_<NAME>`` (the exchange's name in
upper case, other characters as ``_``), ``[exchanges.credentials] <NAME> = "..."`` in the configuration file,
then python-threatexchange's own places (``$TX_ACCESS_TOKEN``/``~/.txtoken``, ``$TX_NCMEC_CREDENTIALS``/
``~/.tx_ncmec_credentials``, ``$TX_STOPNCII_KEYS``/``~/.tx_stopncii_keys``). The string has the API's own
format: a ThreatExchange app token ``<app id>|<secret>``; NCMEC ``user:password``; StopNCII
``function_key,subscription_key``. They are never written to the database.
"""

from __future__ import annotations

import functools
import json
import os
import re
import urllib.parse
from dataclasses import dataclass, fields
from typing import Any, Mapping

from ...config import Config
from ...signals.registry import registry

__all__ = ["API_NAMES", "ExchangeApiError", "ExchangeSettings", "api_class", "build_api", "collab_config", "credential_fields",
           "config_fields", "convert_record", "credentials_for", "dump", "load_checkpoint", "skip_checkpoint"]

#: python-threatexchange's names for the APIs tripwire fetches through
API_NAMES = ("fb_threatexchange", "ncmec", "stop_ncii", "local_file")
#: a value's tags are cut to this many (a record's opinions may carry many)
MAX_TAGS = 20


class ExchangeApiError(Exception):
    """An exchange cannot be configured or built as asked (unknown API, bad settings, no credentials)."""


@dataclass(frozen=True)
class ExchangeSettings:
    """The ``[exchanges]`` section: background schedule, retries and back-off."""

    #: seconds between background fetches of every enabled exchange in ``tripwire serve``; 0: no background fetch
    fetch_interval: float = 0.0
    #: attempts at one page when the source throttles (HTTP 429) or fails transiently (5xx, connection)
    retries: int = 6
    #: first back-off in seconds (doubled each attempt, capped by ``max_backoff``; a Retry-After header wins)
    backoff: float = 1.0
    max_backoff: float = 300.0
    #: pages that may be skipped as malformed in one fetch before it stops
    max_skips: int = 20
    credentials: Mapping[str, str] | None = None

    @classmethod
    def from_config(cls, config: Config | None = None, environ: Mapping[str, str] | None = None) -> "ExchangeSettings":
        section = dict(((config.sections if config is not None else {}) or {}).get("exchanges") or {})
        env = os.environ if environ is None else environ
        known = {f.name for f in fields(cls)}
        unknown = set(section) - known
        if unknown:
            raise ExchangeApiError(f"unknown setting(s) in [exchanges]: {', '.join(sorted(unknown))}")
        interval = env.get("TRIPWIRE_EXCHANGES_FETCH_INTERVAL", section.get("fetch_interval", cls.fetch_interval))
        creds = section.get("credentials") or {}
        if not isinstance(creds, Mapping):
            raise ExchangeApiError("[exchanges.credentials] must be a table of exchange name = credential string")
        return cls(fetch_interval=float(interval), retries=int(section.get("retries", cls.retries)),
                   backoff=float(section.get("backoff", cls.backoff)),
                   max_backoff=float(section.get("max_backoff", cls.max_backoff)),
                   max_skips=int(section.get("max_skips", cls.max_skips)),
                   credentials={str(k): str(v) for k, v in creds.items()})


@functools.lru_cache(maxsize=None)
def api_class(name: str) -> Any:
    """The python-threatexchange ``SignalExchangeAPI`` class called ``name``."""
    if name == "fb_threatexchange":
        from threatexchange.exchanges.impl.fb_threatexchange_api import FBThreatExchangeSignalExchangeAPI

        return FBThreatExchangeSignalExchangeAPI
    if name == "ncmec":
        from threatexchange.exchanges.impl.ncmec_api import NCMECSignalExchangeAPI

        return NCMECSignalExchangeAPI
    if name == "stop_ncii":
        from threatexchange.exchanges.impl.stop_ncii_api import StopNCIISignalExchangeAPI

        return StopNCIISignalExchangeAPI
    if name == "local_file":
        from threatexchange.exchanges.impl.file_api import LocalFileSignalExchangeAPI

        return LocalFileSignalExchangeAPI
    raise ExchangeApiError(f"no exchange API {name!r} (expected one of {', '.join(API_NAMES)})")


def uses_credentials(name: str) -> bool:
    from threatexchange.exchanges.auth import SignalExchangeWithAuth

    return issubclass(api_class(name), SignalExchangeWithAuth)


def dump(obj: Any) -> dict[str, Any]:
    """A python-threatexchange dataclass as plain JSON (enums as values, sets as lists)."""
    from threatexchange.utils import dataclass_json

    return json.loads(dataclass_json.dataclass_dumps(obj))


def collab_config(api: str, name: str, enabled: bool, settings: Mapping[str, Any]) -> Any:
    """The API's collaboration config dataclass from stored settings (ExchangeApiError when they do not fit)."""
    from threatexchange.utils import dataclass_json

    import enum
    import typing

    cls = api_class(api).get_config_cls()
    data = {**settings, "name": name, "enabled": bool(enabled), "api": api}
    for key, hint in typing.get_type_hints(cls).items():
        # an enum setting may be given by member name (environment=NGO) as well as by value
        if key in data and isinstance(hint, type) and issubclass(hint, enum.Enum) and data[key] in hint.__members__:
            data[key] = hint[data[key]].value
    if not any(f.name == "api" and f.init for f in fields(cls)):
        data.pop("api")
    try:
        return dataclass_json.dataclass_load_dict(data, cls)
    except Exception as exc:
        raise ExchangeApiError(f"settings do not fit {api}: {exc}") from exc


def config_fields(api: str) -> list[dict[str, Any]]:
    """The API's own settings (beyond name/api/enabled) as HMA's ``/c/exchanges/api/<api>/schema`` describes
    them: name, type (string, number, boolean, enum, set_of_number, ...), required, default, help, choices."""
    return _descriptors(api_class(api).get_config_cls(), {"name", "api", "enabled"})


def credential_fields(api: str) -> list[dict[str, Any]] | None:
    """The API's credential fields (same form), None for an API without credentials."""
    return _descriptors(api_class(api).get_credential_cls(), set()) if uses_credentials(api) else None


def _descriptors(cls: Any, ignore: set[str]) -> list[dict[str, Any]]:
    import dataclasses
    import enum
    import types
    import typing

    hints = typing.get_type_hints(cls)

    def kind(hint: Any) -> tuple[str, list[Any] | None]:
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin is typing.Union or origin is getattr(types, "UnionType", None):
            rest = [a for a in args if a is not type(None)]
            return kind(rest[0]) if len(rest) == 1 else ("string", None)
        if origin in (set, frozenset, list) and args:
            return f"{'list' if origin is list else 'set'}_of_{kind(args[0])[0]}", None
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return "enum", [m.value for m in hint]
        return {str: "string", int: "number", float: "number", bool: "boolean"}.get(hint, "string"), None

    def default_of(f: Any) -> Any:
        value = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        if isinstance(value, enum.Enum):
            return value.value
        return sorted(value) if isinstance(value, (set, frozenset)) else value

    out = []
    for f in fields(cls):
        if f.name in ignore or not f.init:
            continue
        name, choices = kind(hints.get(f.name, str))
        out.append({"name": f.name, "type": name,
                    "required": f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
                    "default": default_of(f), "help": f.metadata.get("help", ""), "choices": choices})
    return out


def credentials_for(exchange: str, api: str, settings: ExchangeSettings, environ: Mapping[str, str] | None = None) -> Any:
    """The API's credential object for ``exchange`` (None for an API without credentials); raises
    ExchangeApiError naming where to put them when none are found."""
    if not uses_credentials(api):
        return None
    cred_cls = api_class(api).get_credential_cls()
    env = os.environ if environ is None else environ
    var = "TRIPWIRE_EXCHANGE_CREDENTIALS_" + re.sub(r"[^A-Z0-9]", "_", exchange.upper())
    text = env.get(var) or (settings.credentials or {}).get(exchange)
    if text:
        creds = cred_cls._from_str(text)
        if creds is None or not creds._are_valid():
            raise ExchangeApiError(f"the credentials for exchange {exchange!r} ({var} or [exchanges.credentials]) "
                                   f"are not in {api}'s format")
        return creds
    from threatexchange.exchanges.auth import SignalExchangeAPIInvalidAuthException, SignalExchangeAPIMissingAuthException

    try:
        return cred_cls.get(api_class(api))
    except SignalExchangeAPIMissingAuthException:
        raise ExchangeApiError(f"no credentials for exchange {exchange!r}: set {var}, or [exchanges.credentials] "
                               f"{exchange} = \"...\" in the configuration, or {cred_cls.ENV_VARIABLE}") from None
    except SignalExchangeAPIInvalidAuthException as exc:
        raise ExchangeApiError(f"invalid credentials for exchange {exchange!r}: {exc.message}") from None


def build_api(api: str, collab: Any, credentials: Any, base_url: str | None) -> Any:
    """An authenticated instance of python-threatexchange's API for ``collab``; ``base_url`` points its client
    at another address (the API's own client, pagination and parsing are unchanged)."""
    cls = api_class(api)
    if api == "fb_threatexchange":
        from threatexchange.exchanges.clients.fb_threatexchange.api import ThreatExchangeAPI

        return cls(ThreatExchangeAPI(credentials.api_token, endpoint_override=base_url or None), collab)
    if api == "ncmec":
        instance = cls(collab, credentials.user, credentials.password)
        if base_url:
            _point_ncmec_at(instance, base_url.rstrip("/"))
        return instance
    if api == "stop_ncii":
        from threatexchange.exchanges.clients.stopncii.api import StopNCIIAPI

        return cls(collab, StopNCIIAPI(credentials.subscription_key, credentials.fetch_function_key,
                                       base_url_override=base_url or credentials.base_url_override))
    return cls.for_collab(collab)


def _point_ncmec_at(instance: Any, base_url: str) -> None:
    """NCMEC's client takes its address from the environment enum; set it on each client the API makes."""
    make = instance.get_client

    def get_client(environment: Any) -> Any:
        client = make(environment)
        client._base_url = base_url
        return client

    instance.get_client = get_client


def load_checkpoint(api: str, data: Mapping[str, Any] | None) -> Any:
    if data is None:
        return None
    from threatexchange.utils import dataclass_json

    return dataclass_json.dataclass_load_dict(dict(data), api_class(api).get_checkpoint_cls())


def _key_text(key: Any) -> str:
    if isinstance(key, tuple):
        text = json.dumps(list(key), ensure_ascii=False)
    else:
        text = str(key)
    if len(text) > 300:
        import hashlib

        text = "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return text


def te_types() -> tuple[list[Any], dict[str, str]]:
    """python-threatexchange's signal classes for tripwire's types, and tripwire's name for each (taken once per
    fetch: ``get_name`` runs regular expressions on every call)."""
    te = registry.te_classes()
    return list(te.values()), {cls.get_name(): name for name, cls in te.items()}


def convert_record(api: str, collab: Any, key: Any, value: Any,
                   types: tuple[list[Any], dict[str, str]] | None = None) -> tuple[str, list[tuple[str, str, list[str]]]]:
    """(stored key, [(tripwire signal type, value, tags), ...]) for one fetched record; an empty list for a
    deletion, a record of types tripwire does not know, or one whose opinions are all "not harmful"
    (``NEGATIVE_CLASS``: a partner's false positive). Raises on a malformed record."""
    from threatexchange.exchanges.fetch_state import SignalOpinionCategory

    stored = _key_text(key)
    if value is None:
        return stored, []
    classes, by_te = types or te_types()
    converted = api_class(api).naive_convert_to_signal_type(classes, collab, {key: value})
    out: list[tuple[str, str, list[str]]] = []
    for s_type, signals in converted.items():
        name = by_te.get(s_type.get_name())
        if name is None:
            continue
        for signal, metadata in signals.items():
            opinions = list(metadata.get_as_opinions()) if metadata is not None else []
            if opinions and all(o.category == SignalOpinionCategory.NEGATIVE_CLASS for o in opinions):
                continue
            tags = sorted({str(t) for o in opinions for t in (o.tags or ())})[:MAX_TAGS]
            out.append((name, registry.normalise_value(name, signal), tags))
    return stored, out


def skip_checkpoint(api: str, committed: Any) -> tuple[Any, str] | None:
    """A checkpoint past the page that could not be read, and what is skipped; None when the API's position
    does not say where the next page starts (the fetch then stops and retries next time).

    NCMEC: the failed request is the checkpoint's paging URL, whose ``start``/``size``/``max`` say where the next
    page begins (past ``max``: the time window is finished). ThreatExchange: the failed page lies at or after the
    checkpoint's update time; the fetch moves one second on (updates within that second are skipped).
    """
    if api == "ncmec" and committed is not None and committed.paging_info:
        from threatexchange.exchanges.impl.ncmec_api import NCMECCheckpoint, _NCMECPagingInfo

        url = committed.paging_info.paging_url
        parts = urllib.parse.urlsplit(url)
        query = urllib.parse.parse_qs(parts.query)
        try:
            start, size, top = int(query["start"][0]), int(query["size"][0]), int(query["max"][0])
        except (KeyError, ValueError, IndexError):
            return None
        if start + size > top:
            return NCMECCheckpoint(committed.paging_info.paging_end_ts), f"entries {start}-{top} of the window (last page)"
        query["start"] = [str(start + size)]
        nxt = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query, doseq=True)))
        return (NCMECCheckpoint(committed.get_entries_max_ts, _NCMECPagingInfo(nxt, committed.paging_info.paging_end_ts)),
                f"entries {start}-{start + size - 1} of the window")
    if api == "fb_threatexchange":
        from threatexchange.exchanges.impl.fb_threatexchange_api import FBThreatExchangeCheckpoint

        at = committed.update_time if committed is not None else 0
        return FBThreatExchangeCheckpoint(at + 1), f"updates at {at}"
    return None


#: an API whose fetch delivers the whole list each time: records it no longer lists are deletions
SNAPSHOT_APIS = ("local_file",)
