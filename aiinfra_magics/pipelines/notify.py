"""Telling people a run ended: a webhook POST or an email, sent by the run itself.

Targets are ``webhook:URL`` and ``email:ADDR``, from the spec's ``notify:`` or
``pipeline run --notify`` (and schedules). ``notify:`` takes a target, or a list
of targets and ``{target, on}`` mappings; ``on`` is ``[failure]`` (the default),
``[success]`` or both. A run that is not ``ok`` (failed, interrupted) is a failure.
A URL may be written ``webhook:$NAME`` to keep it out of the spec: it is read
from the environment when the run ends.

The webhook body is JSON with ``pipeline``, ``run_id``, ``status``,
``failed_steps`` (each step with its error's first line), ``duration``,
``trigger``, ``report`` and a ``text`` line that Slack, Mattermost and Teams
incoming webhooks show as it is. Email goes through SMTP settings from dask's
config (``aiinfra.smtp.{host,port,user,password,starttls,from}``), each
overridable by ``AIINFRA_SMTP_HOST`` etc.

A notification that cannot be delivered is recorded in run.json
(``notifications: [{target, on, ok, error}]``) and never changes the run's
status. The record shows a webhook by its host only (its path is often the
secret) and never holds the SMTP password.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import field_error

EVENTS = ("failure", "success")
DEFAULT_ON = ("failure",)
KINDS = ("webhook", "email")
TIMEOUT_S = 10.0  # per delivery: a dead endpoint delays the run's exit by this much at most
ALLOWED = "webhook:URL (http or https, or webhook:$ENV_NAME) or email:ADDRESS"
ENV_NAME = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")
# One address, no spaces or line breaks (nothing can be added to the message's headers).
ADDRESS = re.compile(r"[^@\s,;<>\"']+@[^@\s,;<>\"']+")
SMTP_DEFAULTS: dict[str, Any] = {
    "host": "localhost",
    "port": 25,
    "user": None,
    "password": None,
    "starttls": False,
    "from": None,  # default: USER@this host
}


@dataclass(frozen=True)
class Rule:
    """Where to tell (``target``, as written) and on which endings (``on``)."""

    target: str
    on: tuple[str, ...] = DEFAULT_ON

    @property
    def kind(self) -> str:
        return self.target.partition(":")[0]

    def wants(self, status: str) -> bool:
        return ("success" if status == "ok" else "failure") in self.on


def check_target(value: Any, where: str) -> str:
    """``value`` if it is a valid target, else a one-line error naming ``where``."""
    if not isinstance(value, str):
        raise field_error(where, value, ALLOWED)
    kind, sep, rest = value.partition(":")
    if not sep or kind not in KINDS or not rest.strip():
        raise field_error(where, value, ALLOWED)
    if kind == "webhook" and not ENV_NAME.fullmatch(rest):
        try:
            parts = urlsplit(rest)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            ok = False
        if not ok or any(c.isspace() for c in rest):
            raise field_error(where, redact(value), ALLOWED)
    if kind == "email" and not ADDRESS.fullmatch(rest):
        raise field_error(where, value, ALLOWED)
    return value


def _events(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(v in EVENTS for v in value):
        raise field_error(where, value, "a list of " + " and ".join(EVENTS))
    return tuple(dict.fromkeys(value))


def rules_from_spec(value: Any) -> tuple[Rule, ...]:
    """The spec's ``notify:`` as rules (one-line errors name ``notify[i].target`` etc.)."""
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    rules = []
    for i, item in enumerate(items):
        where = f"notify[{i}]" if isinstance(value, list) else "notify"
        if isinstance(item, dict):
            unknown = [k for k in item if k not in ("target", "on")]
            if unknown:
                raise field_error(f"{where}.{unknown[0]}", unknown[0], "target, on")
            target = check_target(item.get("target"), f"{where}.target")
            on = _events(item["on"], f"{where}.on") if "on" in item else DEFAULT_ON
            rules.append(Rule(target, on))
        elif isinstance(item, str):
            rules.append(Rule(check_target(item, where)))
        else:
            raise field_error(where, item, f"{ALLOWED}, or a mapping {{target, on}}")
    return merge(rules)


def rules_from_targets(targets: list[str] | None, where: str = "--notify") -> tuple[Rule, ...]:
    """``--notify TARGET`` (repeatable): on failure, as the spec's default."""
    return tuple(Rule(check_target(t, where)) for t in targets or [])


def merge(rules: Any) -> tuple[Rule, ...]:
    """One rule per target: a target named twice is told on the union of its events."""
    out: dict[str, tuple[str, ...]] = {}
    for rule in rules:
        out[rule.target] = tuple(dict.fromkeys((*out.get(rule.target, ()), *rule.on)))
    return tuple(Rule(t, on) for t, on in out.items())


def redact(target: str) -> str:
    """A target as records and messages show it: a webhook by scheme and host only."""
    kind, _, rest = target.partition(":")
    if kind != "webhook" or ENV_NAME.fullmatch(rest):
        return target
    try:
        parts = urlsplit(rest)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "webhook:(invalid URL)"
    host = f"[{host}]" if ":" in host else host
    return f"webhook:{parts.scheme}://{host}{port}/…"


def first_line(text: Any) -> str:
    lines = str(text or "").strip().splitlines()
    return lines[0].strip() if lines else ""


def message(data: dict[str, Any], report: Path | None) -> dict[str, Any]:
    """The webhook body (and the email's content) for a run record."""
    failed = [
        {"step": name, "error": first_line(step.get("error"))}
        for name, step in (data.get("steps") or {}).items()
        if isinstance(step, dict) and step.get("status") == "failed"
    ]
    duration = data.get("duration")
    took = f" in {duration:.1f} s" if isinstance(duration, (int, float)) else ""
    text = f"aiinfra: pipeline {data.get('pipeline')} run {data.get('run_id')} {data.get('status')}"
    text += took
    if failed:
        text += "; failed: " + ", ".join(
            f"{f['step']} ({f['error']})" if f["error"] else f["step"] for f in failed
        )
    trigger = data.get("trigger")
    if isinstance(trigger, dict) and trigger.get("kind") == "schedule":
        text += f"; schedule {trigger.get('schedule')}"
    if report is not None:
        text += f"; report: {report}"
    return {
        "pipeline": data.get("pipeline"),
        "run_id": data.get("run_id"),
        "status": data.get("status"),
        "failed_steps": failed,
        "duration": duration,
        "trigger": trigger,
        "report": str(report) if report is not None else None,
        "text": text,
    }


def send_all(
    rules: tuple[Rule, ...], data: dict[str, Any], report: Path | None
) -> list[dict[str, Any]]:
    """Deliver every rule that wants this ending; what happened to each, for run.json."""
    body = message(data, report)
    outcomes = []
    for rule in rules:
        if not rule.wants(str(data.get("status"))):
            continue
        outcome: dict[str, Any] = {"target": redact(rule.target), "on": list(rule.on)}
        try:
            deliver(rule.target, body)
            outcome.update(ok=True, error=None)
        except Exception as exc:  # noqa: BLE001 - any failure is recorded, never raised
            outcome.update(ok=False, error=_scrub(f"{type(exc).__name__}: {exc}", rule.target))
        outcomes.append(outcome)
    return outcomes


def deliver(target: str, body: dict[str, Any], timeout: float = TIMEOUT_S) -> None:
    """Send ``body`` to one target (raises on any failure)."""
    kind, _, rest = target.partition(":")
    if kind == "webhook":
        post_json(_expand(rest), body, timeout)
    elif kind == "email":
        send_email(rest, body, timeout)
    else:  # checked when the rule was made
        raise ValueError(f"unknown notification kind {kind!r}")


def _expand(rest: str) -> str:
    match = ENV_NAME.fullmatch(rest)
    if not match:
        return rest
    value = os.environ.get(match.group(1))
    if not value:
        raise LookupError(f"environment variable {match.group(1)} is not set")
    check_target(f"webhook:{value}", match.group(1))
    return value


def post_json(url: str, body: dict[str, Any], timeout: float = TIMEOUT_S) -> None:
    """POST ``body`` as JSON; any answer but 2xx raises."""
    import urllib.request

    request = urllib.request.Request(
        url,
        data=json.dumps(body, default=str).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "aiinfra-notify"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only
        response.read(64 * 1024)


def smtp_settings() -> dict[str, Any]:
    """SMTP settings: ``AIINFRA_SMTP_<KEY>`` over dask config ``aiinfra.smtp.<key>`` over defaults."""
    import dask.config

    configured = dask.config.get("aiinfra.smtp", default=None) or {}
    settings = dict(SMTP_DEFAULTS)
    for key in SMTP_DEFAULTS:
        value = os.environ.get(f"AIINFRA_SMTP_{key.upper()}")
        if value is None:
            value = configured.get(key) if isinstance(configured, dict) else None
        if value is not None:
            settings[key] = value
    settings["port"] = int(settings["port"])
    starttls = settings["starttls"]
    if isinstance(starttls, str):
        starttls = starttls.strip().lower() in ("1", "true", "yes", "on")
    settings["starttls"] = bool(starttls)
    if not settings["from"]:
        import getpass
        import socket

        settings["from"] = f"{getpass.getuser()}@{socket.getfqdn()}"
    return settings


def send_email(address: str, body: dict[str, Any], timeout: float = TIMEOUT_S) -> None:
    """One plain-text email through the configured SMTP server."""
    import smtplib
    import ssl
    from email.message import EmailMessage

    settings = smtp_settings()
    mail = EmailMessage()
    mail["Subject"] = (
        f"[aiinfra] pipeline {body['pipeline']}: {body['status']} (run {body['run_id']})"
    )
    mail["From"] = settings["from"]
    mail["To"] = address
    lines = [body["text"], ""]
    for failed in body["failed_steps"]:
        lines.append(f"failed step {failed['step']}: {failed['error']}")
    if body.get("trigger"):
        lines.append(f"trigger: {json.dumps(body['trigger'], default=str)}")
    if body.get("report"):
        lines.append(f"report: {body['report']}")
    mail.set_content("\n".join(lines) + "\n")
    with smtplib.SMTP(settings["host"], settings["port"], timeout=timeout) as smtp:
        if settings["starttls"]:
            smtp.starttls(context=ssl.create_default_context())
        if settings["user"]:
            smtp.login(str(settings["user"]), str(settings["password"] or ""))
        smtp.send_message(mail)


def _scrub(text: str, target: str) -> str:
    """An error as the record keeps it: one line, without the webhook's URL or secrets."""
    kind, _, rest = target.partition(":")
    secrets_ = [rest] if kind == "webhook" else []
    if kind == "webhook" and ENV_NAME.fullmatch(rest):
        secrets_ = [os.environ.get(ENV_NAME.fullmatch(rest).group(1)) or ""]
    password = os.environ.get("AIINFRA_SMTP_PASSWORD")
    if kind == "email":
        try:
            password = smtp_settings().get("password") or password
        except Exception:  # noqa: BLE001 - config unreadable: scrub what we know
            pass
    secrets_.append(password or "")
    for secret in secrets_:
        if secret:
            text = text.replace(secret, "…")
            parts = urlsplit(secret) if kind == "webhook" else None
            if parts is not None and parts.path not in ("", "/"):
                text = text.replace(parts.path, "/…")
    return first_line(text)[:300]
