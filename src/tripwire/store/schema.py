"""Every table of the database in one metadata: what the migrations must produce (tests compare them)."""

from ..banks import models as _banks  # noqa: F401  (registers bank tables)
from ..review import models as _review  # noqa: F401  (registers review and audit tables)
from ..service import models as _service  # noqa: F401  (registers API keys, sessions, review queue)
from ..report import models as _reporting  # noqa: F401  (registers evidence and CyberTipline submission tables)
from .models import Base

metadata = Base.metadata
