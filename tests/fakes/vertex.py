"""Google's service-account token endpoint and Vertex AI's project-scoped Gemini API.

`FakeGoogleToken` (`POST /token`) takes only the JWT-bearer grant and checks the
assertion as Google does: RS256 signature by a key it was told to trust (`trust(email,
public_key)`), `aud` equal to Google's token URI, a `scope`, `iat`/`exp` at most an hour
apart and around now. Every failure is a 400 `invalid_grant` with Google's description.
Access tokens it issues land in `access_tokens`.

`FakeVertex` is `FakeGemini` on `/v1/projects/{project}/locations/{location}/publishers/
google/models/...` only: a Bearer token is required (an `x-goog-api-key` is refused as
Vertex refuses it for service-account paths), and the project must be `project`.

`service_account_json()` makes a fresh RSA key and the JSON Google hands out for it.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes.gemini import FakeGemini, gemini_error_reply
from tests.fakes.oauth import oauth_error_reply
from tests.fakes.records import RecordedRequest
from tests.fakes.reply import Reply
from tests.fakes.server import FakeUpstream, bearer

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
BAD_TIME = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
    "timeframe. Check your iat and exp values in the JWT claim."
)


def service_account_json(
    project: str = "fake-project", email: str | None = None, key_id: str = "kid-fake-0001"
) -> tuple[dict, rsa.RSAPublicKey]:
    """A service-account key file's JSON and the public half of its key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    email = email or f"proxy@{project}.iam.gserviceaccount.com"
    sa = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": key_id,
        "private_key": pem,
        "client_email": email,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": GOOGLE_TOKEN_URI,
        "universe_domain": "googleapis.com",
    }
    return sa, key.public_key()


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class FakeGoogleToken(FakeUpstream):
    """`oauth2.googleapis.com/token` for service accounts (see the module docstring)."""

    name = "fake-google-token"

    def __init__(self, now: Callable[[], float] = time.time, **kwargs) -> None:
        self.now = now
        self.trusted: dict[str, rsa.RSAPublicKey] = {}
        self.access_tokens: set[str] = set()
        self.assertions: list[dict] = []
        self.expires_in = 3599
        self._serial = 0
        super().__init__(**kwargs)

    def trust(self, email: str, public_key: rsa.RSAPublicKey) -> None:
        self.trusted[email] = public_key

    def install_builtins(self) -> None:
        self.builtin("POST", r"/token", self._token)

    def accepts(self, rec: RecordedRequest) -> bool:
        return True  # the assertion is the credential

    def _token(self, rec: RecordedRequest, m) -> Reply:
        form = rec.form
        if form.get("grant_type") != JWT_BEARER:
            return oauth_error_reply(400, "unsupported_grant_type", "Invalid grant_type: ")
        problem, claims = self._check(form.get("assertion") or "")
        if problem:
            return oauth_error_reply(400, "invalid_grant", problem)
        self.assertions.append(claims)
        self._serial += 1
        token = f"ya29.fake-{self._serial:04d}"
        self.access_tokens.add(token)
        return Reply(
            json={"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
        )

    def _check(self, assertion: str) -> tuple[str, dict]:
        parts = assertion.split(".")
        if len(parts) != 3:
            return "Invalid JWT: JWT must have three segments.", {}
        try:
            header, claims = (json.loads(_unb64(p)) for p in parts[:2])
            signature = _unb64(parts[2])
        except ValueError:
            return "Invalid JWT: could not decode.", {}
        if header.get("alg") != "RS256":
            return "Invalid JWT: alg must be RS256.", {}
        key = self.trusted.get(claims.get("iss", ""))
        if key is None:
            return "Invalid JWT Signature.", {}  # Google: unknown issuer looks the same
        try:
            key.verify(
                signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            return "Invalid JWT Signature.", {}
        if claims.get("aud") != GOOGLE_TOKEN_URI:
            return "Invalid JWT: Failed audience check.", {}
        if not claims.get("scope"):
            return "Invalid OAuth scope or ID token audience provided.", {}
        iat, exp, now = claims.get("iat"), claims.get("exp"), self.now()
        if not isinstance(iat, int) or not isinstance(exp, int):
            return BAD_TIME, {}
        if exp - iat > 3600 or exp <= now or iat > now + 300:
            return BAD_TIME, {}
        return "", claims


VERTEX_ACTION = re.compile(
    r"/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/publishers/google"
    r"/models/(?P<model>[^/:]+):(?P<action>generateContent|streamGenerateContent|countTokens)"
)


VERTEX_PREDICT = re.compile(
    r"/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/publishers/google"
    r"/models/(?P<model>imagen[^/:]*):predict"
)
#: what every fake Imagen prediction holds (a 1x1 PNG would do; the bytes are not decoded)
FAKE_IMAGE_B64 = "aW1hZ2UtYnl0ZXM="


class FakeVertex(FakeGemini):
    """Vertex AI's project-scoped Gemini endpoints; Bearer tokens only."""

    name = "fake-vertex"

    def __init__(self, project: str = "fake-project", **kwargs) -> None:
        self.project = project
        super().__init__(**kwargs)

    def install_builtins(self) -> None:
        self.builtin("POST", VERTEX_ACTION.pattern, self._vertex_action)
        self.builtin("POST", VERTEX_PREDICT.pattern, self._predict)

    def credential(self, rec: RecordedRequest) -> str | None:
        return bearer(rec)

    def accepts(self, rec: RecordedRequest) -> bool:
        if rec.header("x-goog-api-key") or rec.arg("key"):
            return False
        return super().accepts(rec)

    def auth_error(self, rec: RecordedRequest) -> Reply:
        return gemini_error_reply(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            reason="ACCESS_TOKEN_TYPE_UNSUPPORTED",
        )

    def _vertex_action(self, rec: RecordedRequest, m) -> Reply:
        if m["project"] != self.project:
            return gemini_error_reply(403, f"Permission denied on resource project {m['project']}.")
        return self._action(rec, m)

    def _predict(self, rec: RecordedRequest, m) -> Reply:
        body = rec.json if isinstance(rec.json, dict) else {}
        instances = body.get("instances")
        if not isinstance(instances, list) or not instances or not instances[0].get("prompt"):
            return gemini_error_reply(400, "Invalid instances: a prompt is required.")
        count = int((body.get("parameters") or {}).get("sampleCount") or 1)
        predictions = [
            {"bytesBase64Encoded": FAKE_IMAGE_B64, "mimeType": "image/png"} for _ in range(count)
        ]
        return Reply(json={"predictions": predictions})


class FakeVertexKey(FakeGemini):
    """Vertex with API keys (express mode, `aiplatform.googleapis.com`): the Gemini actions
    on `/v1/publishers/google/models/...` and Imagen's `:predict` there, `x-goog-api-key`
    (or `?key=`) only; a Gemini action on an Imagen model is refused as Vertex does."""

    name = "fake-vertex-key"

    def install_builtins(self) -> None:
        self.builtin(
            "POST", r"/v1/publishers/google/models/(?P<model>imagen[^/:]*):predict", self._predict
        )
        self.builtin(
            "POST", r"/v1/publishers/google/models/(?P<model>imagen[^/:]*):\w+", self._not_gemini
        )
        super().install_builtins()

    def _not_gemini(self, rec: RecordedRequest, m) -> Reply:
        return gemini_error_reply(
            400, f"Gemini API methods are not supported by model {m['model']}; use predict."
        )

    _predict = FakeVertex._predict
