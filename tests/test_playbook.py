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
    for name in ("playbook.toml", "patterns.jsonl", "negation.toml"):
        assert f"debrief/models/baseline/{name}" in names
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
