"""Registered Dask Gateways: ``aiinfra gateway add NAME URL``, kept in one private JSON file.

A registered gateway is asked for the user's clusters by ``cluster list``, so
clusters started elsewhere (a script, another lab, yesterday) show up too. No
secret is stored here: credentials come from dask's ``gateway.auth`` config or
the environment (``JUPYTERHUB_API_TOKEN``), as for the plain dask-gateway client.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from ..errors import NotFoundError, field_error
from .spec import NAME_ALLOWED, NAME_PATTERN

AUTH_CHOICES = ("simple", "jupyterhub", "kerberos")
URL_PATTERN = re.compile(r"^https?://[A-Za-z0-9_.\-\[\]:]+(/[A-Za-z0-9_.~/%-]*)?$")
PROXY_PATTERN = re.compile(r"^(gateway://|tls://)?[A-Za-z0-9_.\-\[\]]+:\d{1,5}$")


def store_path() -> Path:
    from .registry import registry_dir

    return registry_dir().parent / "gateways.json"


def check_address(field: str, value: Any) -> str:
    if not isinstance(value, str) or not URL_PATTERN.match(value):
        raise field_error(
            field, value, "an http(s) URL like https://hub.example.org/services/dask-gateway"
        )
    return value.rstrip("/")


def check_proxy(field: str, value: Any) -> str:
    if not isinstance(value, str) or not PROXY_PATTERN.match(value):
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
    path = store_path()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".gateways-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as handle:  # mkstemp: 0600 already
            json.dump(data, handle, indent=2, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def add(
    name: str, address: str, proxy_address: str | None = None, auth: str = "simple"
) -> dict[str, Any]:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise field_error("name", name, NAME_ALLOWED)
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


def by_address(address: str) -> dict[str, Any] | None:
    for entry in entries():
        if entry["address"] == address.rstrip("/"):
            return entry
    return None
