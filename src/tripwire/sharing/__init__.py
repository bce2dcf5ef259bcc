"""Signal sharing with peers: hashes, URLs, account identifiers and keywords, only after a human decision.

:mod:`.indicators` turns reviewed items (and confirmed trade signals) into :class:`~.indicators.SharedSignal` and
writes them in the formats peers load: python-threatexchange's local-file exchange (what HMA and the
``threatexchange`` CLI read), the ThreatExchange dataset CSV, and a Lantern-style CSV; it also reads them back
into a bank. (Not imported here: threatexchange is slow to import and the command line loads it on demand.)
"""
