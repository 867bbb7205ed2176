"""`debrief prep` and `debrief history`: what we know, what we need to know, the questions to lead with.

Tables of notes and saved debriefs, read by the real patterns and playbook, with the expected
steps known, the next base and its steps, the questions, and the close (never before second base).
The rules of prep are tested on the pattern layer alone, whose readings are fixed; the learned
reader's readings of notes (what it knows, what it says we need to know) have tests of their own at
the end, and the command line uses both.
"""

import json

import pytest
from typer.testing import CliRunner

from debrief.cli import app
from debrief.prep import lead_questions, merge, prepare, spoken

runner = CliRunner()

MEETING = "We have a meeting booked with Dana, the operations manager, on Thursday."
PAIN = ("We met last week. They told me the late shipments are their biggest problem, "
        "and they cost them twenty thousand a month.")
COSTS = "They told me the late shipments cost them twenty thousand a month."
QUALIFIED = (f"{COSTS} The budget is fifty thousand and it's approved. The CFO makes the decision. "
             "They want to decide by the end of March.")
NEVER_ASKED = "I never asked what it was costing them."
STALLED = ("They said they'd talk it over and get back to me. Before that I walked them through the full demo. "
           "We talked about their problem with late shipments, but I never asked what it was costing them.")


@pytest.fixture(scope="module")
def classifier(playbook):
    from debrief.classification import Classifier

    return Classifier(playbook, reader=None)


@pytest.fixture(scope="module")
def reader(playbook):
    from debrief.classification import Classifier

    return Classifier(playbook)


def prep_of(playbook, classifier, *notes):
    return prepare(playbook, [classifier.classify(text) for text in notes])


def question_of(playbook, step_id, n=0):
    return playbook.step(step_id).questions[n]


# known (own evidence), next base, needed (step, missed), the steps whose first question leads, close?
PREPS = [
    ("a meeting booked, nothing else", [MEETING], ["first.appointment"], "second",
     [("second.rapport", False), ("second.issues", False), ("second.impact", False), ("second.urgency", False),
      ("second.differentiate", False)], ["second.rapport", "second.issues", "second.impact"], False),
    ("their pain, quantified: on to qualifying", [PAIN], ["second.issues", "second.impact"], "third",
     [("third.decision", False), ("third.budget", False), ("third.timeline", False)],
     ["third.decision", "third.budget", "third.timeline"], True),
    ("qualified: on to home", [QUALIFIED], ["second.impact", "third.decision", "third.budget", "third.timeline"],
     "home", [("home.present", False), ("home.commit", False)], ["home.present", "home.commit"], True),
    ("missed, then done on a later call: done", [NEVER_ASKED, COSTS], ["second.impact"], "third",
     [("third.decision", False), ("third.budget", False), ("third.timeline", False)],
     ["third.decision", "third.budget", "third.timeline"], True),
    ("done, then admitted missed later: missed", [COSTS, NEVER_ASKED], [], "second",
     [("second.impact", True), ("second.urgency", False), ("second.differentiate", False)],
     ["second.impact", "second.urgency", "second.differentiate"], False),
    ("stalled after a demo with no number on the problem", [STALLED], ["second.issues", "home.present"], "second",
     [("second.impact", True), ("second.urgency", False), ("second.differentiate", False)],
     ["second.impact", "second.urgency", "second.differentiate"], False),
    ("nothing known yet", ["Just a name on a list."], [], "first",
     [("first.contact", False), ("first.appointment", False), ("first.expectations", False)],
     ["first.appointment", "first.contact", "first.expectations"], False),
]


@pytest.mark.parametrize("why, notes, known, base, needed, leads, close", PREPS, ids=[p[0] for p in PREPS])
def test_what_we_know_what_we_need_to_know_and_the_questions(playbook, classifier, why, notes, known, base,
                                                             needed, leads, close):
    prep = prep_of(playbook, classifier, *notes)
    assert [k.step.id for k in prep.known if not k.implied] == known
    assert prep.next_base.id == base
    assert [(n.step.id, n.missed) for n in prep.needed] == needed
    assert list(prep.questions) == [question_of(playbook, step) for step in leads]
    assert 2 <= len(prep.questions) <= 3
    assert (prep.close is not None) == close and (prep.no_close is None) == close


def test_no_close_before_second_base_and_it_says_why(playbook, classifier):
    prep = prep_of(playbook, classifier, MEETING)
    close_questions = set(playbook.step("home.commit").questions) | set(playbook.step("home.present").questions)
    assert prep.close is None and not close_questions & set(prep.questions)
    assert prep.no_close.startswith("No close yet: we don't know why they would buy.")
    assert "Second base is not earned" in prep.no_close and "compelling reasons" in prep.no_close
    assert prep.no_close in spoken(prep)


def test_once_second_base_is_earned_the_close_is_the_commit_question(playbook, classifier):
    prep = prep_of(playbook, classifier, PAIN)
    assert prep.close == question_of(playbook, "home.commit") and prep.no_close is None
    assert "What we know: what their problem is; what the problem costs them." \
        in spoken(prep)


def test_a_close_not_won_is_not_a_lead_question_before_its_base(playbook, classifier):
    from dataclasses import replace

    from debrief.walk import Evidence

    pain = classifier.classify(PAIN)
    stall = "They'd get back to me."
    said = replace(pain, evidence=pain.evidence + (Evidence("home.commit", "missed", stall, 0, len(stall)),))
    prep = prepare(playbook, [said])
    assert prep.next_base.id == "third"
    assert [n.step.id for n in prep.needed] == ["third.decision", "third.budget", "third.timeline"]
    assert question_of(playbook, "home.commit") not in prep.questions and prep.close


def test_one_step_left_is_drilled_from_two_angles(playbook, classifier):
    prep = prep_of(playbook, classifier, MEETING)
    only_impact = [n for n in prep.needed if n.step.id == "second.impact"]
    assert lead_questions(only_impact) == tuple(playbook.step("second.impact").questions[:2])


def test_merge_keeps_the_latest_word_on_each_step_and_outcome(classifier):
    merged = merge([classifier.classify(STALLED), classifier.classify(COSTS)])
    impact = [e.polarity for e in merged.evidence if e.label == "second.impact"]
    assert impact == ["done"] and merged.outcome == "stalled"


# --- the commands -----------------------------------------------------------------------------------

def save_debrief(analyzer, text, deal, recorded_at, rep="sam"):
    """A debrief in the history as `listen` saves one: the recording row, then the analyze object."""
    from debrief import output
    from debrief.store import Store, bytes_hash

    digest = bytes_hash(text.encode())
    with Store() as store:
        store.add_recording(digest, f"{deal}-{recorded_at}.wav", rep=rep, deal=deal, recorded_at=recorded_at)
        store.save_result(digest, output.to_dict(analyzer.analyze_text(text, source=digest)))


@pytest.fixture()
def history(playbook):
    from debrief.pipeline import Analyzer

    analyzer = Analyzer(playbook)
    save_debrief(analyzer, STALLED, "Acme", "2026-11-02T10:00:00+00:00")
    save_debrief(analyzer, PAIN, "Acme", "2026-11-09T10:00:00+00:00", rep="kim")
    save_debrief(analyzer, QUALIFIED, "Globex", "2026-11-10T10:00:00+00:00")


def test_prep_from_a_deals_saved_debriefs(history):
    result = runner.invoke(app, ["prep", "--deal", "Acme", "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert len(found["sources"]) == 2 and found["outcome"] == "stalled"
    # The second call put a number on their problem: second base is earned, third is next. The
    # reader also reads "We met last week" as the meeting having happened, as the patterns did not.
    known = [k["step"] for k in found["known"] if not k["implied"]]
    assert known == ["first.appointment", "second.issues", "second.impact", "home.present"]
    assert found["next_base"]["id"] == "third"
    assert [n["step"] for n in found["need_to_know"]] == ["third.decision", "third.budget", "third.timeline"]
    assert found["close"] and found["no_close"] is None


def test_prep_text_view_and_notes_from_a_file_and_standard_input(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text(MEETING)
    result = runner.invoke(app, ["prep", str(notes)])
    assert result.exit_code == 0, result.output
    assert "What we know" in result.stdout and '"We have a meeting booked with Dana"' in result.stdout
    assert "What we need to know, for second base" in result.stdout
    assert '1. "How did you come to be in this role?"' in result.stdout
    assert "No close yet" in result.stdout
    piped = runner.invoke(app, ["prep", "-", "--json"], input=MEETING)
    assert json.loads(piped.stdout)["next_base"]["id"] == "second"


def test_prep_needs_something_to_work_from(tmp_path):
    assert runner.invoke(app, ["prep"]).exit_code == 2
    unknown = runner.invoke(app, ["prep", "--deal", "Nobody"])
    assert unknown.exit_code == 3 and "deal 'Nobody': no saved debriefs" in unknown.output
    missing = runner.invoke(app, ["prep", str(tmp_path / "gone.txt")])
    assert missing.exit_code == 3 and "gone.txt: no such file" in missing.output


@pytest.mark.slow
def test_prep_read_aloud_to_a_file(tmp_path):
    from debrief.audio import decode_audio

    result = runner.invoke(app, ["prep", "--text", PAIN, "--speak-to", str(tmp_path / "prep.wav")])
    assert result.exit_code == 0, result.output
    assert len(decode_audio(tmp_path / "prep.wav")) > 10 * 16000


def test_history_lists_and_filters(history):
    everything = runner.invoke(app, ["history"])
    assert everything.exit_code == 0
    lines = everything.stdout.splitlines()
    # One date format, the file's name, its length in words (a transcript), the fix in plain words.
    assert len(lines) == 3 and lines[0].startswith("2026-11-02  sam  Acme  Acme-2026-11-02T10:00:00+00:00.wav  ")
    assert f"  {len(STALLED.split())} words  " in lines[0]
    assert lines[0].endswith("stalled; fix: what the problem costs them") and "second.impact" not in everything.stdout
    kims = [json.loads(line) for line in runner.invoke(app, ["history", "--rep", "kim", "--json"]).stdout.splitlines()]
    assert [(e["rep"], e["deal"], e["status"]) for e in kims] == [("kim", "Acme", "done")]
    since = runner.invoke(app, ["history", "--since", "2026-11-10", "--json"]).stdout.splitlines()
    assert [json.loads(line)["deal"] for line in since] == ["Globex"]


def test_history_when_there_is_none():
    result = runner.invoke(app, ["history"])
    assert result.exit_code == 0 and "No saved debriefs yet" in result.stdout


def test_prep_reads_an_unknown_in_the_notes_as_something_we_need_to_know(playbook, reader):
    notes = ("We met with Priya, the clinic manager, on Tuesday. Their no-shows cost them about "
             "eight thousand a month. I don't know who else would need to approve it.")
    prep = prep_of(playbook, reader, notes)
    assert "third.decision" not in [k.step.id for k in prep.known]
    assert ("third.decision", True) in [(n.step.id, n.missed) for n in prep.needed]


def test_what_the_notes_say_is_unknown_is_needed_even_past_the_next_base(playbook, reader):
    notes = f"{MEETING} I don't know who else would need to approve it."
    prep = prep_of(playbook, reader, notes)
    assert prep.next_base.id == "second"
    [decision] = [n for n in prep.needed if n.step.id == "third.decision"]
    assert decision.missed and decision.beyond and decision.evidence == "I don't know who else would need to approve it."
    assert prep.needed[0] is decision  # said unknown first, then the next base's steps
    assert [n.step.base for n in prep.needed[1:]] == ["second"] * (len(prep.needed) - 1)
    assert question_of(playbook, "third.decision") in prep.questions
    shown = runner.invoke(app, ["prep", "--text", notes])
    assert "who decides (missed: \"I don't know who else would need to approve it.\", third base, past this base)" \
        in " ".join(shown.stdout.split())


def test_prep_does_not_call_the_money_confirmed_when_someone_else_holds_it(playbook, reader):
    notes = ("Good first meeting with Dr. Ruiz. The missed recalls cost them about ten grand a month. "
             "Her partner handles the money side.")
    prep = prep_of(playbook, reader, notes)
    assert "third.budget" not in [k.step.id for k in prep.known]
