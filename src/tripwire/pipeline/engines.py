"""The extraction engines by name (``tripwire scan --engine``): the one place that knows them all.

Apart from :mod:`.engine` (the interface and the local engine) so that the Ray engine, which builds on that
module, is imported only when chosen, without a cycle between the two.
"""

from __future__ import annotations

from ..config import Config
from ..errors import UsageError
from .engine import Engine, LocalEngine
from .worker import ExtractorFactory


ENGINES = ("local", "ray")


def make_engine(name: str, workers: int | None, config: Config, address: str | None = None,
                extractors: ExtractorFactory | None = None) -> Engine:
    """The engine called ``name`` (``ray`` is imported only when chosen: it is an optional, heavy dependency).

    ``workers``: extraction processes (default: this machine's cores; on a Ray cluster, its CPUs).
    ``extractors`` replaces the default extractor set in every worker (a picklable module-level function).
    """
    if name == "local":
        if address:
            raise UsageError("--ray-address needs --engine ray")
        return LocalEngine(workers, config, extractors)
    if name == "ray":
        try:
            from .ray_engine import RayEngine
        except ImportError as exc:
            raise UsageError(f"--engine ray needs Ray: pip install 'tripwire[cluster]' ({exc})") from exc
        return RayEngine(workers, config, address, extractors)
    raise UsageError(f"unknown engine {name!r}: choose one of {', '.join(ENGINES)}")
