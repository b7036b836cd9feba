"""One error base and its three kinds; every door maps them once, in one place.

- :class:`InputError` — bad input; names the field and what is allowed
  (IPython ``UsageError``, CLI exit 2, HTTP 400).
- :class:`NotFoundError` — the user named something that does not exist
  (``UsageError``, exit 2, HTTP 404).
- :class:`OperationError` — a valid request that could not be carried out: a
  start failed, a scheduler is gone (``UsageError``, exit 1, HTTP 409).

Messages are one line. Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class AiinfraException(Exception):
    """Base of every error aiinfra raises on purpose."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InputError(AiinfraException, ValueError):
    """Bad input from the user: a field had a value that is not allowed."""


#: The name most modules (and backend plugins) use for bad input.
AiinfraError = InputError


class NotFoundError(InputError):
    """The user named something (a cluster, a run) that does not exist."""


class OperationError(AiinfraException, RuntimeError):
    """A valid request that could not be carried out (start failed, scheduler gone)."""


def field_error(field: str, value: object, allowed: str) -> InputError:
    """Build the standard one-line message: ``workers: got 0; allowed: ...``."""
    shown = repr(value)
    if len(shown) > 80:  # a 10k-character value must not become a 10k-character message
        shown = shown[:77] + "..."
    return InputError(f"{field}: got {shown}; allowed: {allowed}", field=field)
