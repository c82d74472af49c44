"""``interlock init --discover``: scaffold a config from a repository's layout.

The main file holds the environments, the templates and ``include:``; each
service found (``services/*``, ``apps/*``) gets its own file beside its code,
so CODEOWNERS gives each team its part of the config.
"""

from __future__ import annotations

import json
from pathlib import Path

from interlock.errors import Conflict, InvalidInput
from interlock.vcs.layout import ROOTS, Discovered, discover

_MAIN = """\
# yaml-language-server: $schema=./interlock.schema.json
#
# interlock.yaml, scaffolded by `interlock init --discover`: {count} services found
# under {roots}. Each service's own file sits beside its code
# ({example}), so CODEOWNERS gives each team its part.
# Check it with `interlock validate`; see a release with `interlock plan {first}@1.0.0`.
version: 1
include:
{includes}

# The promotion chain, with the values each environment gives steps ({{{{ vars.NAME }}}}).
environments:
  - name: dev
    vars: {{cluster: dev, namespace: default}}
  - name: staging
    vars: {{cluster: staging, namespace: default}}
  - name: production
    production: true
    vars: {{cluster: production, namespace: default}}
    # gates:
    #   before:
    #     - approval: {{rules: [{{role: release-managers, count: 1}}]}}
{teams}
# Shared step lists: a service `extends` one and states only what differs.
# The commands only echo what they would do: replace them with your real deploy.
templates:
  k8s:
    description: A container image deployed with Helm.
    params:
      path: {{required: true, description: "The service's directory."}}
    deploy:
      - name: deploy
        run: >-
          echo helm upgrade --install {{{{ service }}}} {{{{ vars.path }}}}/chart
          --kube-context {{{{ vars.cluster }}}} -n {{{{ vars.namespace }}}}
          --set image.tag={{{{ version }}}}
        timeout: 15m
        idempotent: true
  script:
    description: A deploy script of the service's own.
    params:
      path: {{required: true, description: "The service's directory."}}
    deploy:
      - name: deploy
        run: echo {{{{ vars.path }}}}/deploy.sh {{{{ version }}}} {{{{ environment }}}}
        timeout: 15m
"""

_SERVICE = """\
# yaml-language-server: $schema={schema}
# {name}: found in {plain} by `interlock init --discover` ({why}).
services:
  {name}:
{owner}    extends: {kind}
    params: {{path: {path}}}
"""


def scaffold(config_path: Path, force: bool) -> tuple[list[Path], list[Discovered]]:
    """Write the main file and one file per service found; return what was written."""
    top, found = discover(config_path.parent)
    if config_path.parent.resolve() != top.resolve():
        raise InvalidInput(
            f"--discover writes the config at the top of the repository ({top}): run it "
            f"there, or pass --config {top / config_path.name}",
            field="config",
        )
    if not found:
        raise InvalidInput(
            f"no services found in {top}: --discover looks for directories under "
            f"{' and '.join(r + '/' for r in ROOTS)} that git tracks files in; run "
            "`interlock init` for one service",
            field="discover",
        )
    targets = {d.name: top / d.path / "interlock.yaml" for d in found}
    existing = [p for p in [config_path, *targets.values()] if p.exists()]
    if existing and not force:
        shown = ", ".join(str(p) for p in existing[:3])
        raise Conflict(f"{shown} already exist(s); use --force to overwrite")
    roots = sorted({d.path.split("/", 1)[0] for d in found})
    owners = sorted({d.owner for d in found if d.owner})
    teams = ""
    if owners:
        teams = "\n# Teams from CODEOWNERS: add their members (user names).\nteams:\n" + "".join(
            f"  {team}: []\n" for team in owners
        )
    config_path.write_text(
        _MAIN.format(
            count=len(found),
            roots=" and ".join(f"{r}/" for r in roots),
            example=f"{found[0].path}/interlock.yaml",
            first=found[0].name,
            includes="\n".join(f"  - {r}/*/interlock.yaml" for r in roots),
            teams=teams,
        )
    )
    written = [config_path]
    for service in found:
        why = "a Helm chart or a Dockerfile" if service.kind == "k8s" else "no chart found"
        targets[service.name].write_text(
            _SERVICE.format(
                schema="../../interlock.schema.json",
                name=service.name,
                path=json.dumps(service.path),
                plain=service.path,
                why=why,
                kind=service.kind,
                owner=f"    owner: {service.owner}\n" if service.owner else "",
            )
        )
        written.append(targets[service.name])
    return written, found
