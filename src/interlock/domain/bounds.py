"""The largest numbers Interlock takes, in one place: interlock.yaml, API bodies, paths, queries.

Every number a person or a tool gives is checked against these where it comes
in, so a number out of range is a validation error naming its field (a 422 in
the API), never an overflow later: PostgreSQL's INTEGER, SQLite's 64-bit
integers and Python's dates (year 9999) all end somewhere. The types
carry their bounds as ``annotated_types`` metadata, which pydantic (config
models, API bodies) and FastAPI (path and query parameters) both enforce and
write into the JSON Schema and the OpenAPI document.
"""

from __future__ import annotations

from typing import Annotated

from annotated_types import Interval

DAY = 86400.0

# Ids, sequence numbers, revisions and cursors: what their columns hold (INTEGER on
# PostgreSQL; SQLite's are 64-bit). 2**62 reached PostgreSQL and failed there with a 500.
MAX_ID = 2**31 - 1
# Characters into a step's log: PostgreSQL's substr() takes an INTEGER (the offset + 1).
MAX_LOG_OFFSET = 2**31 - 2
# A timeout, backoff, deadline, soak, interval or approval expiry: a year and a day.
MAX_DURATION = 366 * DAY
# An API token's lifetime (null is "never", for those who may give it).
MAX_TOKEN_LIFETIME = 10 * 366 * DAY
# How long ago a metrics period may start (`--since 400d`).
MAX_LOOKBACK = 100 * 366 * DAY
MAX_RETRIES = 50
MAX_APPROVALS = 50  # people one approval rule may ask for
MAX_PARALLEL = 64  # services of a train deploying at once

RecordId = Annotated[int, Interval(ge=1, le=MAX_ID)]
SequenceNumber = Annotated[int, Interval(ge=0, le=MAX_ID)]
AttemptNumber = Annotated[int, Interval(ge=1, le=MAX_ID)]
LogOffset = Annotated[int, Interval(ge=0, le=MAX_LOG_OFFSET)]
Retries = Annotated[int, Interval(ge=0, le=MAX_RETRIES)]
ApprovalCount = Annotated[int, Interval(ge=1, le=MAX_APPROVALS)]
Parallel = Annotated[int, Interval(ge=1, le=MAX_PARALLEL)]
HttpStatus = Annotated[int, Interval(ge=100, le=599)]
