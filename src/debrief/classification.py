"""Stage 3: read a transcript against the playbook's steps, with spaCy rules kept as data.

The pipeline is `spacy.blank("en")` with a sentencizer (plus a line break rule, so that each turn
of a call transcript is its own sentence), the lookup lemmatizer from spacy-lookups-data, a
SpanRuler loaded from the playbook's `patterns.jsonl`, and NegEx (negspacy) with the playbook's
negation cues. A pattern's `id` says whether a match shows its step done or missed; NegEx turns a
negated "done" match ("I never asked what it cost them") into a miss. Outcome matches that are
negated ("they didn't say no") are dropped.
"""

from __future__ import annotations

import logging
import re

from debrief.errors import PlaybookError
from debrief.playbook import OUTCOMES, Playbook
from debrief.walk import Evidence, Findings

log = logging.getLogger(__name__)

SPANS_KEY = "debrief"
NEGATED = "debrief_negated"
# When several outcomes are mentioned, the one that says most about where the call ended wins:
# "they signed" beats "they wanted to think about it", which beats "we booked a follow-up".
OUTCOME_PRIORITY = ("won", "lost", "no_meeting", "stalled", "advanced")
SPEAKER = re.compile(r"^\s*(REP|PROSPECT|SPEAKER[ _]?\w+)\s*:", re.IGNORECASE)
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
        evidence: dict[tuple, Evidence] = {}
        outcomes: list[Evidence] = []
        for span in sorted(doc.spans[SPANS_KEY], key=lambda s: (s.start, s.end)):
            negated = span._.get(NEGATED)
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
        outcome, said = _pick_outcome(outcomes)
        return Findings(tuple(evidence.values()), outcome, said)


def build_pipeline(playbook: Playbook):
    """The spaCy pipeline for a playbook; pattern problems are reported with file and line."""
    import negspacy.negation  # noqa: F401  (registers the "negex" factory)
    import spacy
    from negspacy.termsets import termset

    nlp = spacy.blank("en")
    nlp.add_pipe("debrief_line_breaks")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.add_pipe("debrief_lower_lemmas")
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


def _register_components() -> None:
    from spacy.language import Language

    @Language.component("debrief_line_breaks")
    def line_breaks(doc):
        """A new line starts a new sentence: each turn of a call transcript stands alone."""
        for token in doc[1:]:
            if "\n" in doc[token.i - 1].text or "\n" in doc[token.i - 1].whitespace_:
                token.is_sent_start = True
        return doc

    @Language.component("debrief_lower_lemmas")
    def lower_lemmas(doc):
        """The lookup table only knows lower-case words: "Budget" and "They" get their lemma too."""
        for token in doc:
            if token.lemma_ and token.lemma_ != token.lemma_.lower():
                token.lemma_ = token.lemma_.lower()
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


def _pick_outcome(outcomes: list[Evidence]) -> tuple[str, Evidence | None]:
    for outcome in OUTCOME_PRIORITY:
        said = [e for e in outcomes if e.label == outcome]
        if said:
            return outcome, said[0]
    return "unknown", None
