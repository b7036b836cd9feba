"""Registered Dask Gateways (``aiinfra gateway add NAME URL``) and the clusters found on them.

A registered gateway is asked for the user's clusters by ``cluster list``, so
clusters started elsewhere (a script, another lab, yesterday) show up too. No
secret is stored here: credentials come from dask's ``gateway.auth`` config or
the environment (``JUPYTERHUB_API_TOKEN``), as for the plain dask-gateway client.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..checks import as_name, matches
from ..errors import NotFoundError, field_error
from ..paths import aiinfra_home, atomic_write_json

AUTH_CHOICES = ("simple", "jupyterhub", "kerberos")
# Whole-string patterns (checks.matches: fullmatch), as `$` alone accepts a trailing newline.
URL_PATTERN = re.compile(r"https?://[A-Za-z0-9_.\-\[\]:]+(/[A-Za-z0-9_.~/%-]*)?")
PROXY_PATTERN = re.compile(r"(gateway://|tls://)?[A-Za-z0-9_.\-\[\]]+:\d{1,5}")


def store_path() -> Path:
    return aiinfra_home() / "gateways.json"


def check_address(field: str, value: Any) -> str:
    if not matches(URL_PATTERN, value):
        raise field_error(
            field, value, "an http(s) URL like https://hub.example.org/services/dask-gateway"
        )
    return value.rstrip("/")


def check_proxy(field: str, value: Any) -> str:
    if not matches(PROXY_PATTERN, value):
        raise field_error(field, value, "gateway://HOST:PORT (or HOST:PORT)")
    return value if value.startswith(("gateway://", "tls://")) else f"gateway://{value}"


def check_auth(field: str, value: Any) -> str:
    if value not in AUTH_CHOICES:
        raise field_error(field, value, " | ".join(AUTH_CHOICES))
    return value


def load() -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(store_path().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(data: dict[str, dict[str, Any]]) -> None:
    atomic_write_json(store_path(), data)  # 0600, never half-written


def add(
    name: str, address: str, proxy_address: str | None = None, auth: str = "simple"
) -> dict[str, Any]:
    as_name("name", name)
    entry = {
        "name": name,
        "address": check_address("url", address),
        "proxy_address": check_proxy("proxy-address", proxy_address) if proxy_address else None,
        "auth": check_auth("auth", auth),
    }
    data = load()
    data[name] = entry
    _save(data)
    return entry


def get(name: str) -> dict[str, Any]:
    data = load()
    if name not in data:
        raise NotFoundError(
            f"name: no gateway named {name!r}; registered: {', '.join(sorted(data)) or 'none'}",
            field="name",
        )
    return data[name]


def remove(name: str) -> None:
    data = load()
    get(name)
    data.pop(name)
    _save(data)


def entries() -> list[dict[str, Any]]:
    return [load()[k] for k in sorted(load())]
