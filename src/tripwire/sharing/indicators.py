"""Shared signals: what a platform may give peers once a person has confirmed it, in the formats peers load.

Sources (both require a recorded human decision; nothing automated is ever exported):

* reviewed items whose latest decision is ``confirmed_abuse`` or ``ai_generated``
  (:func:`tripwire.report.reviewed.reviewed_items`): the file's MD5, SHA-256 and PDQ (when its quality
  reaches ``min_pdq_quality``), the post URL and profile URL, the account (``platform:id``) and any keywords
  the review console stored in the item context (``extra.keywords``);
* confirmed trade signals (:class:`tripwire.trade.confirmed.Signal`, built from a ``tripwire posts scan`` and
  the reviewers' decisions file), which arrive here already shared (anything with a ``shared()`` method
  returning a :class:`SharedSignal`): trade sits above sharing and converts its own signals.

Each signal carries a category (the decision, or the trade category), a confidence in [0, 1] (1.0 for the
file's own hashes; lower for context around it: a URL or account that carried confirmed material, 0.9; a
keyword, 0.6 — keywords are weak indicators on their own), the provenance label of the file (``ai_generated``,
``camera_original``, ``unknown``; empty for non-media signals) and where it came from. Reviewer names are
never written into shared files. A PDQ from a draft-decode scan (``pdq_decode: "draft"``) is within ~10 bits
of the hash partners compute but not that hash: its note says so (``te-csv``: the tag ``pdq_decode:draft``;
``te`` has no room, so ``tripwire signals export`` warns).

Formats:

``te``
    python-threatexchange's local-file exchange (``LocalFileSignalExchangeAPI``): ``<signal_type> <signal>``
    per line, with threatexchange's type names and validation — ``pdq``, ``video_md5`` (threatexchange 1.2 has
    one MD5 type; it applies to any file's bytes), ``video_sha256``, ``url``, and keywords as ``trend_query``
    (``{"and":[{"or":["keyword"]}],"not":[]}``). A peer loads it with
    ``threatexchange config collab edit local_file --create --filename FILE NAME`` and ``threatexchange fetch``.
    The format has no room for metadata and no account or model type: accounts and model hashes are counted
    as skipped.
``te-csv``
    the CSV ``threatexchange dataset -P --csv`` prints (``signal_type,signal_str,collab,category,tags``) with
    ``POSITIVE_CLASS`` and the metadata as space-separated tags (``category:confirmed_abuse confidence:1.00
    provenance:ai_generated``).
``lantern``
    a flat CSV, one indicator per row, every type including accounts and model hashes (``model_sha256``
    full or AutoV2 prefix, ``model_autov3``, ``model_autov1``; the note is the model's file name): ``signal_type, signal_value,
    category, confidence, provenance_label, platform, account_handle, source, confirmed_at, note``.
``jsonl``
    one JSON object per signal (all fields).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from typing import IO, Any, Iterable, Iterator, Mapping, Protocol, Sequence, TypedDict

from threatexchange.signal_type.trend_query import TrendQuerySignal
from threatexchange.signal_type.url import URLSignal

from .. import csvsafe
from ..banks.importer import RawEntry, RowError
from ..errors import UsageError
from ..jsonl import JsonlError, read_jsonl
from ..records import PDQ_DRAFT_NOTE
from ..report.reviewed import REPORTABLE, ReviewedItem, reviewed_items
from ..signals.registry import registry
from ..store.db import Database

#: model-file hashes (:mod:`tripwire.signals.types.model`): shared from model banks, whose entries a person put
#: there with ``bank add-model`` or an import; never from the models an item's metadata names (every AI image
#: names a base checkpoint: naming is not evidence)
MODEL_SIGNAL_TYPES = ("model_sha256", "model_autov3", "model_autov1")
SIGNAL_TYPES = ("md5", "sha256", "pdq", "url", "account", "keyword", *MODEL_SIGNAL_TYPES)
FORMATS = ("te", "te-csv", "lantern", "jsonl")
#: tripwire type -> python-threatexchange signal type class
TE_CLASSES = {**{k: v for k, v in registry.te_classes().items() if k in SIGNAL_TYPES}, "url": URLSignal,
              "keyword": TrendQuerySignal}
FROM_TE = {cls.get_name(): ours for ours, cls in TE_CLASSES.items()}
LANTERN_COLUMNS = ("signal_type", "signal_value", "category", "confidence", "provenance_label", "platform",
                   "account_handle", "source", "confirmed_at", "note")
TE_CSV_COLUMNS = ("signal_type", "signal_str", "collab", "category", "tags")
HASH_CONFIDENCE = 1.0
CONTEXT_CONFIDENCE = 0.9
KEYWORD_CONFIDENCE = 0.6


@dataclass(frozen=True)
class SharedSignal:
    """One shareable indicator (normalised value: lower-case hex, ``platform:id`` for accounts)."""

    type: str
    value: str
    category: str
    confidence: float
    provenance: str = ""
    source: str = ""
    confirmed_at: str | None = None
    platform: str | None = None
    handle: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.type not in SIGNAL_TYPES:
            raise ValueError(f"signal type must be one of {', '.join(SIGNAL_TYPES)}, not {self.type!r}")
        if not 0.0 <= float(self.confidence) <= 1.0:
            raise ValueError("confidence must be between 0 and 1")
        if not self.value:
            raise ValueError("empty signal value")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def draft_pdq(self) -> bool:
        """A PDQ from the draft decode (its note says so): not the hash partners compute for the file."""
        return self.type == "pdq" and self.note == PDQ_DRAFT_NOTE


def keyword_query(keyword: str) -> str:
    """A keyword as threatexchange's trend query (whole-word match)."""
    return json.dumps({"and": [{"or": [keyword]}], "not": []}, ensure_ascii=False, separators=(",", ":"))


def keyword_of_query(query: str) -> str | None:
    """The keyword of a one-term trend query (what :func:`keyword_query` writes), else None."""
    try:
        data = json.loads(query)
        terms = data["and"]
        if len(terms) == 1 and len(terms[0]["or"]) == 1 and not data.get("not"):
            return str(terms[0]["or"][0])
    except (ValueError, KeyError, TypeError, IndexError):
        return None
    return None


class _Confirmation(TypedDict):
    """The fields every signal of one confirmed item shares."""

    category: str
    source: str
    confirmed_at: str | None


def _iso(dt: Any) -> str | None:
    return dt.isoformat() if dt is not None and hasattr(dt, "isoformat") else (str(dt) if dt else None)


def signals_of_item(item: ReviewedItem, *, min_pdq_quality: int = 50,
                    categories: Mapping[str, str] | None = None) -> list[SharedSignal]:
    """The signals one human-confirmed item yields."""
    if item.decision.decision not in REPORTABLE:
        raise UsageError(f"item {item.item_id}: decision {item.decision.decision!r} does not allow sharing")
    category = (categories or {}).get(item.decision.decision, item.decision.decision)
    common: _Confirmation = {"category": category, "source": f"tripwire case {item.case_name}",
                             "confirmed_at": _iso(item.decision.created_at)}
    label = item.provenance_label
    out: list[SharedSignal] = []
    if item.md5:
        out.append(SharedSignal("md5", item.md5, confidence=HASH_CONFIDENCE, provenance=label, **common))
    if item.sha256:
        out.append(SharedSignal("sha256", item.sha256, confidence=HASH_CONFIDENCE, provenance=label, **common))
    if item.pdq and (item.pdq_quality is None or item.pdq_quality >= min_pdq_quality):
        out.append(SharedSignal("pdq", item.pdq, confidence=HASH_CONFIDENCE, provenance=label,
                                note=PDQ_DRAFT_NOTE if item.pdq_draft else "", **common))
    ctx = item.context
    platform = ctx.get("platform") or None
    for url in (ctx.get("url"), ctx.get("profile_url")):
        if isinstance(url, str) and url.strip():
            out.append(SharedSignal("url", url.strip(), confidence=CONTEXT_CONFIDENCE, platform=platform, **common))
    if ctx.get("account_id") and platform:
        out.append(SharedSignal("account", f"{str(platform).lower()}:{ctx['account_id']}", confidence=CONTEXT_CONFIDENCE,
                                platform=platform, handle=ctx.get("account_handle") or None, **common))
    for keyword in item.extra.get("keywords") or []:
        if isinstance(keyword, str) and keyword.strip():
            out.append(SharedSignal("keyword", keyword.strip(), confidence=KEYWORD_CONFIDENCE, platform=platform, **common))
    return out


def model_bank_signals(db: Database, bank: str, *, category: str = "banked_model") -> list[SharedSignal]:
    """The model hashes of a model bank as signals (each entry was put there by a person: ``bank add-model``
    or an import); the entry's source id (the file name) is the note, its category the category when set."""
    from ..banks.store import BankStore

    store = BankStore(db)
    info = store.get_bank(bank)
    out: list[SharedSignal] = []
    for e in store.iter_entries(info.id):
        if e.signal_type in MODEL_SIGNAL_TYPES:
            out.append(SharedSignal(e.signal_type, e.value, e.category or category, HASH_CONFIDENCE,
                                    source=f"tripwire bank {info.name}", confirmed_at=_iso(e.added_at),
                                    note=e.source_id or ""))
    return out


class Shareable(Protocol):
    """Something a person confirmed elsewhere (a trade signal) that knows its shared form."""

    def shared(self) -> SharedSignal: ...


def merge(signals: Iterable[SharedSignal]) -> list[SharedSignal]:
    """One signal per (type, value): the highest confidence wins, sources and categories are combined."""
    by_key: dict[tuple[str, str], SharedSignal] = {}
    for s in signals:
        key = (s.type, s.value)
        old = by_key.get(key)
        if old is None:
            by_key[key] = s
            continue
        best = s if s.confidence > old.confidence else old
        cats = sorted({*old.category.split(";"), *s.category.split(";")} - {""})
        sources = sorted({*old.source.split("; "), *s.source.split("; ")} - {""})
        prov = old.provenance if old.provenance == s.provenance else ";".join(sorted({old.provenance, s.provenance} - {""}))
        by_key[key] = SharedSignal(best.type, best.value, ";".join(cats), best.confidence, prov, "; ".join(sources),
                                   min(x for x in (old.confirmed_at, s.confirmed_at) if x) if (old.confirmed_at or s.confirmed_at) else None,
                                   best.platform or old.platform or s.platform, best.handle or old.handle or s.handle,
                                   best.note or old.note or s.note)
    return sorted(by_key.values(), key=lambda s: (SIGNAL_TYPES.index(s.type), s.value))


def collect_signals(db: Database | None, *, case: str | None = None, item_ids: Sequence[int] | None = None,
                    trade_signals: Iterable[Shareable] = (), min_pdq_quality: int = 50,
                    categories: Mapping[str, str] | None = None,
                    model_banks: Sequence[str] = ()) -> list[SharedSignal]:
    """Signals from human-confirmed items (a case, or named items that must all be confirmed), trade, and the
    model hashes of ``model_banks``."""
    out: list[SharedSignal] = []
    if model_banks:
        if db is None:
            raise UsageError("model bank signals need the database")
        from ..banks.store import BankError

        for bank in model_banks:
            try:
                out.extend(model_bank_signals(db, bank))
            except BankError as exc:
                raise UsageError(str(exc)) from exc
    if case is not None or item_ids is not None:
        if db is None:
            raise UsageError("signals of a case or of items need the database")
        with db.session() as s:
            items = reviewed_items(s, case=case, item_ids=item_ids, allowed=REPORTABLE)
        for item in items:
            out.extend(signals_of_item(item, min_pdq_quality=min_pdq_quality, categories=categories))
    out.extend(t.shared() for t in trade_signals)
    return merge(out)


# -- writing -----------------------------------------------------------------------------------------


def _tag(text: str) -> str:
    return "_".join(str(text).split())


def te_line(signal: SharedSignal) -> str | None:
    """``<te type> <signal>`` as threatexchange reads it, or None when the format cannot carry it."""
    cls = TE_CLASSES.get(signal.type)
    if cls is None:
        return None
    value = keyword_query(signal.value) if signal.type == "keyword" else signal.value
    if "\n" in value or "\r" in value:
        return None
    try:
        value = cls.validate_signal_str(value)
    except (ValueError, KeyError, TypeError):
        return None
    return f"{cls.get_name()} {value}"


def write_signals(signals: Iterable[SharedSignal], fmt: str, out: IO[str], collab: str = "tripwire") -> tuple[int, dict[str, int]]:
    """Write ``signals`` as ``fmt``; returns (written, skipped counts by type)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown signal format {fmt!r} (expected one of {', '.join(FORMATS)})")
    written = 0
    skipped: dict[str, int] = {}
    if fmt == "te":
        for s in signals:
            line = te_line(s)
            if line is None:
                skipped[s.type] = skipped.get(s.type, 0) + 1
                continue
            out.write(line + "\n")
            written += 1
    elif fmt == "te-csv":
        w = csvsafe.writer(out, lineterminator="\n")
        w.writerow(TE_CSV_COLUMNS)
        for s in signals:
            line = te_line(s)
            if line is None:
                skipped[s.type] = skipped.get(s.type, 0) + 1
                continue
            te_type, value = line.split(" ", 1)
            tags = [f"category:{_tag(s.category)}", f"confidence:{s.confidence:.2f}"]
            if s.provenance:
                tags.append(f"provenance:{_tag(s.provenance)}")
            if s.platform:
                tags.append(f"platform:{_tag(s.platform)}")
            if s.draft_pdq:
                tags.append("pdq_decode:draft")
            w.writerow([te_type, value, collab, "POSITIVE_CLASS", " ".join(tags)])
            written += 1
    elif fmt == "lantern":
        w = csvsafe.writer(out, lineterminator="\n")
        w.writerow(LANTERN_COLUMNS)
        for s in signals:
            w.writerow([s.type, s.value, s.category, f"{s.confidence:.2f}", s.provenance, s.platform or "",
                        s.handle or "", s.source, s.confirmed_at or "", s.note])
            written += 1
    else:
        for s in signals:
            out.write(json.dumps(s.as_dict(), ensure_ascii=False) + "\n")
            written += 1
    return written, skipped


# -- reading (into a bank) -----------------------------------------------------------------------------


def detect_format(head: str) -> str:
    first = head.lstrip("\ufeff").split("\n", 1)[0].strip().lower()
    if first.startswith("{"):
        return "jsonl"
    if first.startswith("signal_type,signal_str"):
        return "te-csv"
    if first.startswith("signal_type,signal_value"):
        return "lantern"
    return "te"


def _entry(position: str, kind: str, value: str, *, category: str = "", confidence: Any = None,
           provenance: str = "", platform: str = "", source: str = "", note: str = "",
           free_text_category: bool = False) -> RawEntry | RowError:
    kind = FROM_TE.get(kind, kind)
    value = (value or "").strip()
    if kind == "keyword" and value.startswith("{"):
        keyword = keyword_of_query(value)
        if keyword is None:
            return RawEntry(position, "trend_query", value)  # a real trend query: kept verbatim
        value = keyword
    if kind not in SIGNAL_TYPES:
        return RawEntry(position, kind, value)
    if kind in ("md5", "sha256", "pdq"):
        try:
            value = TE_CLASSES[kind].validate_signal_str(value.lower())
        except ValueError as exc:
            return RowError(position, f"{kind}: {exc}")
    elif kind in MODEL_SIGNAL_TYPES:
        try:
            value = registry.normalise_value(kind, value)
        except ValueError as exc:
            return RowError(position, str(exc))
    tags = [t for t in (f"category:{_tag(category)}" if category else "",
                        f"confidence:{confidence}" if confidence not in (None, "") else "",
                        f"provenance:{_tag(provenance)}" if provenance else "",
                        f"platform:{_tag(platform)}" if platform else "") if t]
    bank_category = (category or None) if free_text_category else None  # only a free-text bank takes any label
    return RawEntry(position, kind, value, category=bank_category, tags=tags or None, notes=note or None,
                    series=source or None)


def read_signals(stream: IO[bytes], fmt: str | None = None, *, free_text_category: bool = False) -> Iterator[RawEntry | RowError]:
    """Bank entries from a shared-signal file (any of :data:`FORMATS`)."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
    body = text.read()
    fmt = fmt or detect_format(body[:4096])
    if fmt not in FORMATS:
        raise UsageError(f"unknown signal format {fmt!r} (expected one of {', '.join(FORMATS)})")
    if fmt == "te":
        for n, raw in enumerate(body.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            kind, sep, value = line.partition(" ")
            if not sep:
                yield RowError(f"line {n}", "expected '<signal_type> <signal>'")
                continue
            yield _entry(f"line {n}", kind, value)
        return
    if fmt == "jsonl":
        for n, obj in read_jsonl(io.StringIO(body)):
            if isinstance(obj, JsonlError) or not isinstance(obj, dict):
                yield RowError(f"line {n}", str(obj) if isinstance(obj, JsonlError) else "a signal must be a JSON object")
                continue
            yield _entry(f"line {n}", str(obj.get("type", "")), str(obj.get("value", "")),
                         category=str(obj.get("category") or ""), confidence=obj.get("confidence"),
                         provenance=str(obj.get("provenance") or ""), platform=str(obj.get("platform") or ""),
                         source=str(obj.get("source") or ""), note=str(obj.get("note") or ""),
                         free_text_category=free_text_category)
        return
    reader = csv.DictReader(io.StringIO(body))
    for raw_row in reader:
        row = {k: csvsafe.unescape_cell(v) for k, v in raw_row.items()}
        n = reader.line_num
        if fmt == "te-csv":
            tags = dict(t.split(":", 1) for t in (row.get("tags") or "").split() if ":" in t)
            yield _entry(f"line {n}", row.get("signal_type") or "", row.get("signal_str") or "",
                         category=tags.get("category", ""), confidence=tags.get("confidence"),
                         provenance=tags.get("provenance", ""), platform=tags.get("platform", ""),
                         source=row.get("collab") or "", free_text_category=free_text_category)
        else:
            yield _entry(f"line {n}", row.get("signal_type") or "", row.get("signal_value") or "",
                         category=row.get("category") or "", confidence=row.get("confidence"),
                         provenance=row.get("provenance_label") or "", platform=row.get("platform") or "",
                         source=row.get("source") or "", note=row.get("note") or "",
                         free_text_category=free_text_category)
