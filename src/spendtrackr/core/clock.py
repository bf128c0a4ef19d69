"""What tells the time: `app.state.clock`, read through `core.deps.NowDep`, so that tests can
move it (interval rollovers)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

Clock = Callable[[], datetime]
