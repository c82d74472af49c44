"""Long-polls of a release (what `interlock release watch` and CI jobs wait on).

They answer the moment this process commits a change to the release, find
changes other processes commit with one shared poll, and a crowd of watchers
costs the database what one does.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import event

from interlock.domain.bounds import MAX_ID
from interlock.domain.records import Item
from interlock.engine.releases import cancel_release, create_release
from interlock.storage.db import Database
from tests.helpers import wait_for
from tests.support.api import Api, served

CONFIG = """\
version: 1
environments: [{name: staging}]
services:
  api: {deploy: [{name: one, run: "true"}]}
"""


def _release(pilot: Any, n: int = 0) -> int:
    made = create_release(
        pilot.engine, pilot.configs, actor="ann", items=[Item("api", f"1.{n}")], reason="T-1"
    )
    return int(made.id)


def _poll(client: Any, release_id: int, since: int, wait: float) -> tuple[dict[str, Any], float]:
    began = time.monotonic()
    answer = client.get(f"/api/v1/releases/{release_id}", params={"since": since, "wait": wait})
    assert answer.status_code == 200, answer.text
    return answer.json(), time.monotonic() - began


def test_answers_at_once_when_this_process_commits_and_waits_out_otherwise(pilot):
    with served(pilot, CONFIG) as api:
        client = api.admin()
        release_id = _release(pilot)
        first = client.get(f"/api/v1/releases/{release_id}").json()

        # Behind already: answers without waiting.
        current, took = _poll(client, release_id, first["revision"] - 1, 30)
        assert current["revision"] == first["revision"] and took < 5

        # Nothing changes: the wait runs out and the same revision comes back.
        current, took = _poll(client, release_id, first["revision"], 0.6)
        assert current["revision"] == first["revision"] and took >= 0.55

        # A commit in this process (a cancel through the engine) answers a 30 s wait
        # by itself: the shared poll is slowed to a minute so it cannot be what answers.
        api.state.watch.interval = 60
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(_poll, client, release_id, first["revision"], 30)
            time.sleep(0.5)
            assert not waiting.done()
            cancelled_at = time.monotonic()
            cancel_release(pilot.engine, release_id, actor="ann", reason="T-2: stop")
            current, _ = waiting.result(timeout=10)
        assert current["state"] == "cancelled"
        assert current["revision"] > first["revision"]
        assert time.monotonic() - cancelled_at < 5


def test_a_change_committed_elsewhere_is_found_by_the_shared_poll(pilot):
    api = Api(pilot.engine, pilot.configs, pilot.config(CONFIG), workers=0).start()
    other = Database(pilot.engine.db.url)  # another process's handle: its commits fire no hook here
    try:
        client = api.admin()
        release_id = _release(pilot)
        revision = client.get(f"/api/v1/releases/{release_id}").json()["revision"]
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(_poll, client, release_id, revision, 30)
            time.sleep(0.5)
            with other.transaction() as tx:
                tx.touch_release(release_id, pilot.engine.clock.now())
            current, took = waiting.result(timeout=10)
        assert current["revision"] == revision + 1
        assert took < 5
    finally:
        other.dispose()
        api.stop()


def test_many_watchers_share_one_read_per_interval(pilot):
    api = Api(pilot.engine, pilot.configs, pilot.config(CONFIG), workers=0).start()
    reads: list[tuple[float, int]] = []  # (when, how many ids it read)
    recording = threading.Event()
    lock = threading.Lock()

    def count(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if recording.is_set() and "releases.revision" in statement and "FROM releases" in statement:
            with lock:
                reads.append((time.monotonic(), len(parameters or ())))

    event.listen(pilot.engine.db.engine, "before_cursor_execute", count)
    try:
        client = api.admin()
        ids = [_release(pilot, n) for n in range(40)]
        revisions = {i: client.get(f"/api/v1/releases/{i}").json()["revision"] for i in ids}
        watchers = 40
        recording.set()
        with ThreadPoolExecutor(watchers) as pool:
            waiting = [pool.submit(_poll, client, i, revisions[i], 8) for i in ids]

            # Each watcher reads its own release as it starts waiting; the window opens
            # once one shared read covered all 40 and no watcher read alone for 0.5 s
            # (on a loaded machine starting them takes a while), and it ends before the
            # first of them answers (8 s).
            def all_waiting() -> bool:
                with lock:
                    shared = any(n == watchers for _, n in reads)
                    alone = [t for t, n in reads if n == 1]
                return shared and bool(alone) and time.monotonic() - alone[-1] > 0.5

            wait_for(all_waiting, timeout=5, interval=0.02, message="every watcher to wait")
            window_began = time.monotonic()
            time.sleep(1.5)
            window_ended = time.monotonic()
            answers = [w.result(timeout=15) for w in waiting]
        assert all(a["revision"] == revisions[a["id"]] for a, _ in answers)
        in_window = [t for t, _ in reads if window_began <= t <= window_ended]
        # One read per 0.2 s for all 40 together (a few more for a slow round);
        # polling each watcher on its own would be 40 x 7.5 = 300 reads.
        assert len(in_window) <= 12, len(in_window)
    finally:
        event.remove(pilot.engine.db.engine, "before_cursor_execute", count)
        api.stop()


def test_a_closed_watch_leaves_the_database_s_commit_hooks(pilot):
    path = pilot.config(CONFIG)
    before = len(pilot.engine.db._release_listeners)
    api = Api(pilot.engine, pilot.configs, path, workers=0).start()
    assert len(pilot.engine.db._release_listeners) == before + 1
    api.state.watch.close()  # what a stopping server does
    assert len(pilot.engine.db._release_listeners) == before
    api.stop()


def test_a_release_that_does_not_exist_is_a_404_at_once_whatever_the_wait(pilot):
    with served(pilot, CONFIG) as api:
        client = api.admin()
        for since, status in ((-1, 404), (0, 404), (MAX_ID, 404), (-2, 422), (2**62, 422)):
            began = time.monotonic()
            answer = client.get("/api/v1/releases/999", params={"since": since, "wait": 20})
            assert answer.status_code == status, answer.text
            if status == 404:
                assert answer.json()["detail"] == "no release 999"
            assert time.monotonic() - began < 5, since
