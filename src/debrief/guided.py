"""The guided walk, as the seed's coach runs it: "Where did you end up?", then "What happened
before that?", and again, until the walk reaches a step that was done properly, the rep says
that's it, or has nothing to say after one re-ask. What is said, and `next_move`, what happens
after each answer: a pure function of the answer and the diagnosis so far (the walk itself is
walk.py's). The conversation that runs it by voice is conversation.py's.
"""

from __future__ import annotations
import logging
import re
from dataclasses import dataclass
from debrief import output
from debrief.pipeline import Analyzer
from debrief.playbook import base_name
from debrief.walk import DONE, SILENT, Diagnosis, StepStatus, diagnose

log = logging.getLogger(__name__)

# What is said. Short: the rep is driving.
TELL_ME = "Tell me about the call, starting with where you ended up."
WHERE = "Where did you end up?"
BEFORE = "What happened before that?"
REASK = {
    TELL_ME: "Take your time. How did the call end?",
    WHERE: "Take your time. How did the call end?",
    BEFORE: "Take your time. What happened just before that?",
}
NOTHING_HEARD = "I didn't hear anything. Try me again when you're ready."
# A rep who has nothing more to add, or who doesn't know; matched on Whisper's text, lower case.
THATS_ALL = re.compile(r"\b(that'?s (it|all|everything)|that (is|was) (it|all)|nothing (else|more|before)"
                       r"|i'?m done)\b")
DONT_KNOW = re.compile(r"\b(do ?n[o']?t|can'?t|cannot) (know|remember|recall)\b|\bnot sure\b|\bno idea\b"
                       r"|\bno clue\b")
ASK, REASK_SAME, FINISH = "ask", "reask", "finish"


@dataclass(frozen=True)
class Move:
    """What the guided walk does next: ask the next question back, re-ask the same one, or finish."""

    action: str
    reason: str


def solid_ground(diagnosis: Diagnosis) -> StepStatus | None:
    """The step done properly that the walk back has reached, if it has reached one.

    That is the furthest-back step the rep spoke of, when it was done and nothing before it needs
    fixing (every earlier step is done, implied by later evidence, or optional): the process was
    on track up to there, so what got it off track is already in what was said.
    """
    spoken = [i for i, status in enumerate(diagnosis.steps) if status.status != SILENT]
    if not spoken or diagnosis.steps[spoken[0]].status != DONE:
        return None
    if any(status.needs_fix for status in diagnosis.steps[:spoken[0]]):
        return None
    return diagnosis.steps[spoken[0]]


def next_move(answer: str, diagnosis: Diagnosis, *, new_evidence: bool, reasked: bool,
              turns: int, max_turns: int) -> Move:
    """What the guided walk does after an answer, from the answer and the diagnosis of all answers.

    `new_evidence`: the answer itself showed a step or an outcome. `reasked`: it answered a re-ask.
    `turns`: answers so far, this one included.
    """
    said = plain(answer)
    if THATS_ALL.search(said):
        return Move(FINISH, "the rep said that's all")
    if diagnosis.outcome == "won":
        return Move(FINISH, "won: nothing to walk back from")
    if not new_evidence and (not said or DONT_KNOW.search(said)):
        if reasked:
            return Move(FINISH, "nothing after a re-ask: going on with what was said")
        return Move(REASK_SAME, "nothing said" if not said else "the rep didn't know")
    reached = solid_ground(diagnosis)
    if reached is not None:
        return Move(FINISH, f"the walk reached a step done properly: {reached.step.id}")
    if turns >= max_turns:
        return Move(FINISH, f"{max_turns} answers: going on with what was said")
    return Move(ASK, "walking back")


def after_answer(analyzer: Analyzer, answers: list[str], answer: str, *, reasked: bool, turns: int,
                 max_turns: int) -> Move:
    """`next_move` for the latest `answer`, with `answers` (all of them, in order) read by the classifier."""
    classifier = analyzer.classifier
    alone = classifier.classify(answer) if answer.strip() else None
    new_evidence = alone is not None and (bool(alone.evidence) or alone.outcome != "unknown")
    # Each answer on its own line: the classifier reads a new line as a new sentence.
    so_far = diagnose(analyzer.playbook, classifier.classify("\n".join(a for a in answers if a)))
    return next_move(answer, so_far, new_evidence=new_evidence, reasked=reasked, turns=turns, max_turns=max_turns)


def plain(text: str) -> str:
    """Lower case, straight apostrophes, no punctuation at the ends: how the phrase rules read."""
    return text.replace("\u2019", "'").lower().strip(" .,!?;:\n\t")


def fix_speech(diagnosis: Diagnosis) -> str:
    """What is said at the end: the step to fix (its base and, in plain words, the step), the advice
    and the question; an unconfirmed fix is said as one (`output.spoken`)."""
    fix = diagnosis.fix
    if fix is None or not diagnosis.confirmed:
        return output.spoken(diagnosis)
    return f"The one step to fix is on {base_name(fix.step.base)}: {fix.step.plain}. {output.spoken(diagnosis)}"
