"""The upstream run of spec §18 (examples A, B, C): its requests and files, and the deliberate differences.

Shared by the logic tests (which apply the requests to `Division`s) and the
integration tests (which send them to a real `twistd freescore`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FRAMES = FIXTURES / "frames-freestyle"
FORMS = FIXTURES / "forms-freestyle"
UPSTREAM_ROOT = "/usr/local/freescore/data/test/forms-freestyle"
EXAMPLE_DIVISIONS = {1: "fs01", 2: "fs02", 3: "fs03"}


def requests() -> list[dict[str, Any]]:
    """Every request of the run in send order: `{t, conn, ring, request}`."""
    return [json.loads(line) for line in (FRAMES / "requests.jsonl").read_text().splitlines() if line.strip()]


def frame(name: str) -> Any:
    return json.loads((FRAMES / f"{name}.json").read_text())


def upstream_after(ring: int, divid: str) -> dict[str, Any]:
    return json.loads((FORMS / "after" / f"ring{ring:02d}" / f"div.{divid}.txt").read_text())


def deliberate(upstream: dict[str, Any], root: str) -> dict[str, Any]:
    """An upstream division as freescore writes it (docs/freestyle.md, "Deliberate differences").

    `file` is where the file really is; nobody pending is `[]`, not null (§17.12);
    a decided athlete without scores has `scores[round] == []` and no `min`/`max`
    (§17.10); decided athletes rank after every decided-free athlete (§17.3).
    """
    div = json.loads(json.dumps(upstream))
    div["file"] = div["file"].replace(UPSTREAM_ROOT, root)
    for r, pending in div.get("pending", {}).items():
        if pending is None:
            div["pending"][r] = []
    for a in div["athletes"]:
        for r in a.get("decision") or {}:
            if not (a.get("scores") or {}).get(r):
                a.setdefault("scores", {})[r] = []
                a["adjusted"][r].pop("min", None)
                a["adjusted"][r].pop("max", None)
    for r, placed in div.get("placements", {}).items():
        decided = {i: (div["athletes"][i].get("decision") or {}).get(r) for i in placed}
        rank = {None: 0, "withdraw": 1, "disqualify": 2}
        div["placements"][r] = sorted(placed, key=lambda i: rank[decided[i]])
    return div
