"""Stage 3: read a transcript against the playbook's steps: spaCy rules kept as data, and a
learned reader beside them.

The pipeline is `spacy.blank("en")` with a sentencizer (plus a line break rule, so that each turn
of a call transcript is its own sentence; a sentence too long to read whole, as in speech without
full stops, is cut where Whisper's segments start, then into windows), the lookup lemmatizer from spacy-lookups-data, a
SpanRuler loaded from the playbook's `patterns.jsonl`, NegEx (negspacy) with the playbook's
negation cues, and the `debrief_reader` component (`reader.py`), which scores every unit of the
text: each sentence, each window of a long run-on, and each question with the turn that answers it.

How the two combine. The reader was trained with the pattern matches in each example as features
of their own (`RULE_third.budget_missed`), so it has learned how far each kind of match can be
trusted; when a playbook has a reader, the reader decides, unit by unit (a unit is one of the pieces
of text above):
1. A unit's best step label counts when its probability clears `threshold` (`missed_threshold` for
   a miss) and leads the runner-up by `margin`; "other" and the outcomes never count as steps. Its
   evidence is the unit itself, with character offsets, or, where a pattern in the unit says the
   same, that pattern's clause (the sharper quote). A question whose answer follows is read only
   together with that answer; questions asked one after another in one turn are answered
   together, and in a transcript with no question marks (a speech recogniser's) a turn that opens
   like a question ("so who handles your inspections") is one.
2. Where it ended up: every unit whose best outcome clears `outcome_threshold` is a candidate,
   weighted by its probability and by where it is said (`outcome_position`: an outcome in the last
   turns weighs up to three times one said first); the heaviest wins. An outcome said in a clause is
   quoted with its whole sentence.
3. A clause of a sentence that joins two statements ("... a month, and the owner decides") adds
   a step its sentence does not show when it clears `clause_threshold`; it never repeats or
   contradicts its sentence's step.
4. A unit can show two steps ("it's you and your COO deciding, with $400,000 set aside"): its
   runner-up counts too when it is another step and clears `second_threshold` (and, for a miss,
   `missed_threshold`).
5. After all that: a missed appointment ("nothing on the calendar") in a meeting that got past the
   compelling-reasons base is a missed commitment, and a prospecting call that reached a contact,
   or was turned away, and booked no meeting ended with no meeting (`_next_meeting_misses`,
   `_prospecting_without_appointment`).
With no reader (a playbook without examples) the patterns alone decide, as they always did: every
match is evidence, and of the outcomes matched, the one that says most about the end wins.
On the labelled sets the reader alone beat the patterns standing beside it on every set the
patterns were not tuned on (the README has the figures), so the patterns count through the reader.
A pattern's `id` says whether a match shows its step done or missed; NegEx turns a negated "done"
match ("I never asked what it cost them") into a miss. Outcome matches that are negated ("they
didn't say no") are dropped.

Touches: nothing but the playbook and the reader it is given (the reader's cache is reader.py's).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass

from debrief.errors import PlaybookError
from debrief.playbook import OTHER, OUTCOMES, Playbook
from debrief.walk import Evidence, Findings

log = logging.getLogger(__name__)

SPANS_KEY = "debrief"
NEGATED = "debrief_negated"
# When several outcomes are mentioned, the one that says most about where the call ended wins:
# "they signed" beats "they went with someone else"; a dated next step ("Thursday at two works")
# beats the "I'll send it over" that often comes with it.
DECISIVE = ("won", "lost")  # outcomes that end the deal: said surely, what is said after them does not move it
OUTCOME_PRIORITY = ("won", "lost", "no_meeting", "advanced", "stalled")
SPEAKER = re.compile(r"\s*(REP|PROSPECT|SPEAKER[ _]?\w+)\s*:", re.IGNORECASE)
CONTRACTIONS = {"'re": "be", "'m": "be", "'s": "be", "'ve": "have", "'ll": "will", "'d": "would",
                "n't": "not", "ca": "can", "wo": "will", "sha": "shall"}  # ca n't, wo n't
NEGATION_WORDS = {"no", "not", "never", "n't", "nothing", "without"}
NEGATION_WINDOW = 8  # tokens between a negation cue and the match it negates
CLAUSE_MARKS = {",", ";", ":", "--", "—"}
MIN_CLAUSE_TOKENS = 5
CONJUNCTIONS = {"but", "and", "so", "plus"}
MIN_CONJOINED = 3  # words on each side of a conjunction for it to join two statements
WINDOW_TOKENS = 16
# How a turn asks when nothing marks it: it opens, after fillers, with a question word or an
# auxiliary before its subject ("ok cool so who handles", "and like are you happy with them").
FILLERS = ("so", "ok", "okay", "and", "but", "like", "um", "uh", "gotcha", "cool", "right", "yeah", "yes",
           "well", "alright", "great", "nice", "oh", "sure", "perfect", "then", "just", "now", "hmm",
           "got it", "i see", "fair enough")
QUESTION_WORDS = ("what", "whats", "how", "hows", "who", "whos", "whose", "when", "where", "wheres", "why",
                  "which")
AUXILIARIES = ("would", "could", "can", "do", "does", "did", "are", "is", "was", "were", "have", "has",
               "will", "should", "any")
SUBJECTS = ("you", "your", "they", "we", "there", "it", "he", "she", "that", "the", "anyone", "anybody",
            "someone")
QUESTION_OPENING = re.compile(
    rf"^\W*(?:(?:{'|'.join(FILLERS)})\W+){{0,4}}"
    rf"(?:{'|'.join(QUESTION_WORDS)}|(?:{'|'.join(AUXILIARIES)})\s+(?:{'|'.join(SUBJECTS)}))\b", re.IGNORECASE)
READER = "debrief_reader"
UNITS, SCORES = "debrief_units", "debrief_scores"  # Doc extensions the reader component fills
UNIT_TOKENS = 32     # a sentence longer than this (speech with no full stops) is read in windows
UNIT_STRIDE = 16


@dataclass(frozen=True)
class Settings:
    """How the reader's scores become evidence; chosen on the dev set (`make eval`)."""

    threshold: float = 0.25         # a step done
    missed_threshold: float = 0.4   # a step missed: a false miss early on moves the fix, so it asks more
    margin: float = 0.05            # the best label over the runner-up
    outcome_threshold: float = 0.2
    outcome_position: float = 2.0   # an outcome said at the very end weighs (1 + this) times one said first
    clause_threshold: float = 0.5   # a clause read on its own beside its sentence: it adds to what the sentence says
    second_threshold: float = 0.25  # a unit's second step ("you and your COO decide, with $400,000 set aside")
    decisive_threshold: float = 0.7  # a won or lost this sure ends it, wherever it is said


@dataclass(frozen=True)
class Unit:
    """A piece of the transcript that the reader scores: a sentence, a window, a question and answer."""

    start: int
    end: int
    text: str
    answered: bool = False  # a question whose answer follows: it is read as part of the pair
    clause: bool = False    # a clause of a longer sentence (`match_clauses`)
    pair: bool = False      # a question with the turn that answers it: the pair is the evidence


class Classifier:
    """Finds each step's evidence and the outcome in a transcript. Build once, reuse.

    `reader` is "auto" (the playbook's learned reader, trained now if its cache is missing or
    stale; the rules alone when the playbook has no examples), None (the rules alone), or a
    `Reader` already loaded.
    """

    def __init__(self, playbook: Playbook, *, reader="auto", settings: Settings | None = None) -> None:
        self.playbook = playbook
        self.settings = settings or Settings()
        self.nlp = build_pipeline(playbook)
        if reader == "auto":
            reader = default_reader(playbook, self.rule_terms)
        self.reader = reader
        self.nlp.get_pipe(READER).reader = reader

    def classify(self, text: str, breaks: tuple[int, ...] = ()) -> Findings:
        """Evidence per step (done or missed) and the outcome, from one transcript.

        `breaks` are the character offsets where Whisper's segments start: a sentence too long to
        read whole (speech with no full stops) is cut there first.
        """
        doc = self.nlp.make_doc(text)
        _mark_breaks(doc, breaks)
        return self.read(self.nlp(doc))

    def read(self, doc) -> Findings:
        """The Findings of a doc that went through the pipeline."""
        ruled = pattern_evidence(self.nlp, doc)
        if self.reader is None:
            found = tuple(e for e in ruled if e.label not in OUTCOMES)
            said = _pick_rule_outcome([e for e in ruled if e.label in OUTCOMES])
        else:
            found, said = self._learned_evidence(doc, [e for e in ruled if e.label not in OUTCOMES])
        outcome = said.label if said else "unknown"
        found = _next_meeting_misses(self.playbook, found)
        if _prospecting_without_appointment(self.playbook, outcome, found):
            outcome = "no_meeting"
        return Findings(found, outcome, said)

    def rule_terms(self, text: str) -> list[str]:
        """The pattern matches in `text` as the reader's features ("RULE_third.budget_missed")."""
        with self.nlp.select_pipes(disable=[READER]):
            doc = self.nlp(text)
        return match_terms(rule_matches(self.nlp, doc))

    def _unit_steps(self, row, clause: bool = False) -> list[tuple[str, str]]:
        """The steps one unit shows (1 and 4 in the module's docstring): its best label, and a
        second step when the runner-up is another step that clears `second_threshold` (and
        `missed_threshold` for a miss, as a best label must)."""
        settings, classes = self.settings, self.reader.classes

        def floor(polarity: str) -> float:
            return settings.missed_threshold if polarity == "missed" else settings.threshold

        best, runner_up = row.argsort()[::-1][:2]
        name, _, polarity = classes[best].partition(":")
        if name == OTHER or name in OUTCOMES or row[best] - row[runner_up] < settings.margin:
            return []
        if row[best] < floor(polarity) or (clause and row[best] < settings.clause_threshold):
            return []
        found = [(name, polarity)]
        other, _, other_polarity = classes[runner_up].partition(":")
        if other_polarity and other != name and row[runner_up] >= max(settings.second_threshold, floor(other_polarity)):
            found.append((other, other_polarity))
        return found

    def _learned_evidence(self, doc, ruled: list[Evidence]) -> tuple[tuple[Evidence, ...], Evidence | None]:
        """The reader's step evidence (1 in the module's docstring) and where it ended up (2)."""
        settings = self.settings
        classes = self.reader.classes
        outcome_columns = [i for i, c in enumerate(classes) if c in OUTCOMES]
        steps, outcomes = [], []
        text = doc_text(doc)
        length = max(len(text), 1)
        for unit, row in zip(doc._.get(UNITS), doc._.get(SCORES)):
            speaker = _speaker(text, unit.start)
            if outcome_columns:
                k = max(outcome_columns, key=lambda i: row[i])
                if row[k] >= settings.outcome_threshold:
                    weight = row[k] * (1 + settings.outcome_position * unit.start / length)
                    outcomes.append((weight, unit, Evidence(classes[k], "done", unit.text, unit.start, unit.end, speaker),
                                     row[k]))
            if unit.answered:  # a question is read together with its answer (the pair unit)
                continue
            for name, polarity in self._unit_steps(row, unit.clause):
                same = [] if unit.pair else [
                    e for e in ruled if e.label == name and e.polarity == polarity and _overlaps(e, [unit])]
                steps.append((unit, same[0] if same else Evidence(name, polarity, unit.text, unit.start, unit.end, speaker)))
        # A clause read alone adds what its whole sentence does not show: it never repeats the
        # sentence's step, nor contradicts it ("what they cost them" without the ", about 10,000 a
        # month" that follows is no miss).
        whole = [(u, e) for u, e in steps if not u.clause]
        kept = [e for u, e in steps if not u.clause or not any(
            w.start <= u.start and u.end <= w.end and f.label == e.label for w, f in whole)]
        unique = tuple({(e.label, e.polarity, e.start): e for e in kept}.values())
        said = None
        if outcomes:
            decisive = [o for o in outcomes if o[2].label in DECISIVE and o[3] >= settings.decisive_threshold]
            _, unit, said, _ = max(decisive or outcomes, key=lambda o: o[0])
            # Said in a clause ("..., and get back to me"): the quote is the sentence that holds it.
            holder = next((u for u in doc._.get(UNITS) if not u.clause and not u.pair
                           and u.start <= unit.start and unit.end <= u.end), None) if unit.clause else None
            if holder is not None:
                said = dataclasses.replace(said, text=holder.text, start=holder.start, end=holder.end)
        return unique, said


def rule_matches(nlp, doc) -> list[tuple[str, str, object]]:
    """(label, polarity, span) for every pattern match that counts, negation applied (once per doc)."""
    if "debrief_matches" in doc.user_data:
        return doc.user_data["debrief_matches"]
    cues = _negation_cues(nlp, doc)
    found = doc.user_data["debrief_matches"] = []
    for span in _most_specific(doc.spans[SPANS_KEY]):
        negated = span._.get(NEGATED) and _cue_near(span, cues)
        label = span.label_
        if label in OUTCOMES:
            if not negated:
                found.append((label, "done", span))
            continue
        polarity = span.id_ or "done"
        if polarity == "done" and negated:
            polarity = "missed"
        found.append((label, polarity, span))
    return found


def match_terms(matches) -> list[str]:
    return [f"RULE_{label}_{polarity}" for label, polarity, _ in matches]


def _overlaps(piece, others) -> bool:
    return any(piece.start < e.end and e.start < piece.end for e in others)


def default_reader(playbook: Playbook, rule_terms):
    """The playbook's learned reader, or None (with one warning line) when it has no examples."""
    from debrief.encoder import load_encoder
    from debrief.reader import load_reader

    if not playbook.examples:
        log.warning("%s: no labelled examples (examples.jsonl); reading with the rules alone", playbook.source)
        return None
    return load_reader(playbook, load_encoder(), rule_terms=rule_terms)


def reading_units(doc) -> list[Unit]:
    """What the reader scores: every sentence (each turn of a call), every window of a long
    sentence, and every question together with the sentence that answers it (the component adds
    the clauses around pattern matches, `match_clauses`)."""
    sentences = []
    for sent in doc.sents:
        tokens = [t for t in sent if not t.is_space]
        if not tokens:
            continue
        first, last = tokens[0].i, tokens[-1].i + 1
        if last - first <= UNIT_TOKENS:
            sentences.append((first, last))
            continue
        cuts = sorted(i for i in doc.user_data.get("debrief_breaks", ()) if first < i < last)
        for a, b in zip([first] + cuts, cuts + [last]):
            if b - a <= UNIT_TOKENS:
                sentences.append((a, b))
                continue
            for at in range(a, b, UNIT_STRIDE):
                sentences.append((at, min(at + UNIT_TOKENS, b)))
                if at + UNIT_TOKENS >= b:
                    break
    units = [_unit(doc, a, b) for a, b in sentences]
    unpunctuated = "?" not in doc_text(doc)

    def asks(k: int) -> bool:
        (a, b), (c, _) = sentences[k], sentences[k + 1]
        return doc[b - 1].text == "?" or unpunctuated and _asked_by_words(doc, a, b, c)

    pairs, i = [], 0
    while i < len(sentences) - 1:
        if not asks(i):
            i += 1
            continue
        # Questions asked one after another in one turn ("Could we meet this week? Thursday or
        # Friday?") are answered together, by the turn that follows them.
        j = i
        while j + 2 < len(sentences) and _same_turn(doc, sentences[j], sentences[j + 1]) and asks(j + 1):
            j += 1
        (a, _), (c, d) = sentences[i], sentences[j + 1]
        if c >= sentences[j][1] and d - a <= 2 * UNIT_TOKENS:
            pairs.append(dataclasses.replace(_unit(doc, a, d), pair=True))
            for k in range(i, j + 1):
                units[k] = dataclasses.replace(units[k], answered=True)
        i = j + 1
    return [u for u in units + pairs if u.text]

def pattern_evidence(nlp, doc) -> list[Evidence]:
    """Each pattern match that counts, as evidence: the clause around it (found once per doc)."""
    found = doc.user_data.get("debrief_pattern_evidence")
    if found is None:
        evidence = (_evidence(doc, span, label, polarity) for label, polarity, span in rule_matches(nlp, doc))
        found = doc.user_data["debrief_pattern_evidence"] = list(
            {(e.label, e.polarity, e.start): e for e in evidence}.values())
    return found


def match_clauses(nlp, doc, units: list[Unit]) -> list[Unit]:
    """A sentence can hold two steps ("they're the two who decide, and they already have money set
    aside"; "I presented everything, but I never asked for a next step"): the clause around each
    step pattern's match (its evidence) is read on its own too, and so is each side of a ", but"."""
    known = {(u.start, u.end) for u in units}
    clauses = []
    pieces = [(e.start, e.end, e.text) for e in pattern_evidence(nlp, doc) if e.label not in OUTCOMES]
    for sent in doc.sents:
        cuts = _conjunction_cuts(doc, sent.start, sent.end)
        for a, b in zip([sent.start] + cuts, cuts + [sent.end]):
            span = doc[a:b]
            text = span.text.strip(" \n\t,;:")
            if cuts and text:
                start = span.start_char + span.text.find(text)
                pieces.append((start, start + len(text), text))
    for start, end, text in pieces:
        if (start, end) not in known:
            known.add((start, end))
            clauses.append(Unit(start, end, text, clause=True))
    return clauses


def _conjunction_cuts(doc, start: int, end: int) -> list[int]:
    """Where a sentence joins two statements: at "but", "and", "so" or "plus" (and at a semicolon)
    with at least `MIN_CONJOINED` words on each side ("missed deliveries cost them 15,000 a
    month | and the owner decides")."""
    words = [t.i for t in doc[start:end] if not t.is_punct and not t.is_space]
    cuts, last = [], start
    for t in doc[start + 1:end - 1]:
        if t.lower_ not in CONJUNCTIONS and t.text != ";":
            continue
        before = sum(1 for i in words if last <= i < t.i)
        after = sum(1 for i in words if i > t.i)
        if before >= MIN_CONJOINED and after >= MIN_CONJOINED:
            cuts.append(t.i)
            last = t.i
    return cuts


def _asked_by_words(doc, a: int, b: int, c: int) -> bool:
    """A turn of a call without question marks (as a speech recogniser writes it) that asks: it
    opens a question ("so who does your inspections right now", "would you be open to a quick
    meeting") and the next sentence starts a new turn."""
    if _same_turn(doc, (a, b), (c, c + 1)):
        return False
    return QUESTION_OPENING.search(SPEAKER.sub("", doc[a:b].text, count=1)) is not None


def _same_turn(doc, one: tuple[int, int], other: tuple[int, int]) -> bool:
    """Whether two sentences, one after the other, are in one turn (no line break between them)."""
    return "\n" not in doc_text(doc)[doc[one[1] - 1].idx:doc[other[0]].idx]


def _unit(doc, first: int, last: int) -> Unit:
    span = doc[first:last]
    return Unit(span.start_char, span.end_char, span.text.strip())


def _mark_breaks(doc, breaks: tuple[int, ...]) -> None:
    """Keep the tokens where Whisper's segments start: a sentence too long to read whole (speech
    with no full stops) is cut there first. Elsewhere the punctuation decides, since Whisper also
    starts segments in the middle of a sentence ("costing them | about $12,000 a month")."""
    starts = set()
    for offset in breaks:
        token = doc.char_span(offset, offset + 1, alignment_mode="expand")
        if token is not None and token.start > 0:
            starts.add(token.start)
    doc.user_data["debrief_breaks"] = starts


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
    nlp.add_pipe(READER)  # its `reader` is set by the Classifier; without one it scores nothing
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


    from spacy.tokens import Doc

    Doc.set_extension(UNITS, default=())
    Doc.set_extension(SCORES, default=None)

    @Language.factory(READER)
    def make_reader(nlp, name):
        return ReaderComponent(nlp)


class ReaderComponent:
    """The learned reader as a pipeline component: it cuts the doc into reading units and stores
    them (`doc._.debrief_units`) with each unit's probability per class (`doc._.debrief_scores`,
    columns in the order of `reader.classes`)."""

    def __init__(self, nlp, reader=None) -> None:
        self.nlp = nlp
        self.reader = reader

    def __call__(self, doc):
        if self.reader is None:
            return doc
        units = reading_units(doc)
        matches = rule_matches(self.nlp, doc)
        units += match_clauses(self.nlp, doc, units)
        extra = [match_terms([m for m in matches if u.start < m[2].end_char and m[2].start_char < u.end])
                 for u in units]
        doc._.set(UNITS, tuple(units))
        doc._.set(SCORES, self.reader.probabilities([u.text for u in units], extra))
        return doc


_register_components()


def _evidence(doc, span, label: str, polarity: str) -> Evidence:
    """The clause around a match: the words between the commas that enclose it, in its sentence.

    A clause of a few words says too little ("ask about budget"), so it then widens to the
    sentence; a sentence of a long run-on transcript is cut to a window around the match.
    """
    sent_start, sent_end = _sentence_of(doc, span.start)
    left = next((t.i + 1 for t in reversed(doc[sent_start:span.start]) if t.text in CLAUSE_MARKS), sent_start)
    right = next((t.i + 1 for t in doc[span.end:sent_end] if t.text in CLAUSE_MARKS), sent_end)
    if right - left < MIN_CLAUSE_TOKENS:
        left, right = sent_start, sent_end
    left, right = max(left, span.start - WINDOW_TOKENS), min(right, span.end + WINDOW_TOKENS)
    clause = doc[left:right]
    text = clause.text.strip(" \n\t,;:")
    start = clause.start_char + clause.text.find(text)
    return Evidence(label, polarity, text, start, start + len(text), _speaker(doc_text(doc), start))


def doc_text(doc) -> str:
    """`doc.text`, joined once per doc (spaCy joins the tokens again on every access)."""
    text = doc.user_data.get("debrief_text")
    if text is None:
        text = doc.user_data["debrief_text"] = doc.text
    return text


def _sentence_of(doc, i: int) -> tuple[int, int]:
    """The (start, end) tokens of the sentence holding token `i`; spaCy's `span.sent` walks the doc
    each time, so the bounds are found once per doc."""
    bounds = doc.user_data.get("debrief_sentences")
    if bounds is None:
        bounds = doc.user_data["debrief_sentences"] = [(s.start, s.end) for s in doc.sents]
    lo, hi = 0, len(bounds) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if bounds[mid][0] <= i:
            lo = mid
        else:
            hi = mid - 1
    return bounds[lo]


def _speaker(text: str, offset: int) -> str | None:
    line_start = text.rfind("\n", 0, offset) + 1
    match = SPEAKER.match(text, line_start)
    return match.group(1).upper() if match else None


def _next_meeting_misses(playbook: Playbook, evidence: tuple[Evidence, ...]) -> tuple[Evidence, ...]:
    """"Nothing on the calendar" in a meeting that got past the compelling-reasons base is no
    missed appointment (the meeting happened) but no dated next step: a missed commitment. The
    steps and the base are the playbook's roles."""
    roles = playbook.roles
    if not _past_compelling(playbook, evidence):
        return evidence
    moved = tuple(dataclasses.replace(e, label=roles.commitment)
                  if e.label == roles.appointment and e.polarity == "missed" else e for e in evidence)
    return tuple({(e.label, e.polarity, e.start): e for e in moved}.values())


def _past_compelling(playbook: Playbook, evidence, polarities=("done",)) -> bool:
    """Whether any step past the compelling-reasons base has evidence of these polarities."""
    order = [b.id for b in playbook.bases]
    later = set(order[order.index(playbook.roles.compelling) + 1:])
    base_of = {s.id: s.base for s in playbook.steps}
    return any(base_of.get(e.label) in later for e in evidence if e.polarity in polarities)


def _prospecting_without_appointment(playbook: Playbook, outcome: str, evidence: tuple[Evidence, ...]) -> bool:
    """A call to reach a decision maker that ends on "send me something" ended with no meeting.

    The goal of a prospecting call is the appointment: when the transcript reaches a contact (or
    says the appointment was not got), nobody agrees to meet, and nothing past the
    compelling-reasons base happens, the call ended at first base. A missed commitment ("just text
    me the spec sheet") is the stall itself, not a sign that a meeting was held; and once the
    transcript says the rep was turned away, whatever was pitched at the last base does not count
    either (the coaching model's conventions). The steps and the bases are the playbook's roles.
    """
    if outcome not in ("stalled", "unknown"):
        return False
    roles = playbook.roles
    labels = {(e.label, e.polarity) for e in evidence}
    turned_away = (roles.appointment, "missed") in labels or (roles.contact, "missed") in labels
    if (roles.appointment, "done") in labels or not (
            turned_away or any(label == roles.contact for label, _ in labels)):
        return False
    last = {s.id for s in playbook.steps if s.base == playbook.bases[-1].id} if turned_away else set()
    evidence = tuple(e for e in evidence
                     if e.label not in last and (e.label, e.polarity) != (roles.commitment, "missed"))
    return not _past_compelling(playbook, evidence, ("done", "missed"))


def _pick_rule_outcome(ruled: list[Evidence]) -> Evidence | None:
    """Of the outcomes the patterns found, the one the priority order puts first."""
    for outcome in OUTCOME_PRIORITY:
        said = [e for e in ruled if e.label == outcome]
        if said:
            return said[0]
    return None
