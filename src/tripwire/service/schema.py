"""The whole database schema in one metadata: every package's tables, for comparing with the migrations.

Each package owns its tables (``store.models``, ``banks.models``, ``banks.exchanges.models``, ``review.models``, ``evidence.models``,
``report.models``, ``service.models``, ``match.models``): its models subclass :class:`tripwire.store.models.Base`, which
registers them in ``Base.metadata`` when the module is imported. The store cannot import them (it is below
all of them), so the complete set is assembled here, at the top of the layers. Running migrations needs none
of this (they are op-based); comparing or autogenerating does (tests/test_store.py; for ``alembic revision
--autogenerate`` pass ``all_tables()`` to the migration environment as ``config.attributes["target_metadata"]``,
see ``store/migrations/env.py``).
"""

from __future__ import annotations

from sqlalchemy import MetaData

from ..banks import models as _banks  # noqa: F401  (registers the bank tables)
from ..banks.exchanges import models as _exchanges  # noqa: F401  (registers the exchange tables)
from ..evidence import models as _evidence  # noqa: F401  (registers the preserved-evidence tables)
from ..match import models as _match  # noqa: F401  (registers the series tables)
from ..report import models as _report  # noqa: F401  (registers the CyberTipline submission tables)
from ..review import models as _review  # noqa: F401  (registers review and audit tables)
from ..store.models import Base
from . import models as _service  # noqa: F401  (registers API keys, sessions, review queue)

__all__ = ["all_tables"]


def all_tables() -> MetaData:
    """``Base.metadata`` with every tripwire table registered."""
    return Base.metadata
