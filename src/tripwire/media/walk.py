"""Turn command-line paths into top-level sources: files found by walking, never escaping the root.

Walking happens in the scanning process, before any worker starts, so that the total is known (progress
and ETA) and so that resume can skip finished sources without opening them. Symbolic links are followed
only when they stay inside the root being scanned; links out of it, special files (FIFOs would block a
reader forever) and unreadable folders become error sources instead of being silently dropped.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Iterable, Iterator

from ..errors import ItemError


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
            yield from _classify(entry.path, root_real, subdirs)
        stack.extend(reversed(subdirs))


def _classify(path: str, root_real: str, subdirs: list[str]) -> Iterator[Source]:
    try:
        st = os.lstat(path)
    except OSError as exc:
        yield Source(path, ItemError("unreadable", f"cannot stat: {exc.strerror or exc}"))
        return
    if stat.S_ISLNK(st.st_mode):
        target = os.path.realpath(path)
        if not _inside(target, root_real):
            yield Source(path, ItemError("symlink_outside_root", f"symbolic link to {target} leaves {root_real}"))
        # A link inside the root points at something the walk reaches under its real name: skip it
        # rather than record the same file twice.
        return
    if stat.S_ISDIR(st.st_mode):
        subdirs.append(path)
    elif stat.S_ISREG(st.st_mode):
        yield Source(path)
    else:
        yield Source(path, ItemError("not_a_regular_file", "device, socket or FIFO: not read"))


def walk(paths: Iterable[str]) -> Iterator[Source]:
    """Yield sources for files and folders (recursive), in a stable order, absolute paths."""
    for raw in paths:
        path = os.path.abspath(raw)
        try:
            st = os.stat(path)  # a link named on the command line is the user's choice: follow it
        except OSError as exc:
            yield Source(path, ItemError("unreadable", f"cannot open: {exc.strerror or exc}"))
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk_dir(path, os.path.realpath(path))
        elif stat.S_ISREG(st.st_mode):
            yield Source(path)
        else:
            yield Source(path, ItemError("not_a_regular_file", "device, socket or FIFO: not read"))
