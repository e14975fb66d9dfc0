"""Load generator for freestyle: 4 rings x (5 judges + 20 displays) against a real `twistd freescore`.

The shared load and report are bench/poomsae_load.py's. Judges' tablets connect as `observer`
and name their seat in each score, as the real judge.php does. The autopilot's delays never end,
so once the current athlete is complete the judges keep re-scoring it: every request measures
the same score -> recompute -> write -> broadcast path.

Run: python3 bench/freestyle_load.py [--rings 4 --judges 5 --displays 20 --max-seconds 10 --paced-seconds 15]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from poomsae_load import Scenario, run  # noqa: E402

ATHLETES = 8
TECHNICAL = ("mft1", "mft2", "mft3", "mft4", "mft5", "basic")
PRESENTATION = ("creativity", "harmony", "energy", "choreography")


def make_data(root: Path, rings: int, judges: int) -> None:
    division = {"name": "b01", "description": "Bench Division", "judges": judges, "state": "score",
                "athletes": [{"name": f"Athlete {i}"} for i in range(ATHLETES)]}
    for r in range(1, rings + 1):
        ring = root / "bench" / "forms-freestyle" / f"ring{r:02d}"
        ring.mkdir(parents=True)
        (ring / "div.b01.txt").write_text(json.dumps(division, indent=3))
        (ring / "progress.txt").write_text("# current=b01\n")


def score(key: str, j: int, judges: int, n: int) -> dict[str, Any]:
    v = f"{(n % 10) / 10:.1f}"
    return {"type": "division", "action": "score", "judge": j, "bench": key,
            "score": {"technical": dict.fromkeys(TECHNICAL, v), "presentation": dict.fromkeys(PRESENTATION, "0.7"),
                      "deductions": {"stances": {"hakdari": True, "beomseogi": True, "dwigubi": False},
                                     "major": 0.3, "minor": (n % 4) * 0.1}}}


FREESTYLE = Scenario(
    service="freestyle", make_data=make_data, score=score, judge_role=lambda j: "observer",
    config="leaderboard_delay = 3600.0\nnext_delay = 3600.0\n",
    division="division of 8 athletes (finals), the JSON division file rewritten on every score",
    default_judges=5,
)

if __name__ == "__main__":
    run(FREESTYLE, __doc__.split("\n")[0])
