"""Approvals: structured sign-off, bound to the exact content of a release.

An approval names the release, the environment and the gate, who gave it, a
comment, when it expires, and the hash of what was approved (services,
versions, digests, config version). Approving twice is harmless; the gate is
decided under a lock on its node, so concurrent approvals clear it exactly once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from interlock.audit.chain import canonical
from interlock.domain.records import Approval, Deployment, Node, Release, User
from interlock.domain.states import TERMINAL_DEPLOYMENT, NodeState
from interlock.engine.access import Access
from interlock.engine.core import SYSTEM_ACTOR, Engine
from interlock.engine.gate_outcome import apply_gate_decision
from interlock.engine.identity import Principal, principal_of
from interlock.errors import Conflict, Forbidden, InvalidInput, NotFound
from interlock.gates import Decision
from interlock.gates.approval import Slot, SlotStatus, assign, counting, satisfied, slots
from interlock.spec.model import Config
from interlock.storage.approvals import GateReads
from interlock.storage.tx import Tx


def content_hash(release: Release) -> str:
    """What an approval is bound to: every item with its digest, and the config version."""
    body = {
        "items": [[i.service, i.version, i.digest] for i in release.items],
        "config_version": release.config_version,
    }
    return hashlib.sha256(canonical(body).encode()).hexdigest()


def _config(engine: Engine) -> Config | None:
    active = engine.configs.loaded()
    return active.config if active is not None else None


def _stored_group(slot: Slot) -> tuple[str, str]:
    """The (kind, group) of the stored memberships that fill ``slot``."""
    return ("role" if slot.kind == "role" else "team"), slot.group


def members_lookup(
    tx: Tx, engine: Engine, stored: dict[tuple[str, str], set[str]] | None = None
) -> Callable[[Slot], set[str]]:
    """Who is in a slot's group: the config's roles and teams plus those stored by API.

    ``stored``: the stored members of some groups, already read in ``tx``.
    """
    config = _config(engine)
    cache: dict[tuple[str, str], set[str]] = {}

    def members(slot: Slot) -> set[str]:
        kind = "role" if slot.kind == "role" else "team"
        key = (kind, slot.group)
        if key not in cache:
            declared = {}
            if config is not None:
                declared = config.roles if kind == "role" else config.teams
            found = stored.get(key) if stored is not None else None
            if found is None:
                found = tx.members(kind, slot.group)
            cache[key] = set(declared.get(slot.group, [])) | found
        return cache[key]

    return members


def gate_members(
    tx: Tx, engine: Engine, node: Node | None, read: GateReads | None = None
) -> Callable[[Slot], set[str]]:
    """Who may fill a slot of the gate ``node``: its group, plus every group the waiting
    gate was escalated to (``notifications.gates.escalate`` adds approvers).

    ``read``: the gate's escalations and groups' members, already read in ``tx``
    (:meth:`Tx.gate_reads`).
    """
    members = members_lookup(tx, engine, read.members if read is not None else None)
    if read is not None:
        escalated = read.escalations
    else:
        escalated = tx.gate_escalations_of(node.id) if node is not None else []
    if not escalated:
        return members
    extra: set[str] = set()
    for kind, group in escalated:
        extra |= members(Slot(kind=kind, group=group, count=1))

    def with_escalation(slot: Slot) -> set[str]:
        return members(slot) | extra

    return with_escalation


def people_lookup(tx: Tx, engine: Engine) -> Callable[[str], tuple[User, Principal] | None]:
    """A stored user and its Principal (config and API groups), read once per name in ``tx``."""
    config = _config(engine)
    roles = config.roles if config is not None else {}
    teams = config.teams if config is not None else {}
    cache: dict[str, tuple[User, Principal] | None] = {}

    def person(name: str) -> tuple[User, Principal] | None:
        if name not in cache:
            user = tx.get_user(name)
            cache[name] = None if user is None else (user, principal_of(tx, user, roles, teams))
        return cache[name]

    return person


def may_approve(
    tx: Tx,
    engine: Engine,
    environment: str,
    services: list[str],
    people: Callable[[str], tuple[User, Principal] | None] | None = None,
    signer: str | None = None,
) -> Callable[[str], bool]:
    """Whether a person holds the approve permission there now (config and API groups).

    ``signer``: the one giving an approval in this transaction, already checked
    (``_require_signer``): holds it without reading them again.
    """
    access = Access(engine.configs)
    person = people or people_lookup(tx, engine)

    def check(name: str) -> bool:
        if name == signer:
            return True
        found = person(name)
        if found is None or found[0].disabled:  # gone or disabled: holds no permission
            return False
        who = found[1]
        return who.is_person() and access.allows(
            who, "approve", environment=environment, services=services
        )

    return check


def owners_of(engine: Engine, release: Release) -> list[str]:
    config = _config(engine)
    if config is None:
        return []
    owners = {
        config.services[i.service].owner for i in release.items if i.service in config.services
    }
    return sorted(owner for owner in owners if owner)


def gate_status(
    tx: Tx,
    engine: Engine,
    node: Node,
    environment: str,
    release: Release,
    now: datetime,
    people: Callable[[str], tuple[User, Principal] | None] | None = None,
    *,
    given: list[Approval] | None = None,
    members: Callable[[Slot], set[str]] | None = None,
    signer: str | None = None,
) -> tuple[list[SlotStatus], list[Any], list[Any]]:
    """(slot status, approvals that count, rejections) of an approval gate right now.

    ``people`` (from :func:`people_lookup`) shares the approvers read across gates;
    ``given`` (the gate's approvals) and ``members`` (:func:`gate_members`) are what
    the caller already read in ``tx``; ``signer`` as :func:`may_approve` takes it.
    """
    if given is None:
        given = tx.approvals_for(release.id, environment, node.key)
    bound_to = content_hash(release)
    valid = counting(given, content_hash=bound_to, now=now, authors=release.authors())
    # To count, an approver still needs the approve permission there for every service.
    allowed = may_approve(
        tx, engine, environment, [i.service for i in release.items], people, signer
    )
    valid = [a for a in valid if allowed(a.approver)]
    rejections = [a for a in given if a.decision == "reject" and a.content_hash == bound_to]
    gate_slots = slots(node.spec.get("rules", []), owners_of(engine, release))
    if members is None:
        members = gate_members(tx, engine, node)
    status = assign(gate_slots, [a.approver for a in valid], members)
    for entry in status:
        entry.eligible = sorted(members(entry.slot) - release.authors() - set(entry.given_by))
    return status, valid, rejections


def decide_approval(
    tx: Tx,
    engine: Engine,
    node: Node,
    deployment: Deployment,
    release: Release | None,
    now: datetime,
    *,
    given: list[Approval] | None = None,
    members: Callable[[Slot], set[str]] | None = None,
    signer: str | None = None,
) -> Decision:
    """Pass when every rule has its people; fail on a rejection; otherwise wait for one.

    ``given``, ``members`` and ``signer``: as :func:`gate_status` takes them.
    """
    if release is None:
        return Decision("pass", "nothing to approve")
    status, valid, rejections = gate_status(
        tx,
        engine,
        node,
        deployment.environment or "",
        release,
        now,
        given=given,
        members=members,
        signer=signer,
    )
    detail = {
        "rules": [s.as_dict() for s in status],
        "approvals": [
            {
                "by": a.approver,
                "at": a.created_at.isoformat(),
                "expires_at": a.expires_at.isoformat() if a.expires_at else None,
                "comment": a.comment,
            }
            for a in valid
        ],
    }
    if rejections:
        first = rejections[0]
        return Decision("fail", f"rejected by {first.approver}: {first.comment}", detail=detail)
    if satisfied(status):
        names = ", ".join(sorted({a for s in status for a in s.given_by}))
        return Decision("pass", f"approved by {names}", detail=detail)
    missing = "; ".join(f"{s.slot.describe()} ({s.missing} more)" for s in status if s.missing)
    return Decision("wait", f"waiting for approval: {missing}", detail=detail)


def approval_gates(release: Release, environment: str) -> list[str]:
    for env in release.planned.environments:
        if env.name == environment:
            return [n.name for n in env.nodes if n.executor == "approval"]
    raise InvalidInput(
        f"release {release.id} does not go to {environment!r} (its route: "
        + ", ".join(release.route)
        + ")",
        field="environment",
    )


def _pick_environment(release: Release, reached: list[tuple[Deployment, Node]]) -> str:
    """The environment whose approval gate the release waits on now.

    ``reached``: the release's approval gates (``Tx.approval_context``), oldest first.
    """
    for deployment, node in reached:
        if deployment.state not in TERMINAL_DEPLOYMENT and node.state is NodeState.WAITING:
            return str(deployment.environment)
    if release.environment and approval_gates(release, release.environment):
        return release.environment  # where it is now; its gate may have just cleared
    raise InvalidInput(
        f"release {release.id} is not waiting for an approval right now; name the "
        "environment with --env to approve ahead of time",
        field="environment",
    )


def give(
    engine: Engine,
    access: Access,
    who: Principal,
    *,
    release_id: int,
    environment: str | None,
    gate: str | None,
    decision: str,
    comment: str | None,
    via: str | None = None,
) -> dict[str, Any]:
    """Record an approval or a rejection, and decide the gate at once if it is waiting.

    ``via`` says where it came from besides the API (``link``, ``slack``): the audit keeps it.
    """
    if decision not in ("approve", "reject"):
        raise InvalidInput("decision is `approve` or `reject`", field="decision")
    comment = (comment or "").strip() or None
    if decision == "reject" and not comment:
        raise InvalidInput("a rejection needs a comment that says why", field="comment")
    now = engine.clock.now()

    def work(tx: Tx) -> dict[str, Any]:
        # One round trip on PostgreSQL: the release, the config's version and the
        # release's approval gates, locked (one read for the two look-ups below).
        release, reached = tx.approval_context(release_id)
        if release is None or not access.can_read(who, [i.service for i in release.items]):
            raise NotFound(f"no release {release_id}")
        env, name = _named_gate(release, environment, gate, reached)
        _require_signer(access, who, release, env, decision)
        deployment, node = _gate_node(env, f"gate/{name}", reached)
        plan_spec = _plan_spec(release, env, f"gate/{name}")
        gate_slots = slots(plan_spec.get("rules", []), owners_of(engine, release))
        if node is not None and node.state in (
            NodeState.SUCCEEDED,
            NodeState.FAILED,
            NodeState.SKIPPED,
            NodeState.CANCELLED,
        ):
            _require_in_slots(who, gate_slots, env, name, gate_members(tx, engine, node))
            raise Conflict(f"the {name} gate of {env} is already {node.state.value}")
        # One more round trip: the gate's approvals, escalations and the members of its
        # groups, and the decision stored (rolled back if the check below refuses it).
        expires = plan_spec.get("expires")
        read = tx.gate_reads(
            release.id,
            env,
            f"gate/{name}",
            node.id if node is not None else None,
            [_stored_group(s) for s in gate_slots],
            record={
                "release_id": release.id,
                "environment": env,
                "gate": f"gate/{name}",
                "approver": who.name,
                "decision": decision,
                "comment": comment,
                "content_hash": content_hash(release),
                "at": now,
                "expires_at": now + timedelta(seconds=float(expires)) if expires else None,
            },
        )
        members = gate_members(tx, engine, node, read)
        _require_in_slots(who, gate_slots, env, name, members)
        given = read.approvals
        stored = read.stored
        if stored is not None:
            _audit_record(tx, who, release, env, name, decision, comment, now, stored, via)
        if stored is not None:  # what the gate is decided on: as if read again
            given = sorted([*(a for a in given if a.id != stored.id), stored], key=lambda a: a.id)
        state = node.state.value if node is not None else "not reached yet"
        if node is not None and deployment is not None and node.state is NodeState.WAITING:
            state = _decide(
                tx,
                engine,
                node,
                deployment,
                release,
                now,
                given=given,
                members=members,
                signer=who.name,
            )
        return {
            "release": release_id,
            "environment": env,
            "gate": name,
            "decision": decision,
            "recorded": stored is not None,
            "gate_state": state,
        }

    result: dict[str, Any] = engine.db.run(work)
    if result["recorded"] and result["gate_state"] not in ("succeeded", "failed", "waiting"):
        # Given ahead of time. On PostgreSQL the gate may have come to wait while this
        # transaction ran, its approvals read before this one committed: nothing
        # else would look at them again, so look once more now that they are seen.
        # (SQLite has one writer: the gate waited before, or reads them after.)
        if engine.db.dialect == "postgresql":
            result["gate_state"] = (
                engine.db.run(
                    lambda tx: _decide_if_waiting(
                        tx, engine, release_id, result["environment"], result["gate"]
                    )
                )
                or result["gate_state"]
            )
    return result


def _decide_if_waiting(tx: Tx, engine: Engine, release_id: int, env: str, name: str) -> str | None:
    """Decide the gate ``env``/``name`` of release ``release_id`` if it waits now; its
    state then (``None`` if it does not wait)."""
    release, reached = tx.approval_context(release_id)
    deployment, node = _gate_node(env, f"gate/{name}", reached)
    if release is None or node is None or deployment is None:
        return None
    if node.state is not NodeState.WAITING:
        return None
    return _decide(tx, engine, node, deployment, release, engine.clock.now())


def _decide(
    tx: Tx,
    engine: Engine,
    node: Node,
    deployment: Deployment,
    release: Release,
    now: datetime,
    **reads: Any,
) -> str:
    """Decide the waiting gate ``node`` and apply the verdict; the gate's state then.
    ``reads``: what :func:`decide_approval` may be given instead of reading it."""
    verdict = decide_approval(tx, engine, node, deployment, release, now, **reads)
    apply_gate_decision(tx, engine, node, verdict, now, actor=SYSTEM_ACTOR, deployment=deployment)
    return {"pass": "succeeded", "fail": "failed"}.get(verdict.outcome, "waiting")


def _named_gate(
    release: Release,
    environment: str | None,
    gate: str | None,
    reached: list[tuple[Deployment, Node]],
) -> tuple[str, str]:
    """The environment and approval gate a decision is about: given, or the only one.

    ``reached``: the release's approval gates (``Tx.approval_context``).
    """
    env = environment or _pick_environment(release, reached)
    gates = approval_gates(release, env)
    if not gates:
        raise Conflict(f"{env} has no approval gate; nothing to approve there")
    name = gate or (gates[0] if len(gates) == 1 else None)
    if name not in gates:
        raise InvalidInput(f"name the gate with --gate: {', '.join(gates)}", field="gate")
    return env, name


def _require_signer(
    access: Access, who: Principal, release: Release, env: str, decision: str
) -> None:
    """A person with ``approve`` in ``env`` who did not make the release."""
    access.require(who, "approve", environment=env, services=[i.service for i in release.items])
    if not who.is_person():
        raise Forbidden(f"{who.name} is a service account; approvals are given by people")
    if who.name in release.authors():
        raise Forbidden(
            f"{who.name} made release {release.id}; someone else must "
            f"{'approve' if decision == 'approve' else 'reject'} it (cancel it instead)"
        )


def _gate_node(
    env: str, key: str, reached: list[tuple[Deployment, Node]]
) -> tuple[Deployment | None, Node | None]:
    """The gate node ``key`` of the release's latest deployment to ``env``, and that
    deployment (``None, None`` if not reached). ``reached``: ``Tx.approval_context``'s
    answer, whose gates are locked (on SQLite the transaction is the only writer).
    """
    return next(
        (
            (d, n)
            for d, n in reversed(reached)
            if d.environment == env and d.kind == "deploy" and n.key == key
        ),
        (None, None),
    )


def _plan_spec(release: Release, env: str, key: str) -> dict[str, Any]:
    """The gate's spec as the release planned it (rules and expiry are those of then)."""
    return release.planned.environment(env).node(key).spec


def _require_in_slots(
    who: Principal,
    gate_slots: list[Slot],
    env: str,
    name: str,
    members: Callable[[Slot], set[str]],
) -> None:
    """``who`` fills at least one of the gate's rules (``gate_slots``: a role, a team, an
    owner), or is in a group the waiting gate was escalated to (``members``:
    :func:`gate_members`)."""
    if not any(who.name in members(s) for s in gate_slots):
        needed = "; ".join(s.describe() for s in gate_slots)
        raise Forbidden(
            f"{who.name} is not among those who can sign off {env}/{name}: it needs {needed}"
        )


def _audit_record(
    tx: Tx,
    who: Principal,
    release: Release,
    env: str,
    name: str,
    decision: str,
    comment: str | None,
    now: datetime,
    stored: Approval,
    via: str | None = None,
) -> None:
    """Audit a decision just stored (new, or renewed after it expired)."""
    tx.audit(
        at=now,
        actor=who.name,
        action="approval.given" if decision == "approve" else "approval.rejected",
        object_type="release",
        object_id=release.id,
        reason=comment,
        data={
            "environment": env,
            "gate": name,
            "content_hash": content_hash(release),
            "expires_at": stored.expires_at.isoformat() if stored.expires_at else None,
            **({"via": via} if via else {}),
        },
    )
    tx.touch_release(release.id, now)
