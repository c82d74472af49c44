"""The relying party of single sign-on: OpenID Connect's authorization code flow with PKCE.

Authlib gives the protocol's parts (the S256 code challenge, the ID token's
claim checks: issuer, audience, expiry, nonce, ``at_hash``); joserfc (Authlib's
JOSE library) verifies the token's signature against the provider's published
keys; httpx talks to the provider. The provider's discovery document and keys
are read once and kept (the keys again when a token names a key not seen yet).
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from interlock.errors import Unauthenticated, Unreachable
from interlock.spec.sso import Sso

if TYPE_CHECKING:
    from joserfc.jwk import KeySet

# Authlib and joserfc (and the cryptography they load) are imported by the methods
# that use them: a server without `sso:` never pays their ~0.1 CPU-s of imports.

TIMEOUT = 10.0
METADATA_TTL = 3600.0  # read the discovery document again after an hour
LEEWAY = 60  # seconds of clock difference allowed with the provider


class SsoUnavailable(Unreachable):
    """The provider could not be reached or answered something unusable (503)."""

    kind = "sso-unavailable"
    title = "Single sign-on unavailable"


def client_secret(sso: Sso) -> str | None:
    """The client secret from the server's environment (``sso.client_secret: ${VAR}``)."""
    if sso.client_secret is None:
        return None
    name = sso.client_secret[2:-1]
    value = os.environ.get(name)
    if not value:
        raise SsoUnavailable(
            f"sso.client_secret reads ${{{name}}}, which is not set in the server's "
            "environment; set it and restart the server"
        )
    return value


class Provider:
    """One OpenID provider (``sso.issuer``), its metadata and keys kept for an hour."""

    def __init__(self, sso: Sso, transport: httpx.BaseTransport | None = None) -> None:
        self.sso = sso
        self._http = httpx.Client(timeout=TIMEOUT, transport=transport, follow_redirects=False)
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._read_at = 0.0
        self._keys: KeySet | None = None

    def close(self) -> None:
        self._http.close()

    def _get_json(self, url: str, what: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.get(url, **kwargs)
        except httpx.HTTPError as exc:
            raise SsoUnavailable(f"cannot reach the provider's {what} at {url}: {exc}") from None
        if response.status_code != 200:
            raise SsoUnavailable(f"the provider's {what} at {url} answered {response.status_code}")
        try:
            found = response.json()
        except ValueError:
            raise SsoUnavailable(f"the provider's {what} at {url} is not JSON") from None
        if not isinstance(found, dict):
            raise SsoUnavailable(f"the provider's {what} at {url} is not a JSON object")
        return found

    def metadata(self) -> dict[str, Any]:
        with self._lock:
            if self._metadata is not None and time.monotonic() - self._read_at < METADATA_TTL:
                return self._metadata
        url = f"{self.sso.issuer}/.well-known/openid-configuration"
        found = self._get_json(url, "discovery document")
        if str(found.get("issuer", "")).rstrip("/") != self.sso.issuer:
            raise SsoUnavailable(
                f"the discovery document at {url} names the issuer {found.get('issuer')!r}, "
                f"not {self.sso.issuer!r}: check sso.issuer"
            )
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(found.get(key), str):
                raise SsoUnavailable(f"the discovery document at {url} has no {key}")
        with self._lock:
            self._metadata, self._read_at = found, time.monotonic()
        return found

    def _key_set(self, refresh: bool = False) -> KeySet:
        from joserfc.errors import JoseError
        from joserfc.jwk import KeySet

        if self._keys is None or refresh:
            found = self._get_json(self.metadata()["jwks_uri"], "signing keys")
            try:
                self._keys = KeySet.import_key_set(found)  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError, KeyError) as exc:
                raise SsoUnavailable(f"the provider's signing keys are unusable: {exc}") from None
        return self._keys

    def authorize_url(self, *, redirect_url: str, state: str, nonce: str, verifier: str) -> str:
        """Where to send the browser: the provider's sign-in, asking for a code (S256 PKCE)."""
        from authlib.common.urls import add_params_to_uri
        from authlib.oauth2.rfc7636 import create_s256_code_challenge

        scopes = ["openid", *(s for s in self.sso.scopes if s != "openid")]
        return str(
            add_params_to_uri(
                self.metadata()["authorization_endpoint"],
                [
                    ("response_type", "code"),
                    ("client_id", self.sso.client_id),
                    ("redirect_uri", redirect_url),
                    ("scope", " ".join(scopes)),
                    ("state", state),
                    ("nonce", nonce),
                    ("code_challenge", create_s256_code_challenge(verifier)),  # type: ignore[no-untyped-call]
                    ("code_challenge_method", "S256"),
                ],
            )
        )

    def redeem(self, *, code: str, redirect_url: str, verifier: str, nonce: str) -> dict[str, Any]:
        """Trade the code for tokens; the verified ID token's claims, with the userinfo's."""
        meta = self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_url,
            "code_verifier": verifier,
        }
        secret = client_secret(self.sso)
        auth: httpx.Auth | None = None
        if secret is None:
            form["client_id"] = self.sso.client_id
        else:  # client_secret_basic: both parts form-encoded first (RFC 6749, 2.3.1)
            auth = httpx.BasicAuth(quote(self.sso.client_id, safe=""), quote(secret, safe=""))
        try:
            response = self._http.post(
                meta["token_endpoint"],
                data=form,
                auth=auth or httpx.USE_CLIENT_DEFAULT,
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise SsoUnavailable(f"cannot reach the provider's token endpoint: {exc}") from None
        try:
            tokens = response.json()
        except ValueError:
            tokens = {}
        if response.status_code != 200 or not isinstance(tokens, dict):
            error = tokens.get("error") if isinstance(tokens, dict) else None
            described = tokens.get("error_description") if isinstance(tokens, dict) else None
            raise Unauthenticated(
                "the provider refused the sign-in code: "
                f"{error or response.status_code}{f' ({described})' if described else ''}; "
                "check sso.client_id and the client secret, then sign in again"
            )
        if not isinstance(tokens.get("id_token"), str):
            raise Unauthenticated(
                "the provider sent no ID token: is `openid` allowed for this client?"
            )
        claims = self._verify(tokens["id_token"], nonce, tokens.get("access_token"))
        userinfo = meta.get("userinfo_endpoint")
        if isinstance(userinfo, str) and isinstance(tokens.get("access_token"), str):
            extra = self._get_json(
                userinfo, "userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
            )
            if extra.get("sub") == claims.get("sub"):  # OpenID Connect Core 5.3.2
                claims = {**extra, **claims}
        return claims

    def _verify(self, id_token: str, nonce: str, access_token: Any) -> dict[str, Any]:
        from authlib.oidc.core import CodeIDToken
        from joserfc import jwt
        from joserfc.errors import InvalidKeyIdError, JoseError
        from joserfc.jws import JWSRegistry

        algorithms = self.metadata().get("id_token_signing_alg_values_supported") or ["RS256"]
        registry = JWSRegistry(algorithms=[a for a in algorithms if a != "none"])
        try:
            try:
                token = jwt.decode(id_token, self._key_set(), registry=registry)
            except InvalidKeyIdError:  # a key the provider added since: read its keys again
                token = jwt.decode(id_token, self._key_set(refresh=True), registry=registry)
            params: dict[str, Any] = {"nonce": nonce, "client_id": self.sso.client_id}
            if isinstance(access_token, str):
                params["access_token"] = access_token
            claims = CodeIDToken(
                token.claims,
                token.header,
                {
                    "iss": {"essential": True, "value": self.sso.issuer},
                    "aud": {"essential": True, "value": self.sso.client_id},
                },
                params,
            )
            claims.validate(now=int(time.time()), leeway=LEEWAY)
        except (JoseError, ValueError) as exc:
            raise Unauthenticated(
                f"the provider's ID token did not verify ({exc}); sign in again"
            ) from None
        return dict(claims)


class Providers:
    """The provider of the active config's ``sso:``, made again when that section changes."""

    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        self._transport = transport
        self._lock = threading.Lock()
        self._current: Provider | None = None

    def of(self, sso: Sso) -> Provider:
        with self._lock:
            if self._current is None or self._current.sso != sso:
                if self._current is not None:
                    self._current.close()
                self._current = Provider(sso, self._transport)
            return self._current
