"""A process and its descendants, read from /proc: the server and its workers, for RSS and CPU accounting."""

from __future__ import annotations

import os


def process_tree(root: int) -> list[int]:
    """``root`` and every descendant (``/proc/<pid>/task/*/children``); processes that vanish are skipped."""
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except OSError:
            pass
    return out
