"""The backward walk as a table: one row per rule of coaching-model.md."""

import pytest

from debrief.walk import Evidence, Findings, diagnose


def findings(outcome="unknown", **steps):
    """Build findings from `first_contact="done"`-style keywords (dots spelled as underscores)."""
    evidence = tuple(
        Evidence(name.replace("_", ".", 1), polarity, f"{name} {polarity}", 0, 1)
        for name, polarity in steps.items()
    )
    said = Evidence(outcome, "done", f"it ended {outcome}", 0, 1) if outcome != "unknown" else None
    return Findings(evidence, outcome, said)


CASES = [
    # rule 1 + 3: the worked example in coaching-model.md
    ("worked example", findings("stalled", home_present="done", third_decision="missed",
                                second_impact="missed", second_issues="done", second_rapport="done",
                                first_appointment="done"),
     "home.commit", "second.impact"),
    # rule 1: stalled after a presentation and nothing earlier wrong -> home.commit
    ("stalled after clean presentation", findings("stalled", second_issues="done", second_impact="done",
                                                  third_decision="done", third_budget="done", home_present="done"),
     "home.commit", "home.commit"),
    ("lost after presentation", findings("lost", second_issues="done", second_impact="done",
                                         third_decision="done", third_budget="done", home_present="done"),
     "home.commit", "home.commit"),
    # rule 1: stalled without a presentation does not invent a commit miss
    ("stalled before presenting", findings("stalled", second_issues="done", second_impact="done"),
     "second.impact", None),
    # rule 3: silent + required + not implied is the fix
    ("budget never came up", findings("unknown", second_issues="done", second_impact="done",
                                      third_decision="done", home_present="done"),
     "home.present", "third.budget"),
    # rule 3: silent + optional is not a fix
    ("optional silent steps are skipped", findings("advanced", second_rapport="done", second_issues="done",
                                                   second_impact="done", third_decision="done",
                                                   third_budget="done"),
     "third.budget", None),
    # rule 3: an optional step admitted missed is a fix
    ("optional step missed", findings("advanced", first_expectations="missed", second_issues="done",
                                      second_impact="done"),
     "second.impact", "first.expectations"),
    # rule 3: implied by any later step
    ("earlier steps implied by later evidence", findings("unknown", second_impact="done"),
     "second.impact", None),
    # second.issues is implied only by a later step on second base
    ("issues implied by a later second-base step", findings("unknown", second_urgency="done"),
     "second.urgency", "second.impact"),
    ("issues not implied by third base", findings("unknown", third_decision="done"),
     "third.decision", "second.issues"),
    # an admission of a miss on a later step still implies the earlier steps happened
    ("a later miss implies the meeting", findings("unknown", second_impact="missed"),
     "second.impact", "second.impact"),
    # rule 3: nothing after the endpoint is coached
    ("nothing after the endpoint", findings("advanced", second_rapport="done", second_issues="done"),
     "second.issues", None),
    # rule 3: the earliest of several misses
    ("earliest miss wins", findings("lost", second_issues="missed", third_budget="missed", home_present="done"),
     "home.commit", "second.issues"),
    # rule 4: won has nothing to fix, even with misses
    ("won with a miss", findings("won", second_impact="missed", home_present="done"),
     "home.commit", None),
    ("won and nothing else said", findings("won"), "home.commit", None),
    # rule 4: advanced with nothing missing
    ("advanced clean", findings("advanced", first_appointment="done", second_rapport="done"),
     "second.rapport", None),
    ("advanced with a silent required step", findings("advanced", second_rapport="done", third_decision="done"),
     "third.decision", "second.issues"),
    # rule 5: done out of order is reported as second.issues missed by the classifier
    ("demo before issues", findings("stalled", second_issues="missed", home_present="done"),
     "home.commit", "second.issues"),
    # no_meeting: the appointment was not earned
    ("no meeting", findings("no_meeting"), "first.appointment", "first.appointment"),
    ("no meeting, never reached the decider", findings("no_meeting", first_contact="missed"),
     "first.appointment", "first.contact"),
    # a miss outweighs a mention of the same step
    ("miss outweighs mention", findings("unknown", second_issues="done", second_impact="done",
                                        third_decision="done", third_budget="missed"),
     "third.budget", "third.budget"),
]


# Rules 6 and 7: (name, findings, status, fix, confirmed, then)
ASKED = [
    # rule 6: a silent fix is unconfirmed, and `then` names the earliest later step admitted missed
    ("silent fix, a later miss", findings("stalled", third_budget="missed", home_present="done"),
     "fix", "second.issues", False, "third.budget"),
    ("silent fix, nothing later missed", findings("unknown", second_issues="done", third_decision="done",
                                                  home_present="done"),
     "fix", "second.impact", False, None),
    ("silent fix, then skips silent steps", findings("unknown", second_issues="done", third_decision="missed"),
     "fix", "second.impact", False, "third.decision"),
    ("silent fix, a commit missed by the outcome", findings("lost", second_issues="done", second_impact="done",
                                                             third_decision="done", home_present="done"),
     "fix", "third.budget", False, "home.commit"),
    ("a missed fix is confirmed", findings("lost", second_issues="missed", third_budget="missed",
                                           home_present="done"),
     "fix", "second.issues", True, None),
    ("won: nothing to fix", findings("won", second_impact="missed"), "nothing_to_fix", None, None, None),
    ("advanced clean: nothing to fix", findings("advanced", first_appointment="done", second_rapport="done"),
     "nothing_to_fix", None, None, None),
    # rule 7: no evidence and no outcome is not enough to coach; nor is an outcome alone that is no win
    ("nothing said", findings(), "not_enough", None, None, None),
    ("an outcome alone", findings("lost"), "not_enough", None, None, None),
    ("won alone is a win", findings("won"), "nothing_to_fix", None, None, None),
    ("no meeting alone is a fix", findings("no_meeting"), "fix", "first.appointment", True, None),
]


@pytest.mark.parametrize("name,given,status,fix,confirmed,then", ASKED, ids=[c[0] for c in ASKED])
def test_ask_before_blaming_and_not_enough(playbook, name, given, status, fix, confirmed, then):
    result = diagnose(playbook, given)
    assert result.status == status
    assert (result.fix.step.id if result.fix else None) == fix
    assert result.confirmed is confirmed
    assert (result.then.step.id if result.then else None) == then
    if then is not None:
        assert result.then.status == "missed" and result.then.evidence


@pytest.mark.parametrize("name,given,endpoint,fix", CASES, ids=[c[0] for c in CASES])
def test_walk_table(playbook, name, given, endpoint, fix):
    result = diagnose(playbook, given)
    assert result.endpoint == endpoint
    assert (result.fix.step.id if result.fix else None) == fix


def test_nothing_said_has_no_endpoint(playbook):
    result = diagnose(playbook, Findings())
    assert result.endpoint is None and result.fix is None and result.walk == ()


def test_walk_goes_back_from_endpoint_to_fix(playbook):
    result = diagnose(playbook, CASES[0][1])
    ids = [s.step.id for s in result.walk]
    assert ids[0] == "home.commit" and ids[-1] == "second.impact"
    assert ids == sorted(ids, key=playbook.index, reverse=True)
    assert [s.status for s in result.walk if s.step.id in ("home.present", "third.decision")] == ["done", "missed"]


def test_walk_without_fix_goes_back_to_the_start(playbook):
    result = diagnose(playbook, findings("advanced", first_appointment="done", second_rapport="done"))
    assert [s.step.id for s in result.walk][-1] == "first.contact"


def test_stalled_commit_evidence_is_the_outcome_sentence(playbook):
    result = diagnose(playbook, CASES[1][1])
    assert result.fix.status == "missed"
    assert result.fix.evidence[0].text == "it ended stalled"


def test_implied_flags(playbook):
    result = diagnose(playbook, findings("unknown", second_impact="done"))
    implied = {s.step.id for s in result.steps if s.implied}
    assert implied == {"first.contact", "first.appointment", "first.expectations", "second.rapport",
                       "second.issues"}
