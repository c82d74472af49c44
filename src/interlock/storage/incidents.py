"""Incidents, and sign-offs of manual runbook steps."""

from __future__ import annotations

from datetime import datetime
from typing import Unpack

from sqlalchemy import bindparam, select, update

from interlock.domain.records import Incident, Signoff
from interlock.storage.base import Prepared, QueryBase, found
from interlock.storage.changes import IncidentResolution
from interlock.storage.metric_scope import DEPLOYING, ran_a_step
from interlock.storage.schema import deployments, incidents, release_items, signoffs

# Every service a deployment records runs it once (see base.Prepared).
_OPEN_FOR_RUN = Prepared(
    select(incidents)
    .where(
        incidents.c.state == "open",
        incidents.c.service == bindparam("service"),
        incidents.c.environment == bindparam("environment"),
    )
    .order_by(incidents.c.id.desc())
)


class IncidentQueries(QueryBase):
    def open_incident(
        self,
        *,
        service: str | None,
        environment: str,
        summary: str,
        at: datetime,
        by: str,
        deployment_id: int | None,
        release_id: int | None,
    ) -> Incident:
        incident_id = self.conn.execute(
            incidents.insert()
            .values(
                service=service,
                environment=environment,
                summary=summary,
                state="open",
                opened_at=at,
                opened_by=by,
                deployment_id=deployment_id,
                release_id=release_id,
            )
            .returning(incidents.c.id)
        ).scalar_one()
        incident = self.require_incident(int(incident_id))
        self._incident_changed(incident)
        self.stale.set_at(at)
        return incident

    def _incident_changed(self, incident: Incident) -> None:
        """Rework and change failures the incident makes (or unmakes) in the delivery facts."""
        self.stale.incidents.append(
            (incident.service, incident.environment, incident.opened_at, incident.deployment_id)
        )

    def get_incident(self, incident_id: int) -> Incident | None:
        row = self.conn.execute(select(incidents).where(incidents.c.id == incident_id)).first()
        return Incident(**row._mapping) if row else None

    def require_incident(self, incident_id: int) -> Incident:
        """:meth:`get_incident` of one assumed to exist; :class:`NotFound` if it does not."""
        return found(self.get_incident(incident_id), f"incident {incident_id}")

    def list_incidents(
        self,
        *,
        state: str | None = None,
        service: str | None = None,
        environment: str | None = None,
        limit: int | None = 100,
        before_id: int | None = None,
    ) -> list[Incident]:
        """Incidents, newest first (``limit`` None: all); ``before_id``: those older than it."""
        query = select(incidents).order_by(incidents.c.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(incidents.c.id < before_id)
        if state:
            query = query.where(incidents.c.state == state)
        if service:
            query = query.where(incidents.c.service == service)
        if environment:
            query = query.where(incidents.c.environment == environment)
        return [Incident(**r._mapping) for r in self.conn.execute(query)]

    def open_incidents_of(self, service: str, environment: str) -> list[Incident]:
        """The open incidents of ``service`` in ``environment``, newest first.

        :meth:`list_incidents` with those filters, prepared: every service a
        deployment records in the inventory looks for the incidents it resolves.
        """
        found = _OPEN_FOR_RUN.run(self.conn, {"service": service, "environment": environment})
        return [Incident(**dict(zip(found.keys, row, strict=True))) for row in found.rows]

    def resolve_incident(self, incident_id: int, **values: Unpack[IncidentResolution]) -> bool:
        result = self.conn.execute(
            update(incidents)
            .where(incidents.c.id == incident_id, incidents.c.state == "open")
            .values(state="resolved", **values)
        )
        if result.rowcount:
            incident = self.require_incident(incident_id)
            self._incident_changed(incident)
            if incident.resolved_at is not None:
                self.stale.set_at(incident.resolved_at)
        return bool(result.rowcount)

    def latest_deployment_of(self, service: str, environment: str, before: datetime) -> int | None:
        """The last deployment of ``service`` that finished in ``environment`` before a time.

        Only one that reached the environment (a deploy step of it started) can
        have caused an incident there: a release still waiting at a gate, or
        rejected or cancelled before its first step, changed nothing.
        """
        d = deployments.c
        row = self.conn.execute(
            select(d.id)
            .join(release_items, release_items.c.release_id == d.release_id)
            .where(
                release_items.c.service == service,
                d.environment == environment,
                d.kind.in_(DEPLOYING),
                d.state != "cancelled",
                d.finished_at.is_not(None),
                d.finished_at <= before,
                ran_a_step(d.id),
            )
            .order_by(d.finished_at.desc(), d.id.desc())
            .limit(1)
        ).first()
        return int(row.id) if row else None

    # -- sign-offs -------------------------------------------------------------------
    def add_signoff(
        self, node_id: int, signer: str, comment: str | None, at: datetime
    ) -> Signoff | None:
        exists = self.conn.execute(
            select(signoffs.c.id).where(signoffs.c.node_id == node_id, signoffs.c.signer == signer)
        ).first()
        if exists:
            return None
        self.conn.execute(
            signoffs.insert().values(node_id=node_id, signer=signer, comment=comment, signed_at=at)
        )
        return self.signoffs_of(node_id)[-1]

    def signoffs_of(self, node_id: int) -> list[Signoff]:
        rows = self.conn.execute(
            select(signoffs).where(signoffs.c.node_id == node_id).order_by(signoffs.c.id)
        )
        return [Signoff(**r._mapping) for r in rows]
