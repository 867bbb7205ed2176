"""Ask before blaming (rule 6): how the answer to the question about an unconfirmed step is read.

A yes or a no first, in the light of the question; then what the real reader finds about that step
in the answer; otherwise no answer.
"""

import pytest

from debrief.asking import read_check, with_checks
from debrief.walk import Evidence, Findings, diagnose

@pytest.fixture(scope="module")
def baseline(playbook):
    from debrief.classification import Classifier

    return Classifier(playbook)


READS = [
    ("Yeah, about ten grand a month.", "second.impact", "done"),
    ("Yes I did.", "second.issues", "done"),
    ("Of course, she told me straight away.", "third.decision", "done"),
    ("No, never got there.", "second.impact", "missed"),
    ("Nope.", "third.budget", "missed"),
    ("I didn't, to be honest.", "third.decision", "missed"),
    ("No, not sure they even have one.", "third.budget", "missed"),
    ("I don't know.", "second.impact", None),
    ("Not sure, maybe.", "third.decision", None),
    ("", "second.impact", None),
    ("The traffic was terrible on the way back.", "second.impact", None),
    # no yes or no: the reader reads the answer for that step
    ("It's costing them about thirty grand a month in overtime.", "second.impact", "done"),
    ("Honestly it slipped my mind to ask what it costs them.", "second.impact", "missed"),
    ("The owner signs off on anything over five thousand.", "third.decision", "done"),
]


@pytest.mark.parametrize("answer, step, verdict", READS, ids=[r[0] or "(silence)" for r in READS])
def test_an_answer_is_read_in_the_light_of_its_question(baseline, answer, step, verdict):
    heard = baseline.classify(answer) if answer else Findings()
    assert read_check(answer, step, heard) == verdict


def test_a_yes_moves_the_walk_on_and_a_no_is_the_fix(playbook):
    quiet = Findings((Evidence("third.budget", "missed", "I never asked about their budget.", 0, 33),),
                     "stalled", Evidence("stalled", "done", "They went quiet.", 34, 50))
    first = diagnose(playbook, quiet)
    assert (first.fix.step.id, first.confirmed) == ("second.issues", False)
    yes = Evidence("second.issues", "done", "Yes, their trucks keep breaking down.", 51, 88)
    second = diagnose(playbook, with_checks(quiet, (yes,)))
    assert (second.fix.step.id, second.confirmed) == ("second.impact", False)
    no = Evidence("second.impact", "missed", "No.", 89, 92)
    third = diagnose(playbook, with_checks(quiet, (yes, no)))
    assert (third.fix.step.id, third.confirmed) == ("second.impact", True)
