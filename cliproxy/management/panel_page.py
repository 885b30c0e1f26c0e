# -*- test-case-name: tests.management.test_panel_browser -*-
"""The built-in status page served at `/management.html` when no panel file is present.

One HTML document with its style and script inline: no external assets, no network but
this server's own `/v0/management` API. The Content-Security-Policy names the script and
style by their hashes (see `cliproxy.management.panel`).
"""

from __future__ import annotations

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.3em}h2{font-size:1.05em;margin-top:1.6em}
table{border-collapse:collapse;background:#fff}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}
.ready{color:#070}.cooling{color:#a60}.disabled{color:#777}.refresh_failing{color:#b00}
#msg{color:#b00;min-height:1.2em}
button{margin:0 .2em}
"""

SCRIPT = r"""
"use strict";
const $ = (id) => document.getElementById(id);
const keyOf = () => sessionStorage.getItem("cliproxy-key") || "";
function say(text) { $("msg").textContent = text || ""; }
async function api(method, path, body) {
  const opts = {method, headers: {"Authorization": "Bearer " + keyOf()}};
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch("/v0/management" + path, opts);
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (!r.ok) throw new Error((data && data.error) || ("HTTP " + r.status));
  return data;
}
function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}
function fill(id, rows, build) {
  const body = $(id);
  body.textContent = "";
  for (const item of rows) {
    const tr = document.createElement("tr");
    build(tr, item);
    body.appendChild(tr);
  }
}
function credRow(tr, c) {
  tr.dataset.id = c.id;
  cell(tr, c.id); cell(tr, c.provider); cell(tr, c.label);
  cell(tr, c.state, c.state).className += " state";
  cell(tr, c.next_retry_after); cell(tr, c.quota_reset_at);
  cell(tr, c.success); cell(tr, c.failed);
  const td = cell(tr, "");
  if (c.file) {
    const b = document.createElement("button");
    b.textContent = c.disabled ? "Enable" : "Disable";
    b.className = c.disabled ? "enable" : "disable";
    b.onclick = () => toggle(c.file, !c.disabled);
    td.appendChild(b);
  }
}
async function refresh() {
  const s = await api("GET", "/panel-status");
  $("version").textContent = s.version;
  fill("creds", s.credentials, credRow);
  fill("models", Object.entries(s.usage_by_model), (tr, [m, t]) => {
    cell(tr, m); cell(tr, t.requests); cell(tr, t.failed);
    cell(tr, t.input_tokens); cell(tr, t.output_tokens);
  });
  fill("amp", Object.entries(s.amp_routes), (tr, [r, n]) => { cell(tr, r); cell(tr, n); });
  fill("errors", s.recent_errors, (tr, e) => {
    cell(tr, e.time); cell(tr, e.provider); cell(tr, e.credential);
    cell(tr, e.model); cell(tr, e.status);
  });
  $("main").hidden = false;
  document.body.dataset.loaded = String(Date.now());
}
async function toggle(file, disabled) {
  try {
    await api("PATCH", "/auth-files/status", {name: file, disabled});
    say("");
    await refresh();
  } catch (e) { say(file + ": " + e.message); }
}
async function login(provider) {
  try {
    const r = await api("GET", "/" + provider + "-auth-url?is_webui=true");
    window.open(r.url, "_blank", "noopener");
    say("Finish the login in the new window (state " + r.state + ").");
  } catch (e) { say(provider + " login: " + e.message); }
}
async function connect(ev) {
  if (ev) ev.preventDefault();
  sessionStorage.setItem("cliproxy-key", $("key").value);
  try { await refresh(); say(""); } catch (e) { say(e.message); }
}
$("login-form").addEventListener("submit", connect);
$("reload").addEventListener("click", () => refresh().catch((e) => say(e.message)));
for (const b of document.querySelectorAll("button[data-provider]")) {
  b.addEventListener("click", () => login(b.dataset.provider));
}
if (keyOf()) { $("key").value = keyOf(); connect(); }
"""

BODY = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cliproxy status</title><style>{style}</style></head>
<body>
<h1>cliproxy status <small id="version"></small></h1>
<form id="login-form"><label>Management key
<input id="key" type="password" autocomplete="current-password"></label>
<button id="connect" type="submit">Connect</button></form>
<p id="msg" role="status"></p>
<div id="main" hidden>
<button id="reload" type="button">Refresh</button>
<h2>Credentials</h2>
<table><thead><tr><th>id</th><th>provider</th><th>account</th><th>state</th>
<th>next retry</th><th>quota reset</th><th>ok</th><th>failed</th><th></th></tr></thead>
<tbody id="creds"></tbody></table>
<h2>Usage by model</h2>
<table><thead><tr><th>model</th><th>requests</th><th>failed</th><th>input tokens</th>
<th>output tokens</th></tr></thead><tbody id="models"></tbody></table>
<h2>Amp routes</h2>
<table><thead><tr><th>route</th><th>requests</th></tr></thead><tbody id="amp"></tbody></table>
<h2>Recent errors</h2>
<table><thead><tr><th>time</th><th>provider</th><th>credential</th><th>model</th>
<th>status</th></tr></thead><tbody id="errors"></tbody></table>
<h2>Add an account</h2>
<p><button type="button" data-provider="anthropic">Claude</button>
<button type="button" data-provider="codex">Codex</button>
<button type="button" data-provider="gemini-cli">Gemini CLI</button></p>
</div>
<script>{script}</script>
</body></html>
"""


def page() -> str:
    return BODY.replace("{style}", STYLE).replace("{script}", SCRIPT)
