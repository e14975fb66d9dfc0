"""The one check of a presented secret against the configured one (sender keys, bearer tokens).

Constant-time, so a wrong guess takes as long as a nearly right one. Pure
Python: the events logic checks Socket.IO and legacy keys with it too.
"""

from __future__ import annotations

import hmac


def _raw(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")


def token_matches(given: object, expected: str) -> bool:
    """Is `given` (as received: anything, a string to match) the configured `expected` secret?"""
    if not isinstance(given, (str, bytes)):
        return False
    return hmac.compare_digest(_raw(given), expected.encode("utf-8"))


def bearer_matches(authorization: str | bytes | None, expected: str) -> bool:
    """Does an `Authorization: Bearer <token>` header (RFC 6750, any case of `Bearer`) carry `expected`?"""
    if not authorization:
        return False
    scheme, _, value = _raw(authorization).strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return False
    return token_matches(value.strip(), expected)
