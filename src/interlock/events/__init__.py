"""Events in and out: CDEvents 0.5.1, signed webhooks, GitHub.

Out: the audit log is the outbox. :mod:`~interlock.events.dispatcher` keeps a
cursor per webhook and POSTs every audit event after it (as the audit event,
or as its CDEvent from :mod:`~interlock.events.cdevents`), in order, at least
once. In: :mod:`~interlock.events.inbound` and :mod:`~interlock.events.github`
turn other tools' events into artifacts, observations and incidents.
"""
