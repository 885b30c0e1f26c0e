"""OAuth accounts: logins (`cliproxy login`), token exchange and refresh, token holders.

Modules:
    providers: the facts per provider (client ids, scopes, ports, URLs, lead times).
    pkce: state and PKCE S256 values.
    tokens: the token endpoint calls (exchange, refresh) and their errors.
    records: token answers -> auth-file records, in CLIProxyAPI's fields.
    holder: `TokenHolder`, one account's live token with single-flight refresh.
    refresh: the background refresh service.
    google: Gemini CLI project discovery and onboarding (loadCodeAssist, onboardUser).
    callback: the one-shot local callback server.
    login: the interactive login flow.
"""
