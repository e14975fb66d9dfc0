"""The `[events]` table (docs/events.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from freescore.settings import Config, SettingError, WebSocketSettings


@dataclass(frozen=True)
class Settings(WebSocketSettings):
    """Upstream's keys keep their names and units (ms); the WebSocket limits follow from them.

    `keepalive` (the legacy endpoints' pings) defaults to `ping_interval`,
    `max_message` to `max_sender_packet`, `max_connections` (Engine.IO sessions,
    polling ones too) to twice `max_clients` plus 1000. Engine.IO's own
    heartbeat keeps its WebSocket alive, so that endpoint sends no pings.
    """

    sender_token: str | None = None
    """Django's EVENT_DAEMON_KEY; without it no Socket.IO sender can authenticate."""
    path: str = "/socket.io/"
    ping_interval: int = 25000
    ping_timeout: int = 300000
    connect_timeout: int = 45000
    """ms an Engine.IO session may stay without joining namespace `/`."""
    max_queue: int = 50
    max_clients: int = 5000
    max_subscriptions: int = 10
    max_packet: int = 10000
    max_sender_packet: int = 1048576
    max_unsent: int = 1048576
    """Bytes a session may leave unread (a WebSocket's unsent writes, a polling session's outbox)
    before it is closed; 0: off (it then grows until the heartbeat drops it)."""
    rate_limit: float = 20.0
    """Packets per second per client connection (burst of 2 s); 0 turns it off."""
    sender_rate_limit: float = 1000.0
    amqp_url: str | None = None
    amqp_exchange: str = "dmoj-events"
    legacy: bool = True
    legacy_path: str = "/event/"
    legacy_sender_path: str = "/event-sender/"
    channels_path: str = "/channels/"
    channels_timeout: int = 29000
    """ms a /channels/ long-poll is held before the 504."""
    stats_interval: float = 300.0

    def validate(self, base: Path) -> Settings:
        self.check_paths("path", *(("legacy_path", "legacy_sender_path", "channels_path") if self.legacy else ()))
        self.check_at_least(1, "ping_interval", "ping_timeout", "connect_timeout", "max_queue", "max_clients",
                            "max_subscriptions", "max_packet", "max_sender_packet", "channels_timeout")
        if self.max_sender_packet < self.max_packet:
            raise SettingError("max_sender_packet", "must be at least max_packet")
        self.check_not_negative("max_unsent", "rate_limit", "sender_rate_limit", "stats_interval", zero="off")
        self.check_secrets("sender_token", absent="to refuse all senders")
        if self.amqp_url is not None and not self.amqp_url.startswith(("amqp://", "amqps://")):
            raise SettingError("amqp_url", "must be an amqp:// or amqps:// URL")
        return self

    def implied_limits(self) -> dict[str, Any]:
        return {
            "keepalive": self.ping_interval / 1000.0,
            "max_message": self.max_sender_packet,
            "max_connections": 2 * self.max_clients + 1000,
        }

    def check(self, config: Config, name: str) -> None:
        """Without sender_token the legacy sender lets anyone post: allow that on loopback listeners only."""
        if not self.legacy or self.sender_token is not None:
            return
        if any(not config.listeners[i].loopback for i in config.listeners_for(name)):
            raise SettingError(f"{name}.sender_token", OPEN_SENDER)


OPEN_SENDER = (
    "the legacy sender would be open on a non-loopback listener: set sender_token, "
    "or mount [events] only on loopback listeners, or legacy = false"
)
