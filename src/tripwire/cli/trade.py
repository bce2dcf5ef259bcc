"""``tripwire posts ...`` and ``tripwire prompt ...``: the trade-detection command line.

Settings come from options, else from the ``[trade]`` section of the configuration file (docs/trade.md)::

    [trade]
    terms = ["/srv/lists/operator.csv"]   # term lists; without any, the starter list is used
    starter = false                       # also load the starter list next to operator lists
    rules = "/srv/lists/rules.toml"
    allow = ["/srv/lists/allow.txt"]
    catalogue = ["/srv/lists/platforms-extra.toml"]
    hashtag_mode = "edge"                 # or "whole"

    [trade.graph]
    hub_max_accounts = 25

    [trade.prompt]
    window_seconds = 3600
    warn_after = 3
    review_after = 5
    block_after = 10
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

from ..config import load_config
from ..errors import UsageError
from .graph import AccountGraph, GraphConfig
from .bankmatch import CombinedMatcher, DatabaseBankMatcher
from .hashlists import HashListMatcher
from .links import Catalogue, default_catalogue
from .posts import PostAnalyzer
from .prompt_guard import GuardConfig, PromptGuard
from .rules import RuleSet, default_rules, load_rules
from .scan import scan_feed
from .signals import load_decisions, signals_from_scan, write_signals_csv, write_signals_jsonl
from .terms import Term, TermEngine, load_allow_list, load_terms, starter_terms

__all__ = ["posts_app", "prompt_app"]

posts_app = typer.Typer(help="Scan post feeds for trade in abuse material: terms, links, prices, account networks.",
                        no_args_is_help=True, add_completion=False)
prompt_app = typer.Typer(help="Check prompts for generation services: allow, warn or block, with reasons.",
                         no_args_is_help=True, add_completion=False)
err = Console(stderr=True)
TRADE_KEYS = {"terms", "starter", "rules", "allow", "catalogue", "banks", "hashtag_mode", "graph", "prompt"}


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


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(2)


def _section(config_path: Optional[Path]) -> dict[str, Any]:
    cfg = load_config(config_path)
    section = cfg.sections.get("trade", {})
    if not isinstance(section, dict):
        raise UsageError("[trade] must be a table")
    unknown = set(section) - TRADE_KEYS
    if unknown:  # a typo must not silently leave a setting at its default
        raise UsageError(f"unknown setting(s) in [trade]: {', '.join(sorted(unknown))}")
    return section


def _database_banks(db: Optional[str], config: Optional[Path], names: list[str]) -> DatabaseBankMatcher:
    from ..cli_common import open_database
    from ..match.matcher import Matcher

    database = open_database(db)
    return DatabaseBankMatcher(Matcher.from_config(database, load_config(config)), names)


def _paths(option: Optional[list[Path]], section: dict[str, Any], key: str) -> list[Path]:
    if option:
        return list(option)
    value = section.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return [Path(value)]
    return [Path(v) for v in value]


def build_engine(section: dict[str, Any], terms: Optional[list[Path]], starter: bool,
                 allow: Optional[list[Path]]) -> TermEngine:
    """The term engine from options/configuration: operator lists, else the starter list."""
    term_paths = _paths(terms, section, "terms")
    loaded: list[Term] = []
    for p in term_paths:
        loaded.extend(load_terms(p))
    if not term_paths or starter or section.get("starter", False):
        loaded.extend(starter_terms())
    phrases: list[str] = []
    for p in _paths(allow, section, "allow"):
        phrases.extend(load_allow_list(p))
    return TermEngine(loaded, allow=phrases, hashtag_mode=str(section.get("hashtag_mode", "edge")))


def build_rules(section: dict[str, Any], rules: Optional[Path], engine: TermEngine) -> RuleSet:
    path = rules or section.get("rules")
    rs = load_rules(path) if path else default_rules()
    for warning in rs.check_categories(engine.categories):
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    for t in engine.skipped:
        err.print(f"[yellow]warning:[/] term {t.text!r} ({t.source}) has nothing matchable after normalisation",
                  highlight=False)
    return rs


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
    hub_max: Optional[int] = typer.Option(None, "--hub-max", help="Entities shared by more accounts than this, mostly "
                                          "without risk, are hubs: not used to connect accounts (default 25)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Scan a post feed: per-post flags, accounts, and the cross-platform account networks."""
    try:
        section = _section(config)
        engine = build_engine(section, terms, starter, allow)
        ruleset = build_rules(section, rules, engine)
        cat_paths = _paths(catalogue, section, "catalogue")
        cat = Catalogue.load(cat_paths) if cat_paths else default_catalogue()
        matchers: list[Any] = []
        bank_paths = _paths(banks, section, "banks")
        if bank_paths:
            matchers.append(HashListMatcher.from_files(bank_paths))
        if bank:
            matchers.append(_database_banks(db, config, bank))
        matcher = matchers[0] if len(matchers) == 1 else (CombinedMatcher(matchers) if matchers else None)
        gcfg = GraphConfig.from_section(section.get("graph", {}))
        if hub_max is not None:
            gcfg.hub_max_accounts = hub_max
        graph = AccountGraph(gcfg)
        if seed_accounts:
            _load_seeds(graph, seed_accounts)
        if decisions:
            for (subject, key), dec in load_decisions(decisions).items():
                graph.add_decision(subject, key, dec.decision, {"reviewer": dec.reviewer, "decided_at": dec.decided_at})
        if posts != "-" and not Path(posts).is_file():
            raise UsageError(f"no such file: {posts}")
    except UsageError as exc:
        _fail(str(exc))
        return
    analyzer = PostAnalyzer(engine, ruleset, cat, matcher)
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


def _load_seeds(graph: AccountGraph, path: Path) -> None:
    try:
        fh = path.open(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read seed accounts {path}: {exc}") from exc
    with fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{path.name}:{lineno}: invalid JSON: {exc.msg}") from exc
            if not isinstance(obj, dict) or not obj.get("platform") or obj.get("id") in (None, ""):
                raise UsageError(f"{path.name}:{lineno}: a seed needs platform and id")
            extra = {k: v for k, v in obj.items() if k not in ("platform", "id")}
            graph.add_seed(str(obj["platform"]), str(obj["id"]), source=f"seed list {path.name}", **extra)


@posts_app.command("signals")
def signals_cmd(
    scan_dir: Path = typer.Argument(..., help="Output folder of `tripwire posts scan`."),
    decisions: Path = typer.Option(..., "--decisions", help="Reviewer decisions JSONL."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write signals here (default: standard output)."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl or csv."),
) -> None:
    """Signals for sharing: flagged items that a reviewer confirmed (accounts, URLs, keywords, media)."""
    if fmt not in ("jsonl", "csv"):
        _fail("--format must be jsonl or csv")
    try:
        sigs = signals_from_scan(scan_dir, load_decisions(decisions))
    except UsageError as exc:
        _fail(str(exc))
        return
    if out is None:
        if fmt == "csv":
            import csv as _csv

            w = _csv.writer(sys.stdout)
            w.writerow(["type", "value", "category", "confidence", "source", "confirmed_by", "confirmed_at"])
            for s in sigs:
                w.writerow([s.type, s.value, s.category, s.confidence, s.source, s.confirmed_by, s.confirmed_at or ""])
        else:
            for s in sigs:
                typer.echo(json.dumps(s.as_dict(), ensure_ascii=False))
        return
    n = write_signals_csv(sigs, out) if fmt == "csv" else write_signals_jsonl(sigs, out)
    err.print(f"{n} signals -> {out}", highlight=False)


@posts_app.command("explain")
def explain_cmd(
    text: str = typer.Argument(..., help="A post text to analyse."),
    terms: Optional[list[Path]] = TermsOpt,
    starter: bool = StarterOpt,
    rules: Optional[Path] = RulesOpt,
    allow: Optional[list[Path]] = AllowOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Show what the engine finds in one text (terms, ages, prices, links) and which rules fire."""
    try:
        section = _section(config)
        engine = build_engine(section, terms, starter, allow)
        ruleset = build_rules(section, rules, engine)
    except UsageError as exc:
        _fail(str(exc))
        return
    analyzer = PostAnalyzer(engine, ruleset)
    post = {"platform": "cli", "post_id": "-", "created_at": None, "url": "",
            "account": {"id": "-", "handle": "", "display_name": "", "profile_url": "", "bio": ""},
            "text": text, "tags": [], "groups": [], "links": [], "media": []}
    typer.echo(json.dumps(analyzer.analyze(post).record(), ensure_ascii=False, indent=1))


def _guard(section: dict[str, Any], terms: Optional[list[Path]], starter: bool, rules: Optional[Path],
           allow: Optional[list[Path]]) -> PromptGuard:
    engine = build_engine(section, terms, starter, allow)
    ruleset = build_rules(section, rules, engine)
    return PromptGuard(engine, ruleset, GuardConfig.from_section(section.get("prompt", {})))


def _when(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    import datetime as _dt

    try:
        return _dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise UsageError(f"time {value!r} is neither Unix seconds nor ISO 8601") from exc


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
    if (text is None) == (jsonl is None):
        _fail("give either TEXT or --jsonl FILE")
    if fail_on not in (None, "warn", "block"):
        _fail("--fail-on must be warn or block")
    try:
        guard = _guard(_section(config), terms, starter, rules, allow)
    except UsageError as exc:
        _fail(str(exc))
        return
    worst = "allow"
    order = ("allow", "warn", "block")
    if text is not None:
        d = guard.check(text, user=user)
        worst = d.action
        typer.echo(json.dumps(d.as_dict(), ensure_ascii=False))
    else:
        assert jsonl is not None
        fh = sys.stdin if str(jsonl) == "-" else None
        try:
            fh = fh or jsonl.open(encoding="utf-8")
        except OSError as exc:
            _fail(f"cannot read {jsonl}: {exc}")
            return
        with fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                        raise UsageError("needs a string field 'text'")
                    when = _when(obj.get("time"))
                    d = guard.check(obj["text"], user=str(obj["user"]) if obj.get("user") is not None else None,
                                    now=when)
                except (json.JSONDecodeError, UsageError) as exc:
                    msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
                    typer.echo(json.dumps({"line": lineno, "error": msg}))
                    continue
                rec = d.as_dict()
                rec["line"] = lineno
                if "id" in obj:
                    rec["id"] = obj["id"]
                typer.echo(json.dumps(rec, ensure_ascii=False))
                if order.index(d.action) > order.index(worst):
                    worst = d.action
    if fail_on and order.index(worst) >= order.index(fail_on):
        raise typer.Exit(1)
