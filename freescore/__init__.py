"""freescore: real-time WebSocket protocols in one Twisted reactor."""

__version__ = "0.1.0"
