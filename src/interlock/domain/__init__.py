"""The pure model: releases, deployments, steps, gates, their states and rules.

Nothing in here does I/O or imports anything else of the project (except the
error root), so every rule can be unit-tested on its own.
"""
