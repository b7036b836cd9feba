"""The value checks every spec shares: one function per kind of value.

Each takes the field name (as the user wrote it: ``rmm-pool``) and the raw value
from a command line or a JSON body, and returns the typed value or raises the
standard one-line :func:`~aiinfra_magics.errors.field_error`. Patterns always
match the whole string (``re.fullmatch``: ``$`` alone would accept a trailing
newline).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from .errors import AiinfraError, field_error

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
NAME_ALLOWED = "1-63 characters of a-z, 0-9, '-' and '_', starting with a letter or digit"
_INT = re.compile(r"[+-]?\d{1,30}")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?")
_DURATION_UNITS = {
    None: 1.0,
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}


def matches(pattern: re.Pattern[str], value: Any) -> bool:
    """True when ``value`` is a str that the whole of ``pattern`` matches."""
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def as_name(field: str, value: Any) -> str:
    """A name that is also one safe file name (no separators, dots, spaces or newlines)."""
    if not matches(NAME_PATTERN, value):
        raise field_error(field, value, NAME_ALLOWED)
    return value


def as_int(field: str, value: Any, minimum: int = 1, maximum: int | None = None) -> int:
    """An integer (or a string of one) within ``[minimum, maximum]``; never a bool."""
    allowed = f"an integer >= {minimum}" + (f" and <= {maximum}" if maximum is not None else "")
    number = value
    if isinstance(value, str) and _INT.fullmatch(value.strip()):
        number = int(value)
    if (
        isinstance(number, bool)
        or not isinstance(number, int)
        or number < minimum
        or (maximum is not None and number > maximum)
    ):
        raise field_error(field, number, allowed)
    return number


def as_str(field: str, value: Any) -> str:
    if not isinstance(value, str) or "\x00" in value:
        raise field_error(field, value, "a string")
    return value


#: C0/C1 control characters and DEL: a newline in a value that reaches a job script or a
#: command line would start a shell line of its own.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
LINE_ALLOWED = "one line of printable characters (no newline or control character)"


def as_line(field: str, value: Any, allowed: str = LINE_ALLOWED) -> str:
    """A string without newlines or control characters (it reaches a script or argv)."""
    if not isinstance(value, str) or _CONTROL.search(value):
        raise field_error(field, value, allowed)
    return value


def as_word(field: str, value: Any, pattern: re.Pattern[str], allowed: str) -> str:
    """One word (the whole of ``pattern``): a value spliced into a job script or command line."""
    if not matches(pattern, value):
        raise field_error(field, value, allowed)
    return value


def as_number(field: str, value: Any) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise field_error(field, value, "a number")
    return number


def as_bool(field: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise field_error(field, value, "true | false")


def as_size(field: str, value: Any, *, allow_fraction: bool = True) -> str:
    """A byte size like ``4GB``/``512MiB`` or, where allowed, a fraction ``0 < f <= 1``."""
    allowed = "a size like 4GB or 512MiB" + (", or a fraction like 0.8" if allow_fraction else "")
    text = as_str(field, value).strip() if not isinstance(value, (int, float)) else str(value)
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:  # a bare number is a fraction of the machine, never bytes
        if allow_fraction and 0 < number <= 1:
            return text
        raise field_error(field, value, allowed)
    from dask.utils import parse_bytes  # late: keeps `%aiinfra` start-up free of dask

    try:
        size = parse_bytes(text)
    except (ValueError, TypeError):
        raise field_error(field, value, allowed) from None
    if size <= 0 or size > 2**60:
        raise field_error(field, value, allowed)
    return text


def as_str_list(field: str, value: Any) -> tuple[str, ...]:
    """A list of strings: a JSON list, a repeated flag, or one string."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise field_error(field, value, "a list of strings")
    return tuple(as_str(field, item) for item in items)


def as_duration(field: str, value: Any) -> float:
    """Seconds from ``30``, ``90s``, ``30m``, ``2h``, ``1d``; must be > 0."""
    allowed = "a duration like 90s, 30m, 2h (a number alone is seconds), > 0"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.fullmatch(str(value).strip()) if isinstance(value, str) else None
        if match is None:
            raise field_error(field, value, allowed)
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if not math.isfinite(seconds) or seconds <= 0:
        raise field_error(field, value, allowed)
    return seconds


def only_fields(given: Iterable[str], allowed: Sequence[str]) -> None:
    """Refuse the first field of a body or an options mapping that is not in ``allowed``.

    Raises:
        InputError: ``KEY: unknown field; allowed: A, B, ...``, naming KEY.
    """
    for key in given:
        if key not in allowed:
            raise AiinfraError(f"{key}: unknown field; allowed: {', '.join(allowed)}", field=key)
