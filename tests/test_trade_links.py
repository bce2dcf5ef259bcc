"""Links: de-obfuscation, normalisation and classification with the platform catalogue."""

from __future__ import annotations

import pytest

from tripwire.errors import UsageError
from tripwire.trade.links import Catalogue, classify_url, extract_links, normalise_url

P1 = "https://patreon.com/placeholder-creator-1"


@pytest.mark.parametrize("text", [
    "https://www.patreon.com/placeholder-creator-1",
    "http://patreon.com/placeholder-creator-1/",
    "patreon.com/Placeholder-Creator-1",
    "https://m.patreon.com/placeholder-creator-1?utm_source=x&utm_medium=y&fbclid=abc#posts",
    "patreon[.]com/placeholder-creator-1",
    "patreon(.)com/placeholder-creator-1",
    "patreon{dot}com/placeholder-creator-1",
    "patreon [dot] com/placeholder-creator-1",
    "patreon dot com/placeholder-creator-1",
    "patreon DOT com / placeholder-creator-1",
    "ｐａｔｒｅｏｎ．ｃｏｍ／placeholder-creator-1",
    "patreon。com/placeholder-creator-1",
    "pat reon . com/placeholder-creator-1",
    "p a t r e o n . c o m / placeholder-creator-1",
    "patreon com/placeholder-creator-1",
    "pat\u200breon.com/placeholder-creator-1",
    "hxxps://patreon[.]com/placeholder-creator-1",
    "hxxps[:]//patreon.com/placeholder-creator-1",
    "https://patreon.com/c/placeholder-creator-1/posts",
])
def test_every_form_reaches_one_destination(text):
    links = extract_links(f"support me: {text} thanks!")
    assert len(links) == 1, links
    lk = links[0]
    assert (lk.kind, lk.platform, lk.account, lk.destination) == ("monetisation", "patreon",
                                                                  "placeholder-creator-1", P1)
    assert lk.start is not None and f"support me: {text} thanks!"[lk.start:lk.end] == lk.raw
    plain = text.startswith(("https://www.", "http://patreon", "patreon.com/", "https://m.", "https://patreon"))
    assert lk.obfuscated is not plain


def test_plain_words_are_not_links():
    assert extract_links("my linktree and my patreon and patreoncom") == []
    assert extract_links("e.g. 3.14 Mr.Smith file.js") == []
    assert extract_links("supatreon.comics") == [] or all(lk.platform != "patreon"
                                                          for lk in extract_links("supatreon.comics"))


@pytest.mark.parametrize("url, kind, platform, account, destination", [
    ("https://alpha.fanbox.cc/posts/1", "monetisation", "fanbox", "alpha", "https://alpha.fanbox.cc"),
    ("https://www.fanbox.cc/@alpha", "monetisation", "fanbox", "alpha", "https://alpha.fanbox.cc"),
    ("fantia.jp/fanclubs/12345", "monetisation", "fantia", "12345", "https://fantia.jp/fanclubs/12345"),
    ("subscribestar.adult/alpha", "monetisation", "subscribestar", "alpha", "https://subscribestar.adult/alpha"),
    ("ko-fi.com/Alpha", "monetisation", "kofi", "alpha", "https://ko-fi.com/alpha"),
    ("alpha.gumroad.com/l/item", "monetisation", "gumroad", "alpha", "https://alpha.gumroad.com"),
    ("boosty.to/alpha", "monetisation", "boosty", "alpha", "https://boosty.to/alpha"),
    ("fansly.com/alpha", "monetisation", "fansly", "alpha", "https://fansly.com/alpha"),
    ("onlyfans.com/alpha", "monetisation", "onlyfans", "alpha", "https://onlyfans.com/alpha"),
    ("buymeacoffee.com/alpha", "monetisation", "buymeacoffee", "alpha", "https://buymeacoffee.com/alpha"),
    ("ci-en.dlsite.com/creator/123", "monetisation", "cien", "123", "https://ci-en.dlsite.com/creator/123"),
    ("patreon.com/user?u=42", "monetisation", "patreon", "42", "https://patreon.com/user?u=42"),
    ("linktr.ee/alpha", "aggregator", "linktree", "alpha", "https://linktr.ee/alpha"),
    ("lit.link/alpha", "aggregator", "litlink", "alpha", "https://lit.link/alpha"),
    ("alpha.carrd.co", "aggregator", "carrd", "alpha", "https://alpha.carrd.co"),
    ("discord.gg/AbCd3", "messaging", "discord", "AbCd3", "https://discord.gg/AbCd3"),
    ("https://discord.com/invite/AbCd3", "messaging", "discord", "AbCd3", "https://discord.gg/AbCd3"),
    ("t.me/+AbCd3", "messaging", "telegram", "AbCd3", "https://t.me/+AbCd3"),
    ("t.me/joinchat/AbCd3", "messaging", "telegram", "AbCd3", "https://t.me/+AbCd3"),
    ("https://telegram.me/Alpha_Channel", "messaging", "telegram", "alpha_channel", "https://t.me/alpha_channel"),
    ("mega.nz/folder/AbCd3#key", "locker", "mega", "AbCd3", "https://mega.nz/folder/AbCd3"),
    ("gofile.io/d/AbCd3", "locker", "gofile", "AbCd3", "https://gofile.io/d/AbCd3"),
    ("https://bit.ly/3AbCd", "shortener", "shortener", "3AbCd", "https://bit.ly/3AbCd"),
    ("https://twitter.com/Alpha_1?s=20&t=x", "social", "x", "alpha_1", "https://x.com/alpha_1"),
    ("https://www.pixiv.net/en/users/5", "social", "pixiv", "5", "https://pixiv.net/users/5"),
])
def test_classification(url, kind, platform, account, destination):
    lk = classify_url(url)
    assert lk is not None
    assert (lk.kind, lk.platform, lk.account, lk.destination) == (kind, platform, account, destination)


def test_site_pages_are_not_accounts():
    for url in ("patreon.com/posts/some-title-1", "patreon.com/login", "blog.patreon.com/article",
                "x.com/home", "ko-fi.com/s/abc"):
        lk = classify_url(url)
        assert lk is not None and lk.account is None, url


def test_normalisation():
    assert normalise_url("HTTP://WWW.Example.COM:80/a//b/./?b=2&a=1&utm_campaign=z&gclid=9#frag") == \
        "https://example.com/a/b?a=1&b=2"
    assert normalise_url("https://example.com:8443/x/") == "https://example.com:8443/x"
    assert normalise_url("https://mobile.example.org/%7Ealpha") == "https://example.org/~alpha"
    assert normalise_url("https://m.me/x") == "https://m.me/x"  # 'm.' kept when nothing else would remain
    assert normalise_url("bit.ly/AbC") == "https://bit.ly/AbC"  # short codes keep their case
    assert normalise_url("not a url") is None


def test_shop_links_are_other():
    lk = extract_links("prints at https://shop-7.example.com/items/ and portfolio.art")
    assert [(x.kind, x.url) for x in lk] == [("other", "https://shop-7.example.com/items"),
                                            ("other", "https://portfolio.art")]


def test_links_inside_punctuation():
    lk = extract_links("(see patreon.com/alpha). Or 「fantia.jp/fanclubs/1」、thanks")
    assert [x.destination for x in lk] == ["https://patreon.com/alpha", "https://fantia.jp/fanclubs/1"]


def test_catalogue_extension(tmp_path):
    extra = tmp_path / "extra.toml"
    extra.write_text("""
[[platform]]
id = "placeholder-pay"
name = "Placeholder Pay"
class = "monetisation"
domains = ["pay.example"]
account = ['^/c/(?P<account_ci>[a-z0-9-]+)']
""", encoding="utf-8")
    cat = Catalogue.load([extra])
    lk = classify_url("https://pay.example/c/Alpha", cat)
    assert (lk.kind, lk.platform, lk.account, lk.destination) == ("monetisation", "placeholder-pay", "alpha",
                                                                  "https://pay.example/c/alpha")
    # catalogue domains are found in disguise even with a TLD unknown to the bare-domain pattern ...
    assert [x.destination for x in extract_links("pay[.]example/c/alpha", catalogue=cat)] == [
        "https://pay.example/c/alpha"]
    # ... other domains with such a TLD only with a scheme
    assert extract_links("shop[.]example/c/alpha", catalogue=cat) == []
    assert [x.url for x in extract_links("https://shop.example/c/alpha", catalogue=cat)] == [
        "https://shop.example/c/alpha"]
    assert classify_url("https://patreon.com/alpha", cat).platform == "patreon"  # shipped entries kept
    bad = tmp_path / "bad.toml"
    bad.write_text('[[platform]]\nid = "x"\nclass = "paid"\ndomains = ["x.example"]\n', encoding="utf-8")
    with pytest.raises(UsageError, match="class"):
        Catalogue.load([bad])


def test_explain_command():
    import json

    from typer.testing import CliRunner

    from tripwire.cli import app

    r = CliRunner().invoke(app, ["posts", "explain", "DM for prices: t[.]me/+AbCd3 and 月額500円", "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.output)
    assert rec["flagged"] and [x["rule"] for x in rec["flags"]] == ["term", "term-with-funnel"]
    assert [(lk["kind"], lk["destination"], lk["obfuscated"]) for lk in rec["links"]] == [
        ("messaging", "https://t.me/+AbCd3", True)]
    assert [(p["amount"], p["currency"], p["period"]) for p in rec["prices"]] == [(500.0, "JPY", "month")]
