"""Signal types: one class per kind of hash, registered in :mod:`tripwire.signals.registry`."""
