"""Before a call: what we know, what we need to know, and two or three questions to lead with.

The seed's pre-call coaching: work only from what we know and what we need to know, and develop a
few high-level, big-picture questions to lead with and drill down from. Never the close while we
do not know why this prospect would buy: until second base (their compelling reasons) is earned
there is nothing to close on, and `Prep.no_close` says so.

Pure: the evidence of earlier debriefs and notes in (as the classifier's `Findings`, oldest
first), a `Prep` out, by the same walk rules as a debrief.

Touches: nothing: findings in, a Prep out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from debrief.playbook import Base, Playbook, Step
from debrief.walk import DONE, MISSED, Findings, StepStatus, diagnose

MAX_QUESTIONS = 3


@dataclass(frozen=True)
class Known:
    """A step already earned: with the words that show it, or implied by later steps."""

    step: Step
    implied: bool
    evidence: str | None


@dataclass(frozen=True)
class Needed:
    """A step still to earn: on the next base (missed last time, or not known yet), or on any
    other base when the notes say it is unknown or was missed (`beyond`: not the next base)."""

    step: Step
    missed: bool
    evidence: str | None
    beyond: bool = False


@dataclass(frozen=True)
class Prep:
    sources: tuple[str, ...]
    outcome: str  # where the last call ended up
    outcome_evidence: str | None
    known: tuple[Known, ...]
    next_base: Base | None  # None: every base is earned
    needed: tuple[Needed, ...]
    questions: tuple[str, ...]
    close: str | None  # the question to close with, once the compelling reasons are known
    no_close: str | None  # why there is no close yet


def merge(findings: Sequence[Findings]) -> Findings:
    """One account of a deal from several, oldest first: for each step, the latest that speaks of it.

    A step missed on the first call and done on the second is done; the outcome is the latest
    one known.
    """
    latest: dict[str, tuple] = {}
    outcome, said = "unknown", None
    for found in findings:
        for label in dict.fromkeys(e.label for e in found.evidence):
            latest[label] = tuple(e for e in found.evidence if e.label == label)
        if found.outcome != "unknown":
            outcome, said = found.outcome, found.outcome_evidence
    return Findings(tuple(e for evidence in latest.values() for e in evidence), outcome, said)


def prepare(playbook: Playbook, findings: Sequence[Findings], sources: Sequence[str] = ()) -> Prep:
    """What we know, what we need to know and the questions to lead with, from earlier evidence."""
    diagnosis = diagnose(playbook, merge(findings))
    statuses = diagnosis.steps
    unearned = [b for b in playbook.bases if not _base_earned(b, statuses)]
    next_base = unearned[0] if unearned else None
    known = tuple(Known(s.step, s.implied, _first(s)) for s in statuses if _earned(s))
    # What the notes say is unknown or missed, wherever it is (its own words, not only the outcome),
    # then the next base's steps still to earn.
    said_missed = [s for s in statuses if s.status == MISSED and any(e.label == s.step.id for e in s.evidence)
                   and not (next_base and s.step.base == next_base.id)]
    compelling = playbook.roles.compelling  # no close before this base is earned
    compelling_known = next_base is None or _order(playbook, next_base.id) > _order(playbook, compelling)
    # A close not won ("they'll get back to me") is never a lead question: the close comes when its
    # base is next (then it is one of the next base's steps) and is said apart from the questions.
    said_missed = [s for s in said_missed if s.step.id != playbook.roles.commitment]
    needed = tuple(Needed(s.step, True, _first(s), beyond=True) for s in said_missed) + tuple(
        Needed(s.step, s.status == MISSED, _first(s) if s.status == MISSED else None)
        for s in statuses if next_base and s.step.base == next_base.id and not _earned(s))
    close = no_close = None
    if compelling_known:
        close = playbook.step(playbook.roles.commitment).questions[0]
    else:
        missing = "; ".join(n.step.plain for n in needed if n.step.base == compelling and n.step.required) \
            or f"{playbook.base(compelling).name.lower()} itself"
        no_close = ("No close yet: we don't know why they would buy. "
                    f"{playbook.base(compelling).name} is not earned ({missing}), and there is no close "
                    "to practise until you know their compelling reasons.")
    outcome_evidence = diagnosis.outcome_evidence.text if diagnosis.outcome_evidence else None
    return Prep(tuple(sources), diagnosis.outcome, outcome_evidence, known, next_base, needed,
                lead_questions(needed), close, no_close)


def lead_questions(needed: Sequence[Needed], limit: int = MAX_QUESTIONS) -> tuple[str, ...]:
    """Two or three high-level questions: one per step still to earn, required and missed ones first.

    Only the next base's steps are asked about, so the close is never among them before it is due.
    """
    first = [n for n in needed if n.step.required or n.missed]
    ordered = first + [n for n in needed if n not in first]
    questions = [n.step.questions[0] for n in ordered][:limit]
    for extra in (q for n in ordered for q in n.step.questions[1:]):
        if len(questions) >= 2:
            break
        questions.append(extra)  # one step left: drill into it from a second angle
    return tuple(questions)


def spoken(prep: Prep) -> str:
    """The prep as a few sentences to say aloud in the car."""
    parts = []
    own = [k.step.plain for k in prep.known if not k.implied]
    if own:
        parts.append("What we know: " + "; ".join(own) + ".")
    else:
        parts.append("We know nothing about this deal yet.")
    if prep.next_base is not None:
        parts.append(f"What we need to know, for {prep.next_base.name.lower()}: "
                     + "; ".join(n.step.plain for n in prep.needed) + ".")
    if prep.questions:
        parts.append("Lead with: " + " ".join(prep.questions))
    parts.append(prep.no_close or f"When it's time to close, ask: {prep.close}")
    return " ".join(parts)


def to_dict(prep: Prep) -> dict:
    """The `prep --json` object."""
    return {
        "sources": list(prep.sources),
        "outcome": prep.outcome,
        "outcome_evidence": prep.outcome_evidence,
        "known": [{"step": k.step.id, "base": k.step.base, "name": k.step.name, "implied": k.implied,
                   "evidence": k.evidence} for k in prep.known],
        "next_base": None if prep.next_base is None else {
            "id": prep.next_base.id, "name": prep.next_base.name, "goal": prep.next_base.goal},
        "need_to_know": [{"step": n.step.id, "name": n.step.name, "topic": n.step.plain,
                          "required": n.step.required, "missed": n.missed, "beyond_next_base": n.beyond,
                          "evidence": n.evidence, "advice": n.step.advice}
                         for n in prep.needed],
        "questions": list(prep.questions),
        "close": prep.close,
        "no_close": prep.no_close,
    }


def _earned(status: StepStatus) -> bool:
    return status.status == DONE or status.implied


def _base_earned(base: Base, statuses: Sequence[StepStatus]) -> bool:
    """Every required step on it is earned and none was missed."""
    mine = [s for s in statuses if s.step.base == base.id]
    return all(_earned(s) for s in mine if s.step.required) and not any(s.status == MISSED for s in mine)


def _order(playbook: Playbook, base_id: str) -> int:
    return next(i for i, b in enumerate(playbook.bases) if b.id == base_id)


def _first(status: StepStatus) -> str | None:
    own = [e for e in status.evidence if e.label == status.step.id] or status.evidence
    return own[0].text if own else None
