"""Workers: threads that claim nodes, run them under a lease, and record the outcome.

A worker finishing a node claims the next ready one in the same transaction,
so a sequential pipeline costs one commit per step. A heartbeat thread
extends the leases of running nodes and flushes their output, so logs can be
read while a step runs; a lease that could not be extended (the node was
fenced off) or a cancellation stops the step's process group.

An idle worker waits on its own event, not on a timer: a transaction anywhere
in this process that makes a node ready claims it for the idle worker in that
same transaction and hands it over as it commits (engine/wakeup.py), so the
step starts without a wake-up round-trip or a claim transaction of its own.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from interlock.domain.records import Release
from interlock.engine.core import Engine
from interlock.engine.recovery import recover
from interlock.engine.steps import Job, claim, complete, execute, prepare
from interlock.engine.wakeup import Claimed, Idle, Slot
from interlock.executors.base import StepResult
from interlock.executors.registry import plugins
from interlock.storage.tx import Tx

log = logging.getLogger(__name__)


class WorkerPool:
    """``count`` worker threads and one heartbeat thread in this process."""

    def __init__(self, engine: Engine, count: int, name: str = "worker") -> None:
        self.engine = engine
        self.count = count
        self.name = name
        self._stopping = threading.Event()
        self._hurry = threading.Event()
        self._stopped_at_shutdown: set[int] = set()  # node ids
        self._recorded: set[int] = set()  # of those, the ones _complete recorded after all
        self._signalled: list[Job] = []  # ended by a stop signal sent to them during the drain
        self._threads: list[threading.Thread] = []
        self._jobs: dict[int, Job] = {}
        self._releases: dict[int, Release] = {}  # immutable parts of releases, by id
        self._jobs_lock = threading.Lock()
        self._poke = threading.Event()
        # Held while the heartbeat flushes output, so a step's last output is
        # never written before output the heartbeat took earlier.
        self._flush_lock = threading.Lock()
        self._idle = Idle()  # the workers waiting for work, to hand ready nodes to
        engine.db.on_commit(self._on_commit)
        engine.db.ready_hooks.append(self._hand_over)

    def _on_commit(self, channels: set[str]) -> None:
        if "cancel" in channels:
            self._poke.set()

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        # What a process's first steps would pay otherwise (tens of milliseconds): the
        # statements every step runs compiled, and the plug-in executors looked up.
        self.engine.db.warm()
        plugins()
        for i in range(self.count):
            thread = threading.Thread(
                target=self._loop,
                args=(f"{self.engine.instance}:{self.name}-{i}",),
                name=f"{self.name}-{i}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        beat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        beat.start()
        self._threads.append(beat)

    def stop(self, drain: float = 10.0) -> None:
        """Stop claiming; let running steps finish for ``drain`` seconds, then stop them.

        A step still running after the drain has its process group stopped
        (SIGTERM, SIGKILL after ``kill_grace``) and is recovered at once, as if
        its worker had died: an idempotent step is ready to run again, any
        other needs attention. :meth:`hurry` ends the drain early.
        """
        self._stopping.set()
        self._idle.close()
        self.engine.notifier.notify()
        if self.running_jobs():
            log.info("stopping: waiting up to %gs for %d running steps", drain, self.running_jobs())
        deadline = time.monotonic() + drain
        while self.running_jobs() and not self._hurry.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._hurry.wait(min(0.05, left))
        with self._jobs_lock:
            stopped = [job for job in self._jobs.values() if not job.lost]
            self._stopped_at_shutdown.update(job.node.id for job in stopped)
            for job in self._jobs.values():
                job.lost = True  # not completed (unless it succeeded): recovered below
                job.ctx.cancelled.set()
        for job in stopped:
            job.sink.write("\n[interlock: the server is stopping]\n")
        self._poke.set()
        joined = time.monotonic() + self.engine.settings.kill_grace + 5
        for thread in self._threads:
            thread.join(timeout=max(0.0, joined - time.monotonic()))
        with self._jobs_lock:
            stopped += [job for job in self._signalled if job not in stopped]
            stopped = [job for job in stopped if job.node.id not in self._recorded]
        if stopped:
            self._hand_back(stopped)
        if self._hand_over in self.engine.db.ready_hooks:
            self.engine.db.ready_hooks.remove(self._hand_over)

    def begin_stop(self) -> None:
        """Claim nothing more (the process got its stop signal); :meth:`stop` does the rest."""
        self._stopping.set()
        self._idle.close()
        self.engine.notifier.notify()

    def hurry(self) -> None:
        """End :meth:`stop`'s drain now: stop the running steps at once."""
        self._hurry.set()

    def _hand_back(self, stopped: list[Job]) -> None:
        """Record the steps stopped at shutdown: their last output, then recovery."""
        with self._jobs_lock:
            ended = [job for job in stopped if job.node.id not in self._jobs]
        for job in stopped:
            if job.node.id in self._jobs:
                log.warning(
                    "%s did not stop in time; it is recovered at the next start "
                    "(or once its lease expires)",
                    job.node.key,
                )
        tails = {job.node.id: job.sink.finish()[0] for job in ended}

        def flush(tx: Tx) -> list[int]:
            ours = []
            for job in ended:
                node = tx.get_node(job.node.id, lock=True)
                if node is None or node.fence != job.node.fence:
                    continue  # fenced off meanwhile: someone else holds it now
                if tails[job.node.id]:
                    tx.append_log(job.node.id, job.node.attempt, tails[job.node.id])
                ours.append(job.node.id)
            return ours

        try:
            recovered = recover(
                self.engine,
                only=self.engine.db.run(flush),
                reason="the server stopped while it ran (it was stopped after the drain time)",
            )
        except Exception:
            log.exception("could not record the steps stopped at shutdown; the next start will")
            return
        for key, target in recovered:
            log.warning("stopped %s at shutdown: now %s", key, target)

    def running_jobs(self) -> int:
        with self._jobs_lock:
            return len(self._jobs)

    # -- the worker loop ---------------------------------------------------------
    def _loop(self, worker: str) -> None:
        engine = self.engine
        slot = Slot(worker)
        searched = False  # the last transaction looked for work and found none
        while not self._stopping.is_set():
            if not searched:
                seen = engine.notifier.generation()
                try:
                    claimed = engine.db.run(lambda tx: claim(tx, engine, worker, self._releases))
                except Exception:
                    log.exception("claiming work failed; retrying")
                    self._stopping.wait(engine.settings.poll_interval)
                    continue
            searched = False
            if claimed is None:
                claimed = self._wait_idle(slot, seen)
                if claimed is None:
                    continue
            while claimed is not None and not self._stopping.is_set():
                job = prepare(engine, *claimed)
                result = self._run(job)
                # A notification from here on wakes the worker should it go idle.
                seen = engine.notifier.generation()
                claimed, searched = self._complete(job, result, worker)
            if claimed is not None:  # claimed while stopping: give it back at once
                self._release(claimed)

    def _wait_idle(self, slot: Slot, seen: int) -> Claimed | None:
        """Wait for a wake-up (None: claim again) or for a node claimed for this worker."""
        notifier = self.engine.notifier
        timeout = self._idle_timeout()
        if not self._idle.enter(slot):
            return None
        notifier.watch(slot.wake, seen)
        try:
            slot.wake.wait(timeout)
        finally:
            notifier.unwatch(slot.wake)
        if not self._idle.leave(slot):
            return None
        # A transaction reserved this worker: it hands its claim over as it ends, commit
        # or rollback (Database.transaction). No timeout: a claim handed over after the
        # worker stopped waiting would hold a lease no one runs.
        slot.handed.wait()
        return slot.item

    def _hand_over(self, tx: Tx) -> None:
        """Claim the nodes ``tx`` made ready for idle workers, in ``tx`` (a ready hook).

        Each claim is the one a worker would make (lease, attempt, ``step.started``
        in the same commit as what readied the node); the worker gets it once
        ``tx`` committed, and nothing if it rolled back.
        """
        while tx.readied:
            slot = self._idle.reserve()
            if slot is None:
                return
            try:
                claimed = claim(tx, self.engine, slot.worker, self._releases)
            except BaseException:
                slot.give(None)
                raise
            tx.ended.append(_handing(slot, claimed))
            if claimed is None:
                return

    def _idle_timeout(self) -> float:
        poll = self.engine.settings.poll_interval
        try:
            with self.engine.db.read() as tx:
                at = tx.next_ready_at()
        except Exception:
            return poll
        if at is None:
            return poll
        return max(0.01, min(poll, (at - self.engine.clock.now()).total_seconds()))

    def _run(self, job: Job) -> StepResult:
        with self._jobs_lock:
            self._jobs[job.node.id] = job
        try:
            return execute(self.engine, job)
        finally:
            with self._jobs_lock:
                self._jobs.pop(job.node.id, None)
            if self._stopping.is_set():
                self._poke.set()  # the heartbeat ends once no step runs

    def _complete(self, job: Job, result: StepResult, worker: str) -> tuple[Claimed | None, bool]:
        """Record the result; claim the next node in the same transaction.

        Returns what was claimed, and whether that transaction looked for work
        (so finding none, the worker waits at once, without looking again).
        """
        engine = self.engine
        if job.lost and not (result.ok and job.node.id in self._stopped_at_shutdown):
            return None, False  # a step that succeeded as the server stopped it is recorded
        signalled = _stopped_by_signal(result) and not job.ctx.cancelled.is_set()
        if signalled:
            # Nothing in Interlock sent that signal. A service manager stopping the server
            # sends it to every process of the unit (systemd's KillMode=control-group),
            # steps included, and the step may end before the server heard its own.
            self._stopping.wait(SIGNAL_GRACE)
        if signalled and self._stopping.is_set():
            # Killed with the server, not failed: handed back with the steps stopped
            # after the drain (recovered as after a crash).
            job.lost = True
            with self._jobs_lock:
                self._signalled.append(job)
            return None, False
        if job.lost:
            with self._jobs_lock:
                self._recorded.add(job.node.id)
        with self._flush_lock:  # the job left _jobs; wait out a flush that took its output
            pass
        claim_next = not self._stopping.is_set()

        def work(tx: Tx) -> Claimed | None:
            before = set(tx.readied)  # (a group commit's other works ready nodes too)
            # With a worker of this pool idle, no older ready node waits for one: this
            # worker goes on with the node its step makes ready, if that is the only one.
            go_on = worker if claim_next and self._idle.waiting() else None
            going = complete(tx, engine, job, result, go_on=go_on)
            ahead, tx.leased_ahead = tx.leased_ahead, None
            if ahead is not None:  # leased to this worker as it became ready (SQLite)
                node, at = ahead
                kept = going or tx.require_deployment(node.deployment_id)
                return claim(tx, engine, worker, self._releases, ahead=(node, at, kept))
            if not claim_next:
                return None
            keep = None
            made_ready = tx.readied - before
            if going is not None and len(made_ready) == 1 and self._idle.waiting():
                # The step readied just the next node of its deployment, and a worker of
                # this pool is idle, so no older ready node waits for one: go on with it.
                keep = (next(iter(made_ready)), going)
            return claim(tx, engine, worker, self._releases, keep=keep)

        delay = 0.2
        deadline = time.monotonic() + engine.settings.lease_ttl
        while True:
            try:
                # One commit for concurrent completions.
                return engine.db.run_grouped(work), claim_next
            except Exception:
                if time.monotonic() > deadline:
                    log.exception(
                        "could not record the result of %s; its lease will expire "
                        "and recovery takes over",
                        job.node.key,
                    )
                    return None, False
                log.warning(
                    "recording the result of %s failed; retrying", job.node.key, exc_info=True
                )
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _release(self, claimed: Claimed) -> None:
        node = claimed[0]
        try:
            recover(
                self.engine,
                only=[node.id],
                reason="the worker stopped before running it",
                unstarted=True,
            )
        except Exception:
            log.exception("could not hand back %s; its lease will expire", node.key)

    # -- heartbeat ---------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        engine = self.engine
        while not (self._stopping.is_set() and not self.running_jobs()):
            self._poke.wait(engine.settings.tick)
            self._poke.clear()
            try:
                self.heartbeat()
            except Exception:
                log.exception("heartbeat failed")

    def heartbeat(self) -> None:
        """Extend the leases of running nodes, flush their new output, stop cancelled runs."""
        with self._flush_lock:
            self._beat()

    def _beat(self) -> None:
        engine = self.engine
        with self._jobs_lock:
            jobs = list(self._jobs.values())
        if not jobs:
            return
        expires = engine.clock.now() + timedelta(seconds=engine.settings.lease_ttl)
        output = {j.node.id: j.sink.take() for j in jobs}

        def work(tx: Tx) -> tuple[set[int], set[int]]:
            for job in jobs:
                if output[job.node.id]:
                    tx.append_log(job.node.id, job.node.attempt, output[job.node.id])
            found: tuple[set[int], set[int]] = tx.extend_leases(
                [(j.node.id, j.node.fence) for j in jobs], expires
            )
            return found

        lost, cancel = engine.db.run(work)
        for job in jobs:
            if job.node.id in lost:
                log.warning("lease on %s lost; stopping it", job.node.key)
                job.lost = True
                job.ctx.cancelled.set()
            elif job.node.id in cancel:
                job.ctx.cancelled.set()


def _handing(slot: Slot, claimed: Claimed | None) -> Callable[[bool], None]:
    """What hands ``claimed`` to ``slot`` once its transaction ended (nothing on a rollback)."""

    def ended(committed: bool) -> None:
        slot.give(claimed if committed else None)

    return ended


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGKILL)
SIGNAL_GRACE = 1.0  # seconds a signalled step waits for the server's own stop signal


def _stopped_by_signal(result: StepResult) -> bool:
    """The step's process ended by a stop signal (as the signal, or as a shell's 128 + N)."""
    code = result.exit_code
    return (
        not result.ok
        and not result.stopped
        and code is not None
        and any(code in (-sig, 128 + sig) for sig in _STOP_SIGNALS)
    )
