"""Leave one held-out round out: `python scripts/crossval.py [--rounds FIRST-LAST] [settings...]`.

A development measure, not a score to report. Each folded held-out round (its first run is kept in
`benchmarks/`) is scored by a reader trained without that round's own quotes (its labelled step
quotes and its outcome quotes in `tests/data/outcome-quotes.jsonl`), so about 500 cases written by
writers the reader never read stand in for dev's 55 when a change to the reader or its settings is
weighed. The first runs stay the honest figures: the patterns, the settings and the other rounds'
examples were all chosen after these rounds were seen.

Heads go to `$DEBRIEF_CACHE` like any reader's (keyed by their examples); the sentence vectors are
shared with the full reader's.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
from dataclasses import fields
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "scripts"))

from evaluate import DATA, HELDOUT_ROUND, add_settings_arguments, chosen_settings, read_jsonl, score  # noqa: E402

from debrief.classification import Classifier, Settings  # noqa: E402
from debrief.playbook import load_playbook  # noqa: E402


def round_file(n: int) -> Path:
    return DATA / ("heldout.jsonl" if n == 1 else f"heldout{n}.jsonl")


def without_round(playbook, cases: list[dict], outcome_quotes: list[dict]):
    """The playbook with the examples folded from `cases` taken out."""
    ids = {c["id"] for c in cases}
    quotes = {q for c in cases for _, _, q in c.get("steps", [])}
    quotes |= {q["quote"] for q in outcome_quotes if q["id"] in ids}
    kept = tuple(e for e in playbook.examples if e.text not in quotes)
    digest = hashlib.sha256("\n".join(f"{e.label}|{e.polarity}|{e.text}" for e in kept).encode()).hexdigest()
    return dataclasses.replace(playbook, examples=kept, examples_digest=digest), len(playbook.examples) - len(kept)


def parse_rounds(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--playbook", default=str(REPO / "models" / "baseline"))
    parser.add_argument("--rounds", default=f"2-{HELDOUT_ROUND - 1}", help="folded rounds, e.g. 2-11")
    parser.add_argument("--show", action="store_true", help="print each mistake")
    add_settings_arguments(parser)
    args = parser.parse_args()
    settings = chosen_settings(args)
    playbook = load_playbook(args.playbook)
    outcome_quotes = read_jsonl(DATA / "outcome-quotes.jsonl")
    total = {"n": 0, "fix": 0, "outcome": 0}
    for n in parse_rounds(args.rounds):
        cases = read_jsonl(round_file(n))
        reduced, dropped = without_round(playbook, cases, outcome_quotes)
        classifier = Classifier(reduced, settings=settings)
        result = score(classifier, reduced, cases, show=args.show)
        for key in total:
            total[key] += result[key]
        print(f"round {n:>2}  {len(cases):>3} cases  {dropped:>4} examples out   "
              f"step to fix {result['fix']:>3} ({result['fix'] / len(cases):6.1%})   "
              f"outcome {result['outcome']:>3} ({result['outcome'] / len(cases):6.1%})", flush=True)
    n = total["n"]
    print(f"all       {n:>3} cases                     step to fix {total['fix']:>3} ({total['fix'] / n:6.1%})   "
          f"outcome {total['outcome']:>3} ({total['outcome'] / n:6.1%})")
    print("settings: " + ", ".join(f"{f.name} {getattr(settings, f.name)}" for f in fields(Settings)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
