"""The account graph: which accounts, across platforms, work together -- and how much risk each carries.

Nodes are accounts (per platform) and the *entities* they share: destinations (the canonical URL of a paid
page, aggregator, invite, locker or short link), media (SHA-256, MD5 and PDQ hashes; PDQ hashes within
``pdq_radius`` bits are joined as near-duplicates) and handles (the same handle on two platforms, or a link
to a profile elsewhere). Connected components are *networks*.

Popular entities would glue unrelated people together -- many honest artists link one well-known
creator's page. An entity shared by more than ``hub_max_accounts`` accounts, fewer than
``hub_risky_fraction`` of which carry risk of their own, is a *hub*: it is reported, but it neither joins
components nor carries risk.

Risk (0..1) starts at seeds and spreads along the strongest chain of evidence:

* base risk: operator seed list or reviewer-confirmed account 1.0; media matching a bank exactly 1.0,
  by PDQ 0.9; flagged posts 0.5, +0.1 per further flagged post, at most 0.8; a reviewer-rejected account
  has none (its own evidence was judged a false positive); a reviewer-confirmed URL or media hash gives
  the entity itself 1.0;
* each edge multiplies risk by its strength (``EDGE_WEIGHTS``: account-destination 0.85 for paid pages,
  invites and lockers, 0.8 aggregators, 0.75 short links; media 0.95; near-duplicate PDQ 0.9; handle 0.8;
  series 0.8 — accounts publishing outputs of the same series, see ``trade/series.py``),
  so two accounts funnelling to the same paid page pass on 0.85 x 0.85 = 0.72;
* an account's risk is the best product over all chains from any seed (max-product paths), and the chain
  itself is recorded (``risk_path``) so a reviewer sees exactly why.

A network is *flagged* when it holds a seed, a bank match or a flagged post; a component with none of
these is never flagged, whatever its size.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from ..errors import UsageError
from ..signals.hamming import hex_to_words, popcount
from ..signals.registry import registry
from .normalise import fold_light
from .posts import PostResult

__all__ = ["GraphConfig", "AccountGraph", "EDGE_WEIGHTS", "normalise_handle"]

EDGE_WEIGHTS: dict[str, float] = {
    "dest:monetisation": 0.85,
    "dest:messaging": 0.85,
    "dest:locker": 0.85,
    "dest:aggregator": 0.8,
    "dest:shortener": 0.75,
    "dest:other": 0.6,
    "dest:social": 0.6,
    "media": 0.95,
    "pdq_near": 0.9,
    "handle": 0.8,
    "series": 0.8,
}


@dataclass
class GraphConfig:
    destination_classes: tuple[str, ...] = ("monetisation", "aggregator", "messaging", "locker", "shortener")
    hub_max_accounts: int = 25
    hub_risky_fraction: float = 0.5
    handle_min_length: int = 5
    pdq_radius: int = 31
    pdq_min_quality: int = 50
    #: above this many distinct PDQ hashes, near-duplicates are not searched (all-pairs cost); exact only
    pdq_all_pairs_max: int = 50_000
    min_network_size: int = 2
    #: example flagged posts / bank matches kept per account (evidence; bounds per-account memory)
    flagged_examples: int = 10
    edge_weights: dict[str, float] = field(default_factory=lambda: dict(EDGE_WEIGHTS))

    @classmethod
    def from_section(cls, section: dict[str, Any]) -> "GraphConfig":
        cfg = cls()
        for key, value in section.items():
            if key == "edge_weights":
                cfg.edge_weights.update({str(k): float(v) for k, v in value.items()})
            elif key == "destination_classes":
                cfg.destination_classes = tuple(value)
            elif hasattr(cfg, key):
                setattr(cfg, key, type(getattr(cfg, key))(value))
            else:
                raise UsageError(f"unknown setting trade.graph.{key}")
        return cfg


def normalise_handle(handle: str, min_length: int = 5) -> str | None:
    """A handle compared across platforms: case, accents, ``@`` and ``._-`` separators ignored."""
    h = fold_light(handle.strip().lstrip("@"))
    h = "".join(ch for ch in h if ch.isalnum())
    return h if len(h) >= min_length else None


@dataclass
class _Account:
    platform: str
    id: str
    handle: str = ""
    display_name: str = ""
    profile_url: str = ""
    posts: int = 0
    flagged_posts: int = 0
    max_score: float = 0.0
    flagged_examples: list[dict[str, Any]] = field(default_factory=list)
    bank_matches: int = 0
    bank_examples: list[dict[str, Any]] = field(default_factory=list)
    seeds: list[dict[str, Any]] = field(default_factory=list)
    review: str | None = None
    entities: set[str] = field(default_factory=set)

    def ref(self) -> dict[str, str]:
        return {"platform": self.platform, "id": self.id, "handle": self.handle}


@dataclass
class _Entity:
    kind: str  # dest | media | handle | series
    weight_key: str
    label: str
    meta: dict[str, Any]
    accounts: set[str] = field(default_factory=set)
    seed: dict[str, Any] | None = None


def _akey(platform: str, account_id: str) -> str:
    return f"{platform}\x1f{account_id}"


class AccountGraph:
    """Accumulates accounts and shared entities from post results, then finds and scores networks."""

    def __init__(self, config: GraphConfig | None = None) -> None:
        self.config = config or GraphConfig()
        self.accounts: dict[str, _Account] = {}
        self.entities: dict[str, _Entity] = {}
        self._pending_seeds: list[tuple[str, str, dict[str, Any]]] = []
        self._url_decisions: dict[str, dict[str, Any]] = {}
        self._media_decisions: dict[str, dict[str, Any]] = {}
        self._account_decisions: dict[str, tuple[str, dict[str, Any]]] = {}

    # -- input ----------------------------------------------------------------------------------------

    def _account(self, platform: str, account_id: str) -> _Account:
        key = _akey(platform, account_id)
        acc = self.accounts.get(key)
        if acc is None:
            acc = self.accounts[key] = _Account(platform, account_id)
        return acc

    def _link(self, akey: str, ekey: str, kind: str, weight_key: str, label: str, meta: dict[str, Any]) -> None:
        ent = self.entities.get(ekey)
        if ent is None:
            ent = self.entities[ekey] = _Entity(kind, weight_key, label, meta)
        ent.accounts.add(akey)
        self.accounts[akey].entities.add(ekey)

    def add_result(self, result: PostResult) -> None:
        post = result.post
        a = post["account"]
        acc = self._account(post["platform"], a["id"])
        akey = _akey(acc.platform, acc.id)
        acc.handle = a["handle"] or acc.handle
        acc.display_name = a["display_name"] or acc.display_name
        acc.profile_url = a["profile_url"] or acc.profile_url
        acc.posts += 1
        ev = result.evaluation
        if ev.flagged:
            acc.flagged_posts += 1
            acc.max_score = max(acc.max_score, ev.score)
            if len(acc.flagged_examples) < self.config.flagged_examples:
                acc.flagged_examples.append({"post_id": post["post_id"], "score": ev.score,
                                             "rules": [f.rule for f in ev.flags]})
        for m in result.media_matches:
            acc.bank_matches += 1
            if len(acc.bank_examples) < self.config.flagged_examples:
                acc.bank_examples.append(dict(m, post_id=post["post_id"]))
        classes = self.config.destination_classes
        for lk in result.links:
            if lk.kind == "social":
                if lk.account and lk.field != "account.profile_url":
                    h = normalise_handle(lk.account, self.config.handle_min_length)
                    if h:
                        self._link(akey, f"handle|{h}", "handle", "handle", h,
                                   {"seen_as": f"{lk.platform}:{lk.account}"})
            elif lk.kind in classes and lk.destination:
                self._link(akey, f"dest|{lk.destination}", "dest", f"dest:{lk.kind}", lk.destination,
                           {"kind": lk.kind, "platform": lk.platform})
        if acc.handle:
            h = normalise_handle(acc.handle, self.config.handle_min_length)
            if h:
                self._link(akey, f"handle|{h}", "handle", "handle", h, {})
        for m in post["media"]:
            quality = m.get("pdq_quality")
            for st in ("sha256", "md5", "pdq"):
                v = registry.get(st).valid(m.get(st)) if isinstance(m.get(st), str) else None
                if v is None:
                    continue
                if st == "pdq" and isinstance(quality, (int, float)) and quality < self.config.pdq_min_quality:
                    continue
                self._link(akey, f"media|{st}:{v}", "media", "media", f"{st}:{v}", {"signal_type": st})
        for entry in result.series:  # outputs of the same creator's run (trade/series.py)
            self._link(akey, f"series|{entry['id']}", "series", "series", f"series:{entry['id']}",
                       {"model": entry.get("model"), "model_hash": entry.get("model_hash"),
                        "loras": entry.get("loras") or []})

    def add_seed(self, platform: str, account_id: str, source: str = "seed_list", **detail: Any) -> None:
        """An operator-supplied seed account (``--seed-accounts``)."""
        acc = self._account(platform.strip().lower(), str(account_id))
        acc.seeds.append({"source": source, **detail})

    def add_decision(self, subject: str, key: str, decision: str, info: dict[str, Any]) -> None:
        """A reviewer decision: ``account`` (key ``platform:id``), ``url`` (canonical URL) or ``media``
        (``type:value``); ``confirmed`` seeds risk, ``rejected`` removes an account's own risk."""
        if subject == "account":
            platform, _, aid = key.partition(":")
            self._account_decisions[_akey(platform, aid)] = (decision, info)
            if decision == "confirmed":
                self._account(platform, aid)
        elif subject == "url" and decision == "confirmed":
            self._url_decisions[key] = info
        elif subject == "media" and decision == "confirmed":
            self._media_decisions[key] = info

    # -- analysis -------------------------------------------------------------------------------------

    def _base_risk(self, acc: _Account) -> tuple[float, str]:
        decision = self._account_decisions.get(_akey(acc.platform, acc.id))
        if decision and decision[0] == "rejected":
            acc.review = "rejected"
            return 0.0, "reviewer rejected (false positive)"
        if decision and decision[0] == "confirmed":
            acc.review = "confirmed"
            return 1.0, f"reviewer confirmed ({decision[1].get('reviewer', '?')})"
        if acc.seeds:
            return 1.0, f"seed ({acc.seeds[0]['source']})"
        if acc.bank_matches:
            best = min(int(m.get("distance", 0) or 0) for m in acc.bank_examples) if acc.bank_examples else 0
            if best == 0:
                return 1.0, "media matched a bank exactly"
            return 0.9, f"media matched a bank by PDQ (distance {best})"
        if acc.flagged_posts:
            return min(0.8, 0.5 + 0.1 * (acc.flagged_posts - 1)), f"{acc.flagged_posts} flagged post(s)"
        return 0.0, ""

    def _pdq_near_pairs(self, keys: list[str]) -> list[tuple[str, str, int]]:
        n = len(keys)
        if n < 2 or n > self.config.pdq_all_pairs_max:
            return []
        words = hex_to_words([k.split(":", 1)[1] for k in keys])
        pairs = []
        block = 512
        for i in range(0, n, block):
            a = words[i:i + block]
            for j in range(i, n, 2048):
                b = words[j:j + 2048]
                d = popcount(a[:, None, :] ^ b[None, :, :]).sum(axis=2)
                ii, jj = np.nonzero(d <= self.config.pdq_radius)
                for x, y in zip(ii.tolist(), jj.tolist()):
                    gi, gj = i + x, j + y
                    if gi < gj:
                        pairs.append((keys[gi], keys[gj], int(d[x, y])))
        return pairs

    def analyse(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
        """(networks, account records, summary). Call once, after every post was added."""
        cfg = self.config
        base: dict[str, tuple[float, str]] = {}
        for akey, acc in self.accounts.items():
            base[akey] = self._base_risk(acc)
        for key, info in self._url_decisions.items():
            ent = self.entities.get(f"dest|{key}")
            if ent is not None:
                ent.seed = {"source": "reviewer confirmed URL", **info}
        for key, info in self._media_decisions.items():
            ent = self.entities.get(f"media|{key}")
            if ent is not None:
                ent.seed = {"source": "reviewer confirmed media", **info}

        hubs: dict[str, _Entity] = {}
        for ekey, ent in self.entities.items():
            n = len(ent.accounts)
            if n > cfg.hub_max_accounts and ent.seed is None:
                risky = sum(1 for a in ent.accounts if base[a][0] > 0)
                if risky / n < cfg.hub_risky_fraction:
                    hubs[ekey] = ent
        pdq_keys = [k for k, e in self.entities.items() if e.kind == "media" and e.label.startswith("pdq:")
                    and k not in hubs]
        near = self._pdq_near_pairs(pdq_keys)
        in_near = {k for pair in near for k in pair[:2]}

        g = nx.Graph()
        # accounts enter the graph through shared entities; lone accounts only matter when they carry risk
        g.add_nodes_from(k for k, (b, _) in base.items() if b > 0)
        for ekey, ent in self.entities.items():
            if ekey in hubs:
                continue
            if len(ent.accounts) < 2 and ent.seed is None and ekey not in in_near:
                continue  # links nobody to anybody
            w = cfg.edge_weights.get(ent.weight_key, 0.5)
            for akey in ent.accounts:
                g.add_edge(akey, ekey, weight=w)
        for x, y, dist in near:
            g.add_edge(x, y, weight=cfg.edge_weights["pdq_near"], distance=dist)

        risk, parent = self._propagate(g, base)
        networks: list[dict[str, Any]] = []
        network_of: dict[str, str] = {}
        for comp in nx.connected_components(g):
            members = sorted(k for k in comp if k in self.accounts)
            if not members:
                continue
            seeds_in = [k for k in comp if (k in base and base[k][0] > 0)
                        or (k in self.entities and self.entities[k].seed is not None)]
            flagged = bool(seeds_in)
            if len(members) < cfg.min_network_size and not flagged:
                continue
            nid = "N-" + hashlib.sha1(members[0].encode()).hexdigest()[:10]
            for m in members:
                network_of[m] = nid
            networks.append(self._network_doc(nid, comp, members, flagged, base, risk, hubs, g))
        networks.sort(key=lambda n: (not n["flagged"], -n["risk"], -len(n["accounts"]), n["id"]))

        records = []
        for akey, acc in self.accounts.items():
            r = risk.get(akey, 0.0)
            records.append({
                **acc.ref(),
                "display_name": acc.display_name,
                "profile_url": acc.profile_url,
                "posts": acc.posts,
                "flagged_posts": acc.flagged_posts,
                "max_score": acc.max_score,
                "flagged_examples": acc.flagged_examples,
                "bank_matches": acc.bank_matches,
                "bank_examples": acc.bank_examples,
                "seeds": acc.seeds,
                "review": acc.review,
                "base_risk": round(base[akey][0], 4),
                "base_reason": base[akey][1],
                "risk": round(r, 4),
                "risk_path": self._path(akey, parent, risk, base) if r > 0 else [],
                "network": network_of.get(akey),
                "destinations": sorted(self.entities[e].label for e in acc.entities
                                       if self.entities[e].kind == "dest")[:50],
            })
        summary = {
            "accounts": len(self.accounts),
            "entities": len(self.entities),
            "networks": len(networks),
            "flagged_networks": sum(1 for n in networks if n["flagged"]),
            "hubs": [{"entity": h.label, "kind": h.kind, "accounts": len(h.accounts)}
                     for h in sorted(hubs.values(), key=lambda e: -len(e.accounts))[:100]],
            "pdq_near_pairs": len(near),
            "pdq_near_skipped": len(pdq_keys) > cfg.pdq_all_pairs_max,
        }
        return networks, records, summary

    def _propagate(self, g: nx.Graph, base: dict[str, tuple[float, str]]) -> tuple[dict[str, float],
                                                                                   dict[str, str | None]]:
        """Max-product risk from every seed (Dijkstra on -log weights); remembers each node's best parent."""
        risk: dict[str, float] = {}
        parent: dict[str, str | None] = {}
        heap: list[tuple[float, str]] = []
        for k, (b, _) in base.items():
            if b > 0:
                risk[k] = b
                parent[k] = None
                heapq.heappush(heap, (-b, k))
        for k, ent in self.entities.items():
            if ent.seed is not None and k in g:
                risk[k] = 1.0
                parent[k] = None
                heapq.heappush(heap, (-1.0, k))
        done: set[str] = set()
        while heap:
            neg, node = heapq.heappop(heap)
            if node in done:
                continue
            done.add(node)
            r = -neg
            if node not in g:
                continue
            for nb, data in g[node].items():
                cand = r * data.get("weight", 0.5)
                if cand > risk.get(nb, 0.0) + 1e-12 and nb not in done:
                    # a reviewer-rejected account was judged benign: it neither takes nor passes on risk
                    if nb in self.accounts and self.accounts[nb].review == "rejected":
                        continue
                    risk[nb] = cand
                    parent[nb] = node
                    heapq.heappush(heap, (-cand, nb))
        return risk, parent

    def _describe(self, key: str) -> dict[str, Any]:
        if key in self.accounts:
            acc = self.accounts[key]
            return {"type": "account", **acc.ref()}
        ent = self.entities[key]
        return {"type": {"dest": "destination", "media": "media", "handle": "handle", "series": "series"}[ent.kind],
                "value": ent.label}

    def _path(self, key: str, parent: dict[str, str | None], risk: dict[str, float],
              base: dict[str, tuple[float, str]]) -> list[dict[str, Any]]:
        chain = []
        node: str | None = key
        guard = 0
        while node is not None and guard < 64:
            step = self._describe(node)
            step["risk"] = round(risk.get(node, 0.0), 4)
            if parent.get(node) is None:
                if node in base:
                    step["reason"] = base[node][1]
                elif node in self.entities and (seed := self.entities[node].seed):
                    step["reason"] = seed.get("source", "seed")
            chain.append(step)
            node = parent.get(node)
            guard += 1
        chain.reverse()
        return chain

    def _network_doc(self, nid: str, comp: set[str], members: list[str], flagged: bool,
                     base: dict[str, tuple[float, str]], risk: dict[str, float], hubs: dict[str, _Entity],
                     g: nx.Graph) -> dict[str, Any]:
        accounts: list[dict[str, Any]] = []
        evidence: list[dict[str, Any]] = []
        platforms: dict[str, int] = {}
        for m in members:
            acc = self.accounts[m]
            platforms[acc.platform] = platforms.get(acc.platform, 0) + 1
            accounts.append({**acc.ref(), "display_name": acc.display_name, "profile_url": acc.profile_url,
                             "risk": round(risk.get(m, 0.0), 4), "base_risk": round(base[m][0], 4),
                             "posts": acc.posts, "flagged_posts": acc.flagged_posts, "review": acc.review})
            for s in acc.seeds:
                evidence.append({"type": "seed", "account": acc.ref(), **s})
            if acc.review:
                evidence.append({"type": f"reviewer_{acc.review}", "account": acc.ref()})
            for bm in acc.bank_examples[:5]:
                evidence.append({"type": "bank_match", "account": acc.ref(), **bm})
            for fp in acc.flagged_examples[:5]:
                evidence.append({"type": "flagged_post", "account": acc.ref(), **fp})
        accounts.sort(key=lambda a: (-a["risk"], a["platform"], a["id"]))
        destinations = []
        media = []
        for k in sorted(comp):
            if k not in self.entities:
                continue
            ent = self.entities[k]
            refs = [self.accounts[a].ref() for a in sorted(ent.accounts)]
            if ent.kind == "dest":
                destinations.append({"url": ent.label, "kind": ent.meta.get("kind"),
                                     "platform": ent.meta.get("platform"), "accounts": len(refs)})
                if len(refs) > 1:
                    evidence.append({"type": "shared_destination", "destination": ent.label,
                                     "kind": ent.meta.get("kind"), "accounts": refs})
            elif ent.kind == "media":
                media.append({"key": ent.label, "accounts": len(refs)})
                if len(refs) > 1:
                    evidence.append({"type": "shared_media", "media": ent.label, "accounts": refs})
                for nb, data in g[k].items():
                    if nb in self.entities and self.entities[nb].kind == "media" and k < nb:
                        evidence.append({"type": "near_duplicate_media", "a": ent.label,
                                         "b": self.entities[nb].label, "distance": data.get("distance"),
                                         "accounts": refs + [self.accounts[a].ref()
                                                             for a in sorted(self.entities[nb].accounts)]})
            elif ent.kind == "series" and len(refs) > 1:
                evidence.append({"type": "shared_series", "series": ent.label, "model": ent.meta.get("model"),
                                 "loras": ent.meta.get("loras"), "accounts": refs})
            elif ent.kind == "handle" and len(refs) > 1:
                evidence.append({"type": "shared_handle", "handle": ent.label, "accounts": refs})
            if ent.seed:
                evidence.append({"type": "seed_entity", "entity": ent.label, **ent.seed})
        hub_links = []
        for hk, hub in hubs.items():
            inside = [a for a in hub.accounts if a in comp]
            if inside:
                hub_links.append({"entity": hub.label, "kind": hub.kind, "accounts_total": len(hub.accounts),
                                  "accounts_here": len(inside)})
        top = max((risk.get(m, 0.0) for m in members), default=0.0)
        return {
            "id": nid,
            "risk": round(top, 4),
            "flagged": flagged,
            "size": len(members),
            "platforms": dict(sorted(platforms.items())),
            "accounts": accounts,
            "destinations": destinations,
            "media": media,
            "hubs": hub_links,
            "evidence": evidence,
        }
