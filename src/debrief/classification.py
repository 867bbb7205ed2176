"""Stage 3: read a transcript against the playbook's steps, with spaCy rules kept as data.

The pipeline is `spacy.blank("en")` with a sentencizer (plus a line break rule, so that each turn
of a call transcript is its own sentence), the lookup lemmatizer from spacy-lookups-data, a
SpanRuler loaded from the playbook's `patterns.jsonl`, and NegEx (negspacy) with the playbook's
negation cues. A pattern's `id` says whether a match shows its step done or missed; NegEx turns a
negated "done" match ("I never asked what it cost them") into a miss. Outcome matches that are
negated ("they didn't say no") are dropped.
"""

from __future__ import annotations

import re

from debrief.errors import PlaybookError
from debrief.playbook import OUTCOMES, Playbook
from debrief.walk import Evidence, Findings

SPANS_KEY = "debrief"
NEGATED = "debrief_negated"
# When several outcomes are mentioned, the one that says most about where the call ended wins:
# "they signed" beats "they went with someone else"; a dated next step ("Thursday at two works")
# beats the "I'll send it over" that often comes with it.
OUTCOME_PRIORITY = ("won", "lost", "no_meeting", "advanced", "stalled")
SPEAKER = re.compile(r"\s*(REP|PROSPECT|SPEAKER[ _]?\w+)\s*:", re.IGNORECASE)
CONTRACTIONS = {"'re": "be", "'m": "be", "'s": "be", "'ve": "have", "'ll": "will", "'d": "would",
                "n't": "not", "ca": "can", "wo": "will", "sha": "shall"}  # ca n't, wo n't
NEGATION_WORDS = {"no", "not", "never", "n't", "nothing", "without"}
NEGATION_WINDOW = 8  # tokens between a negation cue and the match it negates
CLAUSE_MARKS = {",", ";", ":", "--", "—"}
MIN_CLAUSE_TOKENS = 5
WINDOW_TOKENS = 16


class Classifier:
    """Finds each step's evidence and the outcome in a transcript. Build once, reuse."""

    def __init__(self, playbook: Playbook) -> None:
        self.playbook = playbook
        self.nlp = build_pipeline(playbook)

    def classify(self, text: str) -> Findings:
        """Evidence per step (done or missed) and the outcome, from one transcript."""
        doc = self.nlp(text)
        cues = _negation_cues(self.nlp, doc)
        evidence: dict[tuple, Evidence] = {}
        outcomes: list[Evidence] = []
        for span in _most_specific(doc.spans[SPANS_KEY]):
            negated = span._.get(NEGATED) and _cue_near(span, cues)
            label = span.label_
            if label in OUTCOMES:
                if not negated:
                    outcomes.append(_evidence(doc, span, label, "done"))
                continue
            polarity = span.id_ or "done"
            if polarity == "done" and negated:
                polarity = "missed"
            found = _evidence(doc, span, label, polarity)
            evidence.setdefault((label, polarity, found.start), found)
        found = tuple(evidence.values())
        outcome, said = _pick_outcome(outcomes)
        if _prospecting_without_appointment(outcome, found):
            outcome = "no_meeting"
        return Findings(found, outcome, said)


def build_pipeline(playbook: Playbook):
    """The spaCy pipeline for a playbook; pattern problems are reported with file and line."""
    import negspacy.negation  # noqa: F401  (registers the "negex" factory)
    import spacy
    from negspacy.termsets import termset

    nlp = spacy.blank("en")
    nlp.add_pipe("debrief_line_breaks")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.add_pipe("debrief_lemmas")
    ruler = nlp.add_pipe("span_ruler", config={
        "spans_key": SPANS_KEY, "phrase_matcher_attr": "LOWER", "validate": True})
    try:
        nlp.initialize()
    except (OSError, ValueError) as exc:  # the lookup tables come from spacy-lookups-data
        raise PlaybookError(f"spaCy lookup tables unavailable (install spacy-lookups-data): {exc}") from None
    for pattern in playbook.patterns:
        try:
            ruler.add_patterns([{"label": pattern.label, "pattern": pattern.pattern, "id": pattern.polarity}])
        except Exception as exc:  # spaCy raises several kinds for a bad pattern
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise PlaybookError(
                f"{playbook.source / 'patterns.jsonl'}:{pattern.line}: malformed pattern: {first_line}"
            ) from None
    terms = playbook.negation or termset("en").get_patterns()
    nlp.add_pipe("negex", config={"neg_termset": terms, "span_keys": [SPANS_KEY],
                                   "extension_name": NEGATED})
    return nlp


def _negation_cues(nlp, doc) -> tuple[list[int], list[int]]:
    """Where NegEx found negation cues: the ends of preceding cues, the starts of following ones."""
    preceding, following, _ = nlp.get_pipe("negex").process_negations(doc)
    return [end for _, _, end in preceding], [start for _, start, _ in following]


def _cue_near(span, cues: tuple[list[int], list[int]]) -> bool:
    """NegEx negates to the end of a clause; in speech a clause can run on for a minute.

    A negation counts only when its cue is within a few words of the match, as in
    "I never asked what it was costing them" and "the budget never came up".
    """
    if span[0].lower_ in NEGATION_WORDS:  # the match is itself a negation: "no meeting again"
        return False
    preceding, following = cues
    return any(0 <= span.start - end <= NEGATION_WINDOW for end in preceding) or any(
        0 <= start - span.end <= NEGATION_WINDOW for start in following)


def _most_specific(spans) -> list:
    """Drop a step's match that lies inside a longer mention of another step.

    "I didn't ask them to decide" is about asking for the decision (home.commit), not about who
    decides (third.decision): the longer pattern is the more specific one. An admission of a miss
    does not hide what it mentions: "I jumped straight into the demo" still says there was a demo.
    """
    spans = sorted(spans, key=lambda s: (s.start, -s.end))
    steps = [o for o in spans if o.label_ not in OUTCOMES and (o.id_ or "done") == "done"]
    return [s for s in spans if s.label_ in OUTCOMES or not any(
        o.label_ != s.label_ and o.start <= s.start and s.end <= o.end and len(o) > len(s) for o in steps)]


def _register_components() -> None:
    from spacy.language import Language

    @Language.component("debrief_line_breaks")
    def line_breaks(doc):
        """A new line starts a new sentence: each turn of a call transcript stands alone."""
        for token in doc[1:]:
            if "\n" in doc[token.i - 1].text or "\n" in doc[token.i - 1].whitespace_:
                token.is_sent_start = True
        return doc

    @Language.component("debrief_lemmas")
    def lemmas(doc):
        """Lemmas that patterns can rely on: lower case ("Budget", "They"), and contractions
        as the words they stand for ("we're set" is "we be set", like "we are set")."""
        for token in doc:
            text = token.lower_.replace("\u2019", "'")
            token.lemma_ = CONTRACTIONS.get(text) or token.lemma_.lower()
        return doc


_register_components()


def _evidence(doc, span, label: str, polarity: str) -> Evidence:
    """The clause around a match: the words between the commas that enclose it, in its sentence.

    A clause of a few words says too little ("ask about budget"), so it then widens to the
    sentence; a sentence of a long run-on transcript is cut to a window around the match.
    """
    sent = span.sent
    left = next((t.i + 1 for t in reversed(doc[sent.start:span.start]) if t.text in CLAUSE_MARKS), sent.start)
    right = next((t.i + 1 for t in doc[span.end:sent.end] if t.text in CLAUSE_MARKS), sent.end)
    if right - left < MIN_CLAUSE_TOKENS:
        left, right = sent.start, sent.end
    left, right = max(left, span.start - WINDOW_TOKENS), min(right, span.end + WINDOW_TOKENS)
    clause = doc[left:right]
    text = clause.text.strip(" \n\t,;:")
    start = clause.start_char + clause.text.find(text)
    return Evidence(label, polarity, text, start, start + len(text), _speaker(doc.text, start))


def _speaker(text: str, offset: int) -> str | None:
    line_start = text.rfind("\n", 0, offset) + 1
    match = SPEAKER.match(text, line_start)
    return match.group(1).upper() if match else None


def _prospecting_without_appointment(outcome: str, evidence: tuple[Evidence, ...]) -> bool:
    """A call to reach a decision maker that ends on "send me something" ended with no meeting.

    The goal of a prospecting call is the appointment: when the transcript reaches a contact,
    nobody agrees to meet, and nothing past second base happens, the call ended at first base.
    """
    if outcome not in ("stalled", "unknown"):
        return False
    labels = {(e.label, e.polarity) for e in evidence}
    bases = {e.label.split(".")[0] for e in evidence}
    return (any(label == "first.contact" for label, _ in labels)
            and ("first.appointment", "done") not in labels
            and not bases & {"third", "home"})


def _pick_outcome(outcomes: list[Evidence]) -> tuple[str, Evidence | None]:
    for outcome in OUTCOME_PRIORITY:
        said = [e for e in outcomes if e.label == outcome]
        if said:
            return outcome, said[0]
    return "unknown", None
