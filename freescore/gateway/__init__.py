"""Webhook gateway ("WebSocket as a Service"): client events become HTTP hooks,
the backend pushes to or closes connections through a REST API (AWS @connections style)."""
