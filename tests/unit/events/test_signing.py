"""HMAC-SHA256 signatures: GitHub's documented vector, round trips, secrets from the environment."""

from __future__ import annotations

import pytest

from interlock.events.signing import MissingSecret, matching, secret_value, sign, verify
from tests.support.external import external

# From GitHub's documentation (and shared/external/github-webhooks/README.md).
GITHUB_SECRET = b"It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_githubs_documented_vector():
    assert sign(GITHUB_SECRET, GITHUB_BODY) == GITHUB_SIGNATURE
    assert verify(GITHUB_SECRET, GITHUB_BODY, GITHUB_SIGNATURE)
    # The vector is also the one written in the reference data's README.
    readme = external("github-webhooks", "README.md").read_text()
    assert GITHUB_SIGNATURE.removeprefix("sha256=") in readme


def test_round_trip_and_every_kind_of_tampering():
    body = b'{"context": {"id": "1"}}'
    header = sign(b"k", body)
    assert verify(b"k", body, header)
    assert not verify(b"other key", body, header)
    assert not verify(b"k", body + b" ", header)
    assert not verify(b"k", body, header.upper())
    assert not verify(b"k", body, header.removeprefix("sha256="))  # the prefix is required
    assert not verify(b"k", body, "sha1=" + header[7:])
    assert not verify(b"k", body, None)
    assert not verify(b"k", body, "")


def test_secrets_come_from_the_environment_only():
    assert secret_value("${HOOK_SECRET}", {"HOOK_SECRET": "s3"}) == b"s3"
    with pytest.raises(MissingSecret, match="HOOK_SECRET"):
        secret_value("${HOOK_SECRET}", {})
    with pytest.raises(MissingSecret):
        secret_value("${HOOK_SECRET}", {"HOOK_SECRET": ""})  # empty is no key


def test_matching_finds_the_source_that_signed_and_skips_unset_ones():
    body = b"payload"
    environ = {"A": "alpha", "B": "beta"}
    candidates = [("unset", "${NOT_SET}"), ("a", "${A}"), ("b", "${B}")]
    assert matching(candidates, body, sign(b"beta", body), environ) == "b"
    assert matching(candidates, body, sign(b"alpha", body), environ) == "a"
    assert matching(candidates, body, sign(b"gamma", body), environ) is None
    assert matching(candidates, body, None, environ) is None
