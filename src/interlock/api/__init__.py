"""The REST API (FastAPI): one router per resource, errors as problem+json."""
