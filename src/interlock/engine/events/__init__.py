"""The engine's side of events: webhook deliveries out, CDEvents and GitHub events in.

Out: :mod:`~interlock.engine.events.dispatcher` keeps a cursor per webhook and
POSTs every audit event after it, in order, at least once (a scheduler task).
In: :mod:`~interlock.engine.events.inbound` and
:mod:`~interlock.engine.events.github` turn other tools' events into artifacts,
observations and incidents, through :mod:`~interlock.engine.events.receiving`;
:mod:`~interlock.engine.events.auth` says who sent them. The formats they read
and write (CDEvents, purl, signatures, schemas) are :mod:`interlock.events`.
"""
