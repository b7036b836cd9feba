"""What every aiinfra REST handler shares: JSON in, JSON out, core errors to HTTP codes.

Handlers are thin doors: they read the body, call the core in a worker thread
(core calls touch the registry and ping schedulers, and the event loop must stay
free for every other user of the server) and translate the core's exceptions:
AiinfraError -> 400 naming the field, NotFoundError -> 404, OperationError -> 409.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

from jupyter_server.base.handlers import APIHandler

from ..errors import AiinfraError, NotFoundError, OperationError

T = TypeVar("T")
# Bodies are a few fields; anything larger is a mistake or an attack.
MAX_BODY = 1 << 20


class RequestError(Exception):
    """An HTTP error with a JSON body: ``{"message": ..., "field": ...}``."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


def status_for(exc: BaseException) -> int | None:
    """The HTTP status a core exception stands for (None: a bug, let it be a 500)."""
    if isinstance(exc, RequestError):
        return exc.status
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, AiinfraError):
        return 400
    if isinstance(exc, OperationError):
        return 409
    return None


class AiinfraHandler(APIHandler):
    """Base of the aiinfra API handlers."""

    @property
    def state(self) -> Any:
        """The ServerState built by the extension app (one per server)."""
        return self.settings["aiinfra_state"]

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking core call off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.state.executor, functools.partial(fn, *args, **kwargs)
        )

    def json_body(self) -> dict[str, Any]:
        """The request body as a JSON object, or a 400 that says what was wrong."""
        raw = self.request.body or b""
        if not raw.strip():
            return {}
        if len(raw) > MAX_BODY:
            raise RequestError(400, f"body: {len(raw)} bytes; allowed: at most {MAX_BODY}", "body")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(400, f"body: not valid JSON ({exc})", "body") from None
        except RecursionError:  # [[[[... deeper than the parser's stack
            raise RequestError(
                400, "body: nested too deeply; allowed: a JSON object", "body"
            ) from None
        if not isinstance(body, dict):
            raise RequestError(
                400, f"body: got a JSON {type(body).__name__}; allowed: a JSON object", "body"
            )
        return body

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data, default=str))

    def fail(self, exc: BaseException) -> None:
        status = status_for(exc)
        assert status is not None
        field = getattr(exc, "field", None)
        self.reply({"message": str(exc), "field": field}, status=status)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        # User errors are answered by _handle_request_exception below; keep them
        # out of the server log's tracebacks.
        if value is not None and status_for(value) is not None:
            return
        super().log_exception(typ, value, tb)

    def _handle_request_exception(self, e: BaseException) -> None:
        if status_for(e) is not None and not self._finished:
            self.fail(e)
            return
        super()._handle_request_exception(e)
