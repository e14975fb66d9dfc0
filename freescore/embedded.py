"""The configuration packaged with freescore: what `twistd freescore` runs without `--config`.

It lives in the package (`freescore/default.toml`), so freescore starts from any
folder on a fresh install; its relative paths resolve against the current folder,
so the data of a first run lands in `./freescore-data`.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

from freescore.config import Config, parse

DATA_DIR = "freescore-data"
"""The folder (relative to the current one) that every path of the embedded default lies in."""
ENDPOINT = "tcp:8080:interface=127.0.0.1"
_ENDPOINT_LINE = re.compile(r'^endpoint = "' + re.escape(ENDPOINT) + '"', re.MULTILINE)


def path() -> Path:
    """Where the packaged file is (named in configuration errors)."""
    return Path(str(resources.files("freescore").joinpath("default.toml")))


def text() -> str:
    """The embedded default as shipped, comments included (what `--print-config` prints)."""
    return resources.files("freescore").joinpath("default.toml").read_text(encoding="utf-8")


def load(listen: str | None = None, cwd: Path | None = None) -> Config:
    """Parse the embedded default, its paths under `cwd` (default: the current folder).

    `listen` replaces the one listener's endpoint before parsing, so every rule that
    depends on the listener (e.g. the events sender on loopback only) is still checked.
    """
    source = text()
    if listen is not None:
        source, count = _ENDPOINT_LINE.subn(lambda _: f"endpoint = {json.dumps(listen)}", source, count=1)
        assert count == 1, "the embedded default lost its endpoint line"
    return parse(source, path(), base=(cwd or Path.cwd()).resolve())
