"""The VICS vocabulary tripwire's VICS export (:mod:`tripwire.report.vics_case`) and import
(:mod:`.vics_import`) share: decision <-> Category number, tripwire's own tags, MediaFiles paths.

Category numbers are VICS's (0 non-pertinent, 1 CAM, 2 exploitive / age difficult, 3 CGI/animation,
4 comparison images); ``[reporting.vics.categories]`` maps tripwire decisions onto them.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import UsageError
from .decisions import EXPORTABLE
from .models import DECISIONS

DEFAULT_CATEGORIES: dict[str, int] = {"confirmed_abuse": 1, "ai_generated": 3, "not_abuse": 0}
#: VICS numbers without a tripwire decision of their own: 2 (exploitive / age difficult) needs a second look,
#: 4 (comparison images) is not abuse material
_EXTRA_FROM_NUMBER = {2: "needs_escalation", 4: "not_abuse"}
TAG_PREFIX = "tripwire:"
#: how decisions recorded by an import start (not repeated as Comments on a later export)
IMPORT_NOTE = "imported from VICS "


def category_map(config: Any = None) -> dict[str, int]:
    """Decision -> VICS Category number (``[reporting.vics.categories]`` overrides the defaults)."""
    section = (((getattr(config, "sections", None) or {}).get("reporting") or {}).get("vics") or {})
    unknown = set(section) - {"categories"}
    if unknown:
        raise UsageError(f"unknown setting(s) in [reporting.vics]: {', '.join(sorted(unknown))}")
    mapping = dict(DEFAULT_CATEGORIES)
    for decision, number in (section.get("categories") or {}).items():
        if decision not in EXPORTABLE:
            raise UsageError(f"[reporting.vics.categories]: {decision!r} is not an exportable decision ({', '.join(EXPORTABLE)})")
        if not isinstance(number, int) or not 0 <= number <= 4:
            raise UsageError(f"[reporting.vics.categories] {decision}: expected a VICS category number 0-4")
        mapping[decision] = number
    return mapping


def split_path(path: str) -> dict[str, str]:
    cut = max(path.rfind("/"), path.rfind("\\"))
    if cut < 0:
        return {"FileName": path, "FilePath": ""}
    return {"FileName": path[cut + 1 :], "FilePath": path[:cut]}


def join_media_file(media_file: Mapping[str, Any]) -> str | None:
    name = str(media_file.get("FileName") or "").strip()
    folder = str(media_file.get("FilePath") or "")
    if not name and not folder:
        return None
    if not folder:
        return name
    if folder.endswith(("/", "\\")):
        return folder + name
    sep = "\\" if "\\" in folder and "/" not in folder else "/"
    return f"{folder}{sep}{name}" if name else folder


def decision_from(media: Mapping[str, Any], categories: Mapping[str, int]) -> str | None:
    """The decision a VICS Media stands for: tripwire's own tag first, else its Category number."""
    tags = media.get("Tags")
    for tag in tags if isinstance(tags, list) else [tags]:  # a lone tag may come as text
        if isinstance(tag, str) and tag.startswith(f"{TAG_PREFIX}decision="):
            value = tag.split("=", 1)[1]
            if value in DECISIONS:
                return value
    number = media.get("Category")
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        return None
    number = int(number)
    for decision, mapped in categories.items():
        if mapped == number:
            return decision
    return _EXTRA_FROM_NUMBER.get(number)
