"""When to try again: a fixed schedule of waits after each failed attempt (webhook deliveries,
emails), then giving up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Schedule:
    waits: tuple[timedelta, ...]

    def next_attempt(self, failed_attempts: int, now: datetime) -> datetime | None:
        """When to try after `failed_attempts` failures, or None: the last one was the last."""
        if failed_attempts > len(self.waits):
            return None
        return now + self.waits[failed_attempts - 1]

    @property
    def span(self) -> timedelta:
        """From the first attempt to the last."""
        return sum(self.waits, timedelta())
