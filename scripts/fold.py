"""Fold a scored held-out round into the reader's examples: `python scripts/fold.py FILE...`.

Only after a round's first run is kept in `benchmarks/` may its mistakes teach the reader. Each
labelled step quote of each case (`steps`: `[step, polarity, quote]`) becomes one line of
`models/baseline/examples.jsonl`, unless that text is already there or holds a phrase of
`tests/data/traps.jsonl` (the traps test the reader on words it was never shown). A line with
`outcome` and `quote` (`tests/data/outcome-quotes.jsonl`: the words of a folded case that say where
it ended up) becomes an example of that outcome the same way. Prints how many
lines were added; retrain with `make train` afterwards.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "models" / "baseline" / "examples.jsonl"
TRAPS = REPO / "tests" / "data" / "traps.jsonl"
# A missed commitment quoted with the words of a stall or a loss ("he'll get back to me", "going
# with kone") is the outcome speaking: the walk derives the missed commitment from the outcome
# (rule 1), and as a step example it would teach the reader that a stall alone reached home plate.
# Only an admission ("I didn't ask them to sign") is folded as one.
COMMITMENT_MISSED = ("home.commit", "missed")
ADMISSION = re.compile(r"\b(didn't|didnt|did not|never|forgot|no ask|not ask)", re.IGNORECASE)


def main(files: list[str]) -> None:
    known = {json.loads(line)["text"] for line in EXAMPLES.read_text().splitlines() if line.strip()}
    phrases = [json.loads(line)["phrase"] for line in TRAPS.read_text().splitlines() if line.strip()]
    added = []
    for file in files:
        for line in Path(file).read_text().splitlines():
            if not line.strip():
                continue
            case = json.loads(line)
            labelled = list(case.get("steps", []))
            if case.get("quote"):  # an outcome quote (tests/data/outcome-quotes.jsonl)
                labelled.append((case["outcome"], None, case["quote"]))
            for label, polarity, quote in labelled:
                plain = quote.lower().replace("\u2019", "'")
                if quote in known or any(p in plain for p in phrases):
                    continue
                if (label, polarity) == COMMITMENT_MISSED and not ADMISSION.search(quote):
                    continue
                known.add(quote)
                added.append({"text": quote, "label": label, "polarity": polarity} if polarity
                             else {"text": quote, "label": label})
    with EXAMPLES.open("a") as out:
        out.writelines(json.dumps(e) + "\n" for e in added)
    print(f"{len(added)} examples added to {EXAMPLES.relative_to(REPO)}")


if __name__ == "__main__":
    main(sys.argv[1:])
