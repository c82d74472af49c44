"""Send a request body the way an attacker would: big, streamed, and read the answer at once."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

CHUNK = 64 * 1024


@dataclass
class Answer:
    """The status and problem body of the answer, and how many body bytes went out before it."""

    status: int
    body: dict[str, Any]
    sent_before: int
    headers: dict[str, str] = field(default_factory=dict)


def stream(
    url: str,
    path: str,
    *,
    size: int,
    headers: dict[str, str] | None = None,
    chunked: bool = False,
    send_body: bool = True,
    timeout: float = 30.0,
) -> Answer:
    """POST ``size`` bytes of body to ``path``, in chunks, while reading the answer.

    ``chunked`` sends no Content-Length (Transfer-Encoding: chunked). With
    ``send_body=False`` only the head goes out: a server that waits for the body
    before it answers does not answer within ``timeout`` (``socket.timeout``).
    """
    where = urlsplit(url)
    conn = socket.create_connection((where.hostname or "127.0.0.1", where.port or 80), timeout)
    head = [f"POST {path} HTTP/1.1", f"Host: {where.netloc}", "Content-Type: application/json"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}")
    conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    sent = 0
    answered = threading.Event()

    def send() -> None:
        nonlocal sent
        piece = b" " * CHUNK
        try:
            while sent < size and not answered.is_set():
                out = piece[: size - sent]
                conn.sendall(b"%x\r\n%s\r\n" % (len(out), out) if chunked else out)
                sent += len(out)
            if chunked and not answered.is_set():
                conn.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed the connection: that is the point

    sender = threading.Thread(target=send, daemon=True)
    if send_body:
        sender.start()
    try:
        reply = _read_answer(conn)
        answered.set()
        reply.sent_before = sent
        return reply
    finally:
        answered.set()
        conn.close()
        if send_body:
            sender.join(timeout)


def _read_answer(conn: socket.socket) -> Answer:
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(65536)
        if not more:
            raise ConnectionError(f"the server closed the connection without answering: {data!r}")
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        more = conn.recv(65536)
        if not more:
            break
        rest += more
    body = json.loads(rest[:length]) if length else {}
    return Answer(int(lines[0].split()[1]), body, 0, headers)
