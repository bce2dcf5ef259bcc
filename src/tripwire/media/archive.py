"""Expand zip and tar (plain, gzip, bzip2, xz) archives in memory, within caps, never touching disk.

Archive members are read, never extracted: nothing is written, so a member named ``../evil`` or
``/etc/passwd`` cannot reach outside the archive; such names are still recorded (they are evidence) with an
``unsafe_member_name`` error. Bombs are refused before reading where the headers tell (declared size,
compression ratio) and stopped while reading where they lie (every read is capped).
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import re
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Callable, Generator, Iterator

from ..config import Limits
from ..errors import ItemError

if TYPE_CHECKING:
    from typing import TypeAlias

    #: the three decompressor objects of the streams below (zlib's class is not exposed at runtime)
    _Decompressor: TypeAlias = zlib._Decompress | bz2.BZ2Decompressor | lzma.LZMADecompressor

MiB = 1024 * 1024
#: below this size a high compression ratio is harmless (small runs of zeros compress very well)
_RATIO_FLOOR = 1 * MiB
_CHUNK = 1 * MiB
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass
class Member:
    name: str
    data: bytes | None
    size: int
    error: ItemError | None = None


class Budget:
    """What one top-level archive (with everything nested in it) may still expand."""

    def __init__(self, limits: Limits) -> None:
        self.bytes = limits.max_archive_total_bytes
        self.members = limits.max_archive_members

    def take(self, size: int) -> ItemError | None:
        if self.members <= 0:
            return ItemError("archive_bomb", "member count cap reached: member not expanded")
        if size > self.bytes:
            return ItemError("archive_bomb", "total expanded-size cap for this archive reached: member not read")
        self.members -= 1
        self.bytes -= size
        return None


def unsafe_name(name: str) -> bool:
    parts = re.split(r"[\\/]", name)
    return name.startswith(("/", "\\")) or bool(_DRIVE.match(name)) or ".." in parts or "\x00" in name


def _name_error(name: str) -> ItemError | None:
    if unsafe_name(name):
        return ItemError("unsafe_member_name", f"member name {name!r} is absolute or contains '..'; read inside the archive only")
    return None


def _read_capped(fh: IO[bytes], cap: int) -> bytes | None:
    """Read at most ``cap`` bytes; None if there is more (the header lied or the stream is a bomb)."""
    buf = bytearray()
    while True:
        chunk = fh.read(min(_CHUNK, cap + 1 - len(buf)))
        if not chunk:
            return bytes(buf)
        buf += chunk
        if len(buf) > cap:
            return None


def _zip_members(fh: IO[bytes], compressed_size: int, limits: Limits, budget: Budget) -> Iterator[Member]:
    try:
        zf = zipfile.ZipFile(fh)
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise ItemError("archive_error", f"cannot read zip directory: {exc}") from exc
    for info in infos:
        if info.is_dir():
            continue
        name = info.filename
        mode = info.external_attr >> 16
        if mode and stat.S_ISLNK(mode):
            yield Member(name, None, info.file_size, ItemError("not_a_regular_file", "symbolic link inside the archive: not followed"))
            continue
        if info.flag_bits & 0x1:
            yield Member(name, None, info.file_size, ItemError("archive_error", "encrypted member: cannot be read"))
            continue
        declared = info.file_size
        if declared > _RATIO_FLOOR and declared > limits.max_compression_ratio * max(info.compress_size, 1):
            ratio = declared / max(info.compress_size, 1)
            yield Member(name, None, declared, ItemError("archive_bomb", f"compression ratio {ratio:.0f}:1 exceeds {limits.max_compression_ratio:.0f}:1"))
            continue
        if declared > limits.max_member_bytes:
            yield Member(name, None, declared, ItemError("too_large", f"declared size {declared} exceeds member cap {limits.max_member_bytes}"))
            continue
        refused = budget.take(declared)
        if refused:
            yield Member(name, None, declared, refused)
            continue
        try:
            with zf.open(info) as member_fh:
                data = _read_capped(member_fh, declared)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
            yield Member(name, None, declared, ItemError("archive_error", f"cannot read member: {exc}"))
            continue
        if data is None:
            yield Member(name, None, declared, ItemError("archive_bomb", "member expands beyond its declared size"))
            continue
        yield Member(name, data, len(data), _name_error(name))


def _tar_members(fh: IO[bytes], compressed_size: int, limits: Limits, budget: Budget) -> Iterator[Member]:
    try:
        tf = tarfile.open(fileobj=fh, mode="r:*")
    except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError, ValueError) as exc:
        raise ItemError("archive_error", f"cannot read tar archive: {exc}") from exc
    expanded = 0
    ratio_cap = max(limits.max_compression_ratio * compressed_size, 16 * MiB)
    while True:
        try:
            info = tf.next()
        except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError, ValueError) as exc:
            yield Member("(rest of archive)", None, 0, ItemError("archive_error", f"archive is corrupt after {expanded} bytes: {exc}"))
            return
        if info is None:
            return
        name = info.name
        if info.isdir():
            continue
        if info.issym() or info.islnk():
            yield Member(name, None, 0, ItemError("not_a_regular_file", f"link to {info.linkname!r} inside the archive: not followed"))
            continue
        if not info.isfile():
            yield Member(name, None, 0, ItemError("not_a_regular_file", "special file inside the archive: not read"))
            continue
        if expanded + info.size > ratio_cap:
            yield Member(name, None, info.size, ItemError("archive_bomb", f"archive expands beyond {limits.max_compression_ratio:.0f}x its compressed size: expansion stopped"))
            return
        if info.size > limits.max_member_bytes:
            yield Member(name, None, info.size, ItemError("too_large", f"declared size {info.size} exceeds member cap {limits.max_member_bytes}"))
            continue
        refused = budget.take(info.size)
        if refused:
            yield Member(name, None, info.size, refused)
            continue
        try:
            member_fh = tf.extractfile(info)
            data = _read_capped(member_fh, info.size) if member_fh else None
        except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError, ValueError) as exc:
            yield Member(name, None, info.size, ItemError("archive_error", f"cannot read member: {exc}"))
            return
        expanded += info.size
        if data is None:
            yield Member(name, None, info.size, ItemError("archive_error", "member is unreadable"))
            continue
        yield Member(name, data, len(data), _name_error(name))


_STREAMS: dict[str, tuple[Callable[[], _Decompressor], tuple[str, ...]]] = {
    "application/gzip": (lambda: zlib.decompressobj(16 + zlib.MAX_WBITS), (".gz", ".tgz", ".gzip")),
    "application/x-bzip2": (bz2.BZ2Decompressor, (".bz2", ".tbz2")),
    "application/x-xz": (lzma.LZMADecompressor, (".xz", ".txz")),
}


def _decompress_capped(fh: IO[bytes], decomp: _Decompressor, cap: int, peek: bool = False) -> bytes | None:
    """Decompress ``fh`` with a zlib/bz2/lzma decompressor, never holding more than ``cap`` + 1 bytes.

    Returns None when the output exceeds ``cap`` (with ``peek``, the first ``cap`` bytes). Each call is bounded by ``max_length``, so a tiny
    input chunk that expands to gigabytes is never materialised.
    """
    out = bytearray()
    while not decomp.eof:
        chunk = fh.read(_CHUNK)
        if not chunk:
            break
        data = chunk
        while True:
            out += decomp.decompress(data, cap + 1 - len(out))
            if len(out) > cap:
                return bytes(out[:cap]) if peek else None
            if isinstance(decomp, (bz2.BZ2Decompressor, lzma.LZMADecompressor)):
                if decomp.eof or decomp.needs_input:
                    break
                data = b""
            else:  # zlib keeps the input it could not consume within max_length
                data = decomp.unconsumed_tail
                if not data:
                    break
    return bytes(out)


def _single_stream(fh: IO[bytes], media_type: str, outer_name: str, compressed_size: int, limits: Limits, budget: Budget) -> Iterator[Member]:
    """A compressed file that is not a tar (``photo.jpg.gz``): one member, decompressed within caps."""
    make, suffixes = _STREAMS[media_type]
    base = os.path.basename(outer_name)
    name = next((base[: -len(s)] for s in suffixes if base.lower().endswith(s) and len(base) > len(s)), "content")
    cap = min(limits.max_member_bytes, budget.bytes, int(max(limits.max_compression_ratio * compressed_size, _RATIO_FLOOR)))
    try:
        data = _decompress_capped(fh, make(), cap)
    except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError) as exc:
        yield Member(name, None, 0, ItemError("archive_error", f"corrupt compressed stream: {exc}"))
        return
    if data is None:
        yield Member(name, None, cap, ItemError("archive_bomb", f"stream expands beyond {cap} bytes: expansion stopped"))
        return
    refused = budget.take(len(data))
    yield Member(name, None if refused else data, len(data), refused)


def iter_members(
    source: str | bytes, media_type: str, outer_name: str, limits: Limits, budget: Budget
) -> Iterator[Member]:
    """Yield the members of an archive given as a file path (top level) or bytes (nested).

    Raises ItemError("archive_error") when the archive itself cannot be opened; per-member problems are
    yielded as members carrying an error.
    """
    opener: Callable[[], IO[bytes]]
    if isinstance(source, bytes):
        size = len(source)
        opener = lambda: io.BytesIO(source)  # noqa: E731 - a tiny factory reads clearer than a def here
    else:
        size = os.path.getsize(source)
        opener = lambda: open(source, "rb")  # noqa: E731
    with opener() as fh:
        if media_type == "application/zip":
            yield from _zip_members(fh, size, limits, budget)
            return
        if media_type == "application/x-tar":
            yield from _tar_members(fh, size, limits, budget)
            return
        if media_type in _STREAMS:
            if _is_compressed_tar(fh, media_type):
                fh.seek(0)
                yield from _tar_members(fh, size, limits, budget)
            else:
                fh.seek(0)
                yield from _single_stream(fh, media_type, outer_name, size, limits, budget)
            return
    raise ItemError("archive_error", f"{media_type} is not an archive format tripwire expands")


def named_members(
    source: str | bytes, media_type: str, display: str, limits: Limits, budget: Budget
) -> Generator[tuple[str, Member], None, None]:
    """:func:`iter_members` with each member's item path, ``display!/name`` — a name seen twice in one
    archive (zips allow it) gets ``#2``, ``#3`` ... — the one naming the scan and :func:`read_member` share."""
    seen: set[str] = set()
    for member in iter_members(source, media_type, display, limits, budget):
        name = f"{display}!/{member.name}"
        unique, n = name, 1
        while unique in seen:
            n += 1
            unique = f"{name}#{n}"
        seen.add(unique)
        yield unique, member


def read_member(top: str, path: str, limits: Limits) -> bytes | None:
    """The bytes of the archive member stored as item ``path`` (``top!/a/b.jpg``, nested ``top!/x.zip!/c.png``)
    read again from the archive file ``top``, within the same caps as a scan; None when it is not there (any
    more) or cannot be read. Nothing is extracted to disk."""
    from .sniff import SNIFF_BYTES, is_archive, sniff

    try:
        with open(top, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError:
        return None
    source: str | bytes = top
    media_type, display, budget = sniff(head), top, Budget(limits)
    for _ in range(limits.max_archive_depth):
        if not is_archive(media_type):
            return None
        members = named_members(source, media_type, display, limits, budget)
        found: tuple[str, Member] | None = None
        try:
            for name, member in members:
                if name == path or path.startswith(name + "!/"):
                    found = (name, member)
                    break
        except (ItemError, OSError):
            return None
        finally:
            members.close()  # the archive file is closed now, not when the generator is collected
        data = found[1].data if found is not None else None
        if found is None or data is None:
            return None
        if found[0] == path:
            return data
        source, media_type, display = data, sniff(data[:SNIFF_BYTES]), found[0]
    return None


def _is_compressed_tar(fh: IO[bytes], media_type: str) -> bool:
    """Peek at the first decompressed block: a tar header has 'ustar' at offset 257."""
    make, _ = _STREAMS[media_type]
    try:
        head = _decompress_capped(fh, make(), 512, peek=True) or b""
    except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError):
        return False
    return len(head) >= 262 and head[257:262] == b"ustar"
