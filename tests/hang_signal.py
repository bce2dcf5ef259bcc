"""A plug-in signal type whose extractor never finishes on marked input: a decoder that hangs, on demand.

Real inputs that hang a decoder are version-dependent (a file that takes Pillow seconds today may take
milliseconds after the next optimisation), so the service's per-item time limit is tested with an extractor
that blocks for a minute whenever the item's bytes carry :data:`MARKER`. Worker processes load it through
``[signals] types`` like any plug-in.
"""

from __future__ import annotations

import time

from tripwire.media.item import Item
from tripwire.signals.types.base import SignalType

MARKER = b"tripwire-test-hangs-here"
SPEC = "hang_signal:HangSignal"


class HangExtractor:
    name = "test_hang"
    version = "1"
    produces: tuple[str, ...] = ()

    def extract(self, item: Item) -> dict[str, object]:
        if item.data is not None and MARKER in item.data:
            time.sleep(60)
        return {}


class HangSignal(SignalType):
    name = "test_hang"
    display_name = "TEST_HANG"
    matching = None

    def extractor(self, config=None):
        return HangExtractor()
