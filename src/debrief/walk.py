"""The backward walk: from where the call ended up, back to where the process got off track.

Pure: steps and evidence in, a diagnosis out. No files, models or audio. The rules are those of
the coaching model (`docs/coaching-model.md`):

1. The endpoint is the furthest step with any evidence, plus the outcome. A stalled or lost call
   after a presentation means the commitment was not won (`home.commit` missed).
2. Walk back from the endpoint one step at a time, recording each step's status and evidence.
3. The step to fix is the earliest step at or before the endpoint that is missed, or silent and
   required and not implied by later evidence. Nothing after the endpoint is coached.
4. One step, never a list. A won deal, or an advanced call with nothing missing before its
   endpoint, has nothing to fix.
5. Done out of order is a symptom, not a fix (the classifier reports "demo before issues" as
   `second.issues` missed, so rule 3 finds it).
6. Ask before blaming a silent step: a fix on a step nobody mentioned is unconfirmed
   (`confirmed` False), and `then` is the earliest later step, at or before the endpoint, that was
   admitted missed (or None). The voice companion asks about an unconfirmed fix before it gives it.
7. Not enough to coach: a transcript with no evidence for any step and no outcome has neither a fix
   nor nothing to fix (`status` "not_enough"). An outcome alone that is not a win ("they went with
   someone else") does not place the call on the diamond either, so it is not enough as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from debrief.playbook import Playbook, Step

DONE, MISSED, SILENT = "done", "missed", "silent"
FIX, NOTHING_TO_FIX, NOT_ENOUGH = "fix", "nothing_to_fix", "not_enough"  # a diagnosis's status


@dataclass(frozen=True)
class Evidence:
    """A sentence that shows a step done or missed, or says how the call ended.

    `label` is a step id or an outcome; `start`/`end` are character offsets in the transcript.
    """

    label: str
    polarity: str
    text: str
    start: int
    end: int
    speaker: str | None = None


@dataclass(frozen=True)
class Findings:
    """What the classifier read in a transcript: evidence per label and the outcome."""

    evidence: tuple[Evidence, ...] = ()
    outcome: str = "unknown"
    outcome_evidence: Evidence | None = None


@dataclass(frozen=True)
class StepStatus:
    step: Step
    status: str
    implied: bool = False
    evidence: tuple[Evidence, ...] = field(default=())

    @property
    def needs_fix(self) -> bool:
        """Missed, or never mentioned although required and not implied by later evidence."""
        return self.status == MISSED or (
            self.status == SILENT and self.step.required and not self.implied
        )


@dataclass(frozen=True)
class Diagnosis:
    outcome: str
    outcome_evidence: Evidence | None
    endpoint: str | None
    steps: tuple[StepStatus, ...]
    walk: tuple[StepStatus, ...]
    fix: StepStatus | None
    reason: str
    then: StepStatus | None = None  # rule 6: the earliest later step admitted missed, for a silent fix

    @property
    def status(self) -> str:
        """`fix`, `nothing_to_fix` or `not_enough` (rule 7)."""
        if self.fix is not None:
            return FIX
        return NOTHING_TO_FIX if self.endpoint is not None else NOT_ENOUGH

    @property
    def confirmed(self) -> bool | None:
        """Rule 6: whether the fix was admitted missed (True) or only never mentioned (False)."""
        return None if self.fix is None else self.fix.status == MISSED


def diagnose(playbook: Playbook, findings: Findings) -> Diagnosis:
    """Run the backward walk over `findings` and return the one step to fix (or none)."""
    statuses = _own_statuses(playbook, findings.evidence)
    _apply_outcome(statuses, findings, playbook.roles)
    evidenced = [i for i, s in enumerate(statuses) if s.status != SILENT]
    if not evidenced:
        return Diagnosis(findings.outcome, findings.outcome_evidence, None, tuple(statuses), (), None,
                         "Not enough to coach: nothing said places the call on the diamond.")
    end = evidenced[-1]
    statuses = _with_implied(statuses, evidenced)
    fix_at = None if findings.outcome == "won" else next(
        (i for i in range(end + 1) if statuses[i].needs_fix), None)
    stop = fix_at if fix_at is not None else 0
    walk = tuple(statuses[i] for i in range(end, stop - 1, -1))
    fix = statuses[fix_at] if fix_at is not None else None
    then = None
    if fix is not None and fix.status == SILENT:
        then = next((statuses[i] for i in range(fix_at + 1, end + 1) if statuses[i].status == MISSED), None)
    return Diagnosis(findings.outcome, findings.outcome_evidence, statuses[end].step.id,
                     tuple(statuses), walk, fix, _reason(findings.outcome, fix), then)


def _own_statuses(playbook: Playbook, evidence: tuple[Evidence, ...]) -> list[StepStatus]:
    """Each step's status from its own evidence. An admission of a miss outweighs a mention."""
    statuses = []
    for step in playbook.steps:
        mine = tuple(e for e in evidence if e.label == step.id)
        missed = tuple(e for e in mine if e.polarity == MISSED)
        if missed:
            statuses.append(StepStatus(step, MISSED, evidence=missed))
        elif mine:
            statuses.append(StepStatus(step, DONE, evidence=mine))
        else:
            statuses.append(StepStatus(step, SILENT))
    return statuses


def _apply_outcome(statuses: list[StepStatus], findings: Findings, roles) -> None:
    """What the outcome says about the steps nobody mentioned (rule 1), by the playbook's roles."""
    COMMIT, PRESENT, APPOINTMENT = roles.commitment, roles.presentation, roles.appointment  # noqa: N806
    by_id = {s.step.id: i for i, s in enumerate(statuses)}
    said = (findings.outcome_evidence,) if findings.outcome_evidence else ()

    def mark(step_id: str, status: str) -> None:
        if step_id in by_id:
            i = by_id[step_id]
            # The outcome sentence comes first: it is why the status changed.
            statuses[i] = StepStatus(statuses[i].step, status, evidence=said + statuses[i].evidence)

    presented = PRESENT in by_id and statuses[by_id[PRESENT]].status == DONE
    commit = statuses[by_id[COMMIT]].status if COMMIT in by_id else None
    if findings.outcome == "won" and commit == SILENT:
        mark(COMMIT, DONE)
    elif findings.outcome in ("stalled", "lost") and presented and commit != MISSED:
        mark(COMMIT, MISSED)
    elif findings.outcome == "no_meeting" and APPOINTMENT in by_id \
            and statuses[by_id[APPOINTMENT]].status != MISSED:
        mark(APPOINTMENT, MISSED)


def _with_implied(statuses: list[StepStatus], evidenced: list[int]) -> list[StepStatus]:
    """Mark silent steps that later evidence implies (the playbook's `implied_by`)."""
    result = []
    for i, status in enumerate(statuses):
        step = status.step
        later = [j for j in evidenced if j > i]
        implied = status.status == SILENT and (
            (step.implied_by == "any-later" and bool(later))
            or (step.implied_by == "later-base" and any(statuses[j].step.base == step.base for j in later))
        )
        result.append(StepStatus(step, status.status, implied, status.evidence))
    return result


def _reason(outcome: str, fix: StepStatus | None) -> str:
    if fix is None:
        return "Won: nothing to fix." if outcome == "won" else "Nothing missing before where the call ended up."
    if fix.status == MISSED:
        return f'Missed: "{fix.evidence[0].text}"' if fix.evidence else f"Missed: the call ended {outcome}."
    return "Never came up, and nothing later shows it happened."
