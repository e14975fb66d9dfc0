"""Ranking, round selection and advancement (pure, spec §13-§14).

Advancement happens when a round is entered (`round next`, the autopilot),
never when the previous round completes: the new round's order is taken from
what the previous round's placements are at that moment.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence

from freescore.freestyle.scoring import RoundScore

ROUNDS = ("prelim", "semfin", "finals")
FINALISTS = 8


def first_round(athletes: int) -> str:
    """Up to 8 athletes start in the finals, up to 20 in the semi-finals (20 included), more in prelim."""
    if athletes <= FINALISTS:
        return "finals"
    return "semfin" if athletes <= 20 else "prelim"


def next_round(round_: str) -> str:
    return ROUNDS[min(ROUNDS.index(round_) + 1, len(ROUNDS) - 1)]


def prev_round(round_: str) -> str | None:
    i = ROUNDS.index(round_)
    return ROUNDS[i - 1] if i > 0 else None


def rank(order: Sequence[int], results: Mapping[int, RoundScore]) -> tuple[list[int], list[int]]:
    """(placements, pending) of a round: complete athletes best first, the others in performance order.

    Ties that survive every criterion keep performance order, so the result is a
    total order of the round's athletes.
    """
    position = {a: i for i, a in enumerate(order)}
    done = [a for a in order if a in results and results[a].complete]
    pending = [a for a in order if a not in results or not results[a].complete]
    done.sort(key=lambda a: (results[a].rank_key(), position[a]))
    return done, pending


def advancing(placements: Sequence[int], decided: set[int], round_: str, rng: random.Random) -> list[int]:
    """Who performs in `round_`, in performance order, from the previous round's placements.

    Semi-finals take the better half (rounded up) in a random order; finals take the
    best eight in reverse, so the leader performs last. Decided athletes never advance.
    """
    eligible = [a for a in placements if a not in decided]
    if round_ == "semfin":
        chosen = eligible[:math.ceil(len(eligible) / 2)]
        rng.shuffle(chosen)
        return chosen
    return list(reversed(eligible[:FINALISTS]))
