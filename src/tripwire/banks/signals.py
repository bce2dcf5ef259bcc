"""Compatibility names for modules not yet moved to :mod:`tripwire.signals.registry` (delete at merge).

``banks/cli.py``, ``report/vics_case.py``, ``service/bankops.py`` and ``service/routes_banks.py`` still
import these; each maps onto the registry one to one.
"""

from __future__ import annotations

from ..signals.registry import AmbiguousSignalType, registry

__all__ = ["AmbiguousSignalType", "display_name", "normalise_signal_type", "normalise_value"]

normalise_signal_type = registry.resolve
normalise_value = registry.normalise_value
display_name = registry.display_name
