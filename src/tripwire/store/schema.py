"""Every table of the database in one metadata: what the migrations must produce (tests compare them)."""

from ..banks import models as _banks  # noqa: F401  (registers bank tables)
from ..review import models as _review  # noqa: F401  (registers review and audit tables)
from .models import Base

metadata = Base.metadata
