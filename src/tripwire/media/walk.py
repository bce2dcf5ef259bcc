"""Turn command-line paths into top-level sources: files found by walking, never escaping the root.

Walking is lazy (one folder's entries at a time): a scan walks alongside its workers, a chunk of sources at
a time, and skips finished sources without opening them; a second walk counts the total for progress and
ETA (:mod:`tripwire.pipeline.scan`). Symbolic links met while
walking are never followed, and every one is accounted for with a record of its own: a link inside the root
(``symlink_inside_root``; its target is scanned under its own path, which the message names, so nothing is
hashed twice), a link out of the root (``symlink_outside_root``), a link that loops (``symlink_loop``: it
resolves to itself, or to a folder that contains it) and a dangling link (``unreadable``). Special files
(FIFOs would block a reader forever) and unreadable folders become error sources too, never silently dropped.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from typing import Iterable, Iterator

from ..config import Config
from ..errors import ItemError
from .objectstore import is_uri, walk_uri


@dataclass(frozen=True)
class Source:
    """A top-level input: a regular file to process, or an error to record for ``path``."""

    path: str
    error: ItemError | None = None


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _walk_dir(top: str, root_real: str) -> Iterator[Source]:
    stack = [top]
    seen_dirs: set[str] = set()
    while stack:
        folder = stack.pop()
        real = os.path.realpath(folder)
        if real in seen_dirs:
            continue
        seen_dirs.add(real)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield Source(folder, ItemError("unreadable", f"cannot list folder: {exc.strerror or exc}"))
            continue
        subdirs: list[str] = []
        for entry in entries:
            yield from _classify(entry.path, top, root_real, subdirs)
        stack.extend(reversed(subdirs))


def _link(path: str, root: str, root_real: str) -> Source:
    """The record of a symbolic link met inside ``root`` (whose real path is ``root_real``); never followed."""
    try:
        target = os.path.realpath(path, strict=True)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return Source(path, ItemError("symlink_loop", "symbolic link loop: the link never resolves to a file"))
        target = os.path.realpath(path)
        if not _inside(target, root_real):
            return Source(path, ItemError("symlink_outside_root", f"symbolic link to {target} leaves {root_real}"))
        why = "which does not exist" if exc.errno == errno.ENOENT else f"which cannot be reached: {exc.strerror or exc}"
        return Source(path, ItemError("unreadable", f"symbolic link to {target}, {why}"))
    if not _inside(target, root_real):
        return Source(path, ItemError("symlink_outside_root", f"symbolic link to {target} leaves {root_real}"))
    shown = os.path.normpath(os.path.join(root, os.path.relpath(target, root_real)))  # as the walk names it
    if os.path.isdir(target) and _inside(os.path.realpath(os.path.dirname(path)), target):
        return Source(path, ItemError("symlink_loop", f"symbolic link to {shown}, a folder that contains the link"))
    return Source(path, ItemError("symlink_inside_root",
                                  f"symbolic link to {shown}: not followed, the target is recorded under that path"))


def _classify(path: str, root: str, root_real: str, subdirs: list[str]) -> Iterator[Source]:
    try:
        st = os.lstat(path)
    except OSError as exc:
        yield Source(path, ItemError("unreadable", f"cannot stat: {exc.strerror or exc}"))
        return
    if stat.S_ISLNK(st.st_mode):
        yield _link(path, root, root_real)
        return
    if stat.S_ISDIR(st.st_mode):
        subdirs.append(path)
    elif stat.S_ISREG(st.st_mode):
        yield Source(path)
    else:
        yield Source(path, ItemError("not_a_regular_file", "device, socket or FIFO: not read"))


def walk(paths: Iterable[str], config: Config | None = None) -> Iterator[Source]:
    """Yield sources for files and folders (recursive), in a stable order, absolute paths; lazily.

    ``s3://`` URIs are listed from object storage (:mod:`.objectstore`, settings from ``config``).
    """
    for raw in paths:
        if is_uri(raw):
            yield from (Source(uri, error) for uri, error in walk_uri(raw, config))
            continue
        path = os.path.abspath(raw)
        try:
            st = os.stat(path)  # a link named on the command line is the user's choice: follow it
        except OSError as exc:
            code = "symlink_loop" if exc.errno == errno.ELOOP else "unreadable"
            yield Source(path, ItemError(code, f"cannot open: {exc.strerror or exc}"))
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk_dir(path, os.path.realpath(path))
        elif stat.S_ISREG(st.st_mode):
            yield Source(path)
        else:
            yield Source(path, ItemError("not_a_regular_file", "device, socket or FIFO: not read"))
