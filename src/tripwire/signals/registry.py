"""The registry of signal types: every name, validator, distance and index choice is looked up here.

Adding a signal type is one module under :mod:`tripwire.signals.types` and one ``registry.register`` line
below. A type that lives outside tripwire is registered with one ``registry.register`` call, and named in
the configuration (``[signals] types = ["package.module:Class"]``) so that scan worker processes, which
start from a fresh interpreter, register it too (:meth:`SignalRegistry.configure`). Hash lists arrive with every
spelling of every name ("SHA-1", "HASH_MD5", "video_md5", "PhotoDNA"): :meth:`SignalRegistry.resolve`
maps them to the canonical name, so a value imported from VICS and the same value from a CSV are the same
entry. Names nobody registered are kept as lowercase snake case and their values verbatim (opaque): a list
is never silently shortened.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Iterator

from .types.base import OpaqueSignal, SignalType
from .types.md5 import Md5Signal
from .types.model import ModelAutoV1Signal, ModelAutoV3Signal, ModelSha256Signal
from .types.opaque import PhotoDnaSignal, TmkPdqfSignal
from .types.pdq import PdqSignal
from .types.sha1 import Sha1Signal
from .types.sha256 import Sha256Signal

_TYPE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.+-]{0,31}$")
_HEX = re.compile(r"^[0-9a-f]+$")


class AmbiguousSignalType(ValueError):
    """The list's type cannot be inferred; the whole import needs an explicit ``--signal-type``."""


@lru_cache(maxsize=4096)
def _key(name: str) -> str:
    """The comparison key of a type name or alias (cached: every query of every scanned item asks)."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


class SignalRegistry:
    """Signal types by canonical name, with every alias."""

    def __init__(self) -> None:
        self._types: dict[str, SignalType] = {}
        self._aliases: dict[str, str] = {}

    def register(self, signal_type: SignalType | type[SignalType]) -> SignalType:
        """Add a type (an instance or a class taking no arguments); its name and aliases must be free."""
        st = signal_type() if isinstance(signal_type, type) else signal_type
        keys = {_key(st.name), *(_key(a) for a in st.aliases)}
        taken = sorted(k for k in keys if k in self._aliases)
        if st.name in self._types or taken:
            raise ValueError(f"signal type {st.name!r} clashes with a registered name ({', '.join(taken) or st.name})")
        self._types[st.name] = st
        self._aliases.update({k: st.name for k in keys})
        return st

    def unregister(self, name: str) -> None:
        """Remove a type (tests that register their own)."""
        st = self._types.pop(self.resolve(name))
        self._aliases = {k: v for k, v in self._aliases.items() if v != st.name}

    def configure(self, config: Any = None) -> None:
        """Register the types named by ``[signals] types`` that are not registered yet (idempotent)."""
        import importlib

        section = ((getattr(config, "sections", None) or {}).get("signals") or {}) if config is not None else {}
        for spec in section.get("types") or ():
            module, _, attr = str(spec).partition(":")
            try:
                cls = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as exc:
                from ..errors import UsageError

                raise UsageError(f"signals.types: cannot load {spec!r}: {exc}") from exc
            if cls.name not in self._types:
                self.register(cls)

    # -- lookup ------------------------------------------------------------------------------------------

    def resolve(self, name: str) -> str:
        """The canonical name for any spelling; unknown names become lowercase snake case.

        >>> registry.resolve("SHA-1"), registry.resolve("HASH_PDQ"), registry.resolve("PhotoDNA")
        ('sha1', 'pdq', 'photodna')
        """
        raw = (name or "").strip()
        if not raw:
            raise ValueError("empty signal type")
        found = self._aliases.get(_key(raw))
        if found is not None:
            return found
        snake = re.sub(r"[^a-z0-9]+", "_", raw.lower()).strip("_")
        if not snake or not _TYPE_NAME.match(snake):
            raise ValueError(f"invalid signal type {name!r}")
        return snake

    def get(self, name: str) -> SignalType:
        """The registered type for a canonical name or alias; KeyError when none is registered."""
        found = self._aliases.get(_key(name or ""))
        if found is None:
            raise KeyError(name)
        return self._types[found]

    def kind(self, name: str) -> SignalType:
        """The type of a resolved name: the registered one, or an opaque type for a name nobody registered."""
        try:
            return self.get(name)
        except KeyError:
            return OpaqueSignal(self.resolve(name))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _key(name) in self._aliases

    def __iter__(self) -> Iterator[SignalType]:
        return iter(self.all())

    def all(self) -> list[SignalType]:
        return list(self._types.values())

    def matchable(self) -> list[SignalType]:
        """Types the matcher can look up, in registration order."""
        return [t for t in self._types.values() if t.matching is not None]

    def names(self, matching: str | None = None) -> tuple[str, ...]:
        """Canonical names of the matchable types (of one ``matching`` kind when given)."""
        return tuple(t.name for t in self.matchable() if matching is None or t.matching == matching)

    # -- values ------------------------------------------------------------------------------------------

    def normalise_value(self, signal_type: str, value: Any) -> str:
        """A validated value for ``signal_type`` (a canonical name); ValueError with a readable message."""
        return self.kind(signal_type).normalise(value)

    def infer(self, value: str) -> str:
        """The type of a bare hex digest from its length (32 md5, 40 sha1); 64 is ambiguous (sha256 or pdq)."""
        text = value.strip().lower()
        if not _HEX.match(text or "-"):
            raise ValueError(f"{value.strip()[:80]!r} is not a hex digest")
        same = [t for t in self.matchable() if t.hex_length == len(text)]
        if len(same) == 1 and same[0].inferable:
            return same[0].name
        if len(same) > 1:
            names = " or ".join(t.display_name for t in same)
            raise AmbiguousSignalType(
                f"a {len(text)}-character hex value may be {names}: pass the signal type explicitly")
        raise ValueError(f"cannot infer the type of a {len(text)}-character hex value")

    def display_name(self, signal_type: str, value: str | None = None) -> str:
        """The VICS ``HashName`` of a type (unknown types: upper case); with ``value``, of that value's form."""
        kind = self.kind(signal_type)
        return kind.display_name if value is None else kind.display_name_for(value)

    # -- other systems' names ---------------------------------------------------------------------------

    def from_te(self, te_name: str) -> str | None:
        """The canonical type for a python-threatexchange name (``video_md5`` -> md5), None when unknown."""
        return next((t.name for t in self._types.values() if t.te_name == te_name), None)

    def te_classes(self) -> dict[str, Any]:
        """{canonical name: python-threatexchange signal class} for the types ThreatExchange knows."""
        return {t.name: cls for t in self._types.values() if (cls := t.te_class()) is not None}

    def hma_names(self) -> dict[str, str]:
        """{name an HMA client may send: canonical name}: HMA's own names and tripwire's matchable names."""
        out = {t.hma_name: t.name for t in self.matchable() if t.hma_name}
        out.update({t.name: t.name for t in self.matchable()})
        return out


registry = SignalRegistry()
registry.register(Md5Signal)
registry.register(Sha1Signal)
registry.register(Sha256Signal)
registry.register(PdqSignal)
registry.register(PhotoDnaSignal)
registry.register(TmkPdqfSignal)
registry.register(ModelSha256Signal)
registry.register(ModelAutoV3Signal)
registry.register(ModelAutoV1Signal)
