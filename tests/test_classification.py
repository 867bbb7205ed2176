"""The pattern layer with the real default patterns, one behaviour per test.

The patterns are the precise, explainable layer: the learned reader reads their matches as features,
and a playbook with no examples reads with them alone. Here they run alone (`reader=None`); the
reader and the two together are tested in test_reader.py and test_cases.py.
"""

import pytest

from debrief.classification import Classifier


@pytest.fixture(scope="module")
def classify(playbook):
    return Classifier(playbook, reader=None).classify


def statuses(findings):
    """{step id: "done" | "missed"}, a miss outweighing a mention, as the walk reads it."""
    result = {}
    for e in findings.evidence:
        if result.get(e.label) != "missed":
            result[e.label] = e.polarity
    return result


def test_a_mention_is_done(classify):
    assert statuses(classify("We talked through their problems with late deliveries."))["second.issues"] == "done"


def test_a_negated_mention_is_missed(classify):
    assert statuses(classify("I never asked what it was costing them."))["second.impact"] == "missed"


def test_a_contraction_negates(classify):
    assert statuses(classify("I didn't find out who else is involved."))["third.decision"] == "missed"


def test_negation_stops_at_but(classify):
    found = statuses(classify("I didn't pitch anything, but I asked what it was costing them."))
    assert found["second.impact"] == "done"


def test_a_symptom_is_a_miss(classify):
    found = statuses(classify("Turns out the CFO has to sign off on anything over ten grand."))
    assert found["third.decision"] == "missed"


def test_no_hurry_is_an_urgency_miss(classify):
    assert statuses(classify("Honestly they said they're in no hurry."))["second.urgency"] == "missed"


def test_the_budget_never_came_up(classify):
    assert statuses(classify("The budget never came up."))["third.budget"] == "missed"


def test_demo_before_issues_points_to_issues(classify):
    found = statuses(classify("I jumped straight into the demo before I knew what their problem was."))
    assert found["second.issues"] == "missed" and found["home.present"] == "done"


def test_dialogue_question_and_answer(classify):
    text = "REP: What is that costing you?\nPROSPECT: About 20,000 a month."
    findings = classify(text)
    impact = [e for e in findings.evidence if e.label == "second.impact"]
    assert {e.polarity for e in impact} == {"done"}
    assert {e.speaker for e in impact} == {"REP", "PROSPECT"}


def test_each_line_of_a_call_is_its_own_sentence(classify):
    text = "REP: we didn't get to pricing\nPROSPECT: what is that costing us you mean"
    assert statuses(classify(text))["second.impact"] == "done"


def test_whisper_without_punctuation(classify):
    text = "so yeah they said they want to think about it i showed them the platform but i never asked who signs off"
    findings = classify(text)
    assert findings.outcome == "stalled"
    assert statuses(findings)["third.decision"] == "missed"
    assert statuses(findings)["home.present"] == "done"


def test_evidence_offsets_point_into_the_text(classify):
    text = "Good meeting. They said they'd think about it, and I never asked about their budget."
    for e in classify(text).evidence:
        assert text[e.start:e.end] == e.text


@pytest.mark.parametrize("text,outcome", [
    ("They signed the contract on Friday.", "won"),
    ("They went with a competitor.", "lost"),
    ("He wants to think it over.", "stalled"),
    ("She asked me to send over a proposal.", "stalled"),
    ("We booked a follow-up meeting for next Tuesday.", "advanced"),
    ("The owner cancelled the meeting.", "no_meeting"),
    ("They didn't show up.", "no_meeting"),
    ("We talked about their problems.", "unknown"),
])
def test_outcomes(classify, text, outcome):
    assert classify(text).outcome == outcome


def test_a_negated_outcome_is_ignored(classify):
    assert classify("They didn't say no, they said they'd think about it.").outcome == "stalled"


def test_won_outranks_an_earlier_stall(classify):
    text = "At first they wanted to think about it. Then on Friday they signed the contract."
    assert classify(text).outcome == "won"


def test_a_match_that_is_itself_a_negation_is_not_negated_again(classify):
    assert classify("So yeah, nothing, no meeting again.").outcome == "no_meeting"


def test_a_quoted_price_is_not_the_cost_of_the_problem(classify):
    assert "second.impact" not in statuses(classify("REP: pricing is $399 a month per location"))


def test_the_cost_of_the_problem_in_a_call(classify):
    assert statuses(classify("PROSPECT: it's about $15,000 a month in refunds"))["second.impact"] == "done"


def test_contractions_read_as_words(classify):
    assert classify("So we're set for Tuesday at three.").outcome == "advanced"
    assert statuses(classify("PROSPECT: I can't sign anything like that."))["first.contact"] == "missed"


def test_a_far_away_negation_does_not_reach(classify):
    text = ("I didn't bring slides to a meeting where for a whole hour the owner showed me in detail "
            "what the late trucks are costing them")
    assert statuses(classify(text))["second.impact"] == "done"


def test_asking_them_to_decide_is_the_commit_not_who_decides(classify):
    found = statuses(classify("I didn't ask them to decide."))
    assert found["home.commit"] == "missed" and "third.decision" not in found
