"""A company's config: 500 services x 3 environments in 50 files, validated and reloaded.

    python bench/config.py                       # 500 services, 50 files, SQLite
    python bench/config.py --services 2000 --files 200
    python bench/config.py --database-url postgresql://postgres@127.0.0.1/postgres

The config is what a company writes: a main file with three environments (their
``vars`` and production gates), two templates (a Kubernetes and a VM deploy)
and ``include: [teams/*/services.yaml]``; each team's file holds its services,
most extending a template with parameters, some with per-environment overrides
and steps of their own. Measured, each as the median of ``--runs``:

- validate: ``load_config`` of the main file, as ``interlock validate`` runs it
  (read every file, compose, check every key and every ``{{ vars.NAME }}`` of
  every service in every environment, expand the templates);
- reload: ``Configs.reload`` on a database whose active config is the previous
  one, as ``interlock config reload`` runs in the server: validate, diff against
  the active config, store the new version with its audit event (the diff).

Targets (issue 18): validate under 1 s, reload under 2 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from interlock.engine.core import Engine, Settings  # noqa: E402
from interlock.spec.loader import load_config  # noqa: E402
from interlock.storage.db import Database  # noqa: E402
from interlock.storage.migrate import upgrade  # noqa: E402

MAIN = """\
# yaml-language-server: $schema=./interlock.schema.json
version: 1
include: ["teams/*/services.yaml"]
vars: {registry: registry.example.com}
environments:
  - name: dev
    vars: {cluster: dev-1, api_url: "https://dev.example.com", replicas: 1}
  - name: staging
    vars: {cluster: stg-1, api_url: "https://staging.example.com", replicas: 2}
  - name: production
    production: true
    vars: {cluster: prd-1, api_url: "https://example.com", replicas: 3}
    gates:
      before:
        - approval: {rules: [{role: release-managers, count: 1}]}
roles: {release-managers: [alice, bob]}
templates:
  k8s:
    description: The standard Kubernetes deploy.
    params:
      namespace: {required: true}
      chart: {default: ./charts/service}
    deploy:
      - name: helm
        run: >-
          helm upgrade --install {{ service }} {{ vars.chart }} --kube-context {{ vars.cluster }}
          -n {{ vars.namespace }} --set image={{ vars.registry }}/{{ service }}:{{ version }}
          --set replicas={{ vars.replicas }}
        timeout: 15m
      - name: rollout
        run: >-
          kubectl --context {{ vars.cluster }} -n {{ vars.namespace }}
          rollout status deploy/{{ service }}
      - name: smoke
        http: {method: GET, url: "{{ vars.api_url }}/{{ service }}/health", expect_status: 200}
  vm:
    description: A deploy to virtual machines.
    params:
      hosts: {required: true}
    deploy:
      - name: ship
        run: ./deploy-vm.sh {{ vars.hosts }} {{ service }} {{ version }}
      - name: smoke
        http: {method: GET, url: "{{ vars.api_url }}/{{ service }}/health"}
"""


def team_file(team: int, services: range) -> str:
    lines = [f"teams: {{team{team}: [dev{team}a, dev{team}b]}}", "services:"]
    for n in services:
        name = f"svc{n:04d}"
        lines.append(f"  {name}:")
        lines.append(f"    owner: team{team}")
        if n % 10 == 9:
            lines += [
                "    extends: vm",
                f"    params: {{hosts: 'vm{n}-a vm{n}-b'}}",
            ]
        else:
            lines += ["    extends: k8s", f"    params: {{namespace: team{team}}}"]
        if n % 4 == 0:
            lines += ["    overrides:", "      production: {vars: {replicas: 6}}"]
        if n % 5 == 0:
            lines += [
                "    deploy:",
                "      - name: migrate",
                f"        run: ./migrate.sh {{{{ service }}}} {{{{ version }}}} --db {name}",
                "        idempotent: true",
            ]
        if n % 7 == 0 and n > 0:
            lines.append(f"    depends_on: [svc{n - 1:04d}]")
    return "\n".join(lines) + "\n"


def write_company(root: Path, services: int, files: int) -> Path:
    """Write the main file and ``files`` team files holding ``services`` services."""
    for team in range(files):
        block = range(team * services // files, (team + 1) * services // files)
        folder = root / "teams" / f"team{team:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "services.yaml").write_text(team_file(team, block))
    main = root / "interlock.yaml"
    main.write_text(MAIN)
    return main


def _median(runs: int, work: Any) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--services", type=int, default=500)
    parser.add_argument("--files", type=int, default=50, help="in all: the main file and teams")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database-url", default=None, help="PostgreSQL (default: SQLite)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="interlock-bench-config-"))
    path = write_company(tmp, args.services, max(1, args.files - 1))
    loaded = load_config(path)
    config = loaded.config
    steps = sum(len(s.deploy) for s in config.services.values())
    validate = _median(args.runs, lambda: load_config(path))

    url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    if url.startswith(("postgresql://", "postgres://")):
        from engine import _fresh_pg_database  # bench/engine.py

        url = _fresh_pg_database(url)
    db = Database(url)
    upgrade(db)
    configs = Engine(db, settings=Settings()).configs
    configs.load_file(path, actor="bench")
    version = [0]

    def reload() -> None:
        # a real change each time: one team's file and a production gate stay, a service's
        # replicas in production change
        version[0] += 1
        team = tmp / "teams" / "team000" / "services.yaml"
        text = team.read_text().split("\n# bench ")[0]
        team.write_text(text + f"\n# bench {version[0]}\n")
        outcome = configs.reload(path, actor="bench", reason="bench")
        assert outcome.changed

    reloaded = _median(args.runs, reload)
    db.dispose()
    figures = {
        "services": len(config.services),
        "environments": len(config.environments),
        "files": 1 + len(loaded.files),
        "steps": steps,
        "bytes": len(loaded.text),
        "validate_seconds": round(validate, 3),
        "reload_seconds": round(reloaded, 3),
        "database": "postgresql" if "postgres" in url else "sqlite",
    }
    print(
        f"{figures['services']} services x {figures['environments']} environments in "
        f"{figures['files']} files ({steps} deploy steps, {figures['bytes'] // 1024} KiB)"
    )
    print(f"validate: {validate:.3f} s (target < 1 s)")
    print(f"reload:   {reloaded:.3f} s on {figures['database']} (target < 2 s)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    main()
