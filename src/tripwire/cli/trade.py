"""``tripwire posts ...`` and ``tripwire prompt ...``: the trade-detection command line.

Settings come from options, else from the ``[trade]`` section of the configuration file
(:mod:`tripwire.trade.settings`, docs/trade.md).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from .common import err, fail, get_config, open_database

if TYPE_CHECKING:
    from ..trade.rules import RuleSet
    from ..trade.terms import TermEngine

__all__ = ["posts_app", "prompt_app"]

posts_app = typer.Typer(help="Scan post feeds for trade in abuse material: terms, links, prices, account networks.",
                        no_args_is_help=True, add_completion=False)
prompt_app = typer.Typer(help="Check prompts for generation services: allow, warn or block, with reasons.",
                         no_args_is_help=True, add_completion=False)
#: `posts signals --format`: the sharing formats, and `csv` for the Lantern-style CSV it always wrote
POSTS_SIGNAL_FORMATS = ("jsonl", "csv", "lantern", "te", "te-csv")


@posts_app.callback()
def _posts() -> None:
    """Scan post feeds for trade in abuse material: terms, links, prices, account networks."""


@prompt_app.callback()
def _prompt() -> None:
    """Check prompts for generation services: allow, warn or block, with reasons."""

ConfigOpt = typer.Option(None, "--config", help="TOML configuration file ([trade] section).")
TermsOpt = typer.Option(None, "--terms", help="Term list: one term per line, or CSV term,category,weight. Repeatable. "
                        "Default: the shipped starter list.")
StarterOpt = typer.Option(False, "--starter", help="Also load the starter list next to --terms lists.")
RulesOpt = typer.Option(None, "--rules", help="Rules TOML (default: the shipped default rules).")
AllowOpt = typer.Option(None, "--allow", help="Allow-list of reviewed false-positive phrases, one per line. Repeatable.")


def _section(config: Optional[Path]) -> dict[str, Any]:
    from ..trade.settings import trade_section

    return trade_section(get_config(config))


def _engines(section: dict[str, Any], terms: Optional[list[Path]], starter: bool, rules: Optional[Path],
             allow: Optional[list[Path]]) -> tuple[TermEngine, RuleSet]:
    """Term engine and rules from the options and ``[trade]``; the operator sees the rules' warnings."""
    from ..trade.settings import build_engine, build_rules

    engine = build_engine(section, terms, starter, allow)
    ruleset, warnings = build_rules(section, rules, engine)
    for warning in warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    return engine, ruleset


@posts_app.command("scan")
def scan_cmd(
    posts: str = typer.Argument(..., help="POSTS.jsonl, one post per line ('-' reads standard input)."),
    out: Path = typer.Option(..., "--out", help="Output folder (posts.jsonl, accounts.jsonl, networks.json/html)."),
    terms: Optional[list[Path]] = TermsOpt,
    starter: bool = StarterOpt,
    rules: Optional[Path] = RulesOpt,
    allow: Optional[list[Path]] = AllowOpt,
    banks: Optional[list[Path]] = typer.Option(None, "--banks", help="Hash list (md5/sha256/pdq hex per line, or CSV "
                                               "signal_type,value,...). Repeatable. Matches seed the graph."),
    bank: Optional[list[str]] = typer.Option(None, "--bank", help="A bank of the case database (--db) to match media "
                                             "against, with its radius, quality floor and allow-lists. Repeatable."),
    db: Optional[str] = typer.Option(None, "--db", help="Case database holding the --bank banks (default ./tripwire.db)."),
    seed_accounts: Optional[Path] = typer.Option(None, "--seed-accounts", help="JSONL of {platform, id} seed accounts."),
    decisions: Optional[Path] = typer.Option(None, "--decisions", help="Reviewer decisions JSONL: confirmed accounts, "
                                             "URLs and media seed risk; rejected accounts lose their own."),
    catalogue: Optional[list[Path]] = typer.Option(None, "--catalogue", help="Extra platform catalogue TOML. Repeatable."),
    only_flagged: bool = typer.Option(False, "--only-flagged", help="Write only flagged posts to posts.jsonl."),
    series: bool = typer.Option(False, "--series", help="Join post media with the series of the case database (--db): "
                                "posts inherit the series and its model; accounts sharing a series are linked."),
    hub_max: Optional[int] = typer.Option(None, "--hub-max", help="Entities shared by more accounts than this, mostly "
                                          "without risk, are hubs: not used to connect accounts (default 25)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Scan a post feed: per-post flags, accounts, and the cross-platform account networks."""
    from ..errors import UsageError
    from ..trade.confirmed import load_decisions
    from ..trade.graph import AccountGraph, GraphConfig
    from ..trade.links import Catalogue, default_catalogue
    from ..trade.posts import PostAnalyzer
    from ..trade.scan import scan_feed
    from ..trade.settings import build_media_matcher, load_seeds, option_paths, trade_section

    cfg = get_config(config)
    try:
        section = trade_section(cfg)
        engine, ruleset = _engines(section, terms, starter, rules, allow)
        cat_paths = option_paths(catalogue, section, "catalogue")
        cat = Catalogue.load(cat_paths) if cat_paths else default_catalogue()
        matcher = build_media_matcher(section, banks, bank, lambda: open_database(db), cfg)
        gcfg = GraphConfig.from_section(section.get("graph", {}))
        if hub_max is not None:
            gcfg.hub_max_accounts = hub_max
        graph = AccountGraph(gcfg)
        if seed_accounts:
            load_seeds(graph, seed_accounts)
        if decisions:
            for (subject, key), dec in load_decisions(decisions).items():
                graph.add_decision(subject, key, dec.decision, {"reviewer": dec.reviewer, "decided_at": dec.decided_at})
        if posts != "-" and not Path(posts).is_file():
            raise UsageError(f"no such file: {posts}")
    except UsageError as exc:
        fail(str(exc))
    series_lookup = None
    if series:
        from ..trade.series import DatabaseSeries

        series_lookup = DatabaseSeries(open_database(db))
    analyzer = PostAnalyzer(engine, ruleset, cat, matcher, series_lookup=series_lookup)
    show = not quiet and sys.stderr.isatty()
    started = time.monotonic()

    def progress(n: int, flagged: int) -> None:
        if show:
            rate = n / max(time.monotonic() - started, 1e-9)
            err.print(f"posts: {n:,} scanned, {flagged:,} flagged, {rate:,.0f} posts/s", highlight=False)

    notes = {"terms": len(engine), "rules": [r.id for r in ruleset.rules],
             "banks": matcher.counts if matcher else {}}
    outcome = scan_feed(posts, out, analyzer, graph, only_flagged, progress, notes=notes)
    for e in outcome.errors[:20]:
        err.print(f"[yellow]line {e['line']}:[/] {e['error']}", highlight=False)
    if outcome.bad_lines > 20:
        err.print(f"... {outcome.bad_lines - 20} more bad lines in {out / 'errors.jsonl'}", highlight=False)
    s = outcome.summary
    if not quiet:
        err.print(f"{outcome.posts:,} posts ({outcome.bad_lines:,} bad lines skipped), {outcome.flagged_posts:,} flagged; "
                  f"{s.get('accounts', 0):,} accounts, {s.get('networks', 0):,} networks, "
                  f"{s.get('flagged_networks', 0):,} flagged -> {out}", highlight=False)




@posts_app.command("signals")
def signals_cmd(
    scan_dir: Path = typer.Argument(..., help="Output folder of `tripwire posts scan`."),
    decisions: Path = typer.Option(..., "--decisions", help="Reviewer decisions JSONL."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write signals here (default: standard output)."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl, csv (Lantern-style, as `signals export --format lantern`), "
                            "te or te-csv."),
) -> None:
    """Signals for sharing: flagged items that a reviewer confirmed (accounts, URLs, keywords, media)."""
    from ..errors import UsageError
    from ..sharing.indicators import write_signals
    from ..trade.confirmed import load_decisions, signals_from_scan

    if fmt not in POSTS_SIGNAL_FORMATS:
        fail(f"--format must be one of {', '.join(POSTS_SIGNAL_FORMATS)}")
    try:
        sigs = signals_from_scan(scan_dir, load_decisions(decisions))
    except UsageError as exc:
        fail(str(exc))
    shared = [s.shared() for s in sigs]
    sharing_fmt = "lantern" if fmt == "csv" else fmt
    if out is None:
        write_signals(shared, sharing_fmt, sys.stdout)
        return
    with out.open("w", encoding="utf-8", newline="") as fh:
        n, _ = write_signals(shared, sharing_fmt, fh)
    err.print(f"{n} signals -> {out}", highlight=False)


@posts_app.command("explain")
def explain_cmd(
    text: str = typer.Argument(..., help="A post text to analyse."),
    terms: Optional[list[Path]] = TermsOpt,
    starter: bool = StarterOpt,
    rules: Optional[Path] = RulesOpt,
    allow: Optional[list[Path]] = AllowOpt,
    config: Optional[Path] = ConfigOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the analysis record as JSON."),
) -> None:
    """Show what the engine finds in one text (terms, ages, prices, links) and which rules fire."""
    from ..errors import UsageError
    from ..termsafe import safe_json
    from ..trade.posts import PostAnalyzer

    try:
        engine, ruleset = _engines(_section(config), terms, starter, rules, allow)
    except UsageError as exc:
        fail(str(exc))
    analyzer = PostAnalyzer(engine, ruleset)
    post: dict[str, Any] = {"platform": "cli", "post_id": "-", "created_at": None, "url": "",
            "account": {"id": "-", "handle": "", "display_name": "", "profile_url": "", "bio": ""},
            "text": text, "tags": [], "groups": [], "links": [], "media": []}
    record = analyzer.analyze(post).record()
    if as_json:
        typer.echo(safe_json(json.dumps(record, ensure_ascii=False, indent=1)))
    else:
        _print_explanation(record)


def _print_explanation(rec: dict[str, Any]) -> None:
    """``posts explain`` for people: the verdict, the rules that fired with their evidence, then what was found."""
    from rich.table import Table

    from ..termsafe import console, safe_markup

    out = console()
    score = float(rec.get("score") or 0.0)
    out.print(("[bold red]flagged[/]" if rec.get("flagged") else "[green]not flagged[/]") + f" (score {score:.2f})",
              highlight=False)
    flags = rec.get("flags") or []
    if flags:
        table = Table(title="rules that fired", title_justify="left")
        for col in ("rule", "score", "why", "evidence"):
            table.add_column(col, overflow="fold")
        for f in flags:
            evidence = "; ".join(f"{e.get('kind')} {e.get('match')!r}" for e in f.get("evidence") or [])
            table.add_row(safe_markup(f.get("rule")), f"{float(f.get('score') or 0):+.2f}",
                          safe_markup(f.get("description") or ""), safe_markup(evidence))
        out.print(table)
    else:
        out.print("no rule fired", highlight=False)
    found = Table(title="found in the text", title_justify="left")
    for col in ("kind", "text", "details"):
        found.add_column(col, overflow="fold")
    for t in rec.get("terms") or []:
        found.add_row("term", safe_markup(t.get("match")), safe_markup(f"{t.get('term')} ({t.get('category')}, weight {t.get('weight')})"))
    for lk in rec.get("links") or []:
        detail = f"{lk.get('kind')} → {lk.get('destination')}" + (" (obfuscated)" if lk.get("obfuscated") else "")
        found.add_row("link", safe_markup(lk.get("raw") or lk.get("url")), safe_markup(detail))
    for pr in rec.get("prices") or []:
        detail = " ".join(str(v) for v in (pr.get("amount"), pr.get("currency")) if v is not None)
        found.add_row("price", safe_markup(pr.get("match")), safe_markup(detail + (f" per {pr['period']}" if pr.get("period") else "")))
    for kind, label in (("ages", "age"), ("tiers", "tier"), ("media_matches", "media match")):
        for x in rec.get(kind) or []:
            shown = x.get("match") if isinstance(x, dict) else x
            found.add_row(label, safe_markup(shown),
                          safe_markup(json.dumps(x, ensure_ascii=False) if isinstance(x, dict) else ""))
    if found.row_count:
        out.print(found)
    else:
        out.print("nothing found: no terms, links, prices, ages or tiers", highlight=False)


@prompt_app.command("check")
def check_cmd(
    text: Optional[str] = typer.Argument(None, help="The prompt to check."),
    jsonl: Optional[Path] = typer.Option(None, "--jsonl", help="Check every line of a JSONL file of {text, user?, "
                                         "time?} (time: Unix seconds or ISO 8601); '-' reads standard input."),
    user: Optional[str] = typer.Option(None, "--user", help="User id for escalation (single prompt)."),
    terms: Optional[list[Path]] = TermsOpt,
    starter: bool = StarterOpt,
    rules: Optional[Path] = RulesOpt,
    allow: Optional[list[Path]] = AllowOpt,
    fail_on: Optional[str] = typer.Option(None, "--fail-on", help="Exit 1 if any decision is at least this strict "
                                          "(warn or block)."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Decide allow / warn / block for a prompt (or a JSONL file of prompts), with the reasons, as JSON."""
    from ..errors import UsageError
    from ..trade.prompt_guard import ACTIONS, check_batch
    from ..trade.settings import build_guard

    if (text is None) == (jsonl is None):
        fail("give either TEXT or --jsonl FILE")
    if fail_on not in (None, "warn", "block"):
        fail("--fail-on must be warn or block")
    try:
        section = _section(config)
        guard = build_guard(section, *_engines(section, terms, starter, rules, allow))
    except UsageError as exc:
        fail(str(exc))
    actions: list[str] = []
    if text is not None:
        d = guard.check(text, user=user)
        actions.append(d.action)
        typer.echo(json.dumps(d.as_dict(), ensure_ascii=False))
    else:
        assert jsonl is not None
        try:
            fh = sys.stdin if str(jsonl) == "-" else jsonl.open(encoding="utf-8")
        except OSError as exc:
            fail(f"cannot read {jsonl}: {exc}")
        with fh:
            for rec in check_batch(guard, fh):
                if "action" in rec:
                    actions.append(rec["action"])
                typer.echo(json.dumps(rec, ensure_ascii=False))
    worst = max(actions, key=ACTIONS.index, default="allow")
    if fail_on and ACTIONS.index(worst) >= ACTIONS.index(fail_on):
        raise typer.Exit(1)
