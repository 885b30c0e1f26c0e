# -*- test-case-name: tests.config.test_config_load -*-
"""The frozen config objects every room reads. Built only by `cliproxy.config._parse`.

Names are the snake_case of CLIProxyAPI's YAML keys. Secrets are kept out of `repr`.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, Never

DEFAULT_PORT = 8317
DEFAULT_AUTH_DIR = "~/.cli-proxy-api"
GEMINI_BASE_URL = "https://generativelanguage.googleapis.com"
CLAUDE_BASE_URL = "https://api.anthropic.com"
VERTEX_BASE_URL = "https://aiplatform.googleapis.com"
XAI_BASE_URL = "https://api.x.ai/v1"
PANEL_REPOSITORY = "https://github.com/router-for-me/Cli-Proxy-API-Management-Center"

Headers = tuple[tuple[str, str], ...]
Options = tuple[tuple[str, object], ...]


def _empty() -> Mapping[str, Never]:
    return types.MappingProxyType({})


@dataclass(frozen=True, slots=True)
class TLSConfig:
    """`tls:`: serve HTTPS from cert/key (paths, `~` expanded)."""

    enable: bool = False
    cert: str = ""
    key: str = ""


@dataclass(frozen=True, slots=True)
class RemoteManagement:
    """`remote-management:` for the `/v0/management` API."""

    allow_remote: bool = False
    secret_key: str = field(default="", repr=False)
    disable_control_panel: bool = False
    disable_auto_update_panel: bool = False
    panel_github_repository: str = PANEL_REPOSITORY


@dataclass(frozen=True, slots=True)
class Limits:
    """`limits:` (ours): bounds on what a client may send."""

    max_body_bytes: int = 32 * 1024 * 1024
    header_timeout_seconds: float = 30
    body_timeout_seconds: float = 60
    max_header_bytes: int = 64 * 1024
    #: open client connections at once (0: no cap); see debian/cliproxy.service LimitNOFILE
    max_connections: int = 4000
    #: open connections from one peer address (0: no cap)
    max_connections_per_peer: int = 0
    #: wrong client keys one peer may send per minute before it is locked out (0: no limit)
    key_failures_per_minute: int = 20
    #: how long a peer that guessed too many keys gets 429
    key_lockout_seconds: float = 60
    #: bodies at least this large are parsed and translated on a worker thread
    large_body_bytes: int = 256 * 1024
    #: worker threads for large bodies (read at start)
    large_body_threads: int = 2
    #: large bodies that may wait for a worker; more get 503
    large_body_queue: int = 8


@dataclass(frozen=True, slots=True)
class Cors:
    """`cors:` (ours): browser origins allowed to call the API (`*`: any, keys required)."""

    allow_origins: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Streaming:
    """`streaming:` keep-alives, retries before the first byte, and our idle timeout."""

    keepalive_seconds: float = 0
    bootstrap_retries: int = 0
    idle_timeout_seconds: float = 300


@dataclass(frozen=True, slots=True)
class UpstreamTimeouts:
    """`upstream-timeouts:` (ours): connecting, and waiting for response headers."""

    connect_seconds: float = 30
    headers_seconds: float = 120


@dataclass(frozen=True, slots=True)
class Routing:
    """`routing:`: how a credential is picked (strategy is canonical: round-robin|fill-first)."""

    strategy: str = "round-robin"
    session_affinity: bool = False
    session_affinity_ttl: float = 3600.0


#: where CLIProxyAPI refreshes its model catalog from (core.md §2.9)
MODEL_CATALOG_URL = (
    "https://raw.githubusercontent.com/router-for-me/models/refs/heads/main/models.json"
)


@dataclass(frozen=True, slots=True)
class ModelCatalogConfig:
    """`model-catalog:` (ours): refresh the built-in model catalog from `url`."""

    enabled: bool = True
    url: str = MODEL_CATALOG_URL
    refresh_interval: float = 3 * 3600.0


@dataclass(frozen=True, slots=True)
class PayloadModelRule:
    """One `payload.<kind>[].models[]` item: which requests a payload rule applies to."""

    name: str
    protocol: str = ""
    from_protocol: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    #: (JSON path, value) pairs the request must have (`match`) or must not (`not-match`)
    match: tuple[tuple[str, object], ...] = ()
    not_match: tuple[tuple[str, object], ...] = ()
    exist: tuple[str, ...] = ()
    not_exist: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PayloadRule:
    """One payload rule: where it applies and its (JSON path, value) params (filter: value
    None). `*-raw` values are already parsed from their JSON text."""

    models: tuple[PayloadModelRule, ...]
    params: tuple[tuple[str, object], ...]


@dataclass(frozen=True, slots=True)
class PayloadRules:
    """`payload:` rules (core.md §5), applied in field order (upstream/payload.py)."""

    default: tuple[PayloadRule, ...] = ()
    default_raw: tuple[PayloadRule, ...] = ()
    override: tuple[PayloadRule, ...] = ()
    override_raw: tuple[PayloadRule, ...] = ()
    filter: tuple[PayloadRule, ...] = ()

    def any(self) -> bool:
        """Whether there is any rule at all."""
        return bool(
            self.default or self.default_raw or self.override or self.override_raw or self.filter
        )


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """An upstream model `name` offered to clients as `alias` (alias defaults to name)."""

    name: str
    alias: str
    image: bool = False
    thinking_levels: tuple[str, ...] = ()
    #: `input-modalities` (lowercased): what the model reads; empty means not said
    input_modalities: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProviderKeyEntry:
    """One `gemini-api-key` / `claude-api-key` / `codex-api-key` / `vertex-api-key` item.

    `disable_cooling` is already resolved against the global `disable-cooling` (an entry
    value overrides it). `proxy_url` "" means the global proxy-url, "direct" means none.
    `options` holds other upstream keys we keep but do not model (cloak, weight, ...).
    """

    api_key: str = field(repr=False)
    base_url: str
    proxy_url: str = ""
    prefix: str = ""
    priority: int = 0
    headers: Headers = ()
    models: tuple[ModelEntry, ...] = ()
    excluded_models: tuple[str, ...] = ()
    disable_cooling: bool = False
    websockets: bool = False
    options: Options = ()

    def option(self, name: str, default: object = None) -> object:
        """A kept upstream key by its YAML name."""
        return dict(self.options).get(name, default)


@dataclass(frozen=True, slots=True)
class OpenAICompatKey:
    """One `api-key-entries` item of an OpenAI-compatible provider."""

    api_key: str = field(repr=False)
    proxy_url: str = ""


@dataclass(frozen=True, slots=True)
class OpenAICompatEntry:
    """One `openai-compatibility` provider; `provider` is its routing key."""

    name: str
    base_url: str
    prefix: str = ""
    priority: int = 0
    disabled: bool = False
    headers: Headers = ()
    disable_cooling: bool = False
    api_key_entries: tuple[OpenAICompatKey, ...] = ()
    models: tuple[ModelEntry, ...] = ()
    options: Options = ()

    @property
    def provider(self) -> str:
        return self.name.lower()


class AmpUpstreamKey(NamedTuple):
    """Client keys in `api_keys` reach the Amp upstream with `upstream_api_key`."""

    upstream_api_key: str
    api_keys: tuple[str, ...]

    def __repr__(self) -> str:
        return f"AmpUpstreamKey(…{self.upstream_api_key[-4:]}, {len(self.api_keys)} client keys)"


@dataclass(frozen=True, slots=True)
class ModelMapping:
    """Amp model mapping: requests for `from_` run as `to` (`from_` is a regex if `regex`)."""

    from_: str
    to: str
    regex: bool = False


@dataclass(frozen=True, slots=True)
class AmpConfig:
    """`ampcode:` (or the flat `amp-*` keys). `fallback` is ours: upstream|deny."""

    upstream_url: str = ""
    upstream_api_key: str = field(default="", repr=False)
    upstream_api_keys: tuple[AmpUpstreamKey, ...] = field(default=(), repr=False)
    restrict_management_to_localhost: bool = True
    model_mappings: tuple[ModelMapping, ...] = ()
    force_model_mappings: bool = False
    fallback: str = "upstream"


@dataclass(frozen=True, slots=True)
class OAuthModelAlias:
    """`oauth-model-alias.<channel>[]`: list `alias` for upstream `name` (both if `fork`)."""

    name: str
    alias: str
    fork: bool = False


#: Where OAuth logins, token refreshes and the subscription APIs go (core.md §3, §2.2-2.6).
CLAUDE_AUTHORIZE_URL = "https://claude.ai/oauth/authorize"
CLAUDE_TOKEN_URL = "https://api.anthropic.com/v1/oauth/token"
CODEX_AUTHORIZE_URL = "https://auth.openai.com/oauth/authorize"
CODEX_TOKEN_URL = "https://auth.openai.com/oauth/token"
CODEX_API_URL = "https://chatgpt.com/backend-api/codex"
GOOGLE_AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/auth"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
GOOGLE_USERINFO_URL = "https://www.googleapis.com/oauth2/v1/userinfo"
CODE_ASSIST_URL = "https://cloudcode-pa.googleapis.com"
RESOURCE_MANAGER_URL = "https://cloudresourcemanager.googleapis.com"
SERVICE_USAGE_URL = "https://serviceusage.googleapis.com"


@dataclass(frozen=True, slots=True)
class ClaudeEndpoints:
    """`oauth-endpoints.claude`: login, token refresh, and the Messages API base."""

    authorize_url: str = CLAUDE_AUTHORIZE_URL
    token_url: str = CLAUDE_TOKEN_URL
    api_url: str = CLAUDE_BASE_URL


@dataclass(frozen=True, slots=True)
class CodexEndpoints:
    """`oauth-endpoints.codex`: login, token refresh, and the ChatGPT backend base."""

    authorize_url: str = CODEX_AUTHORIZE_URL
    token_url: str = CODEX_TOKEN_URL
    api_url: str = CODEX_API_URL


@dataclass(frozen=True, slots=True)
class GeminiEndpoints:
    """`oauth-endpoints.gemini`: Google login, user info, Code Assist and project APIs."""

    authorize_url: str = GOOGLE_AUTHORIZE_URL
    token_url: str = GOOGLE_TOKEN_URL
    userinfo_url: str = GOOGLE_USERINFO_URL
    code_assist_url: str = CODE_ASSIST_URL
    resource_manager_url: str = RESOURCE_MANAGER_URL
    service_usage_url: str = SERVICE_USAGE_URL


KIMI_TOKEN_URL = "https://auth.kimi.com/api/oauth/token"
KIMI_DEVICE_URL = "https://auth.kimi.com/api/oauth/device_authorization"
KIMI_API_URL = "https://api.kimi.com/coding"


@dataclass(frozen=True, slots=True)
class KimiEndpoints:
    """`oauth-endpoints.kimi`: Kimi Code's device login, token refresh and API base."""

    device_url: str = KIMI_DEVICE_URL
    token_url: str = KIMI_TOKEN_URL
    api_url: str = KIMI_API_URL


ANTIGRAVITY_API_URL = "https://daily-cloudcode-pa.googleapis.com"
ANTIGRAVITY_USERINFO_URL = "https://www.googleapis.com/oauth2/v2/userinfo"


@dataclass(frozen=True, slots=True)
class AntigravityEndpoints:
    """`oauth-endpoints.antigravity`: Google login, Cloud Code (generation and project setup)."""

    authorize_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    token_url: str = GOOGLE_TOKEN_URL
    userinfo_url: str = ANTIGRAVITY_USERINFO_URL
    api_url: str = ANTIGRAVITY_API_URL
    code_assist_url: str = CODE_ASSIST_URL


XAI_ISSUER_URL = "https://auth.x.ai"
XAI_CHAT_PROXY_URL = "https://cli-chat-proxy.grok.com/v1"


@dataclass(frozen=True, slots=True)
class XAIEndpoints:
    """`oauth-endpoints.xai`: xAI's device login (OIDC discovery at the issuer) and the
    Grok CLI chat proxy that OAuth accounts chat through."""

    issuer_url: str = XAI_ISSUER_URL
    token_url: str = ""
    api_url: str = XAI_CHAT_PROXY_URL


@dataclass(frozen=True, slots=True)
class OAuthEndpoints:
    """`oauth-endpoints:` (ours): every URL a login or a subscription account talks to."""

    claude: ClaudeEndpoints = ClaudeEndpoints()
    codex: CodexEndpoints = CodexEndpoints()
    gemini: GeminiEndpoints = GeminiEndpoints()
    kimi: KimiEndpoints = KimiEndpoints()
    antigravity: AntigravityEndpoints = AntigravityEndpoints()
    xai: XAIEndpoints = XAIEndpoints()


def escape_endpoint_argument(value: str) -> str:
    """Quote a value for a Twisted endpoint string (`:` and `\\` are special there)."""
    return value.replace("\\", "\\\\").replace(":", "\\:")


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """`store:`: where several instances share state (cliproxy.store). Empty type: none.

    `dsn` is a libpq connection string or URL; `PGSTORE_DSN` in the environment fills it
    (and selects postgres) when the file names none. `optional`: start without the
    database when it cannot be reached (else exit 1). `usage_retention_seconds`: how long
    usage records are kept (`usage-retention: 720h` or `usage-retention-days: 30`).
    """

    type: str = ""
    dsn: str = field(default="", repr=False)
    optional: bool = False
    usage_retention_seconds: float = 30 * 86400.0


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated config file. Every room reads the current snapshot of this."""

    source_path: str = ""
    host: str = ""
    port: int = DEFAULT_PORT
    listen: str | None = None
    tls: TLSConfig = TLSConfig()
    remote_management: RemoteManagement = RemoteManagement()
    auth_dir: str = ""
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    cors: Cors = Cors()
    #: Host names served besides localhost/127.0.0.1/[::1] (`*`: any; see web/origin.py)
    allowed_hosts: tuple[str, ...] = ()
    debug: bool = False
    logging_to_file: bool = False
    request_log: bool = False
    usage_statistics_enabled: bool = False
    commercial_mode: bool = False
    ws_auth: bool = False
    enable_gemini_cli_endpoint: bool = False
    proxy_url: str = ""
    force_model_prefix: bool = False
    passthrough_headers: bool = False
    request_retry: int = 0
    max_retry_credentials: int = 0
    max_retry_interval: float = 0
    disable_cooling: bool = False
    nonstream_keepalive_interval: float = 0
    #: `claude-header-defaults`: (YAML key, value) pairs, e.g. ("user-agent", "claude-cli/…")
    claude_header_defaults: tuple[tuple[str, str], ...] = ()
    #: `codex-header-defaults`: (YAML key, value) pairs (`user-agent`, `beta-features`)
    codex_header_defaults: tuple[tuple[str, str], ...] = ()
    payload: PayloadRules = PayloadRules()
    routing: Routing = Routing()
    model_catalog: ModelCatalogConfig = ModelCatalogConfig()
    streaming: Streaming = Streaming()
    limits: Limits = Limits()
    shutdown_grace_seconds: float = 30
    #: processes serving the one listening socket (read at start; a reload does not change it)
    workers: int = 1
    upstream_timeouts: UpstreamTimeouts = UpstreamTimeouts()
    #: read at start; like host/port it always comes from the local file
    store: StoreConfig = StoreConfig()
    gemini_api_key: tuple[ProviderKeyEntry, ...] = ()
    claude_api_key: tuple[ProviderKeyEntry, ...] = ()
    codex_api_key: tuple[ProviderKeyEntry, ...] = ()
    vertex_api_key: tuple[ProviderKeyEntry, ...] = ()
    xai_api_key: tuple[ProviderKeyEntry, ...] = ()
    openai_compatibility: tuple[OpenAICompatEntry, ...] = ()
    ampcode: AmpConfig = AmpConfig()
    oauth_model_alias: Mapping[str, tuple[OAuthModelAlias, ...]] = field(default_factory=_empty)
    oauth_excluded_models: Mapping[str, tuple[str, ...]] = field(default_factory=_empty)
    oauth_endpoints: OAuthEndpoints = OAuthEndpoints()
    warnings: tuple[str, ...] = ()
    raw: Mapping[str, object] = field(default_factory=_empty, repr=False, compare=False)

    def listen_endpoint(self) -> str:
        """The Twisted server endpoint string to listen on.

        `listen` wins when set; otherwise tcp (or ssl when `tls.enable`) on host/port.
        An empty host means all interfaces.
        """
        if self.listen:
            return self.listen
        host = self.host.strip()
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]  # "[::1]" as people write it in URLs
        if self.tls.enable:
            parts = [
                f"ssl:port={self.port}",
                f"privateKey={escape_endpoint_argument(self.tls.key)}",
                f"certKey={escape_endpoint_argument(self.tls.cert)}",
            ]
        else:
            parts = [f"tcp:port={self.port}"]
        # a deep accept queue: a burst of clients must not wait on SYN retransmits
        # (Twisted's default backlog is 50; bench/RESULTS.md finding 1)
        parts.append("backlog=1024")
        if host:
            parts.append(f"interface={escape_endpoint_argument(host)}")
        return ":".join(parts)
