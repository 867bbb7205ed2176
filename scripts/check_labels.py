"""Check labelled whole cases (debriefs, calls, notes) against the walk: `python scripts/check_labels.py FILE...`.

Each line of a cases file is a JSON object with `id`, `kind`, `text`, `outcome`, `fix` and, for the
newer sets, `steps`: a list of `[step_id, "done" | "missed", quote]`, the quote an exact substring of
`text`. This script runs the pure backward walk on the step labels and the outcome (no classifier)
and prints every case whose `fix` disagrees with what the walk derives from its own step labels, and
every malformed line. Exit status 1 on any problem.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from debrief.playbook import OUTCOMES, load_playbook  # noqa: E402
from debrief.walk import Evidence, Findings, diagnose  # noqa: E402

KINDS = ("debrief", "call", "notes")


def findings_from_labels(case: dict) -> Findings:
    """The Findings a perfect reader would produce from a case's step labels and outcome."""
    evidence = []
    for step, status, quote in case.get("steps", []):
        start = case["text"].find(quote)
        evidence.append(Evidence(step, status, quote, start, start + len(quote)))
    return Findings(tuple(evidence), case["outcome"], None)


def problems(case: dict, line: int, playbook) -> list[str]:
    where = f"line {line} ({case.get('id', '?')})"
    out = []
    for key in ("id", "kind", "text", "outcome", "fix", "steps"):
        if key not in case:
            out.append(f"{where}: missing {key!r}")
    if out:
        return out
    step_ids = {s.id for s in playbook.steps}
    if case["kind"] not in KINDS:
        out.append(f"{where}: kind must be one of {KINDS}")
    if case["outcome"] not in OUTCOMES:
        out.append(f"{where}: outcome {case['outcome']!r} is not one of {OUTCOMES}")
    if case["fix"] is not None and case["fix"] not in step_ids:
        out.append(f"{where}: fix {case['fix']!r} is not a step id or null")
    for item in case["steps"]:
        if not (isinstance(item, list) and len(item) == 3):
            out.append(f"{where}: each steps item is [step_id, status, quote], got {item!r}")
            continue
        step, status, quote = item
        if step not in step_ids:
            out.append(f"{where}: unknown step {step!r}")
        if status not in ("done", "missed"):
            out.append(f"{where}: status {status!r} must be done or missed")
        if not isinstance(quote, str) or not quote or quote not in case["text"]:
            out.append(f"{where}: quote for {step} is not an exact substring of text: {quote!r}")
    if out:
        return out
    result = diagnose(playbook, findings_from_labels(case))
    derived = result.fix.step.id if result.fix else None
    if derived != case["fix"]:
        walk = " <- ".join(f"{s.step.id} {s.status}{' (implied)' if s.implied else ''}" for s in result.walk)
        out.append(f"{where}: fix is {case['fix']} but the walk on its step labels gives {derived}: {walk}")
    return out


def main(paths: list[str]) -> int:
    playbook = load_playbook(REPO / "models" / "baseline")
    bad = 0
    for path in paths:
        fixes, outcomes, n = Counter(), Counter(), 0
        for i, raw in enumerate(Path(path).read_text().splitlines(), 1):
            if not raw.strip():
                continue
            try:
                case = json.loads(raw)
            except json.JSONDecodeError as exc:
                print(f"{path}:{i}: bad JSON: {exc}")
                bad += 1
                continue
            n += 1
            for p in problems(case, i, playbook):
                print(f"{path}: {p}")
                bad += 1
            fixes[case.get("fix")] += 1
            outcomes[case.get("outcome")] += 1
        print(f"{path}: {n} cases; fix {dict(fixes)}; outcome {dict(outcomes)}")
    print("all consistent" if not bad else f"{bad} problem(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
