"""A secret scan: known secret values go in everywhere one can enter, and out nowhere.

Distinctive values are seeded in the server's environment and used through
every door: a step's ``env``, an ``http`` step's URL, headers and body, a
plug-in's settings (``with:``), the variables named in ``secrets:`` (printed
natively by a step), a webhook's URL, header and signing secret, an inbound
source's secret, and API tokens. Releases succeed, fail and time out; then
everything the system wrote is scanned: the database (every row of every
table; on SQLite also the raw file and its WAL), the server's log, the step
logs through the API, every API response fetched, the web pages, the webhook
deliveries received (bodies and headers), ``audit export`` and the CLI's
output. Where a value is meant to arrive (the http target, the webhook
receiver's own header) is not scanned for it.
"""

from __future__ import annotations

import contextlib
import json
import secrets as random
import sys
from pathlib import Path

import httpx
from sqlalchemy import create_engine

from interlock.storage.db import normalize_url
from interlock.storage.schema import metadata
from tests.helpers import wait_for, write_config
from tests.support.webhook_receiver import Receiver, serve

PLACES = ("STEP_ENV", "URL", "HEADER", "BODY", "PLUGIN", "NATIVE", "HOOK_URL", "HOOK_HEADER")
PLACES += ("HOOK_SECRET", "INBOUND")

BIG_WRITE = """\
import os
os.write(1, ("x" * 65533 + os.environ["API_KEY"] + " after a full pipe\\n").encode())
"""

CONFIG = """\
version: 1
environments: [{{name: staging, on_failure: fail}}]
secrets: [SCAN_NATIVE]
notifications:
  webhooks:
    - name: audit-out
      url: "{hook}?k=${{SCAN_HOOK_URL}}"
      format: interlock
      secret: "${{SCAN_HOOK_SECRET}}"
      headers: {{X-Api-Key: "${{SCAN_HOOK_HEADER}}"}}
      backoff: 100ms
  inbound:
    - {{name: ci, secret: "${{SCAN_INBOUND}}", as: ci-bot}}
services:
  good:
    deploy:
      - name: shell
        run: printf 'key=%s native=%s\\n' "$API_KEY" "$SCAN_NATIVE"; {python} big.py
        env: {{API_KEY: "${{SCAN_STEP_ENV}}"}}
      - name: call
        http: &call
          url: "{target}/deploy?k=${{SCAN_URL}}"
          headers: {{Authorization: "Bearer ${{SCAN_HEADER}}"}}
          body: {{token: "${{SCAN_BODY}}", version: "{{{{ version }}}}"}}
      - name: plug
        uses: noop
        with: {{message: "plug-in got ${{SCAN_PLUGIN}}"}}
  broken:
    deploy:
      - name: fails
        run: echo "native=$SCAN_NATIVE key=$API_KEY" >&2; exit 3
        env: {{API_KEY: "${{SCAN_STEP_ENV}}"}}
  refused:
    deploy:
      - name: call
        http: {{<<: *call, expect_status: 201}}
  slow:
    deploy:
      - name: hangs
        run: echo "native=$SCAN_NATIVE"; sleep 30
        timeout: 1s
"""


class Scan:
    """Texts by place; :meth:`hits` counts each secret's occurrences in each place."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.places: dict[str, list[tuple[str, str, frozenset[str]]]] = {}

    def add(self, place: str, what: str, text: str | bytes, allowed: frozenset[str] = frozenset()):
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        self.places.setdefault(place, []).append((what, text, allowed))

    def hits(self) -> dict[str, dict[str, list[str]]]:
        found: dict[str, dict[str, list[str]]] = {}
        for place, texts in self.places.items():
            found[place] = {}
            for name, value in self.values.items():
                where = [w for w, text, allowed in texts if name not in allowed and value in text]
                if where:
                    found[place][name] = where
        return found

    def table(self) -> str:
        hits = self.hits()
        lines = [f"{'place':<24} {'texts':>6} {'hits':>5}"]
        for place, texts in self.places.items():
            count = sum(len(w) for w in hits[place].values())
            lines.append(f"{place:<24} {len(texts):>6} {count:>5}")
        return "\n".join(lines)


def _without_bootstrap_banner(log: str) -> str:
    """The first start shows the admin token once, on purpose; the rest is scanned."""
    start = log.find("Interlock created the first administrator")
    end = log.find("Give each person their own", start)
    return log if start < 0 else log[:start] + log[end:]


def _database_files(scan: Scan, database_url: str) -> None:
    """On SQLite, the raw bytes of the database file and its -wal and -shm."""
    if database_url.startswith("sqlite"):
        base = Path(database_url.split("///", 1)[1])
        for path in (base, *base.parent.glob(base.name + "-*")):
            scan.add("database files", path.name, path.read_bytes())


def _client(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _fetch(scan: Scan, client: httpx.Client, path: str) -> httpx.Response:
    response = client.get(path)
    scan.add("api responses", path, response.text)
    scan.add("api responses", path + " (headers)", str(dict(response.headers)))
    return response


def test_no_secret_leaks_anywhere(project, server, database_url, http_target, capsys):
    values = {place: f"SCAN{place.replace('_', '')}{random.token_hex(10)}" for place in PLACES}
    env = {f"SCAN_{place}": value for place, value in values.items()}
    http_target.body = json.dumps({"echo": [values["URL"], values["HEADER"], values["BODY"]]})
    receiver = Receiver(secret=values["HOOK_SECRET"].encode())
    scan = Scan(values)
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.contextmanager(serve)(receiver))
        (project / "big.py").write_text(BIG_WRITE)
        write_config(
            project,
            CONFIG.format(hook=receiver.url, target=http_target.url, python=sys.executable),
        )
        server.env.update(env)
        server.start()
        admin = (project / ".interlock" / "admin.token").read_text().strip()
        # Set-up through the API: the CLI outputs scanned are those of watch, show, export.
        server.api("POST", "/users", {"name": "ci-bot", "kind": "service"})
        token = server.api("POST", "/users/ci-bot/tokens", {"name": "scan"})["token"]
        scan.values["API_TOKEN"] = token  # where it enters (that one answer) is not scanned
        scan.values["ADMIN_TOKEN"] = admin

        releases = {}
        for service in ("good", "broken", "refused", "slow"):
            releases[service] = server.create(f"{service}@1.0", reason="scan")
            watched = server.cli("release", "watch", releases[service], timeout=60)
            scan.add("cli output", f"watch {service}", watched.stdout + watched.stderr)
        api = stack.enter_context(_client(server.url, token))
        admin_api = stack.enter_context(_client(server.url, admin))
        states = {s: admin_api.get(f"/api/v1/releases/{r}").json() for s, r in releases.items()}
        assert [states[s]["state"] for s in releases] == ["succeeded", "failed"] + ["failed"] * 2
        assert "timed out" in (states["slow"]["error"] or "")

        # Every GET route without a parameter, then each release, deployment and step.
        paths = [
            path
            for path, item in admin_api.get("/openapi.json").json()["paths"].items()
            if "get" in item and "{" not in path
        ]
        for path in paths:
            _fetch(scan, admin_api, path)
            _fetch(scan, api, path)
        for service, release in releases.items():
            detail = _fetch(scan, admin_api, f"/api/v1/releases/{release}").json()
            logs = _fetch(scan, admin_api, f"/api/v1/releases/{release}/logs")
            scan.add("step logs (api)", f"release {release}", logs.text)
            for deployment in detail.get("deployments", []):
                _fetch(scan, admin_api, f"/api/v1/deployments/{deployment['id']}")
                for step in deployment.get("steps", []):
                    _fetch(scan, admin_api, f"/api/v1/steps/{step['id']}")
                    log = _fetch(scan, admin_api, f"/api/v1/steps/{step['id']}/logs")
                    scan.add("step logs (api)", f"step {step['id']}", log.text)
            shown = server.cli("release", "show", release)
            scan.add("cli output", f"show {service}", shown.stdout + shown.stderr)
            for page in ("/", "/ui/", f"/ui/releases/{release}"):
                scan.add("web pages", page, admin_api.get(page).text)

        head = admin_api.get("/api/v1/audit/verify").json()["count"]
        receiver.wait(lambda found: any(d.seq >= head for d in found), what="the audit head")
        for delivery in receiver.deliveries:
            scan.add("webhook bodies", str(delivery.seq), delivery.body)
            scan.add(
                "webhook headers",
                str(delivery.seq),
                str(delivery.headers),
                frozenset({"HOOK_HEADER"}),
            )
        assert all(d.signature_ok for d in receiver.deliveries)
        exported = server.cli("audit", "export")
        assert exported.returncode == 0 and exported.stdout.count("\n") >= head
        scan.add("audit export", "stdout", exported.stdout)
        _database_files(scan, database_url)  # the WAL while the server runs
        server.stop()

    scan.add("server log", "stdout+stderr", _without_bootstrap_banner(server.log()))
    sql = create_engine(normalize_url(database_url))
    with sql.connect() as conn:
        for table in metadata.sorted_tables:
            rows = conn.execute(table.select()).fetchall()
            scan.add("database rows", table.name, "\n".join(map(str, rows)))
    sql.dispose()
    _database_files(scan, database_url)

    with capsys.disabled():
        print(f"\nsecret scan ({database_url.split(':')[0]}):\n{scan.table()}")
    assert scan.hits() == {place: {} for place in scan.places}
    # Not a vacuous scan: the steps did print the secrets, masked.
    good = scan.places["step logs (api)"][0][1]
    assert "key=*** native=***" in good and "*** after a full pipe" in good
    assert "plug-in got ***" in good and "***" in good


LOGGED = """\
version: 1
environments: [{{name: staging}}]
notifications:
  webhooks:
    - {{name: out, url: "{hook}?k=${{HOOK_KEY}}", format: interlock, backoff: 100ms}}
services:
  api:
    deploy:
      - name: call
        http: {{url: "{target}/deploy?k=${{URL_KEY}}"}}
"""


def test_the_server_log_names_no_url_with_a_secret(project, server, http_target):
    keys = {"URL_KEY": f"url-{random.token_hex(8)}", "HOOK_KEY": f"hook-{random.token_hex(8)}"}
    receiver = Receiver(failing=True)  # each failed delivery is a warning in the log
    with contextlib.contextmanager(serve)(receiver):
        write_config(project, LOGGED.format(hook=receiver.url, target=http_target.url))
        server.env.update(keys)
        server.start()
        made = server.create("api@1.0", reason="log scan")
        assert server.wait_release(made)["state"] == "succeeded"
        assert http_target.count(f"/deploy?k={keys['URL_KEY']}") == 1
        wait_for(lambda: len(receiver.deliveries) >= 2, message="failed deliveries")
        server.stop()
    log = server.log()
    assert "webhook out:" in log  # the failures were logged, with the URL's key masked
    assert not [k for k, v in keys.items() if v in log], log
