"""fedmsg wire format: browser frames in, envelopes out, ZeroMQ and HTTP sources.

Pure functions. Bad input raises `BadMessage`; the caller logs and drops it.
Message bodies travel as their original JSON text so signed fedmsg
envelopes reach browsers byte-identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from freescore.wireformat import json_text, loads_strict

SUBSCRIBE = "__topic_subscribe__"
UNSUBSCRIBE = "__topic_unsubscribe__"


class BadMessage(ValueError):
    """Input that does not follow the fedmsg WebSocket protocol; the message says why."""


@dataclass(frozen=True)
class Subscribe:
    pattern: str


@dataclass(frozen=True)
class Unsubscribe:
    pattern: str


@dataclass(frozen=True)
class Publish:
    """A browser frame with any other topic (a publish when client2server is on)."""

    topic: str
    body_text: str


ClientFrame = Subscribe | Unsubscribe | Publish


def _loads(text: str, reencoded: bool = True) -> Any:
    """Strict JSON (`loads_strict`): nothing browsers' JSON.parse would refuse."""
    try:
        return loads_strict(text, reencoded=reencoded)
    except ValueError as e:  # loads_strict: RecursionError is a ValueError there
        raise BadMessage(f"not JSON: {e}") from None


def _decode(data: bytes | str, what: str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadMessage(f"{what} is not UTF-8") from None


def parse_client_frame(payload: bytes | str, max_pattern_length: int = 1024) -> ClientFrame:
    """A browser text frame -> Subscribe, Unsubscribe or Publish."""
    obj = _loads(_decode(payload, "frame"))
    if not isinstance(obj, dict):
        raise BadMessage("frame is not a JSON object")
    topic = obj.get("topic")
    if not isinstance(topic, str):
        raise BadMessage("frame has no string 'topic'")
    body = obj.get("body")
    if topic in (SUBSCRIBE, UNSUBSCRIBE):
        if not isinstance(body, str):
            raise BadMessage(f"{topic} needs a string 'body' (the pattern)")
        if len(body) > max_pattern_length:
            raise BadMessage(f"pattern longer than {max_pattern_length} characters")
        return Subscribe(body) if topic == SUBSCRIBE else Unsubscribe(body)
    if not topic:
        raise BadMessage("empty topic")
    return Publish(_sendable(topic), encode_json_text(body))


def encode_json_text(value: Any) -> str:
    """Compact JSON text that is always valid UTF-8 (lone surrogates stay escaped)."""
    return json_text(value)


def check_body_text(text: str) -> str:
    """Return `text` if it is one JSON value (kept verbatim), else raise BadMessage."""
    _loads(text, reencoded=False)
    return text


def parse_zmq_frames(parts: list[bytes]) -> tuple[str, str]:
    """A ZeroMQ multipart message `[topic, json_body]` -> (topic, body text)."""
    if len(parts) != 2:
        raise BadMessage(f"expected 2 frames [topic, body], got {len(parts)}")
    topic = _decode(parts[0], "topic")
    body = check_body_text(_decode(parts[1], "body"))
    return topic, body


def parse_publish_request(data: bytes) -> tuple[str, str]:
    """An HTTP publish body `{"topic": "...", "body": ...}` -> (topic, body text)."""
    obj = _loads(_decode(data, "request body"))
    if not isinstance(obj, dict):
        raise BadMessage("request body is not a JSON object")
    topic = obj.get("topic")
    if not isinstance(topic, str) or not topic:
        raise BadMessage("'topic' must be a non-empty string")
    if "body" not in obj:
        raise BadMessage("'body' is missing")
    return _sendable(topic), encode_json_text(obj["body"])


def _sendable(topic: str) -> str:
    """A topic to publish is a ZeroMQ frame, UTF-8 bytes: JSON's lone surrogates (`"\\ud800"`) cannot be one."""
    try:
        topic.encode("utf-8")
    except UnicodeEncodeError:
        raise BadMessage("'topic' is not valid Unicode (a lone surrogate)") from None
    return topic


def format_envelope(topic: str, body_text: str) -> bytes:
    """The text frame a browser gets: `{"topic": t, "body": <body JSON as received>}`."""
    return ('{"topic":' + encode_json_text(topic) + ',"body":' + body_text + "}").encode("utf-8")
