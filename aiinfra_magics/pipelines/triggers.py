"""When a schedule fires: cron expressions in a time zone, or a fixed interval.

The cron arithmetic is croniter's (``croniter`` 7, on ``zoneinfo`` datetimes), with one
rule on top that standard cron (Vixie cron, cronie) has and croniter lacks: when clocks go
back, a job at a fixed hour and minute runs once, not in both copies of the repeated hour
(``30 2 * * *`` in Europe/Berlin on the last Sunday of October). Jobs with ``*`` in the
minute or hour field run in both copies, as cron runs them. When clocks go forward, croniter
already does what cron does: a time in the skipped hour runs at the first instant after it.

Every time here is an aware datetime; the store keeps UTC timestamps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ..checks import as_duration
from ..errors import field_error

CRON_ALLOWED = (
    "a 5-field cron expression (minute hour day-of-month month day-of-week), e.g. '0 2 * * *'"
)
ZONE_ALLOWED = "an IANA time zone such as Europe/Berlin or UTC"
EVERY_ALLOWED = "an interval of at least 1s, like 90s, 30m, 2h or 1d (a number alone is seconds)"
MIN_EVERY_S = 1.0
# Keep an interval's text as the user wrote it; these are its units, as checks.as_duration.
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def check_zone(value: Any) -> str:
    """The IANA zone name, or an InputError naming ``tz``."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not isinstance(value, str) or not value.strip() or "\x00" in value or len(value) > 64:
        raise field_error("tz", value, ZONE_ALLOWED)
    try:
        ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise field_error("tz", value, ZONE_ALLOWED) from None
    return value.strip()


def check_cron(value: Any) -> str:
    """A valid 5-field cron expression (normalised spaces), or an InputError naming ``cron``."""
    from croniter import croniter

    if not isinstance(value, str) or "\x00" in value or len(value) > 200:
        raise field_error("cron", value, CRON_ALLOWED)
    text = " ".join(value.split())
    # Five fields only: croniter also takes a 6th (seconds) and 7th (year) field, which cron
    # has not; a schedule written for cron must mean what it means there.
    if len(text.split(" ")) != 5 or not croniter.is_valid(text):
        raise field_error("cron", value, CRON_ALLOWED)
    try:  # is_valid accepts some expressions that never fire (e.g. '0 0 31 2 *')
        croniter(text, datetime(2000, 1, 1, tzinfo=timezone.utc)).get_next(datetime)
    except Exception:  # croniter raises its own errors (CroniterBadDateError, ...)
        raise field_error("cron", value, CRON_ALLOWED + " that fires at least once") from None
    return text


def check_every(value: Any) -> float:
    """Seconds of an interval (``90s``, ``30m``...), at least 1 s; InputError naming ``every``."""
    try:
        seconds = as_duration("every", value)
    except ValueError:
        raise field_error("every", value, EVERY_ALLOWED) from None
    if seconds < MIN_EVERY_S or seconds > 366 * 86400:
        raise field_error("every", value, EVERY_ALLOWED)
    return seconds


def every_text(seconds: float) -> str:
    """``1800`` -> ``30m``: the largest unit that divides the interval exactly."""
    for unit, size in _UNITS:
        if seconds >= size and float(seconds / size).is_integer():
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True)
class Trigger:
    """A cron expression in a zone, or an interval anchored at ``anchor`` (UTC seconds)."""

    cron: str | None = None
    tz: str = "UTC"
    every: float | None = None
    anchor: float = 0.0

    @classmethod
    def from_fields(cls, cron: Any, tz: Any, every: Any, anchor: float) -> Trigger:
        """Check the fields as the doors give them (exactly one of cron or every).

        Raises:
            InputError: naming ``cron``, ``tz`` or ``every``.
        """
        if (cron is None) == (every is None):
            raise field_error("cron", cron, "exactly one of cron or every")
        if every is not None:
            if tz is not None:
                raise field_error("tz", tz, "a zone only together with cron")
            return cls(every=check_every(every), anchor=anchor)
        return cls(cron=check_cron(cron), tz=check_zone(tz or "UTC"))

    def to_dict(self) -> dict[str, Any]:
        """As ``list --json`` shows it: ``{cron, tz}`` or ``{every, seconds}``."""
        if self.cron is not None:
            return {"cron": self.cron, "tz": self.tz}
        return {"every": every_text(self.every or 0), "seconds": self.every}

    def __str__(self) -> str:
        if self.cron is not None:
            return f"cron '{self.cron}' {self.tz}"
        return f"every {every_text(self.every or 0)}"

    @property
    def zone(self) -> Any:
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.tz)

    def next_after(self, when: datetime) -> datetime:
        """The first firing strictly after ``when`` (aware), in the trigger's zone."""
        if self.every is not None:
            # Datetimes hold microseconds, timestamps more: compare to the microsecond.
            start = round(self.anchor, 6)
            now = round(when.timestamp(), 6)
            steps = max(0, math.floor((now - start) / self.every + 1e-9) + 1)
            at = start + steps * self.every
            while at <= now + 1e-6:  # rounding at an exact multiple
                at += self.every
            return datetime.fromtimestamp(at, tz=self.zone)
        return _cron_next(self.cron or "", when.astimezone(self.zone))

    def firings_between(self, after: datetime, until: datetime, limit: int) -> list[datetime]:
        """Firings in ``(after, until]``, at most ``limit`` of them (the earliest)."""
        out: list[datetime] = []
        at = after
        while len(out) < limit:
            at = self.next_after(at)
            if at > until:
                break
            out.append(at)
        return out


def _fixed_time(expr: str) -> bool:
    """Cron's rule: a job is at a fixed time unless its minute or hour field has a '*'."""
    minute, hour = expr.split(" ")[:2]
    return "*" not in minute and "*" not in hour


def _cron_next(expr: str, start: datetime) -> datetime:
    from croniter import croniter

    it = croniter(expr, start)
    fixed = _fixed_time(expr)
    for _ in range(8):  # a repeated hour holds at most a few fixed-time matches
        at: datetime = it.get_next(datetime)
        if fixed and _second_copy(at):
            continue  # this wall-clock time already happened an hour ago: cron runs it once
        return at
    return at


def _second_copy(at: datetime) -> bool:
    """True for a time in the repeated hour after clocks went back, when its first copy exists."""
    wall = at.replace(tzinfo=None)
    first = wall.replace(tzinfo=at.tzinfo, fold=0)
    if first.utcoffset() == at.utcoffset():
        return False
    # Same wall time, earlier instant: the first copy happened before this one.
    return first.astimezone(timezone.utc) < at.astimezone(timezone.utc) and (
        at.astimezone(timezone.utc) - first.astimezone(timezone.utc) <= timedelta(hours=3)
    )
