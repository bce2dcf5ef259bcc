"""The post feed end to end: a synthetic feed with planted networks amid hundreds of benign accounts.

Planted networks funnel accounts on two platforms to the same paid pages and share media hashes; benign
accounts link their own shops and portfolios, and 120 honest artists share one popular creator's page (a
hub, which must neither be flagged nor glue anyone into a flagged network). Every planted network must be
recovered exactly, and no benign account may end up in a flagged network.

Placeholder vocabulary only; "media" are hashes of short benign strings and random PDQ bit patterns.
"""

from __future__ import annotations

import hashlib
import json
import random

import pytest
from typer.testing import CliRunner

from tripwire.cli import app
from tripwire.trade.graph import AccountGraph, GraphConfig
from tripwire.trade.hashlists import HashListMatcher
from tripwire.trade.posts import PostAnalyzer, read_posts
from tripwire.trade.rules import default_rules
from tripwire.trade.scan import scan_feed
from tripwire.trade.confirmed import Signal, load_decisions, signals_from_scan
from tripwire.trade.terms import Term, TermEngine

BENIGN_TEXTS = [
    "morning light over the river, watercolour study",
    "new still life with lemons and a blue jug",
    "sketchbook page: trees, birds and a bridge",
    "prints of this one are in the shop, $15 each",
    "practising perspective with the alphabet blocks on my desk",
    "commission for a friend, a portrait of their dog",
    "thank you all for 1000 followers!",
    "ink drawing of the harbour at dusk",
]


def sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def pdq_hex(bits: int) -> str:
    return f"{bits:064x}"


def flip(bits: int, n: int, rnd: random.Random) -> int:
    for pos in rnd.sample(range(256), n):
        bits ^= 1 << pos
    return bits


def post(platform: str, pid: str, acc: dict, text: str = "", **kw) -> dict:
    return {"platform": platform, "post_id": pid, "created_at": "2025-01-01T00:00:00Z", "account": acc,
            "text": text, **kw}


def build_feed(rnd: random.Random) -> tuple[list[str], dict[str, set[tuple[str, str]]], set[tuple[str, str]],
                                             dict[str, str]]:
    """(lines, planted networks, benign accounts, bank values)."""
    lines: list[str] = []
    benign: set[tuple[str, str]] = set()
    planted: dict[str, set[tuple[str, str]]] = {}
    n = 0

    def emit(p: dict) -> None:
        nonlocal n
        n += 1
        lines.append(json.dumps(p, ensure_ascii=False))

    # -- benign accounts: own shops, portfolios, ko-fi pages; 120 share one popular creator's Patreon --
    for i in range(320):
        platform = "pixiv" if i % 2 else "x"
        acc = {"id": f"b{i}", "handle": f"artist_{i:03d}", "display_name": f"Artist {i}",
               "bio": "landscapes and still life, commissions open"}
        benign.add((platform, f"b{i}"))
        for k in range(3):
            text = rnd.choice(BENIGN_TEXTS)
            links = [f"https://shop-{i}.example.com/prints", f"https://www.artstation.com/artist_{i:03d}"]
            if k == 0:
                text += f" tips: ko-fi.com/artist{i}"
            if i < 120:
                text += " go support patreon.com/popular-creator, they are great"
            media = [{"sha256": sha(f"benign-{i}-{k}"), "pdq": pdq_hex(rnd.getrandbits(256)), "pdq_quality": 90}]
            emit(post(platform, f"b{i}-{k}", acc, text, tags=["Watercolour", "StillLife"], links=links,
                      media=media))
    # two benign friends with the same handle on two platforms: a small, unflagged network
    for platform in ("pixiv", "x"):
        acc = {"id": f"pair-{platform}", "handle": "benign_pair_studio"}
        benign.add((platform, f"pair-{platform}"))
        emit(post(platform, f"pair-{platform}", acc, "cloud study"))

    bank: dict[str, str] = {}

    # -- network 0: flagged through its posts (placeholder terms + prices), shares media and a paid page
    net = set()
    s0 = sha("net0-image")
    forms = ["patreon[.]com/placeholder-creator-0", "patreon dot com/placeholder-creator-0",
             "ｐａｔｒｅｏｎ．ｃｏｍ/placeholder-creator-0", "https://www.patreon.com/Placeholder-Creator-0?utm_source=x",
             "pat reon . com / placeholder-creator-0"]
    for j in range(5):
        platform = "pixiv" if j < 3 else "x"
        acc = {"id": f"n0-{j}", "handle": f"n0_account_{j}", "bio": f"more: {forms[j]}"}
        net.add((platform, acc["id"]))
        text = "new set, alpha, $5/month" if j in (0, 3) else "update posted"
        if j == 1:
            text += " also check patreon.com/popular-creator"  # the hub must not pull honest artists in
        emit(post(platform, f"n0-{j}", acc, text, tags=["BravoCharlie"] if j == 0 else [],
                  media=[{"sha256": s0}] if j < 3 else [{"sha256": sha(f"n0-own-{j}")}]))
        emit(post(platform, f"n0-{j}-b", acc, "another update", links=[forms[(j + 1) % 5].replace(" ", "")]))
    planted["net0"] = net

    # -- network 1: flagged through an exact bank match; fanbox page and a Telegram invite ---------------
    net = set()
    s1 = sha("net1-image")
    bank["sha256"] = s1
    for j in range(4):
        platform = "pixiv" if j % 2 else "x"
        acc = {"id": f"n1-{j}", "handle": f"n1_account_{j}"}
        net.add((platform, acc["id"]))
        media = [{"sha256": s1}] if j == 0 else [{"sha256": sha(f"n1-own-{j}")}]
        emit(post(platform, f"n1-{j}", acc, "placeholder-creator-1.fanbox.cc and t.me/+PlaceholderInvite1",
                  media=media))
    planted["net1"] = net

    # -- network 2: flagged through a PDQ near match; joined by near-duplicate PDQ hashes ----------------
    net = set()
    base = rnd.getrandbits(256)
    bank["pdq"] = pdq_hex(base)
    for j in range(3):
        platform = "pixiv" if j % 2 else "x"
        acc = {"id": f"n2-{j}", "handle": f"n2_account_{j}"}
        net.add((platform, acc["id"]))
        emit(post(platform, f"n2-{j}", acc, "quiet post",
                  media=[{"pdq": pdq_hex(flip(base, 3 + j, rnd)), "pdq_quality": 100}]))
    planted["net2"] = net

    # -- network 3: flagged through an operator seed; a file locker and one handle on two platforms -----
    net = set()
    for j, (platform, handle) in enumerate([("pixiv", "placeholder_three"), ("x", "Placeholder.Three"),
                                            ("x", "n3_other"), ("pixiv", "n3_fourth")]):
        acc = {"id": f"n3-{j}", "handle": handle}
        net.add((platform, acc["id"]))
        text = "files: gofile.io/d/Placeholder3" if j != 1 else "hello"
        emit(post(platform, f"n3-{j}", acc, text))
    planted["net3"] = net

    # -- network 4: dormant (no seed, no flagged post): found, never flagged ----------------------------
    net = set()
    for j in range(2):
        acc = {"id": f"n4-{j}", "handle": f"n4_account_{j}"}
        platform = ("pixiv", "x")[j]
        net.add((platform, acc["id"]))
        emit(post(platform, f"n4-{j}", acc, "my page patreon.com/placeholder-creator-4"))
    planted["dormant"] = net

    rnd.shuffle(lines)
    # bad lines at known positions: nothing but these may be skipped
    lines.insert(10, "{not json")
    lines.insert(20, json.dumps({"platform": "x", "post_id": "bad-1", "account": {"handle": "no id"}}))
    lines.insert(30, json.dumps({"platform": "x", "post_id": "bad-2", "account": {"id": "z"}, "tags": "alpha"}))
    return lines, planted, benign, bank


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("feed")
    lines, planted, benign, bank = build_feed(random.Random(2025))
    feed = tmp / "posts.jsonl"
    feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    terms = tmp / "placeholder.csv"
    terms.write_text("term,category,weight\nalpha,cat-a,1\nbravo charlie,cat-b,1\n", encoding="utf-8")
    bank_plain = tmp / "bank-exact.txt"
    bank_plain.write_text(f"# benign stand-ins\n{bank['sha256']}\n", encoding="utf-8")
    bank_csv = tmp / "bank-pdq.csv"
    bank_csv.write_text(f"signal_type,value,category\npdq,{bank['pdq']},placeholder\n", encoding="utf-8")
    seeds = tmp / "seeds.jsonl"
    seeds.write_text(json.dumps({"platform": "x", "id": "n3-2", "reason": "operator list"}) + "\n", encoding="utf-8")
    out = tmp / "out"
    result = CliRunner().invoke(app, ["posts", "scan", str(feed), "--out", str(out), "--terms", str(terms),
                                      "--banks", str(bank_plain), "--banks", str(bank_csv),
                                      "--seed-accounts", str(seeds), "--quiet"])
    assert result.exit_code == 0, result.output
    networks = json.loads((out / "networks.json").read_text(encoding="utf-8"))
    return {"out": out, "planted": planted, "benign": benign, "networks": networks, "lines": lines,
            "feed": feed, "terms": terms, "bank": bank, "cli_output": result.output}


def members(network: dict) -> set[tuple[str, str]]:
    return {(a["platform"], a["id"]) for a in network["accounts"]}


def test_every_planted_network_is_recovered_exactly(scanned):
    flagged = [n for n in scanned["networks"]["networks"] if n["flagged"]]
    for name in ("net0", "net1", "net2", "net3"):
        matches = [n for n in flagged if members(n) == scanned["planted"][name]]
        assert len(matches) == 1, f"{name} not recovered: {[sorted(members(n)) for n in flagged]}"
    assert len(flagged) == 4


def test_no_benign_account_in_a_flagged_network(scanned):
    for n in scanned["networks"]["networks"]:
        if n["flagged"]:
            assert not (members(n) & scanned["benign"]), n["id"]


def test_dormant_and_benign_networks_are_not_flagged(scanned):
    nets = scanned["networks"]["networks"]
    dormant = [n for n in nets if members(n) == scanned["planted"]["dormant"]]
    assert len(dormant) == 1 and not dormant[0]["flagged"] and dormant[0]["risk"] == 0
    pair = [n for n in nets if members(n) == {("pixiv", "pair-pixiv"), ("x", "pair-x")}]
    assert len(pair) == 1 and not pair[0]["flagged"]
    assert any(e["type"] == "shared_handle" for e in pair[0]["evidence"])


def test_popular_destination_is_a_hub(scanned):
    summary = scanned["networks"]["summary"]
    hubs = {h["entity"]: h["accounts"] for h in summary["hubs"]}
    assert hubs.get("https://patreon.com/popular-creator") == 121
    net0 = next(n for n in scanned["networks"]["networks"] if members(n) == scanned["planted"]["net0"])
    assert [h["entity"] for h in net0["hubs"]] == ["https://patreon.com/popular-creator"]
    assert "https://patreon.com/popular-creator" not in [d["url"] for d in net0["destinations"]]


def test_evidence_chain_per_network(scanned):
    nets = {name: next(n for n in scanned["networks"]["networks"] if members(n) == accts)
            for name, accts in scanned["planted"].items()}
    types = {name: {e["type"] for e in n["evidence"]} for name, n in nets.items()}
    assert {"flagged_post", "shared_destination", "shared_media"} <= types["net0"]
    assert {"bank_match", "shared_destination"} <= types["net1"]
    assert {"bank_match", "near_duplicate_media"} <= types["net2"]
    assert {"seed", "shared_destination", "shared_handle"} <= types["net3"]
    pdq_match = [e for e in nets["net2"]["evidence"] if e["type"] == "bank_match"]
    assert pdq_match and all(e["signal_type"] == "pdq" and 0 < e["distance"] <= 31 for e in pdq_match)
    assert {d["url"] for d in nets["net0"]["destinations"]} == {"https://patreon.com/placeholder-creator-0"}
    assert {d["url"] for d in nets["net1"]["destinations"]} == {"https://placeholder-creator-1.fanbox.cc",
                                                                "https://t.me/+PlaceholderInvite1"}
    assert set(nets["net0"]["platforms"]) == {"pixiv", "x"}


def test_accounts_carry_explained_risk(scanned):
    recs = {(r["platform"], r["id"]): r for r in
            (json.loads(x) for x in (scanned["out"] / "accounts.jsonl").read_text().splitlines())}
    seed = recs[("x", "n3-2")]
    assert seed["risk"] == 1.0 and seed["seeds"] and seed["risk_path"][0]["reason"].startswith("seed")
    other = recs[("pixiv", "n3-0")]
    assert 0 < other["risk"] < 1
    path = other["risk_path"]
    assert path[0]["id"] == "n3-2" and path[-1]["id"] == "n3-0"
    assert any(step["type"] in ("destination", "handle") for step in path[1:-1])
    assert recs[("pixiv", "n1-1")]["risk"] == pytest.approx(1.0 * 0.85 * 0.85, abs=1e-3)
    for key in scanned["benign"]:
        assert recs[key]["risk"] == 0 and recs[key]["flagged_posts"] == 0, key
    assert recs[("pixiv", "n0-0")]["flagged_posts"] == 1


def test_posts_and_bad_lines(scanned):
    out = scanned["out"]
    posts = [json.loads(x) for x in (out / "posts.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(posts) == len(scanned["lines"]) - 3
    errors = [json.loads(x) for x in (out / "errors.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [e["line"] for e in errors] == [11, 21, 31]
    assert "invalid JSON" in errors[0]["error"] and "account" in errors[1]["error"] and "tags" in errors[2]["error"]
    flagged = [p for p in posts if p["flagged"]]
    assert {p["post_id"] for p in flagged} == {"n0-0", "n0-3"}
    p0 = next(p for p in posts if p["post_id"] == "n0-0")
    assert {t["term"] for t in p0["terms"]} == {"alpha", "bravo charlie"}
    assert p0["prices"][0]["amount"] == 5.0 and p0["prices"][0]["period"] == "month"
    assert any(lk["obfuscated"] and lk["field"] == "account.bio" for lk in p0["links"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["bad_lines"] == 3 and summary["posts"] == len(posts)


def test_html_report_shows_networks_without_media(scanned):
    html = (scanned["out"] / "networks.html").read_text(encoding="utf-8")
    for n in scanned["networks"]["networks"]:
        if n["flagged"]:
            assert n["id"] in html
    low = html.lower()
    for forbidden in ("<img", "<video", "<script", "src=", "href=\"http", "<iframe"):
        assert forbidden not in low
    assert "placeholder-creator-0" in html


def test_only_flagged_and_stdin(scanned, tmp_path):
    out = tmp_path / "o"
    data = scanned["feed"].read_text(encoding="utf-8")
    r = CliRunner().invoke(app, ["posts", "scan", "-", "--out", str(out), "--terms", str(scanned["terms"]),
                                 "--only-flagged", "--quiet"], input=data)
    assert r.exit_code == 0, r.output
    posts = (out / "posts.jsonl").read_text().splitlines()
    assert len(posts) == 2


def test_usage_errors(tmp_path):
    r = CliRunner().invoke(app, ["posts", "scan", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "no such file" in r.output
    bad_bank = tmp_path / "bank.txt"
    bad_bank.write_text("xyz\n")
    feed = tmp_path / "f.jsonl"
    feed.write_text("")
    r = CliRunner().invoke(app, ["posts", "scan", str(feed), "--out", str(tmp_path / "o"), "--banks", str(bad_bank)])
    assert r.exit_code == 2 and "bank.txt:1" in r.output


def test_hash_list_matcher(tmp_path):
    p = tmp_path / "list.txt"
    md5 = hashlib.md5(b"benign").hexdigest()
    base = random.Random(5).getrandbits(256)
    p.write_text(f"{md5}\n{pdq_hex(base)}\n", encoding="utf-8")
    m = HashListMatcher.from_files([p])
    assert m({"md5": md5.upper()})[0]["signal_type"] == "md5"
    near = m({"pdq": pdq_hex(flip(base, 31, random.Random(1)))})
    assert [(x["signal_type"], x["distance"]) for x in near] == [("pdq", 31)]
    assert m({"pdq": pdq_hex(flip(base, 32, random.Random(1)))}) == []
    assert m({"pdq": pdq_hex(base), "pdq_quality": 10}) == []  # too poor to match perceptually
    assert m({"sha256": pdq_hex(base)})[0]["signal_type"] == "sha256"  # 64 hex lines match either way


def test_reviewer_decisions_seed_and_suppress(tmp_path):
    engine = TermEngine([Term("alpha", "cat-a")])
    analyzer = PostAnalyzer(engine, default_rules())
    lines = [
        post("x", "1", {"id": "u1", "handle": "u_one"}, "alpha patreon.com/placeholder-creator-9"),
        post("x", "2", {"id": "u2", "handle": "u_two"}, "hi patreon.com/placeholder-creator-9"),
        post("x", "3", {"id": "u3", "handle": "u_three"}, "hi gofile.io/d/Placeholder8"),
        post("x", "4", {"id": "u4", "handle": "u_four"}, "hi gofile.io/d/Placeholder8"),
    ]
    feed = tmp_path / "f.jsonl"
    feed.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    graph = AccountGraph(GraphConfig())
    graph.add_decision("account", "x:u1", "rejected", {"reviewer": "r1"})
    graph.add_decision("url", "https://gofile.io/d/Placeholder8", "confirmed", {"reviewer": "r1"})
    scan_feed(feed, tmp_path / "o", analyzer, graph)
    nets = json.loads((tmp_path / "o" / "networks.json").read_text())["networks"]
    by = {frozenset(members(n)): n for n in nets}
    rejected = by[frozenset({("x", "u1"), ("x", "u2")})]
    assert not rejected["flagged"] and rejected["risk"] == 0
    confirmed = by[frozenset({("x", "u3"), ("x", "u4")})]
    assert confirmed["flagged"] and confirmed["risk"] == pytest.approx(0.85)


def test_signals_need_flagging_and_confirmation(scanned, tmp_path):
    d = tmp_path / "decisions.jsonl"
    rows = [
        {"subject": "account", "platform": "pixiv", "id": "n0-0", "decision": "confirmed", "reviewer": "r1",
         "decided_at": "2025-02-01T00:00:00Z"},
        {"subject": "account", "platform": "pixiv", "id": "b1", "decision": "confirmed", "reviewer": "r1"},
        {"subject": "url", "value": "patreon[.]com/Placeholder-Creator-0/posts", "decision": "confirmed",
         "reviewer": "r1"},
        {"subject": "url", "value": "https://patreon.com/popular-creator", "decision": "confirmed", "reviewer": "r1"},
        {"subject": "keyword", "value": "alpha", "decision": "confirmed", "reviewer": "r2", "category": "cat-a"},
        {"subject": "media", "signal_type": "sha256", "value": sha("net0-image").upper(), "decision": "confirmed",
         "reviewer": "r2"},
        {"subject": "account", "platform": "x", "id": "n0-3", "decision": "confirmed", "reviewer": "r1"},
        {"subject": "account", "platform": "x", "id": "n0-3", "decision": "rejected", "reviewer": "r3"},
    ]
    d.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    sigs = signals_from_scan(scanned["out"], load_decisions(d))
    got = {(s.type, s.value, s.confirmed_by) for s in sigs}
    assert got == {
        ("account", "pixiv:n0-0", "r1"),
        ("url", "https://patreon.com/placeholder-creator-0", "r1"),
        ("keyword", "alpha", "r2"),
        ("sha256", sha("net0-image"), "r2"),
    }
    assert all(isinstance(s, Signal) and s.source.startswith("tripwire posts scan") for s in sigs)
    out = tmp_path / "signals.csv"
    r = CliRunner().invoke(app, ["posts", "signals", str(scanned["out"]), "--decisions", str(d), "--out", str(out),
                                 "--format", "csv"])
    assert r.exit_code == 0, r.output
    assert len(out.read_text().splitlines()) == 5
    from tripwire.sharing.indicators import LANTERN_COLUMNS  # the same writer as `tripwire signals export`

    assert out.read_text().splitlines()[0] == ",".join(LANTERN_COLUMNS) and "r1" not in out.read_text()
    with pytest.raises(ValueError):
        Signal("phone", "x", "c", 1.0, "s", "r")
    with pytest.raises(ValueError):
        Signal("url", "x", "c", 1.0, "s", "")


def test_read_posts_reports_line_numbers():
    import io

    errors: list[dict] = []
    data = io.StringIO('{"platform": "x", "post_id": 1, "account": {"id": 2}}\n\n[1]\n{"platform": "", '
                       '"post_id": "3", "account": {"id": "4"}}\n')
    good = list(read_posts(data, errors))
    assert [(n, p["post_id"], p["account"]["id"]) for n, p in good] == [(1, "1", "2")]
    assert [(e["line"], e["error"]) for e in errors] == [(3, "a post must be a JSON object"),
                                                         (4, "platform is required")]
