"""A ring's `progress.txt` (pure): which division is current, and any other ring keys.

The same file in all three FreeScore services: `# key=value` lines; written
with every key except the derived ones (`divisions draws file path staging`),
sorted. A missing, falsy or dangling `current` means the alphabetically first
division of the ring.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

HEADER_LINE = re.compile(r"^#\s*([^=]+?)=(.*)$")
"""`# key=value`: progress.txt lines, and the header lines of the text division files."""
PROGRESS_SKIP = ("divisions", "draws", "file", "path", "staging")


def parse_progress(text: str) -> dict[str, str]:
    """`# key=value` lines of a ring's progress.txt, in file order."""
    keys: dict[str, str] = {}
    for raw in text.split("\n"):
        line = raw[:-1] if raw.endswith("\r") else raw
        m = HEADER_LINE.match(line)
        if m:
            keys[m.group(1).strip()] = m.group(2)
    return keys


def format_progress(keys: dict[str, Any]) -> str:
    lines = [f"# {k}={keys[k]}" for k in sorted(keys) if k not in PROGRESS_SKIP]
    return "".join(line + "\n" for line in lines)


def current_divid(progress: dict[str, str], divids: Iterable[str]) -> str | None:
    """The ring's current division: progress.txt's `current` if it names one, else the first (sorted)."""
    names = sorted(divids)
    current = progress.get("current", "")
    if current and current != "0" and current in names:
        return current
    return names[0] if names else None
