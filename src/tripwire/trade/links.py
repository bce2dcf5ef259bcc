"""Links: find them (also when disguised), normalise them, and say where they lead.

Sellers disguise the links that lead buyers to a paid page so that platform filters miss them:
``patreon[.]com/x``, ``patreon dot com/x``, ``ｐａｔｒｅｏｎ．ｃｏｍ/x`` (full-width), ``pat reon . com/x``,
``hxxps://``. :func:`extract_links` undoes these:

1. NFKC (full-width and other compatibility forms), ideographic full stops read as dots, zero-width
   characters dropped;
2. bracketed dots (``[.]``, ``(dot)``, ``{.}``), `` dot `` between labels, ``[:]``, ``hxxp``;
3. a URL pattern (scheme optional; without a scheme the top-level domain must be a known one);
4. for domains in the platform catalogue, a compact pass that ignores every space and separator inside
   the domain (``p a t r e o n . c o m``), as long as *something* separates the labels (so the plain word
   "linktree" is not a link).

Every link is normalised (:func:`normalise_url`: https, lower-case host, ``www.``/``m.``/``mobile.``
dropped, default ports, tracking parameters, fragments and trailing slashes removed, query sorted) and
classified with the catalogue (``data/platforms.toml``): class (monetisation, aggregator, messaging,
locker, shortener, social, other), platform, the account it names and a canonical *destination* URL that
is the same for every way of writing a link to the same page or creator. Nothing is ever fetched:
shortened links are recorded as shorteners with their code.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import ahocorasick

from ..errors import UsageError
import unicodedata

from .normalise import _clusters, _drop_table, extend_span_end

__all__ = [
    "Link",
    "Platform",
    "Catalogue",
    "extract_links",
    "classify_url",
    "normalise_url",
    "LINK_CLASSES",
]

LINK_CLASSES = ("monetisation", "aggregator", "messaging", "locker", "shortener", "social", "other")

#: query parameters that only track the click (any platform); ``utm_*`` too
TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "igshid", "igsh", "mc_cid", "mc_eid",
    "_ga", "_gl", "ref", "ref_src", "ref_url", "referrer", "si", "feature", "spm", "scm", "_hsenc", "_hsmi",
    "mkt_tok", "vero_id", "oly_anon_id", "oly_enc_id", "rb_clickid", "trk", "sc_cid", "cmpid", "twclid",
    "ttclid", "li_fat_id", "epik", "s_cid", "share_id", "utm", "ncid", "_branch_match_id", "ref_id",
})
#: subdomains that only select a mobile or legacy front end
MOBILE_PREFIXES = ("www.", "www2.", "m.", "mobile.", "touch.", "mbasic.", "amp.", "sp.")

#: top-level domains accepted for links written without a scheme (``example.com/x``); with a scheme any
#: TLD is accepted. Generic TLDs in common use plus every two-letter country code.
_GENERIC_TLDS = (
    "com net org info biz io co me tv cc gg ly to fm am app dev xyz link site online store shop art moe fans "
    "club blog vip pro website adult social bio ai chat gallery studio stream cloud digital tokyo asia mobi "
    "name edu gov su onion"
)
_CC = (
    "ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bm bn bo br bs bt bw by "
    "bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz ec ee eg er es et eu fi "
    "fj fk fm fo fr ga gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy hk hm hn hr ht hu id ie il im in "
    "io iq ir is it je jm jo jp ke kg kh ki km kn kp kr kw ky kz la lb lc li lk lr ls lt lu lv ly ma mc md "
    "me mg mh mk ml mm mn mo mp mq mr ms mt mu mv mw mx my mz na nc ne nf ng ni nl no np nr nu nz om pa pe "
    "pf pg ph pk pl pm pn pr ps pt pw py qa re ro rs ru rw sa sb sc sd se sg sh si sk sl sm sn so sr ss st "
    "sv sx sy sz tc td tf tg th tj tk tl tm tn to tr tt tv tw tz ua ug uk us uy uz va vc ve vg vi vn vu wf "
    "ws ye yt za zm zw"
)
KNOWN_TLDS = frozenset(_GENERIC_TLDS.split()) | frozenset(_CC.split())

_DOTS = str.maketrans({"。": ".", "｡": ".", "．": ".", "︒": "."})

_RE_BRACKET_DOT = re.compile(r"\s*[\[\(\{<]\s*(?:\.|dot|punto|point)\s*[\]\)\}>]\s*", re.I)
_RE_WORD_DOT = re.compile(r"(?<=[A-Za-z0-9])\s+(?:dot|d0t)\s+(?=[A-Za-z]{2,24}(?![A-Za-z]))", re.I)
_RE_BRACKET_COLON = re.compile(r"\[:\]|\(:\)")
_RE_BRACKET_SLASH = re.compile(r"\[/\]|\(/\)")
_RE_URL = re.compile(
    r"(?<![\w@.\-/])"
    r"(?:(?P<scheme>hxxps?|h\*\*ps?|https?|ttps?)\s*:\s*//)?"
    r"(?P<host>(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+(?P<tld>[a-z]{2,24}|xn--[a-z0-9\-]{1,59}))"
    r"(?P<port>:\d{2,5})?"
    r"(?P<rest>[/?#][^\s<>\"'`{}|\\^\[\]（）「」『』【】、，。！？]*)?",
    re.I,
)
_RE_PATH_AFTER = re.compile(r"[ \t]*(?:/[ \t]*)(?P<path>[A-Za-z0-9_@+.~%=&?\-]+(?:/[A-Za-z0-9_@+.~%=&?\-]*)*)")
_TRAIL = ".,;:!?'\"*>"
_RE_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_RE_ALNUM = re.compile(r"[a-z0-9]")


@dataclass(frozen=True, slots=True)
class Link:
    """A link found in a post, normalised and classified."""

    url: str
    raw: str
    host: str
    kind: str
    platform: str | None = None
    platform_name: str | None = None
    account: str | None = None
    #: canonical URL of the page/creator the link leads to: the node shared in the account graph
    destination: str | None = None
    #: True when it was written in a disguised form (brackets, "dot", full-width, spaces, hxxp)
    obfuscated: bool = False
    field: str = "text"
    start: int | None = None
    end: int | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Platform:
    id: str
    name: str
    cls: str
    domains: tuple[str, ...]
    account_res: tuple[re.Pattern[str], ...] = ()
    subdomain_account: bool = False
    reserved: frozenset[str] = frozenset()
    lower_path: bool = False
    #: destination templates: one for all account regexes, or one per regex (same order)
    canonical: tuple[str, ...] = ()
    drop_query: frozenset[str] = frozenset()


def _platform_from(entry: dict[str, Any], where: str) -> Platform:
    try:
        pid = str(entry["id"])
        cls = str(entry["class"])
        domains = tuple(str(d).lower().strip(".") for d in entry["domains"])
    except KeyError as exc:
        raise UsageError(f"{where}: platform entry lacks {exc.args[0]!r}") from exc
    if cls not in LINK_CLASSES or cls == "other":
        raise UsageError(f"{where}: platform {pid}: class must be one of {', '.join(LINK_CLASSES[:-1])}")
    res = []
    for rx in entry.get("account", []):
        try:
            compiled = re.compile(rx, re.I)
        except re.error as exc:
            raise UsageError(f"{where}: platform {pid}: bad account regex {rx!r}: {exc}") from exc
        if not ({"account", "account_ci"} & set(compiled.groupindex)):
            raise UsageError(f"{where}: platform {pid}: regex {rx!r} has no (?P<account>) group")
        res.append(compiled)
    return Platform(
        id=pid,
        name=str(entry.get("name", pid)),
        cls=cls,
        domains=domains,
        account_res=tuple(res),
        subdomain_account=bool(entry.get("subdomain_account", False)),
        reserved=frozenset(str(r).lower() for r in entry.get("reserved", [])),
        lower_path=bool(entry.get("lower_path", False)),
        canonical=_canonical(entry.get("canonical"), len(res), pid, where),
        drop_query=frozenset(str(q) for q in entry.get("drop_query", [])),
    )


def _canonical(value: Any, n_regexes: int, pid: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value) and len(value) in (1, n_regexes):
        return tuple(value)
    raise UsageError(f"{where}: platform {pid}: canonical must be a string or one string per account regex")


class Catalogue:
    """The platform catalogue: domain -> platform, plus the compact keys used to undo spaced domains."""

    def __init__(self, platforms: Iterable[Platform]) -> None:
        self.platforms: dict[str, Platform] = {}
        for p in platforms:
            self.platforms[p.id] = p
        self.by_domain: dict[str, Platform] = {}
        for p in self.platforms.values():
            for d in p.domains:
                self.by_domain[d] = p
        self._compact: ahocorasick.Automaton | None = None

    @classmethod
    def load(cls, extra: Iterable[str | Path] = (), include_default: bool = True) -> "Catalogue":
        """The shipped catalogue, with entries from ``extra`` files added or replacing (same ``id``)."""
        entries: dict[str, Platform] = {}
        sources: list[tuple[str, str]] = []
        if include_default:
            text = resources.files("tripwire.trade").joinpath("data").joinpath("platforms.toml").read_text(
                encoding="utf-8")
            sources.append(("platforms.toml", text))
        for path in extra:
            try:
                sources.append((str(path), Path(path).read_text(encoding="utf-8")))
            except OSError as exc:
                raise UsageError(f"cannot read catalogue {path}: {exc}") from exc
        for where, text in sources:
            try:
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError as exc:
                raise UsageError(f"invalid TOML in catalogue {where}: {exc}") from exc
            for entry in data.get("platform", []):
                p = _platform_from(entry, where)
                entries[p.id] = p
        return cls(entries.values())

    def lookup(self, host: str) -> tuple[Platform | None, str | None, str | None]:
        """(platform, matched domain, the label left of it) for a normalised host."""
        labels = host.split(".")
        for i in range(len(labels) - 1):
            dom = ".".join(labels[i:])
            p = self.by_domain.get(dom)
            if p is not None:
                return p, dom, labels[i - 1] if i > 0 else None
        return None, None, None

    def compact_automaton(self) -> ahocorasick.Automaton:
        """Domains with separators removed (``patreoncom``, ``patreondotcom``), for spaced-out domains."""
        if self._compact is None:
            auto = ahocorasick.Automaton()
            n = 0
            for dom in self.by_domain:
                labels = [lb.replace("-", "") for lb in dom.split(".")]
                for joiner in ("", "dot"):
                    key = joiner.join(labels)
                    if len(key) >= 7:
                        auto.add_word(key, (dom, len(key), len(labels[-1]), len(joiner)))
                        n += 1
            if n:
                auto.make_automaton()
            self._compact = auto
        return self._compact


_DEFAULT: Catalogue | None = None


def default_catalogue() -> Catalogue:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Catalogue.load()
    return _DEFAULT


# --- normalisation -------------------------------------------------------------------------------------

_UNRESERVED = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _unquote_unreserved(path: str) -> str:
    def fix(m: re.Match[str]) -> str:
        ch = chr(int(m.group(1), 16))
        return ch if ch in _UNRESERVED else "%" + m.group(1).upper()

    return re.sub(r"%([0-9A-Fa-f]{2})", fix, path)


def _split(raw: str) -> tuple[str, str, str, str] | None:
    """(host, port, path, query) of a link as written (scheme optional, disguised schemes accepted)."""
    s = raw.strip()
    s = re.sub(r"^(?:hxxp|h\*\*p|ttp)(s?)\s*:", r"http\1:", s, flags=re.I)
    if not re.match(r"^[a-z][a-z0-9+.\-]*://", s, re.I):
        s = "https://" + s.lstrip("/")
    try:
        parts = urlsplit(s)
        host = (parts.hostname or "").strip(".").lower()
        port = parts.port
    except ValueError:
        return None
    if not host or "." not in host:
        return None
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    changed = True
    while changed:
        changed = False
        for prefix in MOBILE_PREFIXES:
            if host.startswith(prefix) and "." in host[len(prefix):]:
                host = host[len(prefix):]
                changed = True
    port_s = f":{port}" if port and port not in (80, 443) else ""
    path = _unquote_unreserved(parts.path)
    path = quote(path, safe="/%:@!$&'()*+,;=-._~")
    path = re.sub(r"/{2,}", "/", path)
    path = re.sub(r"(?:/\.)+(?=/|$)", "", path)
    path = path.rstrip("/")
    return host, port_s, path, parts.query


def _clean_query(query: str, extra_drop: frozenset[str]) -> str:
    if not query:
        return ""
    kept = []
    for k, v in parse_qsl(query, keep_blank_values=True):
        kl = k.lower()
        if kl.startswith("utm_") or kl in TRACKING_PARAMS or k in extra_drop:
            continue
        kept.append((k, v))
    kept.sort()
    return urlencode(kept)


def normalise_url(raw: str, catalogue: Catalogue | None = None) -> str | None:
    """The normalised form of a link (None when it is not a usable web address)."""
    link = classify_url(raw, catalogue=catalogue)
    return link.url if link else None


def classify_url(
    raw: str,
    catalogue: Catalogue | None = None,
    field: str = "links",
    start: int | None = None,
    end: int | None = None,
    obfuscated: bool = False,
) -> Link | None:
    """Normalise one link and classify it with the catalogue (see the module doc)."""
    cat = catalogue or default_catalogue()
    split = _split(raw)
    if split is None:
        return None
    host, port, path, query = split
    platform, domain, sub = cat.lookup(host)
    drop = platform.drop_query if platform else frozenset()
    query = _clean_query(query, drop)
    if platform and platform.lower_path:
        path = path.lower()
    url = f"https://{host}{port}{path}" + (f"?{query}" if query else "")
    if platform is None:
        whole = f"https://{host}{port}{path}" if (path or query) else f"https://{host}{port}"
        return Link(url, raw, host, "other", destination=whole, obfuscated=obfuscated, field=field,
                    start=start, end=end)
    account, dest = _account(platform, domain or host, sub, path, query)
    if dest is None and (path or (sub and sub not in platform.reserved)):
        dest = f"https://{host}{port}{path}"
    return Link(url, raw, host, platform.cls, platform.id, platform.name, account, dest, obfuscated, field,
                start, end)


def _account(platform: Platform, domain: str, sub: str | None, path: str,
             query: str) -> tuple[str | None, str | None]:
    """The account a link names on ``platform`` and the canonical destination URL (None, None if none)."""
    if platform.subdomain_account:
        if sub and sub.lower() not in platform.reserved:
            account = sub.lower()
            template = platform.canonical[0] if platform.canonical else "https://{account}.{domain}"
            return account, template.format(account=account, domain=domain)
    elif sub:
        return None, None  # blog.example.com, support.example.com: site pages, not creators
    target = path + (f"?{query}" if query else "")
    for i, rx in enumerate(platform.account_res):
        m = rx.search(target)
        if not m:
            continue
        gi = rx.groupindex
        if "account" in gi and m.group("account"):
            account = m.group("account")
            span = m.span("account")
        elif "account_ci" in gi and m.group("account_ci"):
            account = m.group("account_ci").lower()
            span = m.span("account_ci")
        else:
            continue
        if account.lower() in platform.reserved:
            continue
        if platform.canonical:
            template = platform.canonical[i] if len(platform.canonical) > 1 else platform.canonical[0]
            return account, template.format(account=account, domain=platform.domains[0])
        prefix = target[m.start():span[0]] + account + target[span[1]:m.end()]
        return account, f"https://{domain}{prefix}"
    return None, None


# --- extraction ----------------------------------------------------------------------------------------


def _prepare(text: str) -> tuple[str, list[int]]:
    """NFKC (case kept) with dots unified and invisible characters dropped, plus offsets into ``text``."""
    if text.isascii():
        return text, list(range(len(text)))
    out: list[str] = []
    offs: list[int] = []
    table = _drop_table()
    for m in _clusters().finditer(text):
        piece = unicodedata.normalize("NFKC", m.group()).translate(_DOTS)
        piece = "".join(ch for ch in piece if not (ord(ch) in table and unicodedata.category(ch) == "Cf"))
        out.append(piece)
        offs.extend([m.start()] * len(piece))
    return "".join(out), offs


def _sub(pattern: re.Pattern[str], repl: str, s: str, offs: list[int]) -> tuple[str, list[int], list[int]]:
    """Regex substitution that keeps offsets; also returns the positions (in the result) it touched."""
    parts: list[str] = []
    new_offs: list[int] = []
    touched: list[int] = []
    pos = 0
    for m in pattern.finditer(s):
        parts.append(s[pos:m.start()])
        new_offs.extend(offs[pos:m.start()])
        at = sum(len(p) for p in parts)
        parts.append(repl)
        new_offs.extend([offs[m.start()] if m.start() < len(offs) else (offs[-1] if offs else 0)] * len(repl))
        touched.append(at)
        pos = m.end()
    if not touched:
        return s, offs, touched
    parts.append(s[pos:])
    new_offs.extend(offs[pos:])
    return "".join(parts), new_offs, touched


def _strip_trailing(url: str) -> str:
    while url:
        if url[-1] in _TRAIL:
            url = url[:-1]
        elif url[-1] == ")" and url.count("(") < url.count(")"):
            url = url[:-1]
        else:
            break
    return url


def extract_links(text: str, field: str = "text", catalogue: Catalogue | None = None) -> list[Link]:
    """Every link in ``text``, disguised or not, normalised and classified, with its span in ``text``."""
    if not text:
        return []
    cat = catalogue or default_catalogue()
    if text.isascii() and "." not in text and "/" not in text:
        return []
    s, offs = _prepare(text)
    touched: list[int] = []
    for pattern, repl in ((_RE_BRACKET_DOT, "."), (_RE_WORD_DOT, "."), (_RE_BRACKET_COLON, ":"),
                          (_RE_BRACKET_SLASH, "/")):
        s, offs, t = _sub(pattern, repl, s, offs)
        if t:
            # positions touched earlier shift; only "was anything rewritten inside the span" matters,
            # so keep original-text offsets of the rewrites instead of positions
            touched.extend(offs[i] for i in t if i < len(offs))
    rewritten_at = set(touched)
    found: list[Link] = []
    covered: list[tuple[int, int]] = []
    for m in _RE_URL.finditer(s):
        tld = m.group("tld").lower()
        if not m.group("scheme") and tld not in KNOWN_TLDS:
            continue
        raw_clean = _strip_trailing(m.group(0))
        a = m.start()
        b = a + len(raw_clean)
        if not m.group("rest") and not m.group("port"):
            pm = _RE_PATH_AFTER.match(s, m.end())  # "patreon dot com / name": the path after spaces
            if pm:
                path = _strip_trailing(pm.group("path"))
                raw_clean = m.group(0) + "/" + path
                b = pm.start("path") + len(path)
        oa = offs[a]
        ob = extend_span_end(text, offs[b - 1] + 1)
        original = text[oa:ob]
        scheme = (m.group("scheme") or "").lower()
        obfuscated = (original != raw_clean or scheme.startswith(("hxx", "h**", "ttp"))
                      or any(oa <= r < ob for r in rewritten_at))
        link = classify_url(raw_clean, cat, field, oa, ob, obfuscated)
        if link is not None:
            found.append(replace(link, raw=original))
            covered.append((a, b))
    found.extend(_spaced_domains(text, s, offs, covered, cat, field))
    found.sort(key=lambda lk: (lk.start or 0))
    return found


def _spaced_domains(text: str, s: str, offs: list[int], covered: list[tuple[int, int]], cat: Catalogue,
                    field: str) -> list[Link]:
    """Catalogue domains written with spaces or separators inside (``p a t r e o n . c o m / x``)."""
    auto = cat.compact_automaton()
    if len(auto) == 0:
        return []
    low = s.lower()
    comp = _RE_NOT_ALNUM.sub("", low)
    hits = list(auto.iter(comp))
    if not hits:
        return []
    cpos = [m.start() for m in _RE_ALNUM.finditer(low)]
    out: list[Link] = []
    taken: list[tuple[int, int]] = []
    for end, (dom, length, tld_len, joiner_len) in hits:
        ci = end - length + 1
        a, b = cpos[ci], cpos[end] + 1
        if a > 0 and low[a - 1].isalnum() and low[a - 1].isascii():
            continue
        if b < len(low) and low[b].isalnum() and low[b].isascii():
            continue
        # something must separate the last label from the TLD ("patreon com", "patreon dot com")
        k = end - tld_len - joiner_len + 1
        if cpos[k] - cpos[k - 1] <= 1 and joiner_len == 0:
            continue
        if any(x < b and a < y for x, y in covered + taken):
            continue
        path = ""
        pm = _RE_PATH_AFTER.match(s, b)
        if pm:
            path = "/" + _strip_trailing(pm.group("path"))
            b = pm.start("path") + len(path) - 1
        oa = offs[a]
        ob = extend_span_end(text, offs[b - 1] + 1)
        link = classify_url(dom + path, cat, field, oa, ob, True)
        if link is not None:
            out.append(Link(link.url, text[oa:ob], link.host, link.kind, link.platform, link.platform_name,
                            link.account, link.destination, True, field, oa, ob))
            taken.append((a, b))
    return out
