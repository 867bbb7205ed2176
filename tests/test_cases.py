"""The labelled debriefs and calls, through the real pipeline (`make eval` prints the same figures).

- The patterns alone (what a playbook with no examples reads with) keep every case they were tuned
  on right: tests/data/cases.jsonl, the first held-out round (tests/data/heldout.jsonl) and the
  README samples.
- The learned reader gets every README sample right, from text here and from audio in
  test_end_to_end.py.
- On the dev set and the training cases the reader must not fall below the floors under its
  measured accuracy (80 % / 75 % on dev, 82 % / 78 % on train when written): a change that costs
  more than a couple of cases fails here. The held-out set is never scored by a test: it is scored
  once, by hand, and its first run is in the README.
"""

import importlib.util

import pytest

from conftest import REPO

_spec = importlib.util.spec_from_file_location("evaluate", REPO / "scripts" / "evaluate.py")
evaluate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(evaluate)
SETS = evaluate.load_sets()
TUNED = [c for c in SETS["train"] if "steps" not in c] + SETS["samples"]
FLOORS = {"dev": (0.75, 0.70), "train": (0.78, 0.74)}  # step to fix, outcome


@pytest.fixture(scope="module")
def patterns(playbook):
    from debrief.classification import Classifier

    return Classifier(playbook, reader=None)


@pytest.fixture(scope="module")
def reader(playbook):
    from debrief.classification import Classifier

    return Classifier(playbook)


def diagnosis(playbook, classifier, case) -> tuple:
    from debrief.walk import diagnose

    result = diagnose(playbook, classifier.classify(case["text"]))
    return result.fix.step.id if result.fix else None, result.outcome


def test_the_sets_cover_every_step_and_outcome(playbook):
    for name in ("train", "dev"):
        fixes = {c["fix"] for c in SETS[name]}
        outcomes = {c["outcome"] for c in SETS[name]}
        assert {s.id for s in playbook.steps} | {None} <= fixes, name
        assert {"won", "advanced", "stalled", "lost", "no_meeting", "unknown"} <= outcomes, name
    assert len(SETS["train"]) + len(SETS["dev"]) >= 150


@pytest.mark.parametrize("case", TUNED, ids=[c["id"] for c in TUNED])
def test_the_patterns_alone_keep_their_cases(case, playbook, patterns):
    assert diagnosis(playbook, patterns, case) == (case["fix"], case["outcome"])


@pytest.mark.parametrize("case", SETS["samples"], ids=[c["id"] for c in SETS["samples"]])
def test_the_reader_gets_every_sample_right(case, playbook, reader):
    assert diagnosis(playbook, reader, case) == (case["fix"], case["outcome"])


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_the_reader_stays_above_its_floor(name, playbook, reader):
    cases = SETS[name]
    results = [diagnosis(playbook, reader, case) for case in cases]
    fix = sum(got[0] == case["fix"] for got, case in zip(results, cases)) / len(cases)
    outcome = sum(got[1] == case["outcome"] for got, case in zip(results, cases)) / len(cases)
    floor_fix, floor_outcome = FLOORS[name]
    assert (fix >= floor_fix, outcome >= floor_outcome) == (True, True), f"{name}: fix {fix:.1%}, outcome {outcome:.1%}"
