"""Who a finished step wakes: the other workers only when there is work they can take.

A worker records a step's success and claims its next node in the same
transaction; these tests run that transaction by hand and look at what the
commit announced to the workers ("work" wakes idle ones).
"""

from __future__ import annotations

from typing import Any

from interlock.engine.steps import claim, complete, prepare
from interlock.executors.base import StepResult

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api:
    deploy:
      - {name: a, run: "true"}
      - {name: b, run: "true"}
  web:
    depends_on: [api]
    deploy: [{name: a, run: "true"}]
  db:
    depends_on: [api]
    deploy: [{name: a, run: "true"}]
"""


def _first_claim(pilot: Any) -> Any:
    claimed = pilot.engine.db.run(lambda tx: claim(tx, pilot.engine, "host:1:w-0"))
    assert claimed is not None
    return claimed


def _succeed_and_claim_next(pilot: Any, claimed: Any) -> tuple[Any, list[set[str]]]:
    """What a worker does when a step succeeds; returns its next node and the commit's news."""
    engine = pilot.engine
    job = prepare(engine, *claimed)
    announced: list[set[str]] = []
    engine.db.on_commit(announced.append)

    def work(tx: Any) -> Any:
        complete(tx, engine, job, StepResult(ok=True))
        return claim(tx, engine, "host:1:w-0")

    following = engine.db.run(work)
    return following, announced


def _woken(announced: list[set[str]]) -> bool:
    return any("work" in channels for channels in announced)


def test_the_worker_that_takes_the_step_it_readied_wakes_no_one(pilot):
    pilot.config(CONFIG)
    pilot.release("api@1.0")
    first = _first_claim(pilot)
    assert first[0].key == "api/a"
    following, announced = _succeed_and_claim_next(pilot, first)
    assert following[0].key == "api/b"
    assert not _woken(announced)  # nothing else became ready: idle workers sleep on


def test_a_step_that_readies_two_wakes_the_others_for_the_one_it_leaves(pilot):
    pilot.config(CONFIG)
    pilot.release("api@1.0", "web@1.0", "db@1.0")
    first = _first_claim(pilot)
    second, _ = _succeed_and_claim_next(pilot, first)
    assert second[0].key == "api/b"
    third, announced = _succeed_and_claim_next(pilot, second)
    assert third[0].key in ("web/a", "db/a")
    assert _woken(announced)  # the other one is ready for another worker


def test_taking_an_older_ready_step_still_wakes_the_others_for_the_new_one(pilot):
    pilot.config(CONFIG)
    pilot.release("api@1.0")
    first = _first_claim(pilot)
    pilot.release("web@1.0")  # ready now, so older than api/b will be
    following, announced = _succeed_and_claim_next(pilot, first)
    assert following[0].key == "web/a"  # the oldest ready node is taken first
    assert _woken(announced)  # api/b waits for another worker, who must hear of it
