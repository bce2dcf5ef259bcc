"""Term engine throughput: tripwire's Aho-Corasick engine vs a naive compiled-regex alternation.

What is measured (one single-threaded process pinned to one core, the same generated posts for every
contender, throughput in posts per CPU-second so that a busy machine does not distort it):

* ``tripwire terms``: ``TermEngine.find`` on the post text plus ``find_tags`` on its hashtags, with a list of
  5,000 generated placeholder terms (about the size of the IWF Keywords List), i.e. full normalisation
  (NFKC, case/accent/leet folding, separator joining, hashtag splitting) and Aho-Corasick matching;
* ``naive regex``: one ``re.compile(r"\\b(?:t1|t2|...)\\b", re.I)`` alternation of the same terms, ``findall``
  on the raw text (no normalisation at all, so it also finds less);
* ``trie regex``: the strongest simple baseline: the same normalisation as tripwire, then ONE regex whose
  alternation is structured as a trie of the normalised terms (shared prefixes factored out, as
  ``trieregex``/Perl's Regexp::Trie do), so the regex engine never re-tries a common prefix. Normalisation
  and matching are also timed **separately** (on pre-normalised text) for both the trie regex and
  tripwire's Aho-Corasick automaton, so the table says where the time goes;
* ``tripwire full post``: ``PostAnalyzer.analyze`` -- terms, ages, prices, tiers, link extraction and
  classification, rules -- for context;
* memory while streaming N posts (default 1,000,000) through ``posts scan`` end to end -- JSON lines
  generated on the fly (no input file), parsed, analysed, added to the account graph, flagged posts written
  to a temporary folder -- with RSS sampled every N/10 posts. The graph necessarily keeps per-account state
  (accounts, the destinations they link, up to 10 example flagged posts each): it grows with distinct
  accounts and entities, not with posts, so the streamed feed has a fixed pool of accounts (``--accounts``,
  default 2,000) that each keep linking their own pages, and RSS must level off once that state is full.

Run from the repository root::

    python bench/terms.py                 # 5,000 terms, 20,000 posts timed, 1,000,000 streamed
    python bench/terms.py --stream 200000 --posts 10000    # quicker

The posts are neutral generated text (placeholder vocabulary), 5% of them carrying one listed term.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tripwire.trade.graph import AccountGraph, GraphConfig  # noqa: E402
from tripwire.trade.posts import PostAnalyzer  # noqa: E402
from tripwire.trade.rules import default_rules  # noqa: E402
from tripwire.trade.scan import scan_feed  # noqa: E402
from tripwire.trade.normalise import normalise, normalise_term  # noqa: E402
from tripwire.trade.terms import Term, TermEngine  # noqa: E402

SYLLABLES = "ka lo mi ra ne su to vi be da go pu ze fi wo ha ri no te ma".split()
VOCAB = ("art landscape colour paint river mountain sketch study light shadow morning evening forest coffee "
         "city street window garden bird cat dog portrait commission open thanks everyone new work today "
         "practice brush canvas digital ink pencil stream weekend project update print shop sale sticker "
         "calendar blue green warm cold soft bright quick long").split()
TLDS = ["com", "net", "org", "art"]


def make_terms(n: int, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    out: set[str] = set()
    while len(out) < n:
        w = "".join(rnd.choice(SYLLABLES) for _ in range(rnd.randint(3, 4)))
        if rnd.random() < 0.2:
            w += " " + "".join(rnd.choice(SYLLABLES) for _ in range(2))
        out.add(w)
    return sorted(out)


def make_post(rnd: random.Random, terms: list[str], i: int, accounts: int = 5000) -> dict:
    words = [rnd.choice(VOCAB) for _ in range(rnd.randint(12, 40))]
    if rnd.random() < 0.05:
        words.insert(rnd.randint(0, len(words)), rnd.choice(terms))
    text = " ".join(words)
    tags = [rnd.choice(VOCAB).capitalize() + rnd.choice(VOCAB).capitalize() for _ in range(rnd.randint(0, 3))]
    if tags:
        text += " " + " ".join("#" + t for t in tags)
    acct = i % accounts
    r = rnd.random()
    if r < 0.2:
        text += f" https://shop-{acct}.example.{TLDS[acct % 4]}/item/{i}"
    elif r < 0.25:
        text += f" patreon.com/creator-{acct % 311}"
    elif r < 0.27:
        text += f" ${rnd.randint(1, 20)}/month"
    return {"platform": ("pixiv", "x")[acct % 2], "post_id": str(i), "created_at": None, "url": "",
            "account": {"id": str(acct), "handle": f"user_{acct}", "display_name": "",
                        "profile_url": "", "bio": ""},
            "text": text, "tags": tags, "groups": [], "links": [], "media": []}


def posts(n: int, terms: list[str], seed: int = 11, accounts: int = 5000) -> Iterator[dict]:
    rnd = random.Random(seed)
    for i in range(n):
        yield make_post(rnd, terms, i, accounts)


def trie_pattern(words: list[str]) -> str:
    """One regex alternation structured as a trie of ``words`` (common prefixes factored out)."""
    trie: dict = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict) -> str:
        end = "" in node
        branches = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        singles = [b for b in branches if len(b) == 1 or (len(b) == 2 and b[0] == "\\")]
        if len(branches) == 1:
            body = branches[0]
            return f"(?:{body})?" if end else body
        if len(singles) == len(branches):
            body = "[" + "".join(singles) + "]"
        else:
            body = "(?:" + "|".join(branches) + ")"
        return body + "?" if end and body.startswith("[") else (f"(?:{body})?" if end else body)

    return emit(trie)


def rss_mib() -> float:
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # not Linux: peak RSS is the best we have
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(contenders: dict, items: dict[str, list], repeats: int) -> dict[str, tuple[float, int]]:
    """Median posts per CPU-second of each contender, rounds interleaved (A, B, C, A, B, C, ...).

    CPU time of this single-threaded process (``time.process_time``) is the single-core throughput even on
    a busy machine, where wall time would also count the time other processes held the core; rounds are
    interleaved so that whatever noise remains hits every contender alike.
    """
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    hits: dict[str, int] = {}
    for _ in range(repeats):
        for name, fn in contenders.items():
            batch = items[name]
            t = time.process_time()
            hits[name] = fn(batch)
            rates[name].append(len(batch) / max(time.process_time() - t, 1e-9))
    return {name: (statistics.median(r), hits[name]) for name, r in rates.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--terms", type=int, default=5000)
    ap.add_argument("--posts", type=int, default=20000, help="posts timed per contender")
    ap.add_argument("--regex-posts", type=int, default=2000, help="posts timed for the (slow) regex baseline")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--stream", type=int, default=1_000_000, help="posts streamed for the memory check (0: skip)")
    ap.add_argument("--accounts", type=int, default=2000, help="distinct accounts in the streamed feed")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    terms = make_terms(args.terms)
    t = time.perf_counter()
    engine = TermEngine([Term(x, f"cat-{i % 10}") for i, x in enumerate(terms)])
    build_engine = time.perf_counter() - t
    t = time.perf_counter()
    regex = re.compile(r"\b(?:" + "|".join(re.escape(x) for x in sorted(terms, key=len, reverse=True)) + r")\b", re.I)
    regex.search("warm up")
    build_regex = time.perf_counter() - t

    t = time.perf_counter()
    normalised_terms = sorted({normalise_term(x) for x in terms} - {""})
    trie = re.compile(r"(?<![^\W_])(?:" + trie_pattern(normalised_terms) + r")(?![^\W_])")
    trie.search(" warm up ")
    build_trie = time.perf_counter() - t

    sample = list(posts(args.posts, terms))
    # the same normalised views for the matching-only contenders (text, then each tag as a hashtag)
    views = [[normalise(p["text"])] + [normalise(t.lstrip("#"), True) for t in p["tags"]] for p in sample]

    def run_engine(items: list) -> int:
        n = 0
        for p in items:
            n += len(engine.find(p["text"]))
            n += len(engine.find_tags(p["tags"]))
        return n

    def run_regex(items: list) -> int:
        n = 0
        for p in items:
            n += len(regex.findall(p["text"]))
        return n

    def run_normalise(items: list) -> int:
        n = 0
        for p in items:
            n += len(normalise(p["text"]))
            for t in p["tags"]:
                n += len(normalise(t.lstrip("#"), True))
        return n

    def run_trie(items: list) -> int:  # normalise, then one trie-structured regex
        n = 0
        for p in items:
            n += len(trie.findall(normalise(p["text"])))
            for t in p["tags"]:
                n += len(trie.findall(normalise(t.lstrip("#"), True)))
        return n

    auto = engine._auto
    assert auto is not None

    def match_ac(items: list) -> int:  # matching only, on pre-normalised views
        return sum(len(list(auto.iter(v))) for vs in items for v in vs)

    def match_trie(items: list) -> int:
        return sum(len(trie.findall(v)) for vs in items for v in vs)

    analyzer = PostAnalyzer(engine, default_rules())

    def run_full(items: list) -> int:
        return sum(1 for p in items if analyzer.analyze(p).flagged)

    results = measure({"engine": run_engine, "regex": run_regex, "full": run_full, "trie": run_trie,
                       "normalise": run_normalise, "match_ac": match_ac, "match_trie": match_trie},
                      {"engine": sample, "regex": sample[:args.regex_posts], "full": sample, "trie": sample,
                       "normalise": sample, "match_ac": views, "match_trie": views}, args.repeats)
    eng_rate, eng_hits = results["engine"]
    rx_rate, rx_hits = results["regex"]
    full_rate, full_flagged = results["full"]
    # the engine's hits on the regex subset, for a like-for-like count
    eng_hits_subset = run_engine(sample[:args.regex_posts])

    print(f"terms: {len(terms):,} placeholder terms; posts: {len(sample):,} generated "
          f"(regex baseline on the first {args.regex_posts:,}); posts per CPU-second of one core, "
          f"median of {args.repeats} interleaved rounds")
    print()
    print(f"{'contender':<28}{'posts/s':>12}{'vs regex':>10}{'build s':>10}  hits")
    print(f"{'tripwire terms (AC)':<28}{eng_rate:>12,.0f}{eng_rate / rx_rate:>9.1f}x{build_engine:>10.2f}  "
          f"{eng_hits:,} ({eng_hits_subset:,} on the regex subset)")
    print(f"{'naive regex alternation':<28}{rx_rate:>12,.0f}{1.0:>9.1f}x{build_regex:>10.2f}  {rx_hits:,}")
    print(f"{'tripwire full post':<28}{full_rate:>12,.0f}{full_rate / rx_rate:>9.1f}x{'':>10}  "
          f"{full_flagged:,} flagged")
    trie_rate, trie_hits = results["trie"]
    print(f"{'normalise + trie regex':<28}{trie_rate:>12,.0f}{trie_rate / rx_rate:>9.1f}x{build_trie:>10.2f}  "
          f"{trie_hits:,} (whole-word hits of normalised terms; tripwire also splits glued hashtags)")
    print()
    print("where the time goes (posts per CPU-second; matching runs on pre-normalised text and tags):")
    norm_rate = results["normalise"][0]
    print(f"  {'normalisation only':<36}{norm_rate:>12,.0f}   ({1e6 / norm_rate:.1f} us/post)")
    for key, label in (("match_ac", "matching only: Aho-Corasick (tripwire)"), ("match_trie", "matching only: trie regex")):
        rate, found = results[key]
        print(f"  {label:<36}{rate:>12,.0f}   ({1e6 / rate:.1f} us/post, {found:,} raw hits)")
    print(f"  tripwire terms vs normalise + trie regex, whole: {eng_rate / trie_rate:.2f}x")

    if args.stream:
        print()
        print(f"streaming {args.stream:,} generated JSON lines through `posts scan` (read, analyse, account "
              f"graph, write flagged posts); RSS in MiB:")
        samples: list[tuple[int, float]] = []
        every = max(args.stream // 10, 1)

        def progress(n: int, _flagged: int) -> None:
            samples.append((n, rss_mib()))

        graph = AccountGraph(GraphConfig())
        with tempfile.TemporaryDirectory() as tmp:
            cpu = time.process_time()
            t = time.perf_counter()
            outcome = scan_feed(JsonLines(posts(args.stream, terms, seed=99, accounts=args.accounts)), tmp, analyzer,
                                graph,
                                only_flagged=True, progress=progress, progress_every=every)
            dt = time.perf_counter() - t
            cpu = time.process_time() - cpu
        for i, r in samples:
            print(f"  {i:>10,} posts  {r:8.1f}")
        first = samples[0][1]
        print(f"  RSS growth after the first {samples[0][0]:,} posts: {samples[-1][1] - first:+.1f} MiB; "
              f"{args.stream / cpu:,.0f} posts per CPU-second end to end ({args.stream / dt:,.0f} per wall "
              f"second); {outcome.flagged_posts:,} flagged; "
              f"{outcome.summary.get('accounts', 0):,} accounts, {outcome.summary.get('networks', 0):,} networks")


class JsonLines(io.TextIOBase):
    """A read-only text stream of JSON lines generated on the fly (nothing is written to disk)."""

    def __init__(self, items: Iterator[dict]) -> None:
        self._items = items
        self.name = "<generated>"

    def readable(self) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        for item in self._items:
            yield json.dumps(item) + "\n"

if __name__ == "__main__":
    main()
