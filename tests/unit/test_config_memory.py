"""What parsing a config leaves in memory: the config, and nothing that waits for the collector.

`interlock server` parses its config with the collector off (gc.disable() until it
freezes its start-up heap), so anything a parse leaves in a reference cycle would be
kept for as long as the server runs, and what the config is made of is kept between
the parse's own objects. With 10,000 services the config held 56 MB of the server's
memory where its objects are 22 MB (bench/waiting.py --releases 10000).
"""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

from interlock.spec.loader import parse_config


def config_text(services: int) -> str:
    lines = ["version: 1", "environments: [{name: prod}]", "services:"]
    for n in range(services):
        after = f", depends_on: [svc{n - 1}]" if n else ""
        lines.append(
            f"  svc{n}: {{deploy: [{{name: go, uses: noop, idempotent: true, timeout: 5m}}]"
            f"{after}}}"
        )
    return "\n".join(lines) + "\n"


def cyclic_garbage(services: int) -> int:
    """How many objects a parse of ``services`` services leaves only the collector can free."""
    text = config_text(services)
    gc.collect()
    gc.disable()
    try:
        config = parse_config(text, Path("interlock.yaml"))
        found = gc.collect()
    finally:
        gc.enable()
    assert len(config.services) == services
    return found


def test_a_parse_leaves_no_cyclic_garbage_that_grows_with_the_config():
    # PyYAML's constructor kept each non-text scalar's node and its two marks (a cycle
    # with the loader), and the depends_on check's recursive closure held every
    # service's depends_on list: 1,600 objects more for 400 services.
    cyclic_garbage(10)  # the first parse in a process leaves some of what it caches
    assert cyclic_garbage(400) == cyclic_garbage(10)


def test_the_parsed_config_is_made_after_the_parse_let_go_of_its_own_objects():
    """The config a server keeps is rebuilt (from a pickle) once the parse's objects are gone,
    so it is not spread over the memory they took: the memory it holds was allocated by
    the unpickling, not while pydantic validated the YAML's data."""
    text = config_text(400)
    tracemalloc.start()
    try:
        config = parse_config(text, Path("interlock.yaml"))
        snapshot = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    by_file = {s.traceback[0].filename: s.size for s in snapshot.statistics("filename")}
    validated = sum(size for name, size in by_file.items() if "pydantic" in name)
    loader = sum(size for name, size in by_file.items() if name.endswith("spec/loader.py"))
    assert len(config.services) == 400
    assert loader > 400 * 1000  # the services' models, about 2 kB each
    assert validated < loader / 20  # was 600 kB made by pydantic, none by the loader
