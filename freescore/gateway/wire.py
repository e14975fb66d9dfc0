"""Pure parsing and formatting for the gateway: hook bodies, push requests, credentials.

No sockets, no reactor, no clock: time comes in as an argument. Bad push
requests raise `PushError`, an `HttpError` with the body the spec gives (the
seed's `code` plus AWS's `message`) and AWS's `x-amzn-ErrorType` header.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from freescore.auth import bearer_matches, token_matches
from freescore.wireformat import HttpError, encode_json

TEXT_TYPE = "application/json"
BINARY_TYPE = "application/octet-stream"
SUBPROTOCOL_AUTH = "Authorization"
NO_CREDENTIAL = "None"
HMAC_WINDOW = 300.0
TIMESTAMP_HEADER = "x-freescore-timestamp"
SIGNATURE_HEADER = "x-freescore-signature"

GONE_MESSAGE = "The connection with the provided id no longer exists"


class PushError(HttpError):
    """A push API request answered with an error status, in the push API's own error shape."""

    def __init__(self, status: int, code: str, message: str, error_type: str | None = None) -> None:
        super().__init__(status, message, {"x-amzn-ErrorType": error_type} if error_type else None)
        self.code = code
        self.error_type = error_type

    def body(self) -> bytes:
        return encode({"code": self.code, "message": self.message})


def gone() -> PushError:
    return PushError(410, "NOT_FOUND", GONE_MESSAGE, "GoneException")


def buffer_full() -> PushError:
    return PushError(429, "LIMIT_EXCEEDED", "The client's outbound buffer is full", "LimitExceededException")


def too_long(limit: int) -> PushError:
    return PushError(413, "MESSAGE_TOO_LONG", f"Message is over {limit} bytes", "PayloadTooLargeException")


def unauthorized(message: str) -> PushError:
    return PushError(401, "UNAUTHORIZED", message, "UnauthorizedException")


def hub_down() -> PushError:
    """A push for an id this node lacks while the hub is unreachable: another node may hold it."""
    return PushError(503, "HUB_DOWN", "the hub is unreachable, so the node holding it is unknown")


def shutting_down() -> PushError:
    return PushError(503, "SHUTTING_DOWN", "the node is stopping")


def node_timeout(node: str) -> PushError:
    return PushError(504, "NODE_TIMEOUT", f"node {node} did not answer")


encode = encode_json


# -- URLs ---------------------------------------------------------------------


def with_scheme(url: str) -> str:
    """The seed's examples omit the scheme (`localhost:80/websocket`): assume http."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/")


def valid_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def ws_uri(ws_hostname: str, conn_id: str) -> str:
    return f"{ws_hostname.rstrip('/')}/{conn_id}"


def hook_url(api_uri: str, conn_id: str) -> str:
    return f"{api_uri.rstrip('/')}/{conn_id}"


# -- hook bodies and the admission rule ----------------------------------------


def connect_body(ws: str, timeout_ms: int) -> bytes:
    return encode({"code": "NEW_CONNECTION", "ws_uri": ws, "timeout": timeout_ms})


def close_body(ws: str) -> bytes:
    return encode({"code": "CONNECTION_CLOSE", "ws_uri": ws})


@dataclass(frozen=True)
class Decision:
    """What the client gets for its handshake: admitted, or an HTTP status and code."""

    admitted: bool
    status: int = 101
    code: str = "OK"


ADMIT = Decision(True)
DENY_UNAUTHORIZED = Decision(False, 401, "UNAUTHORIZED")
DENY_FORBIDDEN = Decision(False, 403, "FORBIDDEN")
DENY_BACKEND_ERROR = Decision(False, 502, "BACKEND_ERROR")
DENY_BACKEND_TIMEOUT = Decision(False, 504, "BACKEND_TIMEOUT")


CONNECT_ANSWER_LIMIT = 65536
"""Bytes of the connect hook's answer read for the decision; a longer body is an invalid answer (502)."""


def admission(status: int, body: bytes) -> Decision:
    """The connect hook's answer -> the client's fate: 2xx and `{"code":"OK"}` admits."""
    if 200 <= status < 300:
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested deeper than Python reads
            return DENY_FORBIDDEN
        if isinstance(doc, dict) and doc.get("code") == "OK":
            return ADMIT
        return DENY_FORBIDDEN
    if status == 401:
        return DENY_UNAUTHORIZED
    if 400 <= status < 500:
        return DENY_FORBIDDEN
    return DENY_BACKEND_ERROR


DENY_CODES = {401: "UNAUTHORIZED", 403: "FORBIDDEN", 502: "BACKEND_ERROR", 504: "BACKEND_TIMEOUT"}


def deny_body(status: int) -> bytes:
    return encode({"code": DENY_CODES.get(status, "UNAVAILABLE" if status == 503 else "BAD_REQUEST")})


# -- the client's credential ----------------------------------------------------


@dataclass(frozen=True)
class Credential:
    value: str
    subprotocol: str | None
    source: str  # "header", "subprotocol", "query" or "none"


def credential(
    headers: Mapping[str, str], subprotocols: Sequence[str], params: Mapping[str, Sequence[str]], query_param: str
) -> Credential:
    """The Authorization to forward: header, then subprotocol pair, then query, then `None`.

    Browsers abort when they offer subprotocols and none is selected, so
    `Authorization` is selected whenever it is offered.
    """
    chosen = SUBPROTOCOL_AUTH if SUBPROTOCOL_AUTH in subprotocols else None
    header = headers.get("authorization")
    if header:
        return Credential(header, chosen, "header")
    if chosen is not None:
        at = list(subprotocols).index(SUBPROTOCOL_AUTH)
        if at + 1 < len(subprotocols):
            return Credential(subprotocols[at + 1], chosen, "subprotocol")
    values = params.get(query_param) if query_param else None
    if values and values[0]:
        return Credential(values[0], chosen, "query")
    return Credential(NO_CREDENTIAL, chosen, "none")


def source_ip(peer_ip: str, forwarded_for: str | None, trusted: Iterable[ipaddress._BaseNetwork]) -> str:
    """The client's address, following X-Forwarded-For only through trusted proxies."""
    nets = list(trusted)

    def is_trusted(ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in nets)

    if not forwarded_for or not is_trusted(peer_ip):
        return peer_ip
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            return hop
    return hops[0] if hops else peer_ip


# -- push API requests ------------------------------------------------------------


@dataclass(frozen=True)
class PushSend:
    payload: bytes
    binary: bool


@dataclass(frozen=True)
class PushInfo:
    pass


@dataclass(frozen=True)
class PushClose:
    pass


PushCommand = PushSend | PushInfo | PushClose


def is_binary_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() == BINARY_TYPE


def push_command(method: str, content_type: str | None, body: bytes, max_message: int) -> PushCommand:
    """Turn an authenticated push API request into a command, or raise PushError."""
    method = method.upper()
    if method in ("PUT", "POST"):
        if len(body) > max_message:
            raise too_long(max_message)
        binary = is_binary_type(content_type)
        if not binary:
            try:
                body.decode("utf-8")
            except UnicodeDecodeError:
                raise PushError(400, "BAD_REQUEST", "A text push must be UTF-8; send binary data as "
                                "application/octet-stream") from None
        return PushSend(body, binary)
    if method == "GET":
        return PushInfo()
    if method == "DELETE":
        return PushClose()
    raise PushError(405, "BAD_REQUEST", f"Method {method} is not allowed; use PUT, POST, GET or DELETE")


def connection_id(postpath: Sequence[str]) -> str | None:
    """The id after `push_path` (already percent-decoded), or None without exactly one segment."""
    segments = [s for s in postpath]
    if segments and segments[-1] == "":
        segments = segments[:-1]
    if len(segments) != 1 or not segments[0]:
        return None
    return segments[0]


# -- push API authentication ---------------------------------------------------------


def signature(secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    """`sha256=<hex>` of `<timestamp>\\n<METHOD>\\n<path>\\n<body>` with the shared secret."""
    message = f"{timestamp}\n{method.upper()}\n{path}\n".encode() + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def hmac_ok(
    secret: str, timestamp: str | None, sig: str | None, method: str, path: str, body: bytes, now: float
) -> bool:
    if not timestamp or not sig:
        return False
    try:
        ts = int(timestamp.strip())
    except ValueError:
        return False
    if abs(now - ts) > HMAC_WINDOW:
        return False
    expected = signature(secret, timestamp.strip(), method, path, body)
    return token_matches(sig.strip().lower(), expected)


def authenticate(
    headers: Mapping[str, str | None], method: str, path: str, body: bytes, now: float,
    token: str | None, secret: str | None,
) -> None:
    """Raise a 401 PushError unless the bearer token or the HMAC signature is right.

    With neither configured, the API is open (start-up allowed it only on loopback).
    """
    if token is None and secret is None:
        return
    if token is not None and bearer_matches(headers.get("authorization"), token):
        return
    if secret is not None and hmac_ok(
        secret, headers.get(TIMESTAMP_HEADER), headers.get(SIGNATURE_HEADER), method, path, body, now
    ):
        return
    raise unauthorized("Missing or invalid credentials")


# -- GET info -------------------------------------------------------------------------


def iso(t: float) -> str:
    """AWS style: `2026-11-22T23:16:23.123Z`."""
    d = datetime.fromtimestamp(t, UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def info_body(connected_at: float, last_active_at: float, source: str, user_agent: str) -> bytes:
    return encode({
        "connectedAt": iso(connected_at),
        "identity": {"sourceIp": source, "userAgent": user_agent},
        "lastActiveAt": iso(last_active_at),
    })


OK_BODY = encode({"code": "OK"})
