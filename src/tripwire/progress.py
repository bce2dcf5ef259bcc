"""Progress for long work: a Rich bar (files/s, ETA) on a terminal, periodic log lines when piped."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ScanProgress:
    """Counts sources and items; renders a bar on a TTY, a line every ``interval`` seconds otherwise.

    ``total`` may be unknown at first (a scan lists its inputs lazily and counts them alongside): the rate
    shows at once, the ETA from :meth:`set_total` on. Sources an earlier run finished count as ``skipped``:
    towards the total, not towards the rate.
    """

    def __init__(self, total: int | None, quiet: bool = False, stream: TextIO | None = None, interval: float = 10.0) -> None:
        self.total = total
        self.done = 0
        self.skipped = 0
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

    def set_total(self, total: int) -> None:
        """The number of sources, once counted (called from the counting thread: a plain assignment)."""
        self.total = total

    def item(self, n: int = 1) -> None:
        self.items += n

    def skip(self) -> None:
        self.skipped += 1
        self._show()

    def source_done(self) -> None:
        self.done += 1
        self._show()

    def _show(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task, total=self.total, completed=self.done + self.skipped, rate=self.rate, items=self.items)
        elif not self.quiet and time.monotonic() - self._last_line >= self.interval:
            self._last_line = time.monotonic()
            if self.total is None:
                eta, of = "counting", ""
            else:
                eta = f"{(self.total - self.done - self.skipped) / self.rate:.0f} s" if self.rate else "—"
                of = f"/{self.total}"
            print(f"scan: {self.done + self.skipped}{of} files ({self.skipped} already done), {self.items} items, "
                  f"{self.rate:.1f} files/s, ETA {eta}", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
