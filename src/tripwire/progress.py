"""Progress for long work: a Rich bar (files/s, ETA) on a terminal, periodic log lines when piped."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ScanProgress:
    """Counts sources and items; renders a bar on a TTY, a line every ``interval`` seconds otherwise."""

    def __init__(self, total: int, quiet: bool = False, stream: TextIO | None = None, interval: float = 10.0) -> None:
        self.total = total
        self.done = 0
        self.items = 0
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.interval = interval
        self.started = time.monotonic()
        self._last_line = self.started
        self._bar = None
        if not quiet and self.stream.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            from .termsafe import console

            self._bar = Progress(
                TextColumn("[bold]scanning"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:.1f} files/s"), TextColumn("{task.fields[items]} items"),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                console=console(file=self.stream), transient=False,
            )
            self._task = self._bar.add_task("scan", total=total, rate=0.0, items=0)
            self._bar.start()

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def item(self) -> None:
        self.items += 1

    def source_done(self) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, rate=self.rate, items=self.items)
        elif not self.quiet and time.monotonic() - self._last_line >= self.interval:
            self._last_line = time.monotonic()
            remaining = (self.total - self.done) / self.rate if self.rate else 0
            print(f"scan: {self.done}/{self.total} files, {self.items} items, {self.rate:.1f} files/s, ETA {remaining:.0f} s",
                  file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
