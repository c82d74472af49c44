"""One TLS context per process for outgoing HTTPS calls.

httpx builds a fresh context (loading the CA bundle) for every client, about
50 ms each on a small machine; an http step, a webhook delivery and a metric
gate poll each make a client. The context is built once, as httpx would build
it (certifi's bundle, or SSL_CERT_FILE / SSL_CERT_DIR), and shared: an
``ssl.SSLContext`` serves any number of connections and threads.
"""

from __future__ import annotations

import functools
import ssl


@functools.cache
def client_tls() -> ssl.SSLContext:
    import httpx

    return httpx.create_ssl_context()
