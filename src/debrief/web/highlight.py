"""The transcript cut into pieces, each marked with the steps whose evidence covers it.

Evidence spans come from the `analyze --json` object (character offsets into its transcript) and
may overlap, as a sentence can show two steps; cutting at every span boundary gives flat pieces
that HTML can mark without nesting.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Which colour a piece takes when spans of several statuses cover it: the missed one shows.
_RANK = {"missed": 0, "silent": 1, "done": 2, "outcome": 3}


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str   # a step id, or "ended up: <outcome>"
    status: str  # done, missed, silent or outcome


@dataclass
class Piece:
    """A stretch of the transcript; `ends` names the spans that finish with it (for a visible tag)."""

    text: str
    spans: list[Span] = field(default_factory=list)
    ends: list[Span] = field(default_factory=list)

    @property
    def status(self) -> str | None:
        return min((s.status for s in self.spans), key=_RANK.get) if self.spans else None


def spans(result: dict) -> list[Span]:
    """Every evidence span in an analysis: each step's, and the one that shows the outcome."""
    found = [Span(e["start"], e["end"], step_id, step["status"])
             for step_id, step in result.get("steps", {}).items() for e in step.get("evidence", [])]
    ended = result.get("outcome_evidence")
    if ended:
        found.append(Span(ended["start"], ended["end"], f"ended up: {result['outcome']}", "outcome"))
    length = len(result.get("transcript", ""))
    return sorted((s for s in found if 0 <= s.start < s.end <= length), key=lambda s: (s.start, s.end))


def pieces(text: str, found: list[Span]) -> list[Piece]:
    """Cut `text` at every span boundary; each piece lists the spans covering it."""
    cuts = sorted({0, len(text), *(s.start for s in found), *(s.end for s in found)})
    result = []
    for start, end in zip(cuts, cuts[1:]):
        covering = [s for s in found if s.start <= start and end <= s.end]
        # Two spans of one step can end together (a clause inside its sentence): one tag is enough.
        ends = list({s.label: s for s in covering if s.end == end}.values())
        result.append(Piece(text[start:end], covering, ends))
    return result
