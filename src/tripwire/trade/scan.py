"""``tripwire posts scan``: stream a post feed through the analyzer and the account graph, write the outputs.

Outputs in the output folder (docs/trade.md describes every field):

* ``posts.jsonl``: one record per post (or per flagged post with ``only_flagged``): score, flags with
  their rules and spans, terms, links, ages, prices, tiers, media matches;
* ``accounts.jsonl``: one record per account: posts, flagged posts, bank matches, seeds, risk and the chain
  of evidence behind it, network;
* ``networks.json``: ``{"networks": [{"id", "risk", "flagged", "accounts", "destinations", "evidence",
  ...}], "summary": {...}}``;
* ``networks.html``: the same networks for people (no media; links as plain text);
* ``errors.jsonl``: bad input lines with their line numbers; ``summary.json``: counts and timings.
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

from .. import __version__
from ..report.html import render
from .graph import AccountGraph
from .posts import PostAnalyzer, read_posts

__all__ = ["ScanOutcome", "scan_feed", "render_networks_html"]

HTML_MAX_NETWORKS = 500


@dataclass
class ScanOutcome:
    posts: int = 0
    flagged_posts: int = 0
    bad_lines: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)


def _open_input(path: str | Path | TextIO) -> TextIO:
    if not isinstance(path, (str, Path)):
        return path  # an open text stream (a pipe, a generator-backed reader)
    if str(path) == "-":
        return sys.stdin
    return open(path, encoding="utf-8", errors="replace")


def scan_feed(
    posts_path: str | Path | TextIO,
    out_dir: str | Path,
    analyzer: PostAnalyzer,
    graph: AccountGraph,
    only_flagged: bool = False,
    progress: Callable[[int, int], None] | None = None,
    progress_every: int = 10_000,
    notes: dict[str, Any] | None = None,
) -> ScanOutcome:
    """Scan ``posts_path`` (a file, ``-`` for stdin, or an open text stream) into ``out_dir``; bad lines are
    recorded, never fatal. ``progress(posts, flagged)`` is called every ``progress_every`` posts."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    outcome = ScanOutcome()
    started = time.monotonic()
    errors: list[dict[str, Any]] = []
    bad_total = 0
    with _open_input(posts_path) as fh, (out / "posts.jsonl").open("w", encoding="utf-8") as posts_out, \
            (out / "errors.jsonl").open("w", encoding="utf-8") as err_out:
        for line, post in read_posts(fh, errors, max_errors_kept=1_000_000):
            if errors:
                for e in errors:
                    err_out.write(json.dumps(e, ensure_ascii=False) + "\n")
                    if len(outcome.errors) < 100:
                        outcome.errors.append(e)
                bad_total += len(errors)
                errors.clear()
            result = analyzer.analyze(post, line)
            graph.add_result(result)
            outcome.posts += 1
            if result.flagged:
                outcome.flagged_posts += 1
            if result.flagged or not only_flagged:
                posts_out.write(json.dumps(result.record(), ensure_ascii=False) + "\n")
            if progress is not None and outcome.posts % progress_every == 0:
                progress(outcome.posts, outcome.flagged_posts)
        for e in errors:  # bad lines after the last good one
            err_out.write(json.dumps(e, ensure_ascii=False) + "\n")
            if len(outcome.errors) < 100:
                outcome.errors.append(e)
        bad_total += len(errors)
    outcome.bad_lines = bad_total
    scan_seconds = time.monotonic() - started

    networks, records, graph_summary = graph.analyse()
    with (out / "accounts.jsonl").open("w", encoding="utf-8") as fh:
        for rec in sorted(records, key=lambda r: (-r["risk"], r["platform"], r["id"])):
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    generated = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    doc = {
        "generated_at": generated,
        "tool": f"tripwire {__version__}",
        "source": _name(posts_path),
        "summary": graph_summary,
        "networks": networks,
    }
    (out / "networks.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    render_networks_html(doc, out / "networks.html")
    outcome.seconds = time.monotonic() - started
    outcome.summary = {
        "source": _name(posts_path),
        "generated_at": generated,
        "posts": outcome.posts,
        "flagged_posts": outcome.flagged_posts,
        "bad_lines": outcome.bad_lines,
        "posts_per_second": round(outcome.posts / scan_seconds, 1) if scan_seconds > 0 else None,
        "seconds": round(outcome.seconds, 3),
        **graph_summary,
        **(notes or {}),
    }
    (out / "summary.json").write_text(json.dumps(outcome.summary, ensure_ascii=False, indent=1), encoding="utf-8")
    return outcome


def _name(source: str | Path | TextIO) -> str:
    return str(source) if isinstance(source, (str, Path)) else str(getattr(source, "name", "<stream>"))


def render_networks_html(doc: dict[str, Any], path: str | Path, max_networks: int = HTML_MAX_NETWORKS) -> None:
    """networks.html from a networks.json document: flagged networks first, no media, links as text."""
    nets = doc.get("networks", [])
    html = render(
        "networks.html.j2",
        generated_at=doc.get("generated_at", ""),
        version=__version__,
        source=doc.get("source", ""),
        summary={"accounts": doc.get("summary", {}).get("accounts", 0),
                 "networks": len(nets),
                 "flagged_networks": sum(1 for n in nets if n.get("flagged")),
                 "hubs": doc.get("summary", {}).get("hubs", [])},
        networks=nets[:max_networks],
        truncated=len(nets) > max_networks,
        total=len(nets),
    )
    Path(path).write_text(html, encoding="utf-8")
