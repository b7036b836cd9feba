"""jupyter-server extension of aiinfra (REST API, dashboard proxy, GPU sampler)."""

from __future__ import annotations

from .app import AiinfraServerApp

__all__ = ["AiinfraServerApp"]
