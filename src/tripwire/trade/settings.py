"""Trade settings: the ``[trade]`` configuration section and the engines it builds.

Settings come from command options, else from the ``[trade]`` section of the configuration file
(docs/trade.md)::

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

Kept apart from the command line so that the commands stay thin and the same settings can build the same
engines anywhere (a service, a test).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from ..config import Config
from ..errors import UsageError
from ..jsonl import JsonlError, read_jsonl, strict
from .bankmatch import CombinedMatcher, BankMediaMatcher
from .graph import AccountGraph
from .hashlists import HashListMatcher
from .prompt_guard import GuardConfig, PromptGuard
from .rules import RuleSet, default_rules, load_rules
from .terms import Term, TermEngine, load_allow_list, load_terms, starter_terms

__all__ = ["TRADE_KEYS", "trade_section", "option_paths", "build_engine", "build_rules", "build_guard",
           "build_media_matcher", "load_seeds"]

TRADE_KEYS = {"terms", "starter", "rules", "allow", "catalogue", "banks", "hashtag_mode", "graph", "prompt"}


def trade_section(config: Config) -> dict[str, Any]:
    """The ``[trade]`` table; an unknown key is an error (a typo must not leave a setting at its default)."""
    section = config.sections.get("trade", {})
    if not isinstance(section, dict):
        raise UsageError("[trade] must be a table")
    unknown = set(section) - TRADE_KEYS
    if unknown:
        raise UsageError(f"unknown setting(s) in [trade]: {', '.join(sorted(unknown))}")
    return section


def option_paths(option: Optional[list[Path]], section: dict[str, Any], key: str) -> list[Path]:
    """Paths from a repeatable option, else from ``section[key]`` (a string or a list of strings)."""
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
    term_paths = option_paths(terms, section, "terms")
    loaded: list[Term] = []
    for p in term_paths:
        loaded.extend(load_terms(p))
    if not term_paths or starter or section.get("starter", False):
        loaded.extend(starter_terms())
    phrases: list[str] = []
    for p in option_paths(allow, section, "allow"):
        phrases.extend(load_allow_list(p))
    return TermEngine(loaded, allow=phrases, hashtag_mode=str(section.get("hashtag_mode", "edge")))


def build_rules(section: dict[str, Any], rules: Optional[Path], engine: TermEngine) -> tuple[RuleSet, list[str]]:
    """The rule set (``rules``, else ``[trade] rules``, else the shipped rules) and warnings for the operator:
    categories no term feeds, terms with nothing matchable."""
    path = rules or section.get("rules")
    rs = load_rules(path) if path else default_rules()
    warnings = list(rs.check_categories(engine.categories))
    warnings += [f"term {t.text!r} ({t.source}) has nothing matchable after normalisation" for t in engine.skipped]
    return rs, warnings


def build_guard(section: dict[str, Any], engine: TermEngine, rules: RuleSet) -> PromptGuard:
    return PromptGuard(engine, rules, GuardConfig.from_section(section.get("prompt", {})))


def build_media_matcher(section: dict[str, Any], bank_files: Optional[list[Path]], bank_names: Optional[list[str]],
                        open_database: Callable[[], Any], config: Config,
                        ) -> HashListMatcher | BankMediaMatcher | CombinedMatcher | None:
    """Media matching for posts: hash-list files and named banks of the case database, or None for neither."""
    matchers: list[Any] = []
    files = option_paths(bank_files, section, "banks")
    if files:
        matchers.append(HashListMatcher.from_files(files))
    if bank_names:
        from ..match.matcher import Matcher

        matchers.append(BankMediaMatcher(Matcher.from_config(open_database(), config), bank_names))
    if not matchers:
        return None
    return matchers[0] if len(matchers) == 1 else CombinedMatcher(matchers)


def load_seeds(graph: AccountGraph, path: Path) -> None:
    """Seed accounts (JSONL of ``{platform, id, ...}``) into ``graph``; the first bad line is an error."""
    try:
        fh = path.open(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read seed accounts {path}: {exc}") from exc
    with fh:
        try:
            for lineno, obj in strict(read_jsonl(fh)):
                if not isinstance(obj, dict) or not obj.get("platform") or obj.get("id") in (None, ""):
                    raise UsageError(f"{path.name}:{lineno}: a seed needs platform and id")
                extra = {k: v for k, v in obj.items() if k not in ("platform", "id")}
                graph.add_seed(str(obj["platform"]), str(obj["id"]), source=f"seed list {path.name}", **extra)
        except JsonlError as exc:
            raise UsageError(f"{path.name}:{exc.line}: {exc}") from exc
