"""Five-field cron schedules (``*/15 2-6 * * 1-5``), for CronJobs, in UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["CronSchedule"]

_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def _field(text: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        step = 1
        part = item
        if "/" in item:
            part, step_text = item.split("/", 1)
            step = int(step_text)
            if step <= 0:
                raise ValueError(f"step must be positive in {text!r}")
        if part in ("*", "?"):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = int(a), int(b)
        else:
            start = int(part)
            end = high if step > 1 else start
        if start < low or end > high or start > end:
            raise ValueError(f"{text!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed schedule; ``next_after`` gives the next firing time."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, text: str) -> CronSchedule:
        """ValueError with the reason when the schedule is malformed."""
        expr = _MACROS.get(text.strip(), text.strip())
        parts = expr.split()
        if len(parts) != 5:
            raise ValueError(f"expected 5 fields in cron schedule {text!r}, got {len(parts)}")
        try:
            fields = [_field(p, *_RANGES[i]) for i, p in enumerate(parts)]
        except ValueError as e:
            raise ValueError(f"invalid cron schedule {text!r}: {e}") from e
        # Sunday is both 0 and 7.
        fields[4] = frozenset(d % 7 for d in fields[4])
        return cls(
            minutes=fields[0],
            hours=fields[1],
            days=fields[2],
            months=fields[3],
            weekdays=fields[4],
            any_day=parts[2] in ("*", "?"),
            any_weekday=parts[4] in ("*", "?"),
        )

    def _day_matches(self, t: datetime) -> bool:
        weekday = (t.weekday() + 1) % 7
        if self.any_day or self.any_weekday:
            return t.day in self.days and weekday in self.weekdays
        return t.day in self.days or weekday in self.weekdays

    def next_after(self, ts: float) -> float:
        """The first firing strictly after ``ts`` (unix seconds)."""
        t = datetime.fromtimestamp(ts, tz=UTC).replace(second=0, microsecond=0)
        t += timedelta(minutes=1)
        for _ in range(366 * 24 * 60):
            if t.month not in self.months or not self._day_matches(t):
                t = (t + timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if t.hour not in self.hours:
                t = (t + timedelta(hours=1)).replace(minute=0)
                continue
            if t.minute in self.minutes:
                return t.timestamp()
            t += timedelta(minutes=1)
        raise ValueError("the schedule never fires")
