"""tripwire: find known, AI-generated and traded abuse material, with evidence.

The default pipeline keeps digests, hashes and derived facts only; it never stores media.
"""

__version__ = "0.1.0"
