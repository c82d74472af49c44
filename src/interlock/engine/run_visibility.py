"""Who may see a runbook run: its starter, who runs, signs or audits runbooks there, and,
for a run a release's pipeline started, whoever may read that release.

Low in the engine's layers so that recovery (`resolve`), runbooks and the API share it.
"""

from __future__ import annotations

from interlock.domain.records import Deployment
from interlock.engine.access import Access
from interlock.engine.core import Engine
from interlock.engine.identity import Principal
from interlock.storage.tx import Tx


def release_services_of(tx: Tx, run_: Deployment) -> list[str] | None:
    """The services of the release whose pipeline started ``run_`` (maybe through runs
    that started runs), or ``None`` for a run started by hand."""
    found: Deployment | None = run_
    while found is not None and found.release_id is None:
        if found.parent_node_id is None:
            return None
        parent = tx.get_node(found.parent_node_id)
        found = tx.get_deployment(parent.deployment_id) if parent is not None else None
    if found is None:
        return None
    return [i.service for i in tx.require_release_of(found, plan=False).items]


def may_read_run(tx: Tx, access: Access, who: Principal, run_: Deployment) -> bool:
    """Whether ``who`` may see ``run_``: who started it, who runs, signs or audits
    runbooks there, and, for a run a release's pipeline started, who may read that
    release."""
    if access.can_read_run(who, run_):
        return True
    services = release_services_of(tx, run_)
    return services is not None and bool(access.can_read(who, services))


def readable(engine: Engine, access: Access, who: Principal, run_: Deployment) -> bool:
    """:func:`may_read_run` in a read transaction of its own."""
    if access.can_read_run(who, run_):
        return True  # the common case, without reading the database
    if run_.parent_node_id is None:
        return False  # started by hand: no release to read it through
    with engine.db.read() as tx:
        return may_read_run(tx, access, who, run_)
