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


OURS_ONLY = frozenset({"pending", "placements", "adjusted", "original", "complete", "penalty", "scores"})
"""Keys freescore may add where upstream has none: it computes the round on the first read (§10)."""


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def differences(upstream: Any, ours: Any, where: str = "") -> list[str]:
    """Where `ours` differs from an upstream frame, JSON types included, but for the documented differences.

    Judges' component values are echoed as sent (upstream's Perl turns `"0.8"` into 0.8, in the
    division and in the echoed request alike);
    `division.ring` of a file without one is the URL string from the first read
    on (upstream: the number until the first write); digests need not match.
    """
    leaf = where.rsplit(".", 1)[-1]
    if isinstance(upstream, dict):
        if not isinstance(ours, dict):
            return [f"{where}: {ours!r} is not an object"]
        out = []
        for key in sorted(set(upstream) | set(ours)):
            if key == "digest":
                continue
            if key not in ours:
                out.append(f"{where}.{key}: missing")
            elif key not in upstream:
                if key not in OURS_ONLY:
                    out.append(f"{where}.{key}: not upstream's")
            else:
                out += differences(upstream[key], ours[key], f"{where}.{key}")
        return out
    if isinstance(upstream, list):
        if not isinstance(ours, list) or len(ours) != len(upstream):
            return [f"{where}: {ours!r} != {upstream!r}"]
        pairs = enumerate(zip(upstream, ours, strict=True))
        return [d for i, (u, o) in pairs for d in differences(u, o, f"{where}.{i}")]
    if _number(upstream) and _number(ours):
        return [] if abs(upstream - ours) < 1e-9 else [f"{where}: {ours!r} != {upstream!r}"]
    judged = ".scores." in where or ".score." in where or leaf == "index"  # numified by Perl when used
    if judged and _number(upstream) and isinstance(ours, str) and float(ours) == upstream:
        return []
    if leaf == "ring" and _number(upstream) and ours == str(upstream):
        return []
    if type(upstream) is not type(ours) or upstream != ours:
        return [f"{where}: {ours!r} != {upstream!r}"]
    return []


def expected_frame(upstream: dict[str, Any], root: str) -> dict[str, Any]:
    """An upstream frame with freescore's data root and the deliberate differences of its divisions."""
    frame = json.loads(json.dumps(upstream).replace(UPSTREAM_ROOT, root))
    if isinstance(frame.get("division"), dict) and "athletes" in frame["division"]:
        frame["division"] = deliberate(frame["division"], root)
    if isinstance(frame.get("ring"), dict):
        frame["ring"]["divisions"] = [deliberate(d, root) for d in frame["ring"]["divisions"]]
    return frame


def score_request(judge: int, value: str = "0.7") -> dict[str, Any]:
    """A judge tablet's score: every component `value` (a string), stances all shown, no deductions."""
    return {"type": "division", "action": "score", "judge": judge,
            "score": {"technical": dict.fromkeys(("mft1", "mft2", "mft3", "mft4", "mft5", "basic"), value),
                      "presentation": dict.fromkeys(("creativity", "harmony", "energy", "choreography"), value),
                      "deductions": {"stances": {"hakdari": True, "beomseogi": True, "dwigubi": True},
                                     "minor": 0, "major": 0}}}
