"""The relying party's checks of what a provider sends, against a real HTTP provider on
127.0.0.1 whose ID tokens the test signs (RSA keys made here): every wrong token is
refused with why, and a rotated key is fetched again."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from interlock.api.oidc import Provider, SsoUnavailable
from interlock.errors import Unauthenticated
from interlock.spec.sso import Sso
from tests.helpers import serving

NONCE = "n-0123456789"


@dataclass
class FakeIdp:
    """What the provider answers; the test changes it between calls."""

    url: str = ""
    keys: list[RSAKey] = field(default_factory=list)
    claims: dict[str, Any] = field(default_factory=dict)
    sign_with: RSAKey | None = None
    token_status: int = 200
    token_error: dict[str, Any] | None = None
    userinfo: dict[str, Any] = field(default_factory=dict)
    issuer: str | None = None
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def id_token(self) -> str:
        key = self.sign_with or self.keys[0]
        return jwt.encode({"alg": "RS256", "kid": key.kid}, self.claims, key)


@pytest.fixture
def idp() -> Iterator[FakeIdp]:
    found = FakeIdp(keys=[RSAKey.generate_key(2048, parameters={"kid": "one"}, private=True)])

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: Any) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:  # noqa: N802
            with found.lock:
                found.requests.append(("GET", self.path))
            if self.path == "/.well-known/openid-configuration":
                self._send(
                    200,
                    {
                        "issuer": found.issuer or found.url,
                        "authorization_endpoint": f"{found.url}/auth",
                        "token_endpoint": f"{found.url}/token",
                        "jwks_uri": f"{found.url}/jwks",
                        "userinfo_endpoint": f"{found.url}/userinfo",
                        "id_token_signing_alg_values_supported": ["RS256"],
                    },
                )
            elif self.path == "/jwks":
                self._send(200, {"keys": [k.as_dict(private=False) for k in found.keys]})
            elif self.path == "/userinfo":
                self._send(200, found.userinfo)
            else:
                self._send(404, {})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("content-length") or 0)
            form = self.rfile.read(length).decode()
            with found.lock:
                found.requests.append(("POST", form))
            if found.token_error is not None:
                self._send(found.token_status, found.token_error)
                return
            self._send(
                200, {"access_token": "at", "token_type": "Bearer", "id_token": found.id_token()}
            )

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler) as found.url:
        now = int(time.time())
        found.claims = {
            "iss": found.url,
            "sub": "u-1",
            "aud": "interlock",
            "iat": now,
            "exp": now + 300,
            "nonce": NONCE,
            "preferred_username": "alice",
        }
        found.userinfo = {"sub": "u-1", "groups": ["release-managers"]}
        yield found


def provider(idp: FakeIdp, **changes: Any) -> Provider:
    return Provider(Sso(issuer=idp.url, client_id="interlock", **changes))


def redeem(found: Provider) -> dict[str, Any]:
    return found.redeem(
        code="c", redirect_url="http://x/auth/sso/callback", verifier="v" * 43, nonce=NONCE
    )


def test_a_good_token_gives_its_claims_and_the_userinfos(idp):
    claims = redeem(provider(idp))
    assert claims["preferred_username"] == "alice"
    assert claims["groups"] == ["release-managers"]  # from the userinfo, same subject
    form = next(body for method, body in idp.requests if method == "POST")
    assert "code_verifier=" + "v" * 43 in form  # PKCE: the verifier goes with the code
    assert "client_id=interlock" in form  # a public client names itself in the form


def test_userinfo_of_another_subject_is_ignored(idp):
    idp.userinfo = {"sub": "someone-else", "groups": ["admins"]}
    assert "groups" not in redeem(provider(idp))


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"aud": "another-client"}, "aud"),
        ({"nonce": "replayed"}, "nonce"),
        ({"iss": "https://evil.test"}, "iss"),
        ({"exp": int(time.time()) - 3600}, "exp"),
    ],
)
def test_a_wrong_token_is_refused_saying_which_claim(idp, change, why):
    idp.claims.update(change)
    with pytest.raises(Unauthenticated, match=f"ID token did not verify.*{why}"):
        redeem(provider(idp))


def test_a_token_signed_by_a_stranger_is_refused(idp):
    idp.sign_with = RSAKey.generate_key(2048, parameters={"kid": "one"}, private=True)
    with pytest.raises(Unauthenticated, match="ID token did not verify"):
        redeem(provider(idp))


def test_a_rotated_key_is_read_again_once(idp):
    found = provider(idp)
    redeem(found)
    fresh = RSAKey.generate_key(2048, parameters={"kid": "two"}, private=True)
    idp.keys.append(fresh)
    idp.sign_with = fresh
    assert redeem(found)["sub"] == "u-1"
    assert [p for m, p in idp.requests if m == "GET"].count("/jwks") == 2


def test_the_providers_refusal_and_a_missing_secret_are_named(idp, monkeypatch):
    idp.token_error, idp.token_status = (
        {"error": "invalid_grant", "error_description": "expired code"},
        400,
    )
    with pytest.raises(
        Unauthenticated, match=r"refused the sign-in code: invalid_grant \(expired code\)"
    ):
        redeem(provider(idp))
    monkeypatch.delenv("IDP_SECRET_FOR_TEST", raising=False)
    with pytest.raises(SsoUnavailable, match=r"\$\{IDP_SECRET_FOR_TEST\}, which is not set"):
        redeem(provider(idp, client_secret="${IDP_SECRET_FOR_TEST}"))


def test_a_discovery_document_of_another_issuer_is_refused(idp):
    idp.issuer = "https://other.example.com"
    with pytest.raises(SsoUnavailable, match="names the issuer 'https://other.example.com'"):
        provider(idp).metadata()
