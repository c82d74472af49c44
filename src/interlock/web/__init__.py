"""The web UI: a single-page app served by the API server (see docs/web-ui.md)."""
