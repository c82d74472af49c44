"""``interlock status``: which version of every service runs in every environment."""

from __future__ import annotations

from datetime import datetime

import click

from interlock.cli.client import Client
from interlock.cli.output import FORMAT_OPTION, emit_json, table


@click.command()
@FORMAT_OPTION
def status(fmt: str) -> None:
    """Service × environment: version, since when, from which release."""
    found = Client().get("/api/v1/status")
    if fmt == "json":
        emit_json(found)
        return
    cells = {(e["service"], e["environment"]): e for e in found["entries"]}
    rows = []
    for service in found["services"]:
        row = {"service": service}
        for env in found["environments"]:
            entry = cells.get((service, env))
            if entry is None:
                row[env] = "-"
                continue
            when = datetime.fromisoformat(entry["deployed_at"]).astimezone()
            digest = f" {entry['digest'][7:19]}" if entry.get("digest") else ""
            row[env] = (
                f"{entry['version']}{digest}\n{when:%Y-%m-%d %H:%M} "
                f"r{entry['release_id']} by {entry['deployed_by']}"
            )
            if entry.get("drift"):
                row[env] += f"\nDRIFT: {entry['observed_version']} observed"
        rows.append(row)
    columns = [("service", "SERVICE")] + [(e, e.upper()) for e in found["environments"]]
    table(rows, columns, empty="nothing deployed yet")
