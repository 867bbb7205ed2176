"""Every labelled debrief and call gets the right step to fix and the right outcome.

The cases are in tests/data/cases.jsonl (and samples/labels.json); `make eval` prints the accuracy.
They run the real patterns through the real pipeline.
"""

import importlib.util

import pytest

from conftest import REPO

_spec = importlib.util.spec_from_file_location("evaluate", REPO / "scripts" / "evaluate.py")
evaluate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(evaluate)
CASES = evaluate.load_cases()


@pytest.fixture(scope="module")
def classifier(playbook):
    from debrief.classification import Classifier

    return Classifier(playbook)


def test_the_set_covers_every_step_and_outcome(playbook):
    fixes = {c["fix"] for c in CASES}
    outcomes = {c["outcome"] for c in CASES}
    assert len(CASES) >= 40
    assert {s.id for s in playbook.steps} | {None} <= fixes
    assert {"won", "advanced", "stalled", "lost", "no_meeting", "unknown"} <= outcomes


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case(case, playbook, classifier):
    from debrief.walk import diagnose

    result = diagnose(playbook, classifier.classify(case["text"]))
    assert (result.fix.step.id if result.fix else None, result.outcome) == (case["fix"], case["outcome"])
