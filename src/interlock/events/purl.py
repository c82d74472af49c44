"""Package URLs (purl), the artifact ids of CDEvents: ``pkg:type/namespace/name@version?q=v``.

Only what Interlock needs: build one for an artifact (with its digest as the
``checksum`` qualifier) and take one apart (name, version, digest).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Purl:
    type: str
    name: str
    namespace: str | None = None
    version: str | None = None
    qualifiers: dict[str, str] = field(default_factory=dict)

    def without_version(self) -> str:
        """``pkg:type/namespace/name``: the package, whatever its version."""
        path = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"pkg:{self.type}/{path}"

    def digest(self) -> str | None:
        """The sha256 content digest it names: a ``checksum`` qualifier or an OCI version."""
        for checksum in self.qualifiers.get("checksum", "").split(","):
            value = checksum.strip().lower()
            if DIGEST.match(value):
                return value
        if self.version and DIGEST.match(self.version.lower()):
            return self.version.lower()
        return None

    def tag(self) -> str | None:
        """The human version: the ``tag`` qualifier (OCI), else a version that is no digest."""
        if self.qualifiers.get("tag"):
            return self.qualifiers["tag"]
        if self.version and not DIGEST.match(self.version.lower()):
            return self.version
        return None


def build(name: str, version: str, digest: str | None = None, kind: str = "generic") -> str:
    """The purl of one artifact, e.g. ``pkg:generic/api@1.4.2?checksum=sha256:…``."""
    text = f"pkg:{kind}/{quote(name, safe='')}@{quote(version, safe='')}"
    return f"{text}?checksum={digest}" if digest else text


def parse(text: str) -> Purl | None:
    """Take ``text`` apart; ``None`` when it is not a package URL."""
    if not text.startswith("pkg:"):
        return None
    rest = text[4:].lstrip("/")
    rest, _, _subpath = rest.partition("#")
    rest, _, query = rest.partition("?")
    kind, slash, path = rest.partition("/")
    if not slash or not kind or not path:
        return None
    path = path.strip("/")
    version: str | None = None
    if "@" in path:
        path, _, raw_version = path.rpartition("@")
        version = unquote(raw_version) or None
    segments = [unquote(s) for s in path.split("/") if s]
    if not segments:
        return None
    qualifiers = {}
    for pair in query.split("&") if query else ():
        key, _, value = pair.partition("=")
        if key:
            qualifiers[key.lower()] = unquote(value)
    namespace = "/".join(segments[:-1]) or None
    return Purl(kind.lower(), segments[-1], namespace, version, qualifiers)
