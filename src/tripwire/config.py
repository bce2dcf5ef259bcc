"""Configuration: built-in defaults, overridden by a TOML file, overridden by environment variables.

No configuration is needed for the default run. A TOML file (``--config`` or ``$TRIPWIRE_CONFIG``) may set
any field of :class:`Limits` under ``[limits]``; environment variables ``TRIPWIRE_LIMITS_<FIELD>`` win over
the file. Unknown keys are an error, so a typo never silently leaves a limit at its default.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import UsageError

MiB = 1024 * 1024

#: memory the decoded pixels of one item may take, all copies together (issue 11: a 570 KB PNG declaring
#: 14000x14000 pixels peaked at 6.1 GB); ``Limits.max_decode_pixels`` is derived from it
DECODE_MEMORY_BUDGET = 1024 * MiB
#: peak bytes per decoded pixel on the hashing path, all held at once: the decode (up to 4, RGBA) + its RGB
#: conversion (3) + the array PDQ reads (3) + one turned copy for the rotation passes (3) + pdqhash's two float32
#: working buffers (8), rounded up to leave room for a stealth/watermark reader's array
PEAK_BYTES_PER_PIXEL = 24


@dataclass(frozen=True)
class Limits:
    """Caps that keep hostile input from exhausting memory, disk or time."""

    #: files (and archive members) larger than this are digested but not decoded
    max_decode_bytes: int = 256 * MiB
    #: images declaring more pixels than this are refused before decoding (Pillow's own cap also applies);
    #: a bound on decoding *time* (memory is bounded by ``max_decode_pixels`` whatever the size)
    max_pixels: int = 200_000_000
    #: the most pixels held decoded for one item: ``DECODE_MEMORY_BUDGET // PEAK_BYTES_PER_PIXEL`` (44.7
    #: million; 1 GiB / 24 bytes), so one item's pixels stay within the budget and a worker's peak RSS within
    #: ~1.5 GB (bench/memory.py). Larger images are decoded reduced for hashing (JPEG: DCT scaling; PNG: strip
    #: by strip, box-reduced), refused as ``too_large`` by the exact-pixel readers (stealth copies, signatures)
    #: and, in formats without a reduced decoder (WebP, GIF, TIFF, HEIC ...), refused outright. Lowering it
    #: lowers the memory proportionally; raise it with the budget: ~24 bytes a pixel.
    max_decode_pixels: int = DECODE_MEMORY_BUDGET // PEAK_BYTES_PER_PIXEL
    #: archive members larger than this (uncompressed) are not read
    max_member_bytes: int = 512 * MiB
    #: total uncompressed bytes read from one top-level archive, nested archives included
    max_archive_total_bytes: int = 4096 * MiB
    #: members whose uncompressed/compressed ratio exceeds this (and are > 1 MiB) are treated as bombs
    max_compression_ratio: float = 200.0
    #: most members expanded from one top-level archive
    max_archive_members: int = 1_000_000
    #: archives inside archives deeper than this are recorded, not expanded
    max_archive_depth: int = 5
    #: seconds one item may take in a worker before it is killed and recorded as a timeout
    item_timeout_s: float = 60.0
    #: videos (and animated images) declaring a longer duration are refused before decoding (``too_large``)
    max_video_seconds: float = 3 * 3600.0
    #: most frames decoded from one video; a stream that goes on past it is refused (``too_large``)
    max_video_frames: int = 200_000
    #: most pixels of one video frame (8K UHD is 33 million); larger frames are refused before decoding
    max_video_frame_pixels: int = 40_000_000
    #: most streams in one container: thousands of streams are a parser attack, not a video
    max_video_streams: int = 64
    #: seconds of decoding for one video before it is given up as a ``timeout`` (below ``item_timeout_s``,
    #: so the item gets a clear error record instead of a killed worker)
    max_video_decode_s: float = 45.0


@dataclass(frozen=True)
class Config:
    limits: Limits = field(default_factory=Limits)
    #: the raw TOML mapping, for sections owned by other modules (provenance, banks, policy)
    sections: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BankSettings:
    """The ``[banks]`` section, parsed once for the matcher, its index and the PDQ variant extractor."""

    #: where the persistent PDQ index lives (``$TRIPWIRE_BANKS_INDEX_PATH`` wins); None: next to the database
    index_path: str | None = None
    #: seconds between checks for bank changes in a long-running process
    refresh_interval: float = 1.0
    #: most matches reported per item (closest first)
    max_matches_per_item: int = 50
    #: query every rotation/flip of an image, and the image without its solid borders
    variants: bool = True
    unletterbox: bool = True
    #: 4: exact rotation/flip hashes (4 PDQ passes); 1: pdqhash's single-DCT variants
    variant_passes: int = 4
    #: vPDQ: a video matches a bank entry when at least this share of its frames (query match) and of the
    #: entry's frames (compared match) have a counterpart; threatexchange's defaults, 80% and 0%
    vpdq_query_match: float = 80.0
    vpdq_compared_match: float = 0.0
    #: per bank name: (query match, compared match), from ``[banks.vpdq_thresholds] "name" = {query_match,
    #: compared_match}``
    vpdq_thresholds: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    #: the service's (cached) matcher keeps look-up tables on large PDQ segments: several times faster
    #: look-ups for 96 more bytes per hash (docs/pdq-index.md); scans and the CLI always scan
    index_accel: bool = True

    def vpdq_thresholds_for(self, bank: str) -> tuple[float, float]:
        """(query match %, compared match %) a vPDQ match in ``bank`` needs."""
        return self.vpdq_thresholds.get(bank, (self.vpdq_query_match, self.vpdq_compared_match))

    @classmethod
    def from_config(cls, config: "Config | None" = None, environ: Mapping[str, str] | None = None) -> "BankSettings":
        section = ((config.sections if config is not None else {}) or {}).get("banks") or {}
        env: Mapping[str, str] = os.environ if environ is None else environ
        passes = int(section.get("variant_passes", cls.variant_passes))
        if passes not in (1, 4):
            raise UsageError(f"banks.variant_passes must be 1 or 4, not {passes}")
        query_match = _percent("banks.vpdq_query_match", section.get("vpdq_query_match", cls.vpdq_query_match))
        compared_match = _percent("banks.vpdq_compared_match",
                                  section.get("vpdq_compared_match", cls.vpdq_compared_match))
        per_bank: dict[str, tuple[float, float]] = {}
        for bank, values in (section.get("vpdq_thresholds") or {}).items():
            if not isinstance(values, dict):
                raise UsageError(f"banks.vpdq_thresholds.{bank}: expected {{query_match, compared_match}}")
            per_bank[str(bank)] = (
                _percent(f"banks.vpdq_thresholds.{bank}.query_match", values.get("query_match", query_match)),
                _percent(f"banks.vpdq_thresholds.{bank}.compared_match", values.get("compared_match", compared_match)))
        return cls(
            index_path=env.get("TRIPWIRE_BANKS_INDEX_PATH") or section.get("index_path") or None,
            refresh_interval=float(section.get("refresh_interval", cls.refresh_interval)),
            max_matches_per_item=int(section.get("max_matches_per_item", cls.max_matches_per_item)),
            variants=bool(section.get("variants", cls.variants)),
            unletterbox=bool(section.get("unletterbox", cls.unletterbox)),
            variant_passes=passes,
            vpdq_query_match=query_match,
            vpdq_compared_match=compared_match,
            vpdq_thresholds=per_bank,
            index_accel=bool(section.get("index_accel", cls.index_accel)),
        )


#: the ``[scan] pdq_decode`` choices (:class:`ScanSettings`)
PDQ_DECODES = ("exact", "draft")


@dataclass(frozen=True)
class ScanSettings:
    """The ``[scan]`` section, parsed where the PDQ extractors are built (``signals/types/pdq.py``), so every
    engine that builds extractors from the config (local workers, Ray actors, the service's scan) follows it."""

    #: how images are decoded for ``pdq`` and its variants: ``exact`` (full size: the hash ThreatExchange and
    #: HMA compute, bit for bit) or ``draft`` (JPEGs DCT-scaled to >= 512 px a side: 2-4x faster on photos,
    #: within ~10 bits of the exact hash, and records say so with ``pdq_decode: "draft"``)
    pdq_decode: str = "exact"

    @classmethod
    def from_config(cls, config: "Config | None" = None) -> "ScanSettings":
        section = ((config.sections if config is not None else {}) or {}).get("scan") or {}
        unknown = sorted(set(section) - {f.name for f in dataclasses.fields(cls)})
        if unknown:  # a typo must not leave a setting at its default unnoticed
            raise UsageError(f"unknown setting scan.{unknown[0]} (known: {', '.join(f.name for f in dataclasses.fields(cls))})")
        decode = section.get("pdq_decode", cls.pdq_decode)
        if decode not in PDQ_DECODES:
            raise UsageError(f"scan.pdq_decode (--pdq-decode) must be {' or '.join(repr(d) for d in PDQ_DECODES)}, "
                             f"not {decode!r}")
        return cls(pdq_decode=decode)


def with_scan_settings(config: Config, pdq_decode: str | None = None) -> Config:
    """``config`` with ``[scan]`` set from a command-line option (``None``: as configured), or forced by a front
    that must hash exactly; the result is checked as the file's values are, so a bad value fails here."""
    section = dict((config.sections or {}).get("scan") or {})
    if pdq_decode is not None:
        section["pdq_decode"] = pdq_decode
    out = dataclasses.replace(config, sections={**(config.sections or {}), "scan": section})
    ScanSettings.from_config(out)
    return out


def _percent(name: str, value: Any) -> float:
    try:
        pct = float(value)
    except (TypeError, ValueError):
        pct = -1.0
    if not 0 <= pct <= 100:
        raise UsageError(f"{name}: expected a percentage between 0 and 100, got {value!r}")
    return pct


def _coerce(name: str, current: Any, value: Any) -> Any:
    kind = type(current)
    try:
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"limits.{name}: expected {kind.__name__}, got {value!r}") from exc


def load_config(path: str | Path | None = None, environ: dict[str, str] | None = None) -> Config:
    """Build the effective configuration (defaults < TOML file < environment)."""
    environ = dict(os.environ if environ is None else environ)
    path = path or environ.get("TRIPWIRE_CONFIG")
    data: dict[str, Any] = {}
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"cannot read config file {path}: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"invalid TOML in {path}: {exc}") from exc
    defaults = Limits()
    overrides: dict[str, Any] = {}
    known = {f.name for f in dataclasses.fields(Limits)}
    for key, value in (data.get("limits") or {}).items():
        if key not in known:
            raise UsageError(f"unknown setting limits.{key} in {path}")
        overrides[key] = _coerce(key, getattr(defaults, key), value)
    for key in known:
        env = environ.get(f"TRIPWIRE_LIMITS_{key.upper()}")
        if env is not None:
            overrides[key] = _coerce(key, getattr(defaults, key), env)
    return Config(limits=dataclasses.replace(defaults, **overrides), sections=data)
