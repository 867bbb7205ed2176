"""Step-to-fix and outcome accuracy on the labelled debriefs and calls (`make eval`).

Reads tests/data/cases.jsonl (and samples/labels.json), runs the real classifier and walk on each
text, and prints every mistake and the accuracy per kind. Exit status 1 if any case is wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from debrief.classification import Classifier  # noqa: E402
from debrief.playbook import load_playbook  # noqa: E402
from debrief.walk import diagnose  # noqa: E402


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_cases(repo: Path = REPO) -> list[dict]:
    """The labelled cases: tests/data/cases.jsonl, tests/data/heldout.jsonl and the README samples.

    Held-out cases are marked `"set": "heldout"`: they were written after the patterns were
    tuned, and first scored before any change made for them.
    """
    cases = read_jsonl(repo / "tests/data/cases.jsonl")
    heldout = repo / "tests/data/heldout.jsonl"
    if heldout.exists():
        cases += [{**case, "set": "heldout"} for case in read_jsonl(heldout)]
    labels = repo / "samples" / "labels.json"
    if labels.exists():
        for stem, label in json.loads(labels.read_text()).items():
            text = (repo / "samples" / f"{stem}.txt").read_text()
            cases.append({"id": f"sample:{stem}", "kind": "sample", "text": text, **label})
    return cases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--playbook", default=str(REPO / "models" / "baseline"))
    parser.add_argument("--verbose", "-v", action="store_true", help="print every case, not only mistakes")
    args = parser.parse_args()
    playbook = load_playbook(args.playbook)
    classifier = Classifier(playbook)
    totals, fix_right, outcome_right = Counter(), Counter(), Counter()
    started = time.perf_counter()
    cases = load_cases()
    for case in cases:
        findings = classifier.classify(case["text"])
        result = diagnose(playbook, findings)
        fix = result.fix.step.id if result.fix else None
        kind = case.get("set", case.get("kind", "debrief"))
        totals[kind] += 1
        fix_ok, outcome_ok = fix == case["fix"], result.outcome == case["outcome"]
        fix_right[kind] += fix_ok
        outcome_right[kind] += outcome_ok
        if args.verbose or not (fix_ok and outcome_ok):
            mark = "ok " if fix_ok and outcome_ok else "BAD"
            print(f"{mark} {case['id']:<40} fix {fix!s:<22} want {case['fix']!s:<22} "
                  f"outcome {result.outcome:<10} want {case['outcome']}")
    elapsed = time.perf_counter() - started
    print()
    print(f"{'kind':<10}{'cases':>7}{'step-to-fix':>14}{'outcome':>10}")
    for kind in sorted(totals):
        print(f"{kind:<10}{totals[kind]:>7}{fix_right[kind] / totals[kind]:>14.1%}{outcome_right[kind] / totals[kind]:>10.1%}")
    n = sum(totals.values())
    print(f"{'all':<10}{n:>7}{sum(fix_right.values()) / n:>14.1%}{sum(outcome_right.values()) / n:>10.1%}")
    print(f"({elapsed * 1000 / n:.1f} ms per case for classification and walk)")
    return 0 if sum(fix_right.values()) == n and sum(outcome_right.values()) == n else 1


if __name__ == "__main__":
    sys.exit(main())
