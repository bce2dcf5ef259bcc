"""Object storage as a source of files: ``s3://bucket/prefix`` on any S3-compatible store (AWS, MinIO, Ceph).

Read through :mod:`pyarrow.fs` (imported on first use: the CLI must start without it). The endpoint comes from
``[s3] endpoint_url`` in the config or ``$AWS_ENDPOINT_URL`` (the environment wins, as for limits), the region
from ``[s3] region`` or ``$AWS_REGION``; credentials from the usual AWS variables or files, never from the
config. Objects are listed one prefix level at a time (``/`` as the delimiter, keys sorted), like the local walk
lists one folder at a time, so a listing never holds more than one level; an object's record keeps its
``s3://bucket/key`` URI as its path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import IO, Any, Iterator, Mapping, cast
from urllib.parse import urlsplit

from ..config import Config
from ..errors import ItemError, UsageError

SCHEME = "s3://"
#: seconds before an unanswered connection or request fails (then recorded as unreadable, never a hang)
TIMEOUT_S = 30.0


def is_uri(path: str) -> bool:
    """Whether ``path`` names object storage rather than a local file."""
    return path.startswith(SCHEME)


@dataclass(frozen=True)
class S3Settings:
    endpoint_url: str | None = None
    region: str | None = None

    @classmethod
    def from_config(cls, config: Config | None, environ: Mapping[str, str] | None = None) -> "S3Settings":
        section = ((config.sections if config is not None else {}) or {}).get("s3") or {}
        unknown = set(section) - {"endpoint_url", "region"}
        if unknown:
            raise UsageError(f"unknown setting(s) in [s3]: {', '.join(sorted(unknown))}")
        env: Mapping[str, str] = os.environ if environ is None else environ
        return cls(endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or section.get("endpoint_url"),
                   region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or section.get("region"))


_filesystems: dict[S3Settings, Any] = {}


def filesystem(config: Config | None) -> Any:
    """The process's :class:`pyarrow.fs.S3FileSystem` for these settings (made once: it holds a connection pool)."""
    settings = S3Settings.from_config(config)
    fs = _filesystems.get(settings)
    if fs is None:
        from pyarrow import fs as pafs

        options: dict[str, Any] = {"connect_timeout": TIMEOUT_S, "request_timeout": TIMEOUT_S}
        if settings.endpoint_url:
            url = urlsplit(settings.endpoint_url if "://" in settings.endpoint_url else "https://" + settings.endpoint_url)
            options.update(endpoint_override=url.netloc, scheme=url.scheme or "https")
        if settings.region:
            options["region"] = settings.region
        fs = _filesystems[settings] = pafs.S3FileSystem(**options)
    return fs


def _key(uri: str) -> str:
    """``bucket/key`` (pyarrow's path) of ``s3://bucket/key``."""
    key = uri[len(SCHEME):].strip("/")
    if not key:
        raise UsageError(f"{uri}: name a bucket (s3://bucket/prefix)")
    return key


def _unreadable(uri: str, exc: BaseException, what: str) -> ItemError:
    return ItemError("unreadable", f"cannot {what} {uri}: {exc}")


def walk_uri(uri: str, config: Config | None) -> Iterator[tuple[str, ItemError | None]]:
    """(URI, None) for every object under ``uri`` (an object or a prefix), or (URI, error) where listing failed."""
    from pyarrow import fs as pafs

    fs = filesystem(config)
    root = _key(uri)
    try:
        info = fs.get_file_info(root)
    except OSError as exc:
        yield uri, _unreadable(uri, exc, "list")
        return
    if info.type == pafs.FileType.File:
        yield SCHEME + root, None
        return
    if info.type == pafs.FileType.NotFound:
        yield uri, ItemError("unreadable", f"no object or prefix {uri}")
        return
    stack = [root]
    while stack:
        prefix = stack.pop()
        try:
            entries = sorted(fs.get_file_info(pafs.FileSelector(prefix, recursive=False)), key=lambda e: e.path)
        except OSError as exc:
            yield SCHEME + prefix, _unreadable(SCHEME + prefix, exc, "list")
            continue
        subdirs: list[str] = []
        for entry in entries:
            if entry.type == pafs.FileType.Directory:
                subdirs.append(entry.path)
            elif entry.type == pafs.FileType.File:
                yield SCHEME + entry.path, None
        stack.extend(reversed(subdirs))


def open_object(uri: str, config: Config | None) -> tuple[int, IO[bytes]]:
    """(size, a stream of the object's bytes); ``OSError`` when it cannot be read (the caller records it)."""
    from pyarrow import fs as pafs

    fs = filesystem(config)
    key = _key(uri)
    info = fs.get_file_info(key)
    if info.type != pafs.FileType.File:
        raise FileNotFoundError(f"no object {uri}")
    return int(info.size), cast(IO[bytes], fs.open_input_stream(key))
