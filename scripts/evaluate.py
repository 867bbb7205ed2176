"""Step-to-fix and outcome accuracy on every labelled set (`make eval`).

Runs the real classifier (patterns and the learned reader) and the walk on each text of each set,
prints every mistake, then per set: step-to-fix accuracy, outcome accuracy, and, where a set labels
each step's evidence (`steps`), per-step precision and recall of done and missed. The sets:

- train: `tests/data/cases.jsonl` and `tests/data/heldout.jsonl` (the first held-out round, scored
  once in November and since folded in), the cases the patterns were tuned on; and
  `tests/data/train2.jsonl` and `tests/data/heldout2.jsonl` up to the round before `HELDOUT_ROUND`
  (each held-out round scored once, its first run kept in `benchmarks/`, then folded in with
  `scripts/fold.py`), whose labelled quotes are also reader examples.
- dev: `tests/data/dev.jsonl`, for choosing the reader's settings.
- heldout: `tests/data/heldout<HELDOUT_ROUND>.jsonl` (50 cases), written before the reader was tuned and never
  trained on or scored yet: the next round's first run (each round's first run is kept in `benchmarks/`).
- public: 15 sales calls written by other people (outside the repository, never trained on; pass
  `--public FILE`, `make eval` passes `../shared/benchmarks/public-calls/calls.jsonl` when it is there).
- samples: the README's samples (`samples/*.txt` and `samples/labels.json`).

`--rules-only` scores the patterns alone (what a playbook with no examples gets), for comparison;
`--threshold 0.4` and the like try other settings (`classification.Settings`). Exit status 1 if a train or sample case
is wrong (those are regression cases).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from debrief.classification import Classifier, Settings  # noqa: E402
from debrief.playbook import load_playbook  # noqa: E402
from debrief.walk import MISSED, SILENT, diagnose  # noqa: E402

DATA = REPO / "tests" / "data"
SETS = ("train", "dev", "heldout", "public", "samples")
REGRESSION = ("train", "samples")
HELDOUT_ROUND = 15  # tests/data/heldout15.jsonl: not yet scored; the rounds before it train


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_sets(repo: Path = REPO, public: Path | None = None) -> dict[str, list[dict]]:
    """Every labelled set, by name; a set whose file is absent is left out."""
    data = repo / "tests" / "data"
    sets: dict[str, list[dict]] = {"train": []}
    # every earlier held-out round has been scored once and folded in: it trains
    folded = ["heldout.jsonl"] + [f"heldout{n}.jsonl" for n in range(2, HELDOUT_ROUND)]
    for name in ["cases.jsonl", "train2.jsonl"] + folded:
        if (data / name).exists():
            sets["train"] += read_jsonl(data / name)
    for set_name, file in (("dev", "dev.jsonl"), ("heldout", f"heldout{HELDOUT_ROUND}.jsonl")):
        if (data / file).exists():
            sets[set_name] = read_jsonl(data / file)
    if public is not None and public.exists():
        sets["public"] = read_jsonl(public)
    labels = repo / "samples" / "labels.json"
    if labels.exists():
        sets["samples"] = [
            {"id": f"sample:{stem}", "kind": "sample", "text": (repo / "samples" / f"{stem}.txt").read_text(), **label}
            for stem, label in json.loads(labels.read_text()).items()]
    return sets


def own_statuses(findings) -> dict[str, str]:
    """{step: done | missed} from evidence alone, a miss outweighing a mention (as the walk reads it)."""
    out: dict[str, str] = {}
    for e in findings.evidence:
        if out.get(e.label) != MISSED:
            out[e.label] = e.polarity
    return out


def labelled_statuses(case: dict) -> dict[str, str]:
    out: dict[str, str] = {}
    for step, status, _ in case.get("steps", []):
        if out.get(step) != MISSED:
            out[step] = status
    return out


def score(classifier: Classifier, playbook, cases: list[dict], *, show: bool, verbose: bool = False) -> dict:
    fix_ok = outcome_ok = 0
    # per (step, polarity): true positives, predicted, labelled
    tp, predicted, labelled = Counter(), Counter(), Counter()
    stepped = 0
    mistakes = []
    for case in cases:
        findings = classifier.classify(case["text"])
        result = diagnose(playbook, findings)
        fix = result.fix.step.id if result.fix else None
        f_ok, o_ok = fix == case["fix"], result.outcome == case["outcome"]
        fix_ok += f_ok
        outcome_ok += o_ok
        if not (f_ok and o_ok):
            mistakes.append(case["id"])
        if show and (verbose or not (f_ok and o_ok)):
            mark = "ok " if f_ok and o_ok else "BAD"
            print(f"  {mark} {case['id']:<44} fix {fix!s:<22} want {case['fix']!s:<22} "
                  f"outcome {result.outcome:<10} want {case['outcome']}")
        if "steps" in case:
            stepped += 1
            mine, theirs = own_statuses(findings), labelled_statuses(case)
            for step in {s.id for s in playbook.steps}:
                got, want = mine.get(step, SILENT), theirs.get(step, SILENT)
                if got != SILENT:
                    predicted[step, got] += 1
                if want != SILENT:
                    labelled[step, want] += 1
                if got == want != SILENT:
                    tp[step, got] += 1
    return {"n": len(cases), "fix": fix_ok, "outcome": outcome_ok, "tp": tp, "predicted": predicted,
            "labelled": labelled, "stepped": stepped, "mistakes": mistakes}


def ratio(a: int, b: int) -> str:
    return f"{a / b:6.1%}" if b else "   n/a"


def print_step_table(playbook, results: dict[str, dict]) -> None:
    names = [n for n in SETS if n in results and results[n]["stepped"]]
    if not names:
        return
    print("\nPer-step precision / recall of done and missed (sets that label each step's evidence):")
    header = "".join(f"  {n + ' done P/R':>17}  {n + ' missed P/R':>19}" for n in names)
    print(f"{'step':<22}{header}")
    for step in [s.id for s in playbook.steps]:
        cells = []
        for n in names:
            r = results[n]
            for polarity, width in (("done", 17), ("missed", 19)):
                key = (step, polarity)
                cell = f"{ratio(r['tp'][key], r['predicted'][key]).strip()}/{ratio(r['tp'][key], r['labelled'][key]).strip()}"
                cells.append(f"  {cell:>{width}}")
        print(f"{step:<22}{''.join(cells)}")
    for n in names:
        r = results[n]
        tp, pr, lb = (sum(r[k].values()) for k in ("tp", "predicted", "labelled"))
        print(f"{n}: all steps, micro precision {ratio(tp, pr).strip()} recall {ratio(tp, lb).strip()}")


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per reader setting (`--missed-threshold 0.5`), defaulting to the shipped value."""
    for field in fields(Settings):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=float, help=f"default {field.default}")


def chosen_settings(args: argparse.Namespace) -> Settings:
    """The shipped settings with the ones given on the command line."""
    return Settings(**{f.name: getattr(args, f.name) for f in fields(Settings) if getattr(args, f.name) is not None})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--playbook", default=str(REPO / "models" / "baseline"))
    parser.add_argument("--public", type=Path, help="the public calls (calls.jsonl), outside the repository")
    parser.add_argument("--sets", default=",".join(SETS), help="which sets, comma-separated")
    parser.add_argument("--rules-only", action="store_true", help="the patterns alone, no learned reader")
    add_settings_arguments(parser)
    parser.add_argument("--quiet", "-q", action="store_true", help="no per-case lines")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every case, not only mistakes")
    args = parser.parse_args()
    playbook = load_playbook(args.playbook)
    settings = chosen_settings(args)
    classifier = Classifier(playbook, reader=None if args.rules_only else "auto", settings=settings)
    sets = load_sets(public=args.public)
    wanted = [n for n in args.sets.split(",") if n in sets]
    results, started, count = {}, time.perf_counter(), 0
    for name in wanted:
        if not args.quiet:
            print(f"{name}:")
        results[name] = score(classifier, playbook, sets[name], show=not args.quiet, verbose=args.verbose)
        count += len(sets[name])
    elapsed = time.perf_counter() - started
    reader = ("patterns alone" if classifier.reader is None
              else f"reader ({len(playbook.examples)} examples, patterns as its features)")
    print(f"\n{reader}; " + ", ".join(f"{f.name} {getattr(settings, f.name)}" for f in fields(Settings)))
    print(f"{'set':<10}{'cases':>7}{'step to fix':>18}{'outcome':>16}")
    for name in wanted:
        r = results[name]
        print(f"{name:<10}{r['n']:>7}{r['fix']:>8}/{r['n']:<3}{ratio(r['fix'], r['n'])}"
              f"{r['outcome']:>6}/{r['n']:<3}{ratio(r['outcome'], r['n'])}")
    print_step_table(playbook, results)
    if count:
        print(f"({elapsed * 1000 / count:.1f} ms per case for classification and walk)")
    regressions = sum(results[n]["n"] - min(results[n]["fix"], results[n]["outcome"]) for n in REGRESSION if n in results)
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
