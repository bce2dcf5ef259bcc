"""Rules: single-category hits, co-occurrence windows, age/price/link conditions, weights and thresholds;
plus the age, price and tier patterns they use. Placeholder vocabulary and neutral sentences only."""

from __future__ import annotations

import tomllib

import pytest

from tripwire.errors import UsageError
from tripwire.trade.ages import find_ages, parse_kanji_number
from tripwire.trade.posts import PostAnalyzer
from tripwire.trade.prices import find_prices, find_tiers
from tripwire.trade.rules import default_rules, load_rules, parse_rules
from tripwire.trade.terms import Term, TermEngine

ENGINE = TermEngine([Term("alpha", "cat-a"), Term("bravo", "cat-b"), Term("charlie", "cat-c", 0.5)])


def rules(text: str):
    return parse_rules(tomllib.loads(text), "test.toml")


def evaluate(ruleset, text: str, **post):
    analyzer = PostAnalyzer(ENGINE, ruleset)
    base = {"platform": "p", "post_id": "1", "created_at": None, "url": "",
            "account": {"id": "a", "handle": "", "display_name": "", "profile_url": "", "bio": ""},
            "text": text, "tags": [], "groups": [], "links": [], "media": []}
    base.update(post)
    return analyzer.analyze(base).evaluation


COOC = """
[settings]
threshold = 1.0
[[rule]]
id = "a-near-b"
all = ["cat-a", "cat-b"]
window = 5
weight = 1.0
"""


def test_cooccurrence_inside_the_window_fires():
    ev = evaluate(rules(COOC), "alpha one two three bravo")
    assert ev.flagged and [f.rule for f in ev.flags] == ["a-near-b"]
    spans = {(e["match"], e["start"], e["end"]) for e in ev.flags[0].evidence}
    assert spans == {("alpha", 0, 5), ("bravo", 20, 25)}


def test_cooccurrence_outside_the_window_does_not():
    ev = evaluate(rules(COOC), "alpha one two three four five six bravo")
    assert not ev.flagged and ev.flags == []


def test_window_counts_words_not_characters():
    ev = evaluate(rules(COOC), "alpha " + "x" * 500 + " bravo")
    assert ev.flagged


def test_window_needs_one_field():
    ev = evaluate(rules(COOC), "alpha", account={"id": "a", "handle": "", "display_name": "", "profile_url": "",
                                                   "bio": "bravo"})
    assert not ev.flagged
    anywhere = rules(COOC.replace("window = 5", "window = 0"))
    ev = evaluate(anywhere, "alpha", account={"id": "a", "handle": "", "display_name": "", "profile_url": "",
                                                "bio": "bravo"})
    assert ev.flagged
    assert {e["field"] for e in ev.flags[0].evidence} == {"text", "account.bio"}


def test_single_category_min_hits_and_weights():
    rs = rules("""
[settings]
threshold = 2.0
[[rule]]
id = "three-alphas"
any = ["cat-a"]
min_hits = 3
weight = 2.0
[[rule]]
id = "charlie"
any = ["cat-c"]
weight = 1.0
""")
    assert not evaluate(rs, "alpha alpha").flagged
    ev = evaluate(rs, "alpha alpha alpha")
    assert ev.flagged and ev.score == 2.0
    ev = evaluate(rs, "charlie")
    assert ev.score == 0.5 and not ev.flagged  # weight 1.0 x the term's weight 0.5


def test_any_with_min_any():
    rs = rules("""
[[rule]]
id = "two-of-three"
any = ["cat-a", "cat-b", "cat-c"]
min_any = 2
""")
    assert not evaluate(rs, "alpha alpha").flagged
    assert evaluate(rs, "alpha charlie").flagged


def test_age_condition_with_bounds_and_window():
    rs = rules("""
[[rule]]
id = "age-near-a"
all = ["age", "cat-a"]
window = 4
age_max = 15
""")
    assert evaluate(rs, "alpha item 12yo").flagged
    assert not evaluate(rs, "alpha item 16yo").flagged
    assert not evaluate(rs, "alpha one two three four five item 12yo").flagged
    assert not evaluate(rs, "item 12yo").flagged


def test_price_link_platform_and_field_conditions():
    rs = rules("""
[[rule]]
id = "a-with-paid-link-and-price"
all = ["cat-a", "link:monetisation", "price"]
[[rule]]
id = "patreon-in-bio"
all = ["platform:patreon"]
fields = ["account.bio"]
weight = 0.1
""")
    ev = evaluate(rs, "alpha $5/month patreon.com/placeholder-creator-1")
    assert [f.rule for f in ev.flags] == ["a-with-paid-link-and-price"]
    kinds = {e["kind"] for e in ev.flags[0].evidence}
    assert kinds == {"term", "link", "price"}
    assert not evaluate(rs, "alpha $5/month https://shop-1.example.com/item").flagged  # an ordinary shop
    assert evaluate(rs, "alpha $5/month ko-fi.com/").flagged  # a platform's root page is still a paid platform
    ev = evaluate(rs, "nothing", account={"id": "a", "handle": "", "display_name": "", "profile_url": "",
                                           "bio": "patreon.com/placeholder-creator-2"})
    assert [f.rule for f in ev.flags] == ["patreon-in-bio"] and not ev.flagged


def test_tags_and_groups_are_fields():
    rs = rules("""
[[rule]]
id = "b-in-tags"
any = ["cat-b"]
fields = ["tags"]
""")
    assert evaluate(rs, "", tags=["BravoArt"]).flagged
    assert not evaluate(rs, "bravo").flagged
    assert not evaluate(rs, "", groups=["bravo"]).flagged


def test_default_rules_combine_weak_terms_with_funnels():
    rs = default_rules()
    assert {r.id for r in rs.rules} >= {"term", "term-with-funnel", "age-near-term"}
    eng = TermEngine([Term("alpha", "weak", 0.5)])
    analyzer = PostAnalyzer(eng, rs)
    base = {"platform": "p", "post_id": "1", "created_at": None, "url": "",
            "account": {"id": "a", "handle": "", "display_name": "", "profile_url": "", "bio": ""},
            "tags": [], "groups": [], "links": [], "media": []}
    assert not analyzer.analyze(dict(base, text="alpha")).flagged
    assert analyzer.analyze(dict(base, text="alpha at fantia.jp/fanclubs/1")).flagged
    assert analyzer.analyze(dict(base, text="alpha, 500円/月")).flagged


def test_rule_validation_errors(tmp_path):
    with pytest.raises(UsageError, match="needs `all` or `any`"):
        rules("[[rule]]\nid = 'x'\n")
    with pytest.raises(UsageError, match="unknown link class"):
        rules("[[rule]]\nid = 'x'\nall = ['link:paid']\n")
    with pytest.raises(UsageError, match="unknown keys"):
        rules("[[rule]]\nid = 'x'\nall = ['a']\nwindw = 3\n")
    with pytest.raises(UsageError, match="duplicate"):
        rules("[[rule]]\nid = 'x'\nall = ['a']\n[[rule]]\nid = 'x'\nall = ['b']\n")
    with pytest.raises(UsageError, match="action"):
        rules("[[rule]]\nid = 'x'\nall = ['a']\naction = 'ban'\n")
    bad = tmp_path / "r.toml"
    bad.write_text("[[rule]\n", encoding="utf-8")
    with pytest.raises(UsageError, match="invalid TOML"):
        load_rules(bad)


def test_unknown_categories_are_reported():
    rs = rules("[[rule]]\nid = 'x'\nall = ['cat-a', 'cat-typo', 'term:age', 'price']\n")
    assert rs.check_categories(ENGINE.categories) == [
        "rules test.toml: category 'age' is not defined by any term list",
        "rules test.toml: category 'cat-typo' is not defined by any term list"]


# --- ages (neutral sentences, placeholder context) ---------------------------------------------------


@pytest.mark.parametrize("text, age, form", [
    ("item 12yo", 12, "en-yo"),
    ("item 12 yo", 12, "en-yo"),
    ("item 12 y/o", 12, "en-yo"),
    ("item 12 y.o.", 12, "en-yo"),
    ("a 12-year-old item", 12, "en-yo"),
    ("item twelve years old", 12, "en-yo"),
    ("item twenty-one years old", 21, "en-yo"),
    ("aged 12", 12, "en-aged"),
    ("age: 7", 7, "en-aged"),
    ("item 12歳", 12, "ja-sai"),
    ("item １２歳", 12, "ja-sai"),
    ("item 十二歳", 12, "ja-sai"),
    ("item 12才", 12, "ja-sai"),
    ("item 12岁", 12, "zh-sui"),
    ("item 12살", 12, "ko-sal"),
    ("item 열두 살", 12, "ko-sal"),
    ("item 12 años", 12, "es-anos"),
    ("item doce años", 12, "es-anos"),
    ("item 12 anos", 12, "es-anos"),
    ("item 12 ans", 12, "fr-ans"),
    ("item 12 Jahre alt", 12, "de-jahre"),
    ("item 12-jährig", 12, "de-jahre"),
    ("item 12 anni", 12, "it-anni"),
    ("item 12 jaar", 12, "nl-jaar"),
    ("item 12 лет", 12, "ru-let"),
])
def test_age_patterns(text, age, form):
    hits = find_ages(text)
    assert [(h.age, h.form) for h in hits] == [(age, form)]
    h = hits[0]
    assert text[h.start:h.end] == h.match and h.match.strip() == h.match


@pytest.mark.parametrize("text", [
    "item 12", "page 12 of 40", "2024 years", "12 years ago", "aged 12 months", "item12yo", "v1.12 yo",
    "item 500 years old",
])
def test_not_ages(text):
    assert find_ages(text) == []


def test_kanji_numbers():
    assert [parse_kanji_number(s) for s in ("十", "十二", "二十", "二十一", "一二", "百")] == [10, 12, 20, 21, 12, None]


# --- prices and tiers --------------------------------------------------------------------------------


@pytest.mark.parametrize("text, amount, currency, period", [
    ("$5/month", 5.0, "USD", "month"),
    ("only $4.99 per month!", 4.99, "USD", "month"),
    ("€3 a month", 3.0, "EUR", "month"),
    ("5 USD monthly", 5.0, "USD", "month"),
    ("£10/mo", 10.0, "GBP", "month"),
    ("US$12 per year", 12.0, "USD", "year"),
    ("4,99 € par mois", 4.99, "EUR", "month"),
    ("1.500 € one-time", 1500.0, "EUR", "once"),
    ("10 dollars", 10.0, "USD", None),
    ("月額500円", 500.0, "JPY", "month"),
    ("500円/月", 500.0, "JPY", "month"),
    ("月500円のプラン", 500.0, "JPY", "month"),
    ("毎月1,000円", 1000.0, "JPY", "month"),
    ("１，０００円", 1000.0, "JPY", None),
    ("¥1,000/月", 1000.0, "JPY", "month"),
    ("1万円", 10000.0, "JPY", None),
    ("3千円 買い切り", 3000.0, "JPY", "once"),
    ("年額6000円", 6000.0, "JPY", "year"),
])
def test_prices(text, amount, currency, period):
    prices = find_prices(f"plans: {text} thanks")
    assert [(p.amount, p.currency, p.period) for p in prices] == [(amount, currency, period)]
    p = prices[0]
    assert f"plans: {text} thanks"[p.start:p.end] == p.match


def test_not_prices():
    assert find_prices("in 2024 we drew 12 items, page 3") == []


def test_tiers():
    tiers = find_tiers("Tier 2 and the Gold tier; 支援プラン; premium membership; a tier list")
    assert [t.label for t in tiers] == ["tier 2", "gold tier", "支援プラン", "premium membership"]
