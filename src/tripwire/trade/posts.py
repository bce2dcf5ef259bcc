"""Post feeds: read ``POSTS.jsonl`` line by line, find terms, ages, prices, tiers, links and media matches in
each post, score it with the rules, and feed the account graph.

Input, one JSON object per line (docs/trade.md has the full schema)::

    {"platform": "pixiv", "post_id": "123", "created_at": "2025-01-31T12:00:00Z",
     "account": {"id": "42", "handle": "alpha_studio", "display_name": "...", "profile_url": "...",
                 "bio": "..."},
     "text": "...", "tags": ["..."], "groups": ["..."], "links": ["https://..."],
     "media": [{"sha256": "...", "md5": "...", "pdq": "...", "pdq_quality": 90, "url": "..."}]}

``platform``, ``post_id`` and ``account.id`` are required; everything else may be missing or empty. Links are
also extracted from the text and the bio. A line that is not valid JSON or breaks the schema is reported
with its line number (``errors.jsonl``) and skipped; nothing else stops the run. Memory stays flat: posts are
analysed and written one at a time, and only per-account and per-destination state is kept (for the graph).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, TextIO

from ..jsonl import JsonlError, read_jsonl
from .ages import find_ages
from .bankmatch import MediaMatcher
from .links import Catalogue, Link, classify_url, default_catalogue, extract_links
from .prices import find_prices, find_tiers
from .rules import Evaluation, Feature, RuleSet
from .terms import TermEngine, TermHit

__all__ = ["PostError", "validate_post", "read_posts", "PostAnalyzer", "PostResult"]

MAX_TEXT = 100_000  # characters of one field analysed (longer fields are truncated, and say so)


class PostError(ValueError):
    """A line of the feed that cannot be used: the message says what is wrong."""


def _str(value: Any, where: str, required: bool = False) -> str:
    if value is None or value == "":
        if required:
            raise PostError(f"{where} is required")
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise PostError(f"{where} must be a string")
    return str(value)


def _str_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise PostError(f"{where} must be a list of strings")
    out = []
    for i, v in enumerate(value):
        if not isinstance(v, str):
            raise PostError(f"{where}[{i}] must be a string")
        out.append(v)
    return out


def validate_post(obj: Any) -> dict[str, Any]:
    """Check one decoded line against the schema; return it with ids as strings and lists defaulted."""
    if not isinstance(obj, dict):
        raise PostError("a post must be a JSON object")
    account = obj.get("account")
    if not isinstance(account, dict):
        raise PostError("account must be an object with at least an id")
    media = obj.get("media") or []
    if not isinstance(media, list) or not all(isinstance(m, dict) for m in media):
        raise PostError("media must be a list of objects")
    for i, m in enumerate(media):
        for key in ("sha256", "md5", "pdq", "url"):
            if key in m and m[key] is not None and not isinstance(m[key], str):
                raise PostError(f"media[{i}].{key} must be a string")
    created = obj.get("created_at")
    if created is not None and not isinstance(created, (str, int, float)):
        raise PostError("created_at must be an ISO 8601 string or a Unix time")
    return {
        "platform": _str(obj.get("platform"), "platform", True).strip().lower(),
        "post_id": _str(obj.get("post_id"), "post_id", True),
        "created_at": created,
        "url": _str(obj.get("url"), "url"),
        "account": {
            "id": _str(account.get("id"), "account.id", True),
            "handle": _str(account.get("handle"), "account.handle"),
            "display_name": _str(account.get("display_name"), "account.display_name"),
            "profile_url": _str(account.get("profile_url"), "account.profile_url"),
            "bio": _str(account.get("bio"), "account.bio"),
        },
        "text": _str(obj.get("text"), "text"),
        "tags": _str_list(obj.get("tags"), "tags"),
        "groups": _str_list(obj.get("groups"), "groups"),
        "links": _str_list(obj.get("links"), "links"),
        "media": media,
    }


def read_posts(stream: TextIO, errors: list[dict[str, Any]] | None = None,
               max_errors_kept: int = 10_000) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, post)`` for every valid line; bad lines go to ``errors`` (line + message).

    ``errors`` keeps at most ``max_errors_kept`` entries; the caller counts the rest.
    """
    for lineno, obj in read_jsonl(stream):
        try:
            if isinstance(obj, JsonlError):
                raise obj
            post = validate_post(obj)
        except (JsonlError, PostError) as exc:
            if errors is not None and len(errors) < max_errors_kept:
                errors.append({"line": lineno, "error": str(exc)})
            elif errors is not None:
                errors.append({"line": lineno, "error": str(exc), "overflow": True})
            continue
        yield lineno, post


@dataclass
class PostResult:
    """What one post showed: the evaluation plus every extracted fact (for posts.jsonl and the graph)."""

    line: int
    post: dict[str, Any]
    evaluation: Evaluation
    terms: list[TermHit] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    features: list[Feature] = field(default_factory=list)
    media_matches: list[dict[str, Any]] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)
    #: series the post's media belong to (tripwire.trade.series), with the media index
    series: list[dict[str, Any]] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return self.evaluation.flagged

    def record(self) -> dict[str, Any]:
        """The posts.jsonl record (stable field names; see docs/trade.md)."""
        p = self.post
        acc = p["account"]
        feats = self.features
        rec: dict[str, Any] = {
            "line": self.line,
            "platform": p["platform"],
            "post_id": p["post_id"],
            "created_at": p["created_at"],
            "account": {"platform": p["platform"], "id": acc["id"], "handle": acc["handle"]},
            "flagged": self.evaluation.flagged,
            "score": self.evaluation.score,
            "flags": [f.as_dict() for f in self.evaluation.flags],
            "terms": [{"term": h.term, "category": h.category, "weight": h.weight, "field": h.field,
                       "start": h.start, "end": h.end, "match": h.match, "via": h.via} for h in self.terms],
            "links": [{"url": lk.url, "kind": lk.kind, "platform": lk.platform, "account": lk.account,
                       "destination": lk.destination, "obfuscated": lk.obfuscated, "field": lk.field,
                       "start": lk.start, "end": lk.end, "raw": lk.raw} for lk in self.links],
            "ages": [f.as_dict() for f in feats if f.kind == "age"],
            "prices": [f.as_dict() for f in feats if f.kind == "price"],
            "tiers": [f.as_dict() for f in feats if f.kind == "tier"],
            "media_matches": self.media_matches,
        }
        if self.series:
            rec["series"] = self.series
        if self.truncated:
            rec["truncated_fields"] = self.truncated
        return rec


class PostAnalyzer:
    """Turns a validated post into features and an evaluation. Account fields (bio, display name, handle)
    are analysed once per distinct value and cached, since an account posts many times."""

    def __init__(self, engine: TermEngine, rules: RuleSet, catalogue: Catalogue | None = None,
                 media_matcher: MediaMatcher | None = None, account_cache: int = 50_000,
                 series_lookup: Callable[[dict[str, Any]], list[dict[str, Any]]] | None = None) -> None:
        self.engine = engine
        self.rules = rules
        self.catalogue = catalogue or default_catalogue()
        self.media_matcher = media_matcher
        self.series_lookup = series_lookup
        self._cache: OrderedDict[tuple[str, str, str], tuple[list[TermHit], list[Link], list[Feature]]] = (
            OrderedDict())
        self._cache_size = account_cache

    # -- building blocks, also used by the prompt guard ------------------------------------------------

    def text_features(self, text: str, field: str, with_links: bool = True,
                      with_prices: bool = True) -> tuple[list[TermHit], list[Link], list[Feature]]:
        """Terms, ages, prices, tiers and links of one free-text field."""
        hits = self.engine.find(text, field)
        feats = [_term_feature(h) for h in hits]
        for a in find_ages(text):
            feats.append(Feature("age", "age", field, a.start, a.end, a.match, 1.0,
                                 {"age": a.age, "lang": a.lang, "form": a.form}))
        links: list[Link] = []
        if with_prices:
            for pr in find_prices(text):
                feats.append(Feature("price", "price", field, pr.start, pr.end, pr.match, 1.0,
                                     {"amount": pr.amount, "currency": pr.currency, "period": pr.period}))
            for t in find_tiers(text):
                feats.append(Feature("tier", "tier", field, t.start, t.end, t.match, 1.0, {"label": t.label}))
        if with_links:
            links = extract_links(text, field, self.catalogue)
            feats.extend(_link_feature(lk) for lk in links)
        return hits, links, feats

    def _account_features(self, post: dict[str, Any]) -> tuple[list[TermHit], list[Link], list[Feature]]:
        acc = post["account"]
        key = (post["platform"], acc["id"], "\x00".join((acc["bio"], acc["display_name"], acc["handle"])))
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        hits: list[TermHit] = []
        links: list[Link] = []
        feats: list[Feature] = []
        if acc["bio"]:
            h, lk, f = self.text_features(acc["bio"][:MAX_TEXT], "account.bio")
            hits += h
            links += lk
            feats += f
        for fname in ("display_name", "handle"):
            if acc[fname]:
                h = self.engine.find(acc[fname][:1000], f"account.{fname}", hashtag=fname == "handle")
                hits += h
                feats += [_term_feature(x) for x in h]
        value = (hits, links, feats)
        self._cache[key] = value
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return value

    def analyze(self, post: dict[str, Any], line: int = 0) -> PostResult:
        truncated = []
        text = post["text"]
        if len(text) > MAX_TEXT:
            text = text[:MAX_TEXT]
            truncated.append("text")
        hits, links, feats = self.text_features(text, "text")
        hits = list(hits)
        links = list(links)
        feats = list(feats)
        texts = {"text": text}
        for fname in ("tags", "groups"):
            entries = post[fname]
            for i, entry in enumerate(entries[:200]):
                fld = f"{fname}[{i}]"
                th = self.engine.find(entry.lstrip("#")[:1000], fld, hashtag=True)
                hits += th
                feats += [_term_feature(x) for x in th]
        seen_urls = {(lk.url) for lk in links}
        for i, raw in enumerate(post["links"][:200]):
            lk = classify_url(raw, self.catalogue, f"links[{i}]")
            if lk is None:
                continue
            links.append(lk)
            if lk.url not in seen_urls:
                feats.append(_link_feature(lk))
                seen_urls.add(lk.url)
        ah, al, af = self._account_features(post)
        hits += ah
        feats += af
        for lk in al:
            links.append(lk)
            if lk.url not in seen_urls:
                feats.append(_link_feature(lk))
                seen_urls.add(lk.url)
        if post["account"]["bio"]:
            texts["account.bio"] = post["account"]["bio"][:MAX_TEXT]
        matches: list[dict[str, Any]] = []
        if self.media_matcher is not None:
            for i, m in enumerate(post["media"][:100]):
                for match in self.media_matcher(m):
                    match = dict(match, media_index=i)
                    matches.append(match)
                    feats.append(Feature("bank", str(match.get("bank", "bank")), f"media[{i}]", None, None,
                                         str(match.get("value", "")), 1.0, dict(match)))
        series: dict[int, dict[str, Any]] = {}
        if self.series_lookup is not None:
            for i, m in enumerate(post["media"][:100]):
                for entry in self.series_lookup(m):
                    series.setdefault(entry["id"], dict(entry, media_index=i))
        evaluation = self.rules.evaluate(feats, texts)
        return PostResult(line, post, evaluation, hits, links, feats, matches, truncated, list(series.values()))


def _term_feature(h: TermHit) -> Feature:
    return Feature("term", h.category, h.field, h.start, h.end, h.match, h.weight,
                   {"term": h.term, "via": h.via, "source": h.source})


def _link_feature(lk: Link) -> Feature:
    return Feature("link", lk.kind, lk.field, lk.start, lk.end, lk.raw, 1.0,
                   {"url": lk.url, "platform": lk.platform, "destination": lk.destination,
                    "obfuscated": lk.obfuscated})


def iter_results(analyzer: PostAnalyzer, posts: Iterable[tuple[int, dict[str, Any]]]) -> Iterator[PostResult]:
    for line, post in posts:
        yield analyzer.analyze(post, line)
