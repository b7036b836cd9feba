"""Cron and interval triggers: next runs checked against croniter in a zone with DST."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from aiinfra_magics.errors import InputError
from aiinfra_magics.pipelines.triggers import Trigger

BERLIN = ZoneInfo("Europe/Berlin")
EXPRESSIONS = ["30 2 * * *", "0 2 * * *", "0 * * * *", "*/30 * * * *", "15 1-4 * * *", "0 3 28 3 *"]


def _starts(first: datetime, hours: int, step_minutes: int = 7) -> list[datetime]:
    return [first + timedelta(minutes=m) for m in range(0, hours * 60, step_minutes)]


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_march_change_matches_croniter(expr: str) -> None:
    """Around 2027-03-28 02:00 CET -> 03:00 CEST every next run is croniter's."""
    trigger = Trigger.from_fields(expr, "Europe/Berlin", None, 0.0)
    for start in _starts(datetime(2027, 3, 27, 20, 0, tzinfo=BERLIN), 12):
        ours = trigger.next_after(start)
        theirs = croniter(expr, start).get_next(datetime)
        assert ours == theirs, (expr, start.isoformat(), ours.isoformat(), theirs.isoformat())
        assert ours.utcoffset() == theirs.utcoffset()
    # From a UTC start too: the zone is the trigger's, not the caller's.
    start = datetime(2027, 3, 28, 0, 10, tzinfo=timezone.utc)
    assert trigger.next_after(start) == croniter(expr, start.astimezone(BERLIN)).get_next(datetime)


def test_march_gap_runs_at_the_first_instant_after_it() -> None:
    trigger = Trigger.from_fields("30 2 * * *", "Europe/Berlin", None, 0.0)
    at = trigger.next_after(datetime(2027, 3, 27, 12, 0, tzinfo=BERLIN))
    assert at.isoformat() == "2027-03-28T03:00:00+02:00"
    assert trigger.next_after(at).isoformat() == "2027-03-29T02:30:00+02:00"


def test_october_change_fixed_time_runs_once_wildcards_twice() -> None:
    """Cron's rule when clocks go back: a fixed-time job runs once; '*' jobs in both hours.

    croniter alone would run '30 2 * * *' twice that night; every other next run is its own.
    """
    fixed = Trigger.from_fields("30 2 * * *", "Europe/Berlin", None, 0.0)
    start = datetime(2027, 10, 30, 12, 0, tzinfo=BERLIN)
    firings = fixed.firings_between(start, start + timedelta(days=2), 10)
    assert [f.isoformat() for f in firings] == [
        "2027-10-31T02:30:00+02:00",
        "2027-11-01T02:30:00+01:00",
    ]
    theirs = croniter("30 2 * * *", start)
    assert [theirs.get_next(datetime).isoformat() for _ in range(3)] == [
        "2027-10-31T02:30:00+02:00",
        "2027-10-31T02:30:00+01:00",  # the second copy cron does not run
        "2027-11-01T02:30:00+01:00",
    ]
    wild = Trigger.from_fields("*/30 * * * *", "Europe/Berlin", None, 0.0)
    for start in _starts(datetime(2027, 10, 30, 23, 0, tzinfo=BERLIN), 6):
        assert wild.next_after(start) == croniter("*/30 * * * *", start).get_next(datetime)


def test_interval_is_anchored_and_exact() -> None:
    trigger = Trigger.from_fields(None, None, "2s", 1000.123456)
    at = datetime.fromtimestamp(1000.123456, tz=timezone.utc)
    got = trigger.firings_between(at, at + timedelta(seconds=7), 10)
    assert [round(g.timestamp() - 1000.123456, 3) for g in got] == [2.0, 4.0, 6.0]
    assert trigger.to_dict() == {"every": "2s", "seconds": 2.0}
    assert Trigger.from_fields(None, None, "30m", 0).to_dict()["every"] == "30m"


@pytest.mark.parametrize(
    ("cron", "tz", "every", "field"),
    [
        ("61 * * * *", None, None, "cron"),
        ("0 2 * *", None, None, "cron"),
        ("0 0 0 0 0 0", None, None, "cron"),
        ("0 0 31 2 *", None, None, "cron"),  # never fires
        ("0 2 * * *", "Mars/Base", None, "tz"),
        ("0 2 * * *", "../../etc/passwd", None, "tz"),
        (None, None, "0s", "every"),
        (None, None, "soon", "every"),
        (None, "UTC", "5m", "tz"),
        (None, None, None, "cron"),
        ("0 2 * * *", None, "5m", "cron"),
    ],
)
def test_bad_trigger_names_its_field(cron, tz, every, field) -> None:
    with pytest.raises(InputError) as caught:
        Trigger.from_fields(cron, tz, every, 0.0)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}:")
