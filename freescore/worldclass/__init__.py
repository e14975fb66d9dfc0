"""FreeScore worldclass (recognized poomsae), wire- and file-compatible with the upstream pages and data.

Settings live in the `[worldclass]` table; see docs/worldclass.md.
"""
