"""Ask before blaming (rule 6 of the coaching model): how the answer to a check question is read.

When the one step to fix is a step nobody mentioned, the voice companion asks the playbook's short
yes-or-no question about it ("Did you find out what it's costing them?") before it gives the fix.
The answer is read in the light of that question: a yes or a no first ("Yeah, about ten grand a
month", "No, never got there"), then what the reader finds about that step in the answer, and
otherwise it is no answer ("I don't know", silence). Pure: text and findings in, a verdict out.
"""

from __future__ import annotations

import re
from dataclasses import replace

from debrief.walk import DONE, MISSED, Evidence, Findings

MAX_CHECKS = 3  # questions about unconfirmed steps in one debrief, at most

YES = re.compile(r"^(yes|yeah|yep|yup|yea|sure|of course|absolutely|definitely|correct|right|i did|we did"
                 r"|they did|she did|he did|i think so|pretty much)\b")
NO = re.compile(r"^(no|nope|nah|not really|not at all|never|i didn'?t|we didn'?t|didn'?t|i did not"
                r"|we did not|not yet|i forgot|i never|we never)\b")
UNSURE = re.compile(r"\b(do ?n[o']?t|can'?t|cannot) (know|remember|recall)\b|\bnot sure\b|\bno idea\b"
                    r"|\bno clue\b|\bmaybe\b")


def read_check(answer: str, step_id: str, heard: Findings) -> str | None:
    """DONE, MISSED, or None (no answer) for the answer to the check question about `step_id`.

    `heard` is what the classifier read in the answer alone.
    """
    said = answer.replace("\u2019", "'").lower().strip(" .,!?;:\n\t")
    if not said:
        return None
    if NO.match(said):  # "no" before "not sure": "no, not sure they have one" is a no
        return MISSED
    if YES.match(said):
        return DONE
    if UNSURE.search(said):
        return None
    about = [e.polarity for e in heard.evidence if e.label == step_id]
    if MISSED in about:
        return MISSED
    if about:
        return DONE
    return None


def with_checks(findings: Findings, checks: tuple[Evidence, ...]) -> Findings:
    """The findings with the answered checks added as evidence of their steps."""
    return replace(findings, evidence=findings.evidence + tuple(checks))
