"""A real OpenID provider for the single sign-on tests: npm's ``oidc-provider`` on Node.js.

Installed from the project's own ``tests/oidc/package.json`` and lock file with
``npm ci`` into a cache directory named after the lock file's digest (so
``node_modules`` is never in the repository, and an unchanged lock installs
once per machine); ``make test`` runs ``python -m tests.support.oidc`` first.
Each provider runs on 127.0.0.1 with a free port; each test registers the
server it starts as a client (dynamic registration) with that server's callback.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.server import free_port

SOURCE = Path(__file__).resolve().parents[1] / "oidc"
FILES = ("package.json", "package-lock.json", "server.mjs")

# Who may sign in at the provider (any password), and the claims it gives them.
USERS: dict[str, dict[str, Any]] = {
    "alice": {"email": "alice@example.com", "groups": ["release-managers"], "name": "Alice A."},
    "bob": {"email": "bob@example.com", "groups": ["release-managers"]},
    "mallory": {"email": "mallory@outsiders.test", "groups": ["visitors"]},
}


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "interlock-tests"


def install() -> Path:
    """The directory holding server.mjs and its node_modules, installed if need be."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RuntimeError("the SSO tests need Node.js and npm (apt-get install nodejs npm)")
    lock = (SOURCE / "package-lock.json").read_bytes()
    target = cache_root() / f"oidc-provider-{hashlib.sha256(lock).hexdigest()[:16]}"
    target.mkdir(parents=True, exist_ok=True)
    with (target / ".lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # two test processes install once
        for name in FILES:
            shutil.copyfile(SOURCE / name, target / name)
        if not (target / "node_modules" / ".package-lock.json").exists():
            done = subprocess.run(
                ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"],
                cwd=target,
                capture_output=True,
                text=True,
                timeout=600,
            )
            if done.returncode != 0:
                raise RuntimeError(f"npm ci of tests/oidc failed:\n{done.stderr[-3000:]}")
    return target


class OidcProvider:
    """One oidc-provider process on 127.0.0.1 (stop it with :meth:`stop`)."""

    def __init__(self, users: dict[str, dict[str, Any]] | None = None) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.users = users or USERS
        self.directory = install()
        self.log_path = self.directory / f"provider-{self.port}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                ["node", "server.mjs", str(self.port), json.dumps(self.users)],
                cwd=self.directory,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"oidc-provider exited:\n{self.log()}")
            try:
                found = httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1)
                if found.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"oidc-provider did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def register(self, redirect_uri: str) -> tuple[str, str]:
        """Register a web client with this callback; its client id and secret."""
        found = httpx.post(
            f"{self.issuer}/reg",
            json={
                "redirect_uris": [redirect_uri],
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_basic",
            },
            timeout=10,
        )
        assert found.status_code == 201, found.text
        body = found.json()
        return str(body["client_id"]), str(body["client_secret"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


if __name__ == "__main__":  # `make test`: install before the tests start
    print(install())
