"""Find the reader's hard negatives in the folded cases: `python scripts/mine_negatives.py [--write]`.

A folded case (train: `cases.jsonl`, `train2.jsonl` and the held-out rounds already scored and
folded in; never dev, the unscored held-out rounds or the public calls) labels every step its text
shows. On a case that never reached a meeting (outcome `no_meeting` or `unknown`: a cold call
brushed off, a cancelled meeting, a voicemail, a wrong file), a unit (a sentence, a turn, a
question with its answer) that the reader reads as a step the case labels nowhere, in either
polarity, and that overlaps none of the case's labelled quotes (steps or outcome), is the reader
seeing a step that is not there: a cold call's pitch read as a presentation or as problems heard,
a price as a cost, "we use a spreadsheet, it works" as a budget. Each such unit is printed, and
with `--write` becomes an example of "other" in `models/baseline/examples.jsonl` (unless that text
is already there or holds a phrase of `tests/data/traps.jsonl`); retrain with `make train` after.
Mined from every folded case instead, dev lost two steps to fix (a price before the problems is
rule 5's evidence where a writer left it unlabelled), so only calls with no meeting are mined.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "src"))

from evaluate import load_sets, read_jsonl  # noqa: E402

from debrief.classification import SCORES, UNITS, Classifier  # noqa: E402
from debrief.playbook import OTHER, OUTCOMES, load_playbook  # noqa: E402

EXAMPLES = REPO / "models" / "baseline" / "examples.jsonl"
TRAPS = REPO / "tests" / "data" / "traps.jsonl"
OUTCOME_QUOTES = REPO / "tests" / "data" / "outcome-quotes.jsonl"


def quoted_spans(case: dict, outcome_quotes: dict[str, list[str]]) -> list[tuple[int, int]]:
    """Where the case's labelled quotes (its steps' and its outcome's) lie in its text."""
    quotes = [q for _, _, q in case.get("steps", [])] + outcome_quotes.get(case["id"], [])
    spans = []
    for quote in quotes:
        start = case["text"].find(quote)
        if start >= 0:
            spans.append((start, start + len(quote)))
    return spans


def hard_negatives(classifier: Classifier, case: dict, outcome_quotes: dict[str, list[str]]) -> list[str]:
    """The units of one labelled case that the reader reads as a step the case does not show."""
    labelled = {step for step, _, _ in case.get("steps", [])}
    spans = quoted_spans(case, outcome_quotes)
    classes = classifier.reader.classes
    doc = classifier.nlp(classifier.nlp.make_doc(case["text"]))
    found = []
    for unit, row in zip(doc._.get(UNITS), doc._.get(SCORES)):
        if unit.clause or unit.answered:
            continue
        steps = classifier._unit_steps(row)
        if not steps or any(name in labelled for name, _ in steps):
            continue
        if any(start < unit.end and unit.start < end for start, end in spans):
            continue
        if classes[row.argmax()] in OUTCOMES or classes[row.argmax()] == OTHER:
            continue
        found.append(unit.text.strip())
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="append them to the examples as other")
    args = parser.parse_args()
    playbook = load_playbook(REPO / "models" / "baseline")
    classifier = Classifier(playbook)
    outcome_quotes: dict[str, list[str]] = {}
    for line in read_jsonl(OUTCOME_QUOTES):
        outcome_quotes.setdefault(line["id"], []).append(line["quote"])
    known = {json.loads(line)["text"] for line in EXAMPLES.read_text().splitlines() if line.strip()}
    phrases = [json.loads(line)["phrase"] for line in TRAPS.read_text().splitlines() if line.strip()]
    added = []
    for case in load_sets()["train"]:
        if "steps" not in case or case["outcome"] not in ("no_meeting", "unknown"):
            continue
        for text in hard_negatives(classifier, case, outcome_quotes):
            plain = text.lower().replace("\u2019", "'")
            if text in known or any(p in plain for p in phrases):
                continue
            known.add(text)
            added.append({"text": text, "label": OTHER})
            print(f"{case['id']:<44} {text[:100]!r}")
    if args.write:
        with EXAMPLES.open("a") as out:
            out.writelines(json.dumps(e) + "\n" for e in added)
    print(f"{len(added)} hard negatives" + (f" added to {EXAMPLES.relative_to(REPO)}" if args.write else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
