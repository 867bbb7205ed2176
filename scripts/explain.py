"""Show how one labelled case is read: every unit the reader scored, its top classes, the evidence
kept (pattern or reader) and the walk. `python scripts/explain.py ID [--file F]` or `--text '...'`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "scripts"))

from evaluate import load_sets  # noqa: E402

from debrief.classification import SCORES, UNITS, Classifier  # noqa: E402
from debrief.playbook import load_playbook  # noqa: E402
from debrief.walk import diagnose  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("id", nargs="?")
    parser.add_argument("--text")
    parser.add_argument("--public", type=Path)
    parser.add_argument("--top", type=int, default=3)
    args = parser.parse_args()
    playbook = load_playbook(REPO / "models" / "baseline")
    classifier = Classifier(playbook)
    if args.text:
        case = {"id": "text", "text": args.text, "fix": "?", "outcome": "?"}
    else:
        case = next(c for cases in load_sets(public=args.public).values() for c in cases if c["id"] == args.id)
    doc = classifier.nlp(case["text"])
    classes = classifier.reader.classes
    for unit, row in zip(doc._.get(UNITS), doc._.get(SCORES)):
        order = row.argsort()[::-1][: args.top]
        tops = "  ".join(f"{classes[i]} {row[i]:.2f}" for i in order)
        print(f"[{unit.start:>4}] {unit.text[:90]!r}\n        {tops}")
    findings = classifier.classify(case["text"])
    print("\nevidence:")
    for e in findings.evidence:
        print(f"  {e.label:<22} {e.polarity:<7} {e.text[:80]!r}")
    result = diagnose(playbook, findings)
    print(f"outcome {findings.outcome} ({findings.outcome_evidence.text[:60] if findings.outcome_evidence else ''!r})")
    print("walk:", " <- ".join(f"{s.step.id} {s.status}" for s in result.walk))
    print(f"fix {result.fix.step.id if result.fix else None}   want {case['fix']} / {case['outcome']}")
    for step in case.get("steps", []):
        print("  labelled:", step)


if __name__ == "__main__":
    main()
