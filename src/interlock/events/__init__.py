"""The formats of events in and out: CDEvents 0.5.1, purl, signatures, schemas, messages.

Pure formats only; what the engine does with events (the webhook deliveries,
receiving CDEvents and GitHub events, who may send them) is
:mod:`interlock.engine.events`. Out: the audit log is the outbox, each audit
event sent as itself or as its CDEvent (:mod:`~interlock.events.cdevents`,
rendered by :mod:`~interlock.events.outbound`).
"""
