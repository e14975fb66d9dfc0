"""Prometheus metrics, one registry per running freescore (tests run several)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class Tally:
    """A counter child for the per-message counts: adds to a plain int, no lock per message.

    Prometheus counters take a lock on every `inc`, about a microsecond per
    message on the hot path. Every count here happens on the reactor thread, and
    so does every collection (the status resource renders on it), so the pending
    count moves into the real counter when the registry is collected (`_Drain`).
    """

    __slots__ = ("_child", "pending")

    def __init__(self, child: Any) -> None:
        self._child = child
        self.pending = 0

    def inc(self, amount: int = 1) -> None:
        self.pending += amount

    def drain(self) -> None:
        if self.pending:
            amount, self.pending = self.pending, 0
            self._child.inc(amount)


class _Drain:
    """Registered first, so every collection (render, get_sample_value) sees the tallies' counts."""

    def __init__(self) -> None:
        self.tallies: list[Tally] = []

    def collect(self) -> list[Any]:
        for tally in self.tallies:
            tally.drain()
        return []


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.drain = _Drain()
        self.registry.register(self.drain)  # type: ignore[arg-type]
        self.connections = Gauge(
            "freescore_connections", "Open WebSocket connections", ["service"], registry=self.registry
        )
        self.messages_in = Counter(
            "freescore_messages_in", "Messages received from clients", ["service"], registry=self.registry
        )
        self.messages_out = Counter(
            "freescore_messages_out", "Messages sent to clients", ["service"], registry=self.registry
        )
        self.errors = Counter(
            "freescore_protocol_errors", "Bad input answered with an error or a close", ["service"],
            registry=self.registry,
        )

    def for_service(self, name: str) -> "ServiceMetrics":
        return ServiceMetrics(self, name)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class ServiceMetrics:
    """The metrics of one service, labels already bound."""

    def __init__(self, metrics: Metrics, service: str) -> None:
        self.registry = metrics.registry
        self.service = service
        self.connections = metrics.connections.labels(service=service)
        self.messages_in = Tally(metrics.messages_in.labels(service=service))
        self.messages_out = Tally(metrics.messages_out.labels(service=service))
        metrics.drain.tallies += (self.messages_in, self.messages_out)
        self.errors = metrics.errors.labels(service=service)
        self.connections.set(0)
