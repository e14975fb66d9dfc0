"""Webhook gateway ("WebSocket as a Service"): client events become HTTP hooks,
the backend pushes to or closes connections through a REST API (AWS @connections style)."""

from freescore.gateway.settings import Settings, check_config

__all__ = ["Settings", "check_config", "make_service"]


def make_service(ctx):  # type: ignore[no-untyped-def]
    from freescore.gateway.service import GatewayService

    return GatewayService(ctx)
