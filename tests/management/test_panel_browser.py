"""The built-in status page in a real headless Chromium (Debian's `chromium` package).

The test starts the browser itself and drives it over the DevTools protocol
(`tests.management.cdp`): the page loads, shows a credential from auth-dir with its state,
and its Disable button turns the credential off through the management API (the file on
disk changes and the auth dir rereads it), then Enable turns it back on. Skipped when no Chromium
is installed; CI installs it (`.ci/chromium`).
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from twisted.internet import threads

from tests.management.cdp import Browser, chromium_path
from tests.management.kit import SECRET, config_file

pytestmark = pytest.mark.skipif(chromium_path() is None, reason="chromium is not installed")

RECORD = {"type": "claude", "access_token": "a", "refresh_token": "r", "email": "me@example.com"}
STATE = "document.querySelector('tr[data-id=\"me.json\"] .state')?.textContent"


def _drive(url: str) -> list[str]:
    """In a worker thread: log in on the page, disable the credential, enable it again."""
    browser = Browser()
    seen = []
    try:
        browser.open(url + "/management.html")
        browser.wait_for("document.readyState === 'complete' && !!document.getElementById('key')")
        browser.evaluate(
            f"document.getElementById('key').value = {json.dumps(SECRET)};"
            "document.getElementById('connect').click(); true"
        )
        seen.append(browser.wait_for(STATE))
        seen.append(browser.evaluate("document.querySelector('tbody#creds').textContent"))
        browser.evaluate("document.querySelector('tr[data-id=\"me.json\"] button.disable').click()")
        seen.append(browser.wait_for(f"{STATE} === 'disabled' && {STATE}"))
        browser.evaluate("document.querySelector('tr[data-id=\"me.json\"] button.enable').click()")
        seen.append(browser.wait_for(f"{STATE} === 'ready' && {STATE}"))
        seen.append(browser.evaluate("document.getElementById('msg').textContent"))
    finally:
        browser.close()
    return seen


@pytest_twisted.ensureDeferred
async def test_status_page_shows_a_credential_and_disables_it(tmp_path, served_factory):
    auth_file = tmp_path / "auth" / "me.json"
    s = served_factory(config_file(tmp_path))
    auth_file.write_text(json.dumps(RECORD))
    s.app.authdir.scan()
    disabled_on_disk = []
    real_scan = s.app.authdir.scan

    def scan(*args, **kwargs):
        # the page's click reaches PATCH /auth-files/status, which writes then rescans
        disabled_on_disk.append(json.loads(auth_file.read_text()).get("disabled"))
        return real_scan(*args, **kwargs)

    s.app.authdir.scan = scan
    seen = await threads.deferToThread(_drive, s.url)
    assert seen[0] == "ready"
    assert "me@example.com" in seen[1] and "claude" in seen[1]
    assert seen[2:4] == ["disabled", "ready"] and seen[4] == ""
    assert disabled_on_disk == [True, False]
    assert json.loads(auth_file.read_text())["disabled"] is False
