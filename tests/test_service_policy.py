"""Policy files: the shipped default, rule order, every condition, and validation that refuses typos."""

from __future__ import annotations

import pytest

from tripwire.errors import UsageError
from tripwire.policy.policy import CONDITIONS, Policy, most_severe

SCHEMES = {"hotline": "vics", "uk-list": "uk", "own": "none"}.get


def match(bank: str, category: str | None = None, signal: str = "sha256", distance: int = 0, negative: bool = False) -> dict:
    m = {"bank": bank, "category": category, "signal_type": signal, "distance": distance}
    if negative:
        m["negative"] = True
    return m


def test_default_policy_actions():
    p = Policy.load()
    cam = p.evaluate({"matches": [match("hotline", "1")]}, bank_scheme=SCHEMES)
    assert (cam.action, cam.queue, cam.rule) == ("block", True, "known-abuse")
    uk = p.evaluate({"matches": [match("uk-list", "B", "pdq", 12)]}, bank_scheme=SCHEMES)
    assert uk.rule == "known-abuse"
    nonpert = p.evaluate({"matches": [match("hotline", "0")]}, bank_scheme=SCHEMES)
    assert (nonpert.action, nonpert.rule) == ("review", "known-non-pertinent")
    own = p.evaluate({"matches": [match("own")]}, bank_scheme=SCHEMES)
    assert (own.action, own.rule) == ("block", "known-match")
    ai = p.evaluate({"matches": [], "provenance": {"label": "ai_generated", "confidence": "strong"}})
    assert (ai.action, ai.queue, ai.rule) == ("review", True, "ai-unmatched")
    conflict = p.evaluate({"matches": [], "provenance": {"label": "camera_original", "conflicts": [{"kind": "x"}]}})
    assert conflict.rule == "provenance-conflict"
    plain = p.evaluate({"matches": [], "provenance": {"label": "camera_original", "conflicts": []}})
    assert (plain.action, plain.queue, plain.rule) == ("allow", False, None)
    # allow-list hits are not matches
    allowed = p.evaluate({"matches": [match("own", negative=True)], "matches_suppressed": [match("hotline", "1")]}, bank_scheme=SCHEMES)
    assert allowed.action == "allow"


def test_scheme_qualified_categories_are_told_apart():
    p = Policy.from_dict({"rule": [{"name": "uk-a", "action": "block", "when": {"match_category": ["uk:A"]}}]})
    assert p.evaluate({"matches": [match("uk-list", "A")]}, bank_scheme=SCHEMES).rule == "uk-a"
    assert p.evaluate({"matches": [match("own", "A")]}, bank_scheme=SCHEMES).rule is None
    bare = Policy.from_dict({"rule": [{"name": "a", "action": "review", "when": {"match_category": ["a"]}}]})
    assert bare.evaluate({"matches": [match("own", "A")]}).rule == "a"


def test_every_condition():
    record = {
        "matches": [match("hotline", "1", "pdq", 9)], "provenance": {"label": "ai_edited", "confidence": "strong",
                                                                      "tool": "ComfyUI", "conflicts": []},
        "error": {"code": "decode_error", "message": "x"}, "media_type": "image/png", "priority": 70.0,
    }
    ctx = {"platform": "example"}
    holds = {
        "match": True, "match_bank": ["hotline"], "match_category": ["vics:1"], "match_signal": ["pdq"],
        "match_signal_only": ["pdq", "md5"], "max_distance": 9, "allow_listed": False, "provenance": ["ai_edited"], "confidence": ["strong"],
        "conflict": False, "generator": ["comfyui"], "error": True, "error_code": ["decode_error"],
        "media_type": ["image/*"], "min_priority": 70, "platform": ["example"],
    }
    fails = {
        "match": False, "match_bank": ["other"], "match_category": ["vics:2"], "match_signal": ["md5"],
        "match_signal_only": ["md5"], "max_distance": 8, "allow_listed": True, "provenance": ["ai_generated"], "confidence": ["definitive"],
        "conflict": True, "generator": ["fooocus"], "error": False, "error_code": ["timeout"],
        "media_type": ["video/*"], "min_priority": 71, "platform": ["elsewhere"],
    }
    assert set(holds) == set(CONDITIONS) == set(fails)
    for key in CONDITIONS:
        yes = Policy.from_dict({"rule": [{"name": "r", "action": "review", "when": {key: holds[key]}}]})
        no = Policy.from_dict({"rule": [{"name": "r", "action": "review", "when": {key: fails[key]}}]})
        assert yes.evaluate(record, ctx, SCHEMES).rule == "r", key
        assert no.evaluate(record, ctx, SCHEMES).rule is None, key
    both = Policy.from_dict({"rule": [{"name": "r", "action": "block", "when": holds}]})
    assert both.evaluate(record, ctx, SCHEMES).action == "block"


def test_first_rule_wins_and_default_applies():
    p = Policy.from_dict({"default": {"action": "review"},
                          "rule": [{"name": "one", "action": "allow", "when": {"match": False}},
                                   {"name": "two", "action": "block", "when": {"match": False}}]})
    assert p.evaluate({"matches": []}).rule == "one"
    out = p.evaluate({"matches": [match("own")]})
    assert (out.action, out.queue, out.rule) == ("review", True, None)
    assert most_severe(["allow", "review", "allow"]) == "review" and most_severe([]) == "allow"


@pytest.mark.parametrize("data,message", [
    ({"rule": [{"name": "x", "action": "delete"}]}, "action must be one of"),
    ({"rule": [{"name": "x", "action": "block", "when": {"match_categories": ["1"]}}]}, "unknown condition"),
    ({"rule": [{"name": "x", "action": "block", "when": {"match": "yes"}}]}, "true or false"),
    ({"rule": [{"name": "x", "action": "block", "when": {"max_distance": "ten"}}]}, "must be a number"),
    ({"rule": [{"name": "x", "action": "block", "acton": "block"}]}, "unknown key"),
    ({"rule": [{"name": "x", "action": "block"}, {"name": "x", "action": "allow"}]}, "duplicate rule name"),
    ({"rules": []}, "unknown top-level"),
    ({"default": {"action": "maybe"}}, "action must be one of"),
])
def test_invalid_policies_are_refused(data, message):
    with pytest.raises(UsageError, match=message):
        Policy.from_dict(data)


def test_load_from_file(tmp_path):
    f = tmp_path / "policy.toml"
    f.write_text('[default]\naction = "review"\n[[rule]]\nname = "ok"\naction = "allow"\n[rule.when]\nprovenance = ["camera_original"]\n')
    p = Policy.load(f)
    assert p.evaluate({"provenance": {"label": "camera_original"}}).action == "allow"
    assert p.evaluate({}).action == "review" and p.source == str(f)
    f.write_text("[default\n")
    with pytest.raises(UsageError, match="invalid TOML"):
        Policy.load(f)
    with pytest.raises(UsageError, match="cannot read"):
        Policy.load(tmp_path / "missing.toml")
