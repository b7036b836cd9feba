"""Registered Dask Gateways (``aiinfra gateway add NAME URL``) and the clusters found on them.

A registered gateway is asked for the user's clusters by ``cluster list``, so
clusters started elsewhere (a script, another lab, yesterday) show up too. No
secret is stored here: credentials come from dask's ``gateway.auth`` config or
the environment (``JUPYTERHUB_API_TOKEN``), as for the plain dask-gateway client.

The gateway in dask's own config (``gateway.address``, as JupyterHub/daskhub deployments
set it) counts as registered without ``gateway add``, under the name ``config``
(``CONFIG_NAME``). That name is reserved: ``gateway add config`` is refused, so it never
means a user's gateway. A registered gateway with the same address hides it (one listing
per gateway).
"""

from __future__ import annotations

import json
import os
import re
import site
import sys
from pathlib import Path
from typing import Any

from ..checks import as_name, matches
from ..errors import NotFoundError, field_error
from ..paths import aiinfra_home, atomic_write_json

# dask-gateway's own names (``gateway.auth.type``), so a site's config works as is.
AUTH_CHOICES = ("basic", "jupyterhub", "kerberos")
# Older aiinfra said "simple" for basic: registrations and records that say so keep working.
AUTH_ALIASES = {"simple": "basic"}
CONFIG_NAME = "config"
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
    """One of dask-gateway's auth names (``simple``, the old name of ``basic``, becomes it)."""
    value = AUTH_ALIASES.get(value, value) if isinstance(value, str) else value
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
    name: str, address: str, proxy_address: str | None = None, auth: str = "basic"
) -> dict[str, Any]:
    as_name("name", name)
    if name == CONFIG_NAME:
        raise field_error(
            "name", name, f"any name but {CONFIG_NAME!r} (the gateway in dask's config)"
        )
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
    data = {entry["name"]: entry for entry in entries()}
    if name not in data:
        raise NotFoundError(
            f"name: no gateway named {name!r}; registered: {', '.join(sorted(data)) or 'none'}",
            field="name",
        )
    return data[name]


def remove(name: str) -> None:
    data = load()
    if name == CONFIG_NAME and name not in data:
        get(name)  # "no gateway named" when dask's config names none either
        raise field_error(
            "name", name, "a registered gateway (this one is gateway.address in dask's config)"
        )
    get(name)
    data.pop(name)
    _save(data)


def from_config() -> dict[str, Any] | None:
    """The gateway that dask's config names (``gateway.address``), as an entry, or None.

    Read without importing dask_gateway (its defaults name no address), and only when the
    client is installed: without it, the configured gateway cannot be asked anything.
    """
    import importlib.util

    if not _may_name_gateway():
        return None  # importing dask costs a CLI listing seconds; it would find nothing
    import dask.config

    address = _formatted(dask.config.get("gateway.address", None))
    if not address or importlib.util.find_spec("dask_gateway") is None:
        return None
    kind = dask.config.get("gateway.auth.type", None)
    kind = AUTH_ALIASES.get(kind, kind) if isinstance(kind, str) else None
    return {
        "name": CONFIG_NAME,
        "address": str(address).rstrip("/"),
        "proxy_address": _formatted(dask.config.get("gateway.proxy-address", None)),
        # Any other type (a class path) is left to dask-gateway's get_auth, as the plain
        # client does: None means "the config's auth".
        "auth": kind if kind in AUTH_CHOICES else None,
    }


def _may_name_gateway() -> bool:
    """Whether dask's config could name a gateway, answered without importing dask.

    True when dask is loaded already (a kernel's ``dask.config.set``), an environment
    variable sets ``gateway`` keys, or one of the YAML/JSON files dask reads (the same
    folders, see ``dask.config.paths``) gives ``gateway.address`` a value. dask's own
    reading then decides; this only spares the import where it cannot find one.
    """
    if "dask.config" in sys.modules:
        return True
    if any(
        k.startswith("DASK_GATEWAY__") or k == "DASK_INTERNAL_INHERIT_CONFIG" for k in os.environ
    ):
        return True
    folders = [
        os.getenv("DASK_ROOT_CONFIG", "/etc/dask"),
        os.path.join(sys.prefix, "etc", "dask"),
        *[os.path.join(prefix, "etc", "dask") for prefix in site.PREFIXES],
        os.path.join(os.path.expanduser("~"), ".config", "dask"),
        os.environ.get("DASK_CONFIG", ""),
    ]
    for folder in filter(None, dict.fromkeys(folders)):
        try:
            files = sorted(Path(folder).iterdir())
        except OSError:
            continue
        for path in files:
            if path.suffix in (".yaml", ".yml", ".json") and _names_gateway(path):
                return True
    return False


def _names_gateway(path: Path) -> bool:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return False
    if "gateway" not in text:
        return False  # most config files: no need to parse them
    import yaml

    try:
        data = yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError:
        return True  # let dask's reading say what is wrong with it
    gateway = data.get("gateway") if isinstance(data, dict) else None
    return isinstance(gateway, dict) and bool(gateway.get("address"))


def _formatted(value: Any) -> Any:
    """A config value as dask-gateway reads it: a template filled from the environment
    (``{JUPYTERHUB_SERVICE_PREFIX}``); left as it is where that fails, so the error it
    gives later names the value."""
    if not isinstance(value, str):
        return value  # None, or a bare proxy port, which the client resolves itself
    try:
        return value.format(**os.environ)
    except (KeyError, IndexError, ValueError):
        return value


def entries() -> list[dict[str, Any]]:
    """Registered gateways by name, then the one in dask's config unless registered too."""
    data = load()
    listed = [data[k] for k in sorted(data)]
    configured = from_config()
    if configured is not None and not any(
        e["name"] == CONFIG_NAME or str(e.get("address")).rstrip("/") == configured["address"]
        for e in listed
    ):
        listed.append(configured)
    return listed
