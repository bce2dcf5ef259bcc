"""Prompt guard: decisions with reasons, per-user escalation over a sliding window, allow-list, CLI; and the
shipped starter list, which must load and must not flag ordinary phrases. Placeholder vocabulary only."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tripwire.cli import app
from tripwire.trade.posts import PostAnalyzer
from tripwire.trade.prompt_guard import GuardConfig, PromptGuard
from tripwire.trade.rules import default_rules
from tripwire.trade.terms import Term, TermEngine, starter_terms

TERMS = [Term("alpha", "cat-a"), Term("bravo", "cat-b", 0.5)]


def guard(**cfg) -> PromptGuard:
    return PromptGuard(TermEngine(TERMS, allow=["alpha centauri"]), default_rules(), GuardConfig(**cfg))


def test_content_decisions_with_reasons():
    g = guard()
    d = g.check("a landscape with a river")
    assert (d.action, d.score, d.reasons, d.review) == ("allow", 0.0, [], False)
    d = g.check("something bravo")
    assert d.action == "warn" and d.score == 0.5
    assert d.reasons[0]["rule"] == "term" and d.reasons[0]["evidence"][0]["match"] == "bravo"
    d = g.check("something ALPHA")
    assert d.action == "block" and d.review
    d = g.check("item 12yo near b-r-a-v-o")  # age next to a term: the rule forces block
    assert d.action == "block"
    rules = {r["rule"] for r in d.reasons}
    assert "age-near-term" in rules
    spans = [(e["kind"], e["match"]) for r in d.reasons if r["rule"] == "age-near-term" for e in r["evidence"]]
    assert ("age", "12yo") in spans and ("term", "b-r-a-v-o") in spans
    assert g.check("item 12yo").action == "allow"  # an age alone is not a reason


def test_allow_list_for_reviewed_false_positives():
    g = guard()
    assert g.check("a poster of Alpha Centauri").action == "allow"
    assert g.check("alpha and alpha centauri").action == "block"


def test_escalation_over_a_sliding_window():
    g = guard(window_seconds=100, warn_after=2, review_after=3, block_after=4)
    t = 1000.0
    assert g.check("bravo", user="u", now=t).action == "warn"
    d = g.check("bravo", user="u", now=t + 1)
    assert (d.action, d.recent, d.review) == ("warn", 2, False)
    d = g.check("bravo", user="u", now=t + 2)
    assert d.review and d.recent == 3
    d = g.check("a quiet landscape", user="u", now=t + 3)  # harmless, but the user is escalated
    assert d.action == "warn" and d.content_action == "allow" and d.escalation
    d = g.check("bravo", user="u", now=t + 4)
    assert d.action == "block" and d.recent == 4 and "block at 4" in d.escalation
    assert g.check("a quiet landscape", user="u", now=t + 50).action == "block"
    assert g.check("a quiet landscape", user="other", now=t + 50).action == "allow"
    # the window slides: old events expire
    d = g.check("a quiet landscape", user="u", now=t + 103)  # only the event at t+4 is still in the window
    assert (d.action, d.recent) == ("allow", 1)
    d = g.check("a quiet landscape", user="u", now=t + 200)
    assert (d.action, d.recent) == ("allow", 0)
    g.reset("u")


def test_escalation_config_validation():
    from tripwire.errors import UsageError

    with pytest.raises(UsageError):
        GuardConfig.from_section({"warn_after": 5, "block_after": 2})
    with pytest.raises(UsageError):
        GuardConfig.from_section({"blok_after": 2})
    assert GuardConfig.from_section({"window_seconds": 60}).window_seconds == 60.0


def test_cli_single_and_jsonl(tmp_path):
    terms = tmp_path / "t.csv"
    terms.write_text("alpha,cat-a,1\nbravo,cat-b,0.5\n")
    r = CliRunner().invoke(app, ["prompt", "check", "a bravo sketch", "--terms", str(terms)])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["action"] == "warn"
    r = CliRunner().invoke(app, ["prompt", "check", "a bravo sketch", "--terms", str(terms), "--fail-on", "warn"])
    assert r.exit_code == 1
    prompts = tmp_path / "p.jsonl"
    rows = [{"id": i, "user": "u1", "text": "bravo", "time": 100 + i} for i in range(3)]
    rows += [{"user": "u2", "text": "river at dusk", "time": "2025-01-01T00:00:00Z"}, {"nope": 1}]
    prompts.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    conf = tmp_path / "c.toml"
    conf.write_text("[trade.prompt]\nwarn_after = 1\nreview_after = 2\nblock_after = 3\n")
    r = CliRunner().invoke(app, ["prompt", "check", "--jsonl", str(prompts), "--terms", str(terms),
                                 "--config", str(conf)])
    assert r.exit_code == 0, r.output
    out = [json.loads(x) for x in r.output.splitlines()]
    assert [o.get("action") for o in out] == ["warn", "warn", "block", "allow", None, None]
    assert out[2]["id"] == 2 and out[2]["recent"] == 3
    assert out[4]["line"] == 5 and "text" in out[4]["error"]
    assert out[5]["line"] == 6
    r = CliRunner().invoke(app, ["prompt", "check"])
    assert r.exit_code == 2
    typo = tmp_path / "typo.toml"
    typo.write_text("[trade]\nterm = ['x.csv']\n")
    r = CliRunner().invoke(app, ["prompt", "check", "x", "--config", str(typo)])
    assert r.exit_code == 2 and "term" in r.output


BENIGN_PHRASES = [
    "children's book illustration",
    "nude colour palette for a living room",
    "teenage band poster from the nineties",
    "school bus toy",
    "baby shower invitation card",
    "kids birthday party balloons",
    "young adult fantasy novel cover",
    "girl with a pearl earring study",
    "boy scouts camping badge",
    "family portrait in the park",
    "skin tone swatches for portrait painting",
    "naked eye astronomy guide",
    "bare tree branches in winter",
    "private beach sunset",
    "exclusive interview with the illustrator",
    "free download of my brush set",
    "premium watercolour paper review",
    "link in bio for my print shop",
    "commissions open, DM me",
    "limited edition enamel pin",
    "members only livestream of my painting process",
    "patreon reward: monthly wallpaper pack",
    "full body character reference sheet",
    "my content creator journey",
    "uncut gems movie poster",
    "mega man fan art",
    "teen titans cosplay photoshoot",
    "little league baseball trophy",
    "adult colouring book of mandalas",
    "hot air balloon festival",
    "spicy ramen recipe",
    "leaked the ending of my own comic, oops",
    "primary school science fair volcano",
    "candy shop storefront drawing",
    "secret garden landscape",
    "vip lounge interior design",
    "telegram from 1920 in a museum",
    "drive folder of reference photos",
    "backup of my sketchbook",
]


@pytest.mark.parametrize("phrase", BENIGN_PHRASES)
def test_starter_list_does_not_flag_benign_phrases(phrase):
    engine = TermEngine(starter_terms())
    assert engine.find(phrase) == []
    assert PromptGuard(engine).check(phrase).action == "allow"
    analyzer = PostAnalyzer(engine, default_rules())
    post = {"platform": "p", "post_id": "1", "created_at": None, "url": "",
            "account": {"id": "a", "handle": "", "display_name": "", "profile_url": "", "bio": ""},
            "text": phrase + " https://shop-1.example.com $5", "tags": [phrase.replace(" ", "")], "groups": [],
            "links": [], "media": []}
    assert not analyzer.analyze(post).flagged
