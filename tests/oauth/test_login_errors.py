"""Logins that go wrong: each failure is one clear message, and nothing half-done is saved."""

from __future__ import annotations

import json
import os
import socket
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor, task

from cliproxy.credentials.oauth.callback import CallbackServer, LoginError
from cliproxy.credentials.oauth.login import LineQueue, LoginOptions
from tests.fakes import Reply, oauth_error_reply
from tests.oauth.test_login import Accounts, Browser, check_file


def query_of(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def redirect_of(url):
    return query_of(url)["redirect_uri"]


async def failed(d) -> str:
    with pytest.raises(LoginError) as info:
        await d
    return info.value.message


def nothing_saved(accounts):
    assert not os.path.exists(accounts.auth_dir) or os.listdir(accounts.auth_dir) == []


@pytest_twisted.ensureDeferred
async def test_denied_consent_is_reported_and_nothing_is_saved(start_fake, tmp_path):
    accounts = Accounts("claude", start_fake, tmp_path)
    done = accounts.login(opener=None, lines=None)
    url = accounts.printed_url()
    q = query_of(url)
    back = f"{accounts.callback(q['redirect_uri'])}?" + urlencode(
        {"error": "access_denied", "error_description": "The user said no", "state": q["state"]}
    )
    page = await (await treq.get(back)).text()
    message = await failed(done)
    assert message == (
        "Claude sign-in was cancelled or consent was denied: The user said no. "
        "Run the login again to retry."
    )
    assert "Login failed" in page
    nothing_saved(accounts)
    assert accounts.oauth.received("POST") == []


@pytest_twisted.ensureDeferred
async def test_provider_error_other_than_denial_names_the_error(start_fake, tmp_path):
    accounts = Accounts("codex", start_fake, tmp_path)
    done = accounts.login(opener=None, lines=None)
    q = query_of(accounts.printed_url())
    await treq.get(f"{accounts.callback(q['redirect_uri'])}?error=server_error&state={q['state']}")
    assert "failed with error 'server_error'" in await failed(done)


@pytest_twisted.ensureDeferred
async def test_a_callback_with_a_wrong_state_is_refused(start_fake, tmp_path):
    accounts = Accounts("codex", start_fake, tmp_path)
    done = accounts.login(opener=None, lines=None)
    q = query_of(accounts.printed_url())
    response = await treq.get(
        f"{accounts.callback(q['redirect_uri'])}?code=stolen&state={'0' * 32}"
    )
    assert response.code == 400
    assert "does not belong to this login" in await failed(done)
    nothing_saved(accounts)
    assert accounts.oauth.received("POST") == []


@pytest_twisted.ensureDeferred
async def test_a_pasted_address_with_a_wrong_state_is_refused(start_fake, tmp_path):
    accounts = Accounts("gemini", start_fake, tmp_path)
    lines = LineQueue()
    done = accounts.login(opener=None, lines=lines)
    redirect = redirect_of(accounts.printed_url())
    lines.feed(f"{redirect}?code=abc&state=replayed-from-an-old-login")
    assert "does not belong to this login" in await failed(done)
    nothing_saved(accounts)


def test_the_callback_server_answers_once_then_says_already_used():
    from twisted.web.test.requesthelper import DummyRequest

    server = CallbackServer(reactor, "/callback", "s" * 32, "Claude")
    from cliproxy.credentials.oauth.callback import _Callback

    page = _Callback(server)
    first = DummyRequest([b"callback"])
    first.path = b"/callback"
    first.args = {b"code": [b"c1"], b"state": [b"s" * 32]}
    assert b"Login received" in page.render_GET(first)
    again = DummyRequest([b"callback"])
    again.path = b"/callback"
    again.args = {b"code": [b"c2"], b"state": [b"s" * 32]}
    assert b"already used" in page.render_GET(again)
    assert again.responseCode == 410
    assert server.result.result.code == "c1"


@pytest.mark.parametrize(
    "reply, expected",
    [
        (
            oauth_error_reply(400, "invalid_grant", "Invalid authorization code"),
            "was refused: HTTP 400 (invalid_grant: Invalid authorization code). "
            "The code was already used or has expired; run the login again.",
        ),
        (
            Reply(500, body="<html>oops</html>", content_type="text/html"),
            "HTTP 500 (17 bytes of text/html)",
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_token_endpoint_errors_are_explained(reply, expected, start_fake, tmp_path):
    accounts = Accounts("claude", start_fake, tmp_path)
    accounts.oauth.script("POST", "/v1/oauth/token", reply)
    message = await failed(accounts.login(opener=Browser(), lines=None))
    assert expected in message
    assert message.startswith(f"exchanging the sign-in code to {accounts.oauth.url}/v1/oauth/token")
    nothing_saved(accounts)


@pytest_twisted.ensureDeferred
async def test_an_unreachable_token_endpoint_is_explained(start_fake, tmp_path):
    accounts = Accounts("codex", start_fake, tmp_path)
    await accounts.oauth.stop()  # the browser part is done by hand below
    done = accounts.login(opener=None, lines=LineQueue())
    q = query_of(accounts.printed_url())
    await treq.get(f"{accounts.callback(q['redirect_uri'])}?code=c&state={q['state']}")
    message = await failed(done)
    assert "could not reach it" in message and "ConnectionRefusedError" in message


@pytest_twisted.ensureDeferred
async def test_no_sign_in_within_the_timeout(start_fake, tmp_path):
    accounts = Accounts("claude", start_fake, tmp_path)
    clock = task.Clock()
    done = accounts.login(opener=None, lines=LineQueue(), clock=clock)
    clock.advance(299)
    assert not done.called
    clock.advance(1)
    message = await failed(done)
    assert message.startswith("no sign-in arrived within 5 minutes; nothing was saved.")


@pytest_twisted.ensureDeferred
async def test_a_busy_callback_port_still_allows_pasting(start_fake, tmp_path):
    accounts = Accounts("claude", start_fake, tmp_path)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        lines = LineQueue()
        done = accounts.login(opener=None, lines=lines, options=LoginOptions(callback_port=port))
        assert any(
            line.startswith(f"warning: cannot listen on 127.0.0.1:{port}")
            for line in accounts.output
        )
        browser = Browser(follow=False)
        browser(accounts.printed_url())
        lines.feed(await browser.location)
        result = await done
        check_file(accounts, result)
    finally:
        busy.close()


@pytest_twisted.ensureDeferred
async def test_claude_code_with_state_can_be_pasted_alone(start_fake, tmp_path):
    accounts = Accounts("claude", start_fake, tmp_path)
    lines = LineQueue()
    done = accounts.login(opener=None, lines=lines)
    browser = Browser(follow=False)
    browser(accounts.printed_url())
    q = query_of(await browser.location)
    lines.feed(f"{q['code']}#{q['state']}")  # what Claude's own page shows
    check_file(accounts, await done)
    assert accounts.oauth.last.params["state"] == q["state"]


@pytest_twisted.ensureDeferred
async def test_a_damaged_existing_file_is_left_alone(start_fake, tmp_path):
    accounts = Accounts("claude", start_fake, tmp_path)
    os.makedirs(accounts.auth_dir)
    target = accounts.auth_dir / "claude-user@example.com.json"
    target.write_text('{"type": "claude", "access_tok')
    message = await failed(accounts.login(opener=Browser(), lines=None))
    assert str(target) in message and "not valid JSON" in message and "Move it away" in message
    assert target.read_text() == '{"type": "claude", "access_tok'


@pytest_twisted.ensureDeferred
async def test_logging_in_again_keeps_the_files_own_settings(start_fake, tmp_path):
    accounts = Accounts("codex", start_fake, tmp_path)
    first = await accounts.login(opener=Browser(), lines=None)
    record = json.load(open(first.path))
    record.update(prefix="work", priority=5, proxy_url="direct")
    with open(first.path, "w") as f:
        json.dump(record, f)
    again = await accounts.login(opener=Browser(), lines=None)
    assert again.path == first.path
    saved = json.load(open(again.path))
    assert (saved["prefix"], saved["priority"], saved["proxy_url"]) == ("work", 5, "direct")
    assert saved["access_token"] != record["access_token"]
    assert any("Keeping your settings" in line for line in accounts.output)


# -- Gemini projects ----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_gemini_onboards_a_free_project_when_none_exists(start_fake, tmp_path):
    accounts = Accounts("gemini", start_fake, tmp_path)
    accounts.upstream.project = None
    accounts.upstream.onboard_project = "free-tier-proj-9"
    clock = task.Clock()
    accounts.upstream.onboard_pending = 1
    done = accounts.login(opener=Browser(), lines=None, clock=clock)
    await accounts.upstream.wait_for(lambda: len(accounts.upstream.requests) >= 2)
    await accounts.upstream.wait_for(lambda: bool(clock.getDelayedCalls()))
    clock.advance(2)  # one poll later, onboarding is done
    result = await done
    assert result.record["project_id"] == "free-tier-proj-9" and result.record["auto"] is True
    onboard = accounts.upstream.received("POST", "/v1internal:onboardUser")
    assert onboard[0].json["tierId"] == "free-tier"


@pytest_twisted.ensureDeferred
async def test_gemini_without_any_project_says_to_pass_one(start_fake, tmp_path):
    accounts = Accounts("gemini", start_fake, tmp_path)
    accounts.upstream.project = None
    accounts.upstream.onboard_project = None
    accounts.upstream.projects = [{"projectId": "p-one"}, {"projectId": "p-two"}]
    message = await failed(accounts.login(opener=Browser(), lines=None))
    assert message == (
        "no Gemini Code Assist project is set up for user@example.com; run the login again "
        "with --project_id <project id> (your projects: p-one, p-two), or ALL for every project"
    )
    nothing_saved(accounts)


@pytest_twisted.ensureDeferred
async def test_gemini_named_project_is_onboarded_and_its_api_enabled(start_fake, tmp_path):
    accounts = Accounts("gemini", start_fake, tmp_path)
    accounts.upstream.onboard_project = None  # the backend keeps the asked-for project
    accounts.upstream.service_enabled["my-proj"] = False
    result = await accounts.login(
        opener=Browser(), lines=None, options=LoginOptions(callback_port=0, project_id="my-proj")
    )
    assert os.path.basename(result.path) == "gemini-user@example.com-my-proj.json"
    assert result.record["project_id"] == "my-proj"
    assert (result.record["auto"], result.record["checked"]) == (False, True)
    load = accounts.upstream.received("POST", "/v1internal:loadCodeAssist")[0]
    assert load.json["cloudaicompanionProject"] == "my-proj"
    assert accounts.upstream.received(
        "POST", "/v1/projects/my-proj/services/cloudaicompanion.googleapis.com:enable"
    )


@pytest_twisted.ensureDeferred
async def test_gemini_all_projects_make_one_file_with_every_project(start_fake, tmp_path):
    accounts = Accounts("gemini", start_fake, tmp_path)
    accounts.upstream.onboard_project = None
    accounts.upstream.projects = [{"projectId": "p-a"}, {"projectId": "p-b"}]
    result = await accounts.login(
        opener=Browser(), lines=None, options=LoginOptions(callback_port=0, project_id="ALL")
    )
    assert os.path.basename(result.path) == "gemini-user@example.com-all.json"
    assert result.record["project_id"] == "p-a,p-b"


@pytest_twisted.ensureDeferred
async def test_gemini_service_check_failing_only_warns(start_fake, tmp_path):
    accounts = Accounts("gemini", start_fake, tmp_path)
    accounts.upstream.onboard_project = None
    path = "/v1/projects/my-proj/services/cloudaicompanion.googleapis.com"
    accounts.upstream.script("GET", path, Reply(status=403, json={"error": {"code": 403}}))
    result = await accounts.login(
        opener=Browser(), lines=None, options=LoginOptions(callback_port=0, project_id="my-proj")
    )
    assert result.record["project_id"] == "my-proj"
    assert any(
        line.startswith("warning: checking cloudaicompanion") and "continuing" in line
        for line in accounts.output
    ), accounts.output


@pytest_twisted.ensureDeferred
async def test_another_callback_port_keeps_the_registered_redirect(start_fake, tmp_path):
    accounts = Accounts("codex", start_fake, tmp_path)
    done = accounts.login(opener=Browser(), lines=None, options=LoginOptions(callback_port=0))
    assert redirect_of(accounts.printed_url()) == "http://localhost:1455/auth/callback"
    result = await done
    assert result.record["type"] == "codex"
    exchange = accounts.oauth.received("POST")[0]
    assert exchange.params["redirect_uri"] == "http://localhost:1455/auth/callback"
    assert any("ssh -L 1455:127.0.0.1:" in line for line in accounts.output)
