"""Loading the playbook: the default one is valid, and every kind of breakage names file and line."""

import json
import shutil

import pytest

from conftest import REPO
from debrief.errors import PlaybookError
from debrief.playbook import load_playbook

BASELINE = REPO / "models" / "baseline"
STEP_IDS = [
    "first.contact", "first.appointment", "first.expectations", "second.rapport", "second.issues",
    "second.impact", "second.urgency", "second.differentiate", "third.decision", "third.budget",
    "third.timeline", "home.present", "home.commit",
]


@pytest.fixture
def copy(tmp_path):
    target = tmp_path / "team"
    shutil.copytree(BASELINE, target)
    return target


def test_default_playbook_has_the_documented_steps_in_order(playbook):
    assert [s.id for s in playbook.steps] == STEP_IDS
    assert [b.id for b in playbook.bases] == ["first", "second", "third", "home"]
    required = {s.id for s in playbook.steps if s.required}
    assert required == {"first.appointment", "second.rapport", "second.issues", "second.impact",
                        "third.decision", "third.budget", "home.present", "home.commit"}
    assert playbook.step("second.issues").implied_by == "later-base"
    assert all(2 <= len(s.questions) <= 3 for s in playbook.steps)


def test_every_step_has_patterns(playbook):
    labelled = {p.label for p in playbook.patterns}
    assert set(STEP_IDS) <= labelled
    assert {"won", "lost", "stalled", "advanced", "no_meeting"} <= labelled


def test_missing_folder():
    with pytest.raises(PlaybookError, match="playbook folder not found"):
        load_playbook(REPO / "no-such-playbook")


def test_invalid_toml_names_the_line(copy):
    toml = copy / "playbook.toml"
    toml.write_text(toml.read_text().replace('required = true', 'required = tru', 1))
    with pytest.raises(PlaybookError, match=r"playbook.toml: invalid TOML: .*line \d+"):
        load_playbook(copy)


def test_duplicate_step_id_names_the_second_line(copy):
    toml = copy / "playbook.toml"
    text = toml.read_text()
    toml.write_text(text.replace('id = "second.urgency"', 'id = "second.impact"'))
    line = [n for n, l in enumerate(toml.read_text().splitlines(), 1) if '"second.impact"' in l][1]
    with pytest.raises(PlaybookError, match=rf"playbook.toml:{line}: duplicate step id 'second.impact'"):
        load_playbook(copy)


def test_unknown_base(copy):
    toml = copy / "playbook.toml"
    toml.write_text(toml.read_text().replace('base = "third"', 'base = "fourth"', 1))
    with pytest.raises(PlaybookError, match=r"playbook.toml:\d+: step 'third.decision' names unknown base 'fourth'"):
        load_playbook(copy)


def test_bad_implied_by(copy):
    toml = copy / "playbook.toml"
    toml.write_text(toml.read_text().replace('implied_by = "later-base"', 'implied_by = "sometimes"'))
    with pytest.raises(PlaybookError, match="implied_by must be one of"):
        load_playbook(copy)


def _append_pattern(folder, line):
    path = folder / "patterns.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines + [line]) + "\n")
    return len(lines) + 1


def test_unknown_step_id_in_patterns_names_the_line(copy):
    n = _append_pattern(copy, json.dumps({"label": "second.pain", "pattern": "pain"}))
    with pytest.raises(PlaybookError, match=rf"patterns.jsonl:{n}: unknown label 'second.pain'"):
        load_playbook(copy)


def test_malformed_json_names_the_line(copy):
    n = _append_pattern(copy, '{"label": "third.budget", "pattern": ')
    with pytest.raises(PlaybookError, match=rf"patterns.jsonl:{n}: malformed JSON"):
        load_playbook(copy)


@pytest.mark.parametrize("pattern,problem", [
    ([{"LEMA": "budget"}], "unknown token attribute 'LEMA'"),
    ([{"LEMMA": "budget", "OP": "x"}], "unknown operator 'x'"),
    ([], "pattern must be"),
    ("   ", "empty phrase pattern"),
    ([{"LEMMA": {"INN": ["a"]}}], "unknown predicate"),
])
def test_malformed_patterns(copy, pattern, problem):
    n = _append_pattern(copy, json.dumps({"label": "third.budget", "pattern": pattern}))
    with pytest.raises(PlaybookError, match=rf"patterns.jsonl:{n}: .*{problem}"):
        load_playbook(copy)


def test_bad_polarity(copy):
    n = _append_pattern(copy, json.dumps({"label": "third.budget", "pattern": "money", "id": "maybe"}))
    with pytest.raises(PlaybookError, match=rf"patterns.jsonl:{n}: id must be 'done' or 'missed'"):
        load_playbook(copy)


def test_bad_negation_file(copy):
    (copy / "negation.toml").write_text('preceding_negations = "never"\n')
    with pytest.raises(PlaybookError, match=r"negation.toml:1: preceding_negations must be a list"):
        load_playbook(copy)


def test_a_teams_own_playbook_loads(copy):
    toml = copy / "playbook.toml"
    toml.write_text(toml.read_text().replace('name = "Baseline Selling"', 'name = "Team playbook"'))
    assert load_playbook(copy).name == "Team playbook"


@pytest.mark.slow
def test_the_wheel_ships_the_playbook(tmp_path):
    """An installed debrief finds its playbook inside the package, with no checkout around it."""
    import subprocess
    import sys
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(REPO)],
                   check=True, capture_output=True)
    wheel = next(tmp_path.glob("debrief-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("playbook.toml", "patterns.jsonl", "negation.toml", "examples.jsonl"):
        assert f"debrief/models/baseline/{name}" in names
    assert "debrief/models/encoders/all-MiniLM-L6-v2/tokenizer.json" in names
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from debrief import paths; "
            "from debrief.playbook import load_playbook; "
            "print(paths.models_dir()); print(len(load_playbook(paths.playbook_dir()).steps))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "site")], check=True,
                         capture_output=True, text=True, cwd=tmp_path).stdout.split()
    assert out == [str(tmp_path / "site" / "debrief" / "models"), "13"]


def test_spacy_rejects_what_our_checks_let_through(copy, playbook):
    """A pattern spaCy's own validator refuses is reported with its line too."""
    from debrief.classification import Classifier

    n = _append_pattern(copy, json.dumps({"label": "third.budget", "pattern": [{"LEMMA": 5}]}))
    with pytest.raises(PlaybookError, match=rf"patterns.jsonl:{n}: malformed pattern"):
        Classifier(load_playbook(copy))


def test_a_playbook_without_a_role_the_walk_needs_is_refused(copy):
    toml = copy / "playbook.toml"
    toml.write_text(toml.read_text().replace('commitment = "home.commit"', ""))
    with pytest.raises(PlaybookError, match=r"playbook.toml:\d+: \[roles\] lacks 'commitment'"):
        load_playbook(copy)


def test_a_role_naming_an_unknown_step_names_its_line(copy):
    toml = copy / "playbook.toml"
    text = toml.read_text().replace('presentation = "home.present"', 'presentation = "home.demo"')
    toml.write_text(text)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if row.startswith("presentation"))
    with pytest.raises(PlaybookError, match=rf"playbook.toml:{line}: role 'presentation' names unknown step 'home.demo'"):
        load_playbook(copy)


def renamed(folder):
    """The baseline playbook in `folder` with every step id and base id renamed (order kept)."""
    steps = {step: f"{step}-x" for step in STEP_IDS}
    bases = {base: f"{base}-x" for base in ("first", "second", "third", "home")}
    toml = folder / "playbook.toml"
    text = toml.read_text()
    for old, new in {**steps, **bases}.items():
        text = text.replace(f'"{old}"', f'"{new}"')
    toml.write_text(text)
    for name in ("patterns.jsonl", "examples.jsonl"):
        rows = [json.loads(line) for line in (folder / name).read_text().splitlines() if line.strip()]
        for row in rows:
            row["label"] = steps.get(row["label"], row["label"])
        (folder / name).write_text("".join(json.dumps(row) + "\n" for row in rows))
    return steps


@pytest.mark.slow
def test_renamed_step_ids_give_the_same_diagnosis_on_every_labelled_case(copy, playbook):
    """The walk's rules follow the playbook's roles, not the default ids: the patterns alone on
    every labelled case, and the learned reader (trained anew on the renamed examples) on the
    cases the patterns were tuned on and the samples."""
    import importlib.util

    from debrief.classification import Classifier
    from debrief.walk import diagnose

    spec = importlib.util.spec_from_file_location("evaluate", REPO / "scripts" / "evaluate.py")
    evaluate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(evaluate)
    sets = evaluate.load_sets()
    steps = renamed(copy)
    team = load_playbook(copy)
    assert team.roles.commitment == "home.commit-x" and team.roles.compelling == "second-x"

    def fixes(book, classifier, cases):
        out = []
        for case in cases:
            result = diagnose(book, classifier.classify(case["text"]))
            out.append((result.fix.step.id if result.fix else None, result.outcome))
        return out

    every = [c for name in ("train", "dev", "samples") for c in sets[name]]
    want = [(steps.get(fix, fix), outcome) for fix, outcome in fixes(playbook, Classifier(playbook, reader=None), every)]
    assert fixes(team, Classifier(team, reader=None), every) == want
    tuned = [c for c in sets["train"] if "steps" not in c] + sets["samples"]
    want = [(steps.get(fix, fix), outcome) for fix, outcome in fixes(playbook, Classifier(playbook), tuned)]
    assert fixes(team, Classifier(team), tuned) == want
