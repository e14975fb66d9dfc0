"""Registers `twistd freescore` (the options and service are in `freescore.tap`)."""

from freescore.tap import serviceMaker

__all__ = ["serviceMaker"]
