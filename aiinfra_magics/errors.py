"""The two kinds of failure every door knows how to show.

A door (magic, CLI, REST handler) turns these into its own idiom: IPython
``UsageError``, CLI exit status 2 or 1, HTTP 400 or 409. Messages are one line
and, for bad input, name the field and what is allowed.
"""

from __future__ import annotations


class AiinfraError(ValueError):
    """Bad input from the user: a field had a value that is not allowed."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFoundError(AiinfraError):
    """The user named something (a cluster, a run) that does not exist."""


class OperationError(RuntimeError):
    """A valid request that could not be carried out (start failed, scheduler gone)."""


def field_error(field: str, value: object, allowed: str) -> AiinfraError:
    """Build the standard one-line message: ``workers: got 0; allowed: ...``."""
    return AiinfraError(f"{field}: got {value!r}; allowed: {allowed}", field=field)
