"""Prometheus metrics, one registry per running freescore (tests run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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
        self.messages_in = metrics.messages_in.labels(service=service)
        self.messages_out = metrics.messages_out.labels(service=service)
        self.errors = metrics.errors.labels(service=service)
        self.connections.set(0)
