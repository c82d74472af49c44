"""Delivery facts: projections of the records that the delivery metrics read.

A transaction that changes what the metrics derive from notes it in its
:class:`~interlock.storage.facts.stale.StaleFacts`;
:meth:`~interlock.storage.facts.delivery.DeliveryQueries.project_delivery_facts`
brings the facts up to date from them, once, just before commit (see
:meth:`interlock.storage.tx.Tx.before_commit` for the order).
"""
