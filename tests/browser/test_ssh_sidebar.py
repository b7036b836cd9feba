"""The sidebar's "New cluster" dialog offers the SSH backend with its declared options, in a
real JupyterLab through Chromium, against the real sshd on loopback (tests/ssh_fixture.py).

- Chosen, the ssh backend shows its own fields (hosts, ssh user, key, port, known hosts,
  remote python...); filled from the fixture, Start runs a cluster with a worker on each
  host, whose card shows it running; its Stop button stops it and nothing is left on the
  hosts.
- A host that does not answer (127.0.0.3: nothing listens on the sshd's port there) is
  refused before anything starts: the form stays open, the value kept, the error under
  the hosts field.

The card has no per-host lines; the server's per-host details (``ssh_hosts``, which the
card does not show) are checked over REST while the card shows the cluster.
"""

from __future__ import annotations

from chromium import browser_page
from labserver import NEEDS_LAB, field_error, screenshot
from ssh_fixture import sshd, sshd_server  # noqa: F401 - the real sshd on loopback
from waiting import wait_for

pytestmark = NEEDS_LAB

#: The ssh backend's own fields, by option name, and the label each shows (its CLI flag).
SSH_FIELDS = {
    "hosts": "hosts",
    "hosts_from": "hosts-from",
    "scheduler": "scheduler",
    "ssh_user": "ssh-user",
    "ssh_key": "ssh-key",
    "ssh_port": "ssh-port",
    "known_hosts": "known-hosts",
    "ssh_config": "ssh-config",
    "remote_python": "remote-python",
    "workers_per_host": "workers-per-host",
    "gpus_per_host": "gpus-per-host",
}


def open_ssh_form(live_lab, page, sshd, name: str, hosts: str):  # noqa: F811
    """Open the start dialog, choose ssh, check its fields and fill them from the fixture."""
    panel = live_lab.open_sidebar(page)
    panel.locator("button.aiinfra-start").click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator('select[name="backend"]').select_option("ssh")
    own = dialog.locator('.aiinfra-backend-options[data-backend="ssh"]')
    own.wait_for()
    for option, label in SSH_FIELDS.items():
        field = own.locator(f'.aiinfra-option[data-option="{option}"]')
        assert field.locator(".aiinfra-field-label").inner_text() == label
        assert field.locator(f'[name="{option}"]').is_enabled()
    # The declared choices and help come from the server's backend declaration.
    choices = own.locator('select[name="scheduler"] option').all_inner_texts()
    assert choices[1:] == ["first", "local"], choices
    assert (
        "never trusted on first use"
        in own.locator('.aiinfra-option[data-option="known_hosts"] .aiinfra-help').inner_text()
    )
    dialog.locator('input[name="name"]').fill(name)
    dialog.locator('input[name="threads"]').fill("1")
    for option, value in sshd.options(hosts=hosts).items():
        if option != "backend":
            own.locator(f'input[name="{option}"]').fill(str(value))
    return panel, dialog


def test_the_dialog_starts_an_ssh_cluster_and_its_card_stops_it(live_lab, sshd, tmp_path):  # noqa: F811
    with browser_page() as page:
        panel, dialog = open_ssh_form(live_lab, page, sshd, "boxes", ",".join(sshd.hosts))
        screenshot(page, tmp_path, "ssh-start-form.png")
        dialog.locator("button.jp-mod-accept").click()
        dialog.wait_for(state="detached", timeout=300_000)
        card = panel.locator('.aiinfra-cluster[data-name="boxes"]')
        card.wait_for(timeout=300_000)
        page.wait_for_function(
            """() => {
                const card = document.querySelector('.aiinfra-cluster[data-name="boxes"]');
                return card && card.querySelector('.aiinfra-status-running')
                    && card.querySelector('.aiinfra-cluster-summary').textContent
                        .startsWith('2 workers');
            }""",
            timeout=300_000,
        )
        head = card.locator(".aiinfra-cluster-head").inner_text()
        assert "running" in head and "ssh · server" in head, head
        summary = card.locator(".aiinfra-cluster-summary").text_content()
        assert summary.startswith("2 workers · 2 threads · "), summary
        # One worker on each host, over SSH (the server's per-host details).
        details = live_lab.api("aiinfra/api/clusters/boxes")
        assert details["backend"] == "ssh"
        assert {h: len(v["workers"]) for h, v in details["ssh_hosts"].items()} == {
            h: 1 for h in sshd.hosts
        }
        assert sshd.started_processes()  # through this sshd: the port and key of the form
        screenshot(page, tmp_path, "ssh-card.png")

        card.locator("button.aiinfra-stop").click()
        page.locator(".jp-Dialog button.jp-mod-accept.jp-mod-warn").click()  # confirm
        card.wait_for(state="detached", timeout=300_000)
    assert live_lab.api("aiinfra/api/clusters")["clusters"] == []
    wait_for(lambda: not sshd.started_processes(), 120, "nothing left on the hosts")


def test_an_unreachable_host_stays_in_the_form_with_the_error_under_it(live_lab, sshd, tmp_path):  # noqa: F811
    with browser_page() as page:
        _, dialog = open_ssh_form(live_lab, page, sshd, "nowhere", "127.0.0.1,127.0.0.3")
        dialog.locator("button.jp-mod-accept").click()
        error = field_error(dialog, "hosts")
        assert f"hosts: 127.0.0.3:{sshd.port}: unreachable (Connection refused)" in (
            error.inner_text()
        )
        option = dialog.locator('.aiinfra-option[data-option="hosts"]')
        assert option.locator(".aiinfra-field-error").count() == 1  # under its own field
        assert dialog.locator('input[name="hosts"]').input_value() == "127.0.0.1,127.0.0.3"
        assert dialog.locator('input[name="ssh_port"]').input_value() == str(sshd.port)
        assert dialog.locator('input[name="name"]').input_value() == "nowhere"
        assert page.locator(".jp-Dialog").count() == 1  # no second, separate error box
        screenshot(page, tmp_path, "ssh-start-form-error.png")
        assert live_lab.api("aiinfra/api/clusters")["clusters"] == []
        dialog.locator("button.jp-mod-reject").click()
        dialog.wait_for(state="detached")
    wait_for(lambda: not sshd.started_processes(), 60, "nothing left on the hosts")
