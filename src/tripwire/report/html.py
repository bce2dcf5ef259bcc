"""The one Jinja environment for every HTML page tripwire writes (report.html, networks.html, ...).

All templates live in ``tripwire/report/templates`` and render with the same settings: autoescaping on (no
field of a record or a post can inject markup), block tags trimmed. Pages never embed media.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

__all__ = ["environment", "render"]


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The shared environment (built once; templates are cached by Jinja)."""
    return Environment(loader=PackageLoader("tripwire.report", "templates"), autoescape=select_autoescape(default=True),
                       trim_blocks=True, lstrip_blocks=True)


def render(template: str, **context: Any) -> str:
    """Render ``template`` (a file name under ``report/templates``) with ``context``."""
    return environment().get_template(template).render(**context)
