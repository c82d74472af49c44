"""axe-core, from npm (tests/web/package.json and its lock), run inside a page by Playwright.

`npm ci` installs it from the project's own files on first use (no CDN, nothing
fetched while a page runs); the script is handed to the page through the DevTools
protocol, which the page's Content-Security-Policy does not govern.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

WEB = Path(__file__).resolve().parents[1] / "web"
AXE = WEB / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")


@cache
def axe_source() -> str:
    # One installer at a time: test workers in parallel would each run `npm ci`.
    with (WEB / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not AXE.exists():
            npm = shutil.which("npm")
            if npm is None:
                pytest.skip("npm is not installed (scripts/ensure-services.sh installs it)")
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"], cwd=WEB, capture_output=True, text=True
            )
            if done.returncode != 0:
                pytest.fail(f"npm ci in {WEB} failed:\n{done.stderr[-2000:]}")
    return AXE.read_text()


def violations(page: Any) -> list[str]:
    """The serious and critical axe-core violations on the page as it is now, in words."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(axe_source() + "\n;window.axe = axe;")
    found = page.evaluate(
        "async () => (await window.axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(n["target"]) for n in v["nodes"][:5])
        for v in found
        if v["impact"] in SERIOUS
    ]
