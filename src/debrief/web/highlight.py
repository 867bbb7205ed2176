"""The transcript cut into pieces, each marked with the steps whose evidence covers it.

Evidence spans come from the `analyze --json` object (character offsets into its transcript) and
may overlap, as a sentence can show two steps; cutting at every span boundary gives flat pieces
that HTML can mark without nesting. The pieces are also cut where each of Whisper's segments
starts, so that each knows when it is said and a click can play the recording from there.
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
    """A stretch of the transcript; `at` is when it is said, in seconds into the recording (None
    for a typed transcript); `sentence` numbers the Whisper segment it belongs to."""

    text: str
    spans: list[Span] = field(default_factory=list)
    at: float | None = None
    sentence: int | None = None

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


def segment_starts(result: dict) -> list[tuple[int, float]]:
    """(character offset, seconds) where each of Whisper's segments starts in the transcript; a
    typed transcript (no timed segments) has none."""
    from debrief.transcription import Segment, Transcript

    segments = [Segment(s["start"], s["end"], s.get("text", "")) for s in result.get("segments", [])]
    transcript = Transcript(result.get("transcript", ""), segments, "en", 0.0, "")
    return [(offset, float(segment.start)) for offset, segment in transcript.segment_offsets() if segment.end > 0]


def time_at(starts: list[tuple[int, float]], offset: int) -> float | None:
    """When the character at `offset` is said: the start of the segment that holds it."""
    said = [seconds for start, seconds in starts if start <= offset]
    return said[-1] if said else (starts[0][1] if starts else None)


def pieces(text: str, found: list[Span], starts: list[tuple[int, float]] = ()) -> list[Piece]:
    """Cut `text` at every span boundary and every segment start; each piece lists the spans
    covering it and when it is said."""
    cuts = sorted({0, len(text), *(s.start for s in found), *(s.end for s in found),
                   *(start for start, _ in starts if 0 < start < len(text))})
    result = []
    for start, end in zip(cuts, cuts[1:]):
        covering = [s for s in found if s.start <= start and end <= s.end]
        sentence = sum(1 for offset, _ in starts if offset <= start) - 1 if starts else None
        result.append(Piece(text[start:end], covering, time_at(list(starts), start), sentence))
    return result
