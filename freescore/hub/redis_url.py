"""`[hub] url`: where the Redis hub connects (pure: the settings check it without loading txredisapi)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class RedisURL:
    host: str
    port: int
    db: int
    password: str | None
    username: str | None
    tls: bool

    def __str__(self) -> str:
        """Where, without the password (for logs)."""
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{self.host}:{self.port}/{self.db}"


def parse_url(url: str) -> RedisURL:
    """`redis://[[user]:password@]host[:port][/db]` (or `rediss://` for TLS); ValueError says why."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise ValueError(f"invalid Redis URL {url!r}: {e}") from None
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"invalid Redis URL {url!r}: give redis://host:port/db (or rediss:// for TLS)")
    if not parts.hostname:
        raise ValueError(f"invalid Redis URL {url!r}: no host")
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ValueError(f"invalid Redis URL {url!r}: the path must be a database number, not {path!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"invalid Redis URL {url!r}: no query or fragment allowed")
    return RedisURL(
        host=parts.hostname,
        port=port or 6379,
        db=int(path) if path else 0,
        password=unquote(parts.password) if parts.password else None,
        username=unquote(parts.username) if parts.username else None,
        tls=parts.scheme == "rediss",
    )
