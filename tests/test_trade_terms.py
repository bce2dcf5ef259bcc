"""Term engine: every normalisation and evasion form, word boundaries, hashtags, allow-list, list loading.

Vocabulary is placeholder only (alpha, bravo, term-1, ...), as SAFETY.md requires.
"""

from __future__ import annotations

import random

import pytest

from tripwire.errors import UsageError
from tripwire.trade.normalise import (
    fold_light,
    fold_light_with_offsets,
    normalise,
    normalise_term,
    normalise_with_offsets,
)
from tripwire.trade.terms import Term, TermEngine, load_allow_list, load_terms, starter_terms


@pytest.fixture(scope="module")
def engine() -> TermEngine:
    return TermEngine([
        Term("alpha", "cat-a"),
        Term("bravo charlie", "cat-b", 2.0),
        Term("term-1", "cat-c"),
        Term("デルタ", "cat-d"),
        Term("echo", "cat-e"),
    ])


def found(engine: TermEngine, text: str, **kw) -> list[tuple[str, str]]:
    return [(h.term, h.match) for h in engine.find(text, **kw)]


@pytest.mark.parametrize("text, match", [
    ("Alpha", "Alpha"),                      # case folding
    ("ALPHA!", "ALPHA"),                     # punctuation around
    ("ａｌｐｈａ", "ａｌｐｈａ"),                  # full-width (NFKC)
    ("àlphá", "àlphá"),                      # accents stripped (precomposed)
    ("a\u0301lpha", "a\u0301lpha"),          # accents stripped (combining mark)
    ("4lph4", "4lph4"),                      # leetspeak digits
    ("@lph@", None),                         # symbols at word start are mentions, not leet
    ("alph@", "alph@"),                      # ... but at a word's end they are
    ("a1pha", "a1pha"),                      # 1 for l
    ("a|pha", "a|pha"),                      # | for l
    ("a.l.p.h.a", "a.l.p.h.a"),              # dots between letters
    ("a l p h a", "a l p h a"),              # spaces between letters
    ("a-l-p-h-a", "a-l-p-h-a"),              # hyphens
    ("a_l_p_h_a", "a_l_p_h_a"),              # underscores
    ("a . l . p . h . a", "a . l . p . h . a"),  # spaced dots
    ("al\u200bpha", "al\u200bpha"),          # zero-width space
    ("al\u00adpha", "al\u00adpha"),          # soft hyphen
    ("\u0430lpha", "\u0430lpha"),            # Cyrillic a (homoglyph)
    ("αlphα", "αlphα"),                      # Greek alpha (homoglyph)
    ("a 1 p h a", "a 1 p h a"),              # spaced leetspeak
])
def test_evasion_forms_match(engine, text, match):
    hits = found(engine, f"see {text} here")
    if match is None:
        assert hits == []
    else:
        assert hits == [("alpha", match)]


def test_spans_index_the_original_text(engine):
    text = "xx ａｌｐｈａ yy b.r.a.v.o-CHARLIE zz #AlphaEcho"
    hits = engine.find(text)
    assert {h.term for h in hits} == {"alpha", "bravo charlie", "echo"}
    for h in hits:
        assert text[h.start:h.end] == h.match
    assert [h.match for h in hits if h.term == "bravo charlie"] == ["b.r.a.v.o-CHARLIE"]


def test_word_boundaries(engine):
    assert found(engine, "the alphabet and alphanumeric") == []
    assert found(engine, "zalpha") == []
    assert found(engine, "alpha-bet") == [("alpha", "alpha")]
    assert found(engine, "bravo charlies") == []


def test_multiword_terms_across_separators(engine):
    for text in ("bravo charlie", "Bravo-Charlie", "bravo_charlie", "bravo.charlie", "bravo   charlie",
                 "BRAVO\nCHARLIE"):
        assert [t for t, _ in found(engine, text)] == ["bravo charlie"], text


def test_placeholder_with_digit(engine):
    assert found(engine, "term-1 and term 1 and term_1") == [("term-1", "term-1"), ("term-1", "term 1"),
                                                            ("term-1", "term_1")]
    assert found(engine, "term-10 term-2") == []


def test_cjk_term_matches_without_spaces(engine):
    assert found(engine, "これはデルタです") == [("デルタ", "デルタ")]
    assert found(engine, "ﾃﾞﾙﾀ") == [("デルタ", "ﾃﾞﾙﾀ")]  # half-width katakana + voicing marks


def test_camelcase_and_glued_hashtags(engine):
    assert [t for t, _ in found(engine, "new #BravoCharlie post")] == ["bravo charlie"]
    assert [(h.term, h.via) for h in engine.find("#alphaecho")] == [("alpha", "hashtag"), ("echo", "hashtag")]
    assert [t for t, _ in found(engine, "#bravocharlie")] == ["bravo charlie"]
    hits = engine.find("look #xxalpha")
    assert [(h.term, h.match) for h in hits] == [("alpha", "alpha")]
    assert hits[0].start == 8
    # inside a hashtag, but neither at an edge nor next to another term: not counted
    assert found(engine, "#xxalphayy") == []


def test_hashtag_whole_mode_is_stricter():
    strict = TermEngine([Term("alpha", "a"), Term("echo", "e")], hashtag_mode="whole")
    assert [h.term for h in strict.find("#alphaecho")] == ["alpha", "echo"]
    assert strict.find("#alphabet") == []
    edge = TermEngine([Term("alpha", "a")])
    assert [h.term for h in edge.find("#alphabet")] == ["alpha"]  # the documented edge-mode trade-off


def test_tags_field(engine):
    hits = engine.find_tags(["AlphaStudio", "#bravocharlie", "landscape"])
    assert [(h.term, h.field) for h in hits] == [("alpha", "tags[0]"), ("bravo charlie", "tags[1]")]


def test_allow_list_suppresses_reviewed_false_positives():
    eng = TermEngine([Term("alpha", "a")], allow=["alpha centauri", "#alphabet"])
    assert eng.find("the alpha centauri system") == []
    assert eng.find("ALPHA-Centauri") == []
    assert [h.term for h in eng.find("alpha and alpha centauri")] == ["alpha"]
    assert eng.find("#alphabet") == []


def test_nested_hits_of_one_category_keep_the_longest():
    eng = TermEngine([Term("alpha", "a"), Term("alpha bravo", "a"), Term("bravo", "b")])
    hits = eng.find("alpha bravo")
    assert [(h.term, h.category) for h in hits] == [("alpha bravo", "a"), ("bravo", "b")]


def test_weights_and_sources(tmp_path):
    p = tmp_path / "list.csv"
    p.write_text("# comment\nterm,category,weight\nalpha,cat-a,0.5\nbravo,,\n\"charlie, delta\",cat-c,2\n",
                 encoding="utf-8")
    terms = load_terms(p)
    assert [(t.text, t.category, t.weight) for t in terms] == [
        ("alpha", "cat-a", 0.5), ("bravo", "list", 1.0), ("charlie, delta", "cat-c", 2.0)]
    assert terms[0].source == "list.csv:3"
    hit = TermEngine(terms).find("Charlie; Delta")[0]
    assert (hit.term, hit.weight, hit.source) == ("charlie, delta", 2.0, "list.csv:5")


def test_plain_list_and_positional_csv(tmp_path):
    plain = tmp_path / "cat-x.txt"
    plain.write_text("alpha\n\n# skipped\n bravo \n", encoding="utf-8")
    assert [(t.text, t.category) for t in load_terms(plain)] == [("alpha", "cat-x"), ("bravo", "cat-x")]
    positional = tmp_path / "p.csv"
    positional.write_text("alpha,cat-a,3\n", encoding="utf-8")
    assert [(t.text, t.weight) for t in load_terms(positional)] == [("alpha", 3.0)]
    allow = tmp_path / "allow.txt"
    allow.write_text("# reviewed\nalpha centauri\n", encoding="utf-8")
    assert load_allow_list(allow) == ["alpha centauri"]


def test_bad_lists_are_usage_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("alpha,cat,heavy\n", encoding="utf-8")
    with pytest.raises(UsageError, match="bad.csv:1"):
        load_terms(bad)
    with pytest.raises(UsageError):
        load_terms(tmp_path / "missing.txt")
    with pytest.raises(UsageError):
        TermEngine([Term("alpha", "a")], hashtag_mode="loose")


def test_unmatchable_terms_are_reported_not_matched():
    eng = TermEngine([Term("!!!", "a"), Term("alpha", "a")])
    assert [t.text for t in eng.skipped] == ["!!!"]
    assert [h.term for h in eng.find("alpha !!!")] == ["alpha"]


def test_terms_and_text_share_one_pipeline():
    assert normalise_term("B.R.A.V.O Charlie") == normalise_term("bravo charlie") == "bravo chariie"
    assert normalise("  x  ") == " x "


def test_fast_and_offset_paths_agree_on_random_text():
    rnd = random.Random(1234)
    alphabet = list("abcdeilo013457@$!|+ .-_#") + ["Ａ", "ｌ", "é", "e\u0301", "\u200b", "ﾊﾟ", "デ", "歳", "İ",
                                                  "ß", "а", "α", "Alpha", "Bravo", "１２", "ﬁ", "\u00ad", "  "]
    for _ in range(2000):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 25)))
        for hashtag in (False, True):
            fast = normalise(text, hashtag)
            slow, offs = normalise_with_offsets(text, hashtag)
            assert fast == slow, (text, hashtag)
            assert len(offs) == len(slow)
            assert all(0 <= o <= len(text) for o in offs)
            assert offs == sorted(offs)
        light, loffs = fold_light_with_offsets(text)
        assert light == fold_light(text)
        assert len(loffs) == len(light)


def test_starter_list_loads():
    terms = starter_terms()
    assert len(terms) >= 20
    assert {t.category for t in terms} == {"trade", "evasion"}
    assert all(0 < t.weight <= 1 for t in terms)
    eng = TermEngine(terms)
    assert eng.skipped == []
    assert [h.term for h in eng.find("UNCENSORED!!")] == ["uncensored"]
