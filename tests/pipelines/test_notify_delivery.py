"""Notifications when a run ends (issue 26 item 4), delivered to a real HTTP server and a real
SMTP server (aiosmtpd) on 127.0.0.1: content asserted, failures recorded, never fatal."""

from __future__ import annotations

import email
import email.policy
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dask.config
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from aiinfra_magics.errors import AiinfraError
from aiinfra_magics.pipelines.notify import first_line
from aiinfra_magics.pipelines.runner import run_pipeline
from aiinfra_magics.pipelines.spec import PipelineSpec

SECRET = "T0SECRET/B0SECRET/xyzzySECRET"  # how a Slack webhook's path looks: the secret part


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Hook:
    """A real HTTP server that keeps every POST; ``/fail/...`` answers 500."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers["Content-Length"])
                hook.posts.append(
                    {
                        "path": self.path,
                        "type": self.headers["Content-Type"],
                        "body": json.loads(self.rfile.read(length)),
                    }
                )
                code = 500 if self.path.startswith("/fail/") else 200
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook():
    server = Hook()
    yield server
    server.close()


class Mailbox:
    """aiosmtpd's handler: keeps each message and the logins it was given."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.logins: list[tuple[str, str]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "message": email.message_from_bytes(envelope.content, policy=email.policy.default),
            }
        )
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            login = (auth_data.login.decode(), auth_data.password.decode())
            self.logins.append(login)
            # handled=False: aiosmtpd answers the refusal itself (535)
            return AuthResult(success=login == ("runner", "pw-SECRET"), handled=False)
        return AuthResult(success=False, handled=False)


@pytest.fixture
def smtp():
    box = Mailbox()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=_free_port(),
        authenticator=box.authenticate,
        auth_require_tls=False,  # loopback only: no certificate to make for the test
    )
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


def _pipeline(folder: Path, notebook, pipeline_file, fail: bool, notify=None) -> Path:
    source = (
        "raise ValueError('the data is bad\\nmore detail on a second line')" if fail else "x = 1"
    )
    notebook(folder / "step.ipynb", "n = 1", source)
    spec = {"name": "told", "steps": {"work": {"notebook": "step.ipynb", "retries": 0}}}
    if notify is not None:
        spec["notify"] = notify
    return pipeline_file(folder, spec)


def test_a_failed_run_posts_its_failure_to_the_webhook(
    tmp_path, notebook, pipeline_file, client, hook
):
    target = f"webhook:{hook.url}/services/{SECRET}"
    spec = _pipeline(tmp_path, notebook, pipeline_file, fail=True, notify=[{"target": target}])
    run = run_pipeline(spec, client=client, trigger="schedule:nightly")
    assert run.status == "failed"

    (post,) = hook.posts
    assert post["path"] == f"/services/{SECRET}"
    assert post["type"] == "application/json"
    body = post["body"]
    error = run.steps["work"]["error"]
    assert "ValueError: the data is bad" in error
    assert body["failed_steps"] == [{"step": "work", "error": first_line(error)}]
    assert "second line" not in json.dumps(body["failed_steps"])
    assert body["pipeline"] == "told"
    assert body["run_id"] == run.run_id
    assert body["status"] == "failed"
    assert body["duration"] == pytest.approx(run.data["duration"])
    assert body["trigger"] == {"kind": "schedule", "schedule": "nightly"}
    assert body["report"] == str(run.run_dir / "report.html")
    assert Path(body["report"]).is_file()
    # Slack, Mattermost and Teams incoming webhooks show ``text`` as it is.
    text = body["text"]
    assert text.startswith(f"aiinfra: pipeline told run {run.run_id} failed in ")
    assert "failed: work (" in text and "schedule nightly" in text and body["report"] in text

    assert run.data["notifications"] == [
        {"target": f"webhook:{hook.url}/…", "on": ["failure"], "ok": True, "error": None}
    ]
    assert "SECRET" not in run.path.read_text()  # the webhook's secret path is not recorded


def test_success_is_told_only_to_targets_that_ask_for_it(
    tmp_path, notebook, pipeline_file, client, hook
):
    notify = [
        f"webhook:{hook.url}/failures-only",  # the simple form: on failure
        {"target": f"webhook:{hook.url}/always", "on": ["failure", "success"]},
    ]
    spec = _pipeline(tmp_path, notebook, pipeline_file, fail=False, notify=notify)
    run = run_pipeline(spec, client=client)
    assert run.status == "ok"
    (post,) = hook.posts
    assert post["path"] == "/always"
    assert post["body"]["status"] == "ok"
    assert post["body"]["failed_steps"] == []
    assert post["body"]["trigger"] == {"kind": "manual", "schedule": None}
    assert [n["ok"] for n in run.data["notifications"]] == [True]


def test_an_undelivered_notification_is_recorded_and_the_run_stays_ok(
    tmp_path, notebook, pipeline_file, client, hook
):
    dead = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    notify = [
        {"target": f"webhook:{dead}/hooks/{SECRET}", "on": ["success"]},
        {"target": f"webhook:{hook.url}/fail/{SECRET}", "on": ["success"]},
    ]
    spec = _pipeline(tmp_path, notebook, pipeline_file, fail=False, notify=notify)
    run = run_pipeline(spec, client=client)
    assert run.status == "ok"
    unreachable, refused = run.data["notifications"]
    assert unreachable["ok"] is False
    assert unreachable["target"] == f"webhook:{dead}/…"
    assert "Connection refused" in unreachable["error"]
    assert refused["ok"] is False
    assert "500" in refused["error"]
    assert len(hook.posts) == 1  # the 500 one did arrive
    saved = json.loads(run.path.read_text())
    assert saved["status"] == "ok"
    assert saved["notifications"] == run.data["notifications"]
    assert "SECRET" not in run.path.read_text()


def test_email_arrives_through_the_configured_smtp_server(
    tmp_path, notebook, pipeline_file, client, smtp
):
    spec = _pipeline(tmp_path, notebook, pipeline_file, fail=True)
    settings = {
        "host": "127.0.0.1",
        "port": smtp.port,
        "user": "runner",
        "password": "pw-SECRET",
        "from": "aiinfra@example.org",
    }
    with dask.config.set({"aiinfra.smtp": settings}):
        run = run_pipeline(spec, client=client, notify=["email:team@example.org"])
    assert run.status == "failed"
    assert smtp.logins == [("runner", "pw-SECRET")]
    (mail,) = smtp.messages
    assert mail["from"] == "aiinfra@example.org"
    assert mail["to"] == ["team@example.org"]
    message = mail["message"]
    assert message["Subject"] == f"[aiinfra] pipeline told: failed (run {run.run_id})"
    assert message["To"] == "team@example.org"
    content = message.get_content()
    assert content.startswith(f"aiinfra: pipeline told run {run.run_id} failed")
    assert f"failed step work: {first_line(run.steps['work']['error'])}" in content
    assert f"report: {run.run_dir / 'report.html'}" in content
    assert run.data["notifications"] == [
        {"target": "email:team@example.org", "on": ["failure"], "ok": True, "error": None}
    ]
    assert "pw-SECRET" not in run.path.read_text()


def test_a_refused_login_is_recorded_without_the_password(
    tmp_path, notebook, pipeline_file, client, smtp, monkeypatch
):
    spec = _pipeline(tmp_path, notebook, pipeline_file, fail=True)
    # The environment, over dask's config.
    for key, value in {"HOST": "127.0.0.1", "PORT": str(smtp.port), "USER": "runner"}.items():
        monkeypatch.setenv(f"AIINFRA_SMTP_{key}", value)
    monkeypatch.setenv("AIINFRA_SMTP_PASSWORD", "wrong-SECRET")
    run = run_pipeline(spec, client=client, notify=["email:team@example.org"])
    assert run.status == "failed"  # as it was: the notification changes nothing
    (told,) = run.data["notifications"]
    assert told["ok"] is False
    assert "SMTPAuthenticationError" in told["error"]
    assert smtp.messages == []
    assert "wrong-SECRET" not in run.path.read_text()


def test_the_cli_notifies_and_refuses_a_bad_target(tmp_path, notebook, pipeline_file, hook):
    spec = _pipeline(tmp_path, notebook, pipeline_file, fail=True)
    cli = [sys.executable, "-m", "aiinfra_magics", "pipeline", "run", str(spec), "--workers", "1"]
    env = {**os.environ, "AIINFRA_HOME": str(tmp_path / "home")}
    bad = subprocess.run(
        [*cli, "--notify", "ftp://example.org"], capture_output=True, text=True, env=env
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("aiinfra: error: --notify: got 'ftp://example.org'")
    assert len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()  # refused before anything ran

    done = subprocess.run(
        [*cli, "--notify", f"webhook:{hook.url}/cli"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr[-3000:]
    (post,) = hook.posts
    assert post["body"]["status"] == "failed"
    assert post["body"]["trigger"]["kind"] == "manual"


@pytest.mark.parametrize(
    ("notify", "field"),
    [
        ("slack", "notify"),
        (["webhook:ftp://example.org/x"], "notify[0]"),
        ([{"target": "email:not an address"}], "notify[0].target"),
        ([{"target": "email:a@example.org", "on": ["always"]}], "notify[0].on"),
        ([{"target": "email:a@example.org", "when": ["failure"]}], "notify[0].when"),
        ([3], "notify[0]"),
    ],
)
def test_bad_notify_in_the_spec_is_one_line_naming_the_field(tmp_path, notify, field):
    data = {"steps": {"a": {"notebook": "a.ipynb"}}, "notify": notify}
    with pytest.raises(AiinfraError) as err:
        PipelineSpec.from_dict(data, tmp_path, check_files=False)
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: ")
    assert "\n" not in str(err.value)
