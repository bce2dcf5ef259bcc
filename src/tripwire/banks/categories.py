"""Category schemes a bank can use, and the mapping between their codes and VICS numbers.

Hash lists carry a category per hash, each from one grading scheme:

* ``vics`` — Project VIC / VICS (US): ``0`` non-pertinent, ``1`` CAM (child abuse material),
  ``2`` child exploitive / age difficult, ``3`` CGI / animation, ``4`` comparison.
* ``uk`` — the UK sentencing grades ``A``, ``B``, ``C`` (plus ``0`` for non-pertinent). VICS files
  exchanged in the UK carry them as numbers; tripwire reads ``1``/``2``/``3`` as ``A``/``B``/``C``.
* ``ncmec`` — the industry categorisation shared through NCMEC: ``A1``, ``A2``, ``B1``, ``B2``.
* ``none`` — free text kept as given (a platform's own labels), up to 100 characters.

A bank stores codes in its own scheme; every match reports the code and its label so a reviewer never
has to remember what "2" meant in which list.
"""

from __future__ import annotations

import re

SCHEMES: tuple[str, ...] = ("vics", "uk", "ncmec", "none")
MAX_FREE_TEXT = 100

LABELS: dict[str, dict[str, str]] = {
    "vics": {
        "0": "non-pertinent",
        "1": "CAM (child abuse material)",
        "2": "child exploitive / age difficult",
        "3": "CGI / animation",
        "4": "comparison",
    },
    "uk": {
        "A": "UK category A",
        "B": "UK category B",
        "C": "UK category C",
        "0": "non-pertinent",
    },
    "ncmec": {
        "A1": "NCMEC industry category A1",
        "A2": "NCMEC industry category A2",
        "B1": "NCMEC industry category B1",
        "B2": "NCMEC industry category B2",
    },
}

#: UK grade <-> VICS number, as UK VICS exports write them
_UK_FROM_NUMBER = {0: "0", 1: "A", 2: "B", 3: "C"}
_UK_TO_NUMBER = {v: k for k, v in _UK_FROM_NUMBER.items()}


def check_scheme(scheme: str) -> str:
    scheme = (scheme or "").strip().lower()
    if scheme not in SCHEMES:
        raise ValueError(f"unknown category scheme {scheme!r} (expected one of {', '.join(SCHEMES)})")
    return scheme


def normalise_category(scheme: str, raw: object) -> str | None:
    """The canonical code of ``raw`` in ``scheme``; ``None`` for an empty value; ValueError when invalid."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise ValueError(f"invalid category {raw!r}")
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    text = str(raw).strip()
    if not text:
        return None
    if scheme == "none":
        if len(text) > MAX_FREE_TEXT:
            raise ValueError(f"category longer than {MAX_FREE_TEXT} characters")
        return text
    if scheme == "vics":
        code = re.sub(r"^(category|cat)\s*", "", text, flags=re.I)
        if code in LABELS["vics"]:
            return code
        raise ValueError(f"invalid VICS category {text!r} (expected 0-4)")
    if scheme == "uk":
        code = re.sub(r"^(uk\s*)?(category|cat)\s*", "", text, flags=re.I).upper()
        if code.isdigit() and int(code) in _UK_FROM_NUMBER:
            return _UK_FROM_NUMBER[int(code)]
        if code in LABELS["uk"]:
            return code
        raise ValueError(f"invalid UK category {text!r} (expected A, B, C or 0)")
    if scheme == "ncmec":
        code = re.sub(r"[^A-Za-z0-9]", "", text).upper()
        if code in LABELS["ncmec"]:
            return code
        raise ValueError(f"invalid NCMEC industry category {text!r} (expected A1, A2, B1 or B2)")
    raise ValueError(f"unknown category scheme {scheme!r}")


def category_label(scheme: str, code: str | None) -> str | None:
    if code is None:
        return None
    return LABELS.get(scheme, {}).get(code, code)


def from_vics_number(scheme: str, number: object) -> str | None:
    """A VICS ``Category`` number read into ``scheme`` (UK numbers map to grades)."""
    if number is None:
        return None
    if scheme in ("vics", "uk", "none"):
        return normalise_category(scheme, number)
    raise ValueError(f"a numeric VICS category ({number!r}) has no meaning in the {scheme} scheme")


def to_vics_number(scheme: str, code: str | None) -> int | None:
    """The VICS ``Category`` number for ``code``, or ``None`` when the scheme has no numeric form."""
    if code is None:
        return None
    if scheme == "vics":
        return int(code)
    if scheme == "uk":
        return _UK_TO_NUMBER.get(code)
    return None
