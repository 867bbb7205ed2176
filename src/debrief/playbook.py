"""The sales process as data: load and validate a playbook folder.

A playbook folder holds `playbook.toml` (bases, steps, advice, questions), `patterns.jsonl`
(spaCy SpanRuler patterns whose label is a step id or an outcome), `examples.jsonl` (labelled
sentences and turns that the learned reader is trained on) and, optionally, `negation.toml` (the
cue words that turn "I asked about budget" into "I never asked about budget").
Every problem is reported as one line naming the file, the line and what is wrong.

Touches: the playbook folder (read only).
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from debrief.errors import PlaybookError

OUTCOMES = ("won", "advanced", "stalled", "lost", "no_meeting", "unknown")
IMPLIED_BY = ("any-later", "later-base", "none")
POLARITIES = ("done", "missed")
OTHER = "other"  # an example that is about no step and no outcome
EXAMPLES = "examples.jsonl"
NEGATION_KEYS = ("pseudo_negations", "preceding_negations", "following_negations", "termination")
# Token attributes a pattern may use. The pipeline is spacy.blank("en") with a lookup
# lemmatizer, so there are no POS tags, dependencies or entities to match on.
TOKEN_KEYS = {
    "ORTH", "TEXT", "LOWER", "LEMMA", "NORM", "LENGTH", "IS_ALPHA", "IS_ASCII", "IS_DIGIT",
    "IS_LOWER", "IS_UPPER", "IS_TITLE", "IS_PUNCT", "IS_SPACE", "IS_STOP", "IS_SENT_START",
    "LIKE_NUM", "LIKE_URL", "LIKE_EMAIL", "SHAPE", "PREFIX", "SUFFIX", "OP",
}
OPS = re.compile(r"^(!|\?|\+|\*|\{\d+\}|\{\d*,\d*\})$")  # spaCy's operators and {n,m} quantifiers


@dataclass(frozen=True)
class Base:
    id: str
    name: str
    goal: str = ""


@dataclass(frozen=True)
class Step:
    id: str
    base: str
    name: str
    required: bool
    implied_by: str
    advice: str
    questions: tuple[str, ...]
    topic: str = ""    # the step in plain words, to read or hear: "who decides"
    whether: str = ""  # "you found out who decides": said as "You didn't say whether ..."
    check: str = ""    # the yes-or-no question that asks a rep whether it happened

    @property
    def plain(self) -> str:
        """What a person reads or hears for this step: its topic, or else its name."""
        return self.topic or self.name


def base_name(base: str) -> str:
    """A base as people say it: "second base", "home"."""
    return "home" if base == "home" else f"{base} base"


@dataclass(frozen=True)
class Pattern:
    """One SpanRuler pattern. `polarity` says whether a match shows the step done or missed."""

    label: str
    pattern: str | list[dict]
    polarity: str
    line: int


ROLE_STEPS = ("contact", "appointment", "presentation", "commitment")
ROLE_BASES = ("compelling",)


@dataclass(frozen=True)
class Roles:
    """Which step (or base) plays each part that the walk's rules, prep and the reader rely on."""

    contact: str
    appointment: str
    presentation: str
    commitment: str
    compelling: str  # a base id


@dataclass(frozen=True)
class Example:
    """One labelled sentence or turn: a step with its polarity, an outcome, or "other"."""

    text: str
    label: str
    polarity: str | None
    line: int


@dataclass(frozen=True)
class Playbook:
    name: str
    bases: tuple[Base, ...]
    steps: tuple[Step, ...]
    outcomes: dict[str, str]
    patterns: tuple[Pattern, ...]
    negation: dict[str, list[str]] | None
    source: Path
    roles: Roles | None = None
    examples: tuple[Example, ...] = ()
    examples_digest: str = ""  # sha256 of examples.jsonl: the learned reader is keyed by it
    _index: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update({s.id: i for i, s in enumerate(self.steps)})

    def step(self, step_id: str) -> Step:
        return self.steps[self._index[step_id]]

    def index(self, step_id: str) -> int:
        return self._index[step_id]

    def base(self, base_id: str) -> Base:
        return next(b for b in self.bases if b.id == base_id)


def load_playbook(folder: str | Path) -> Playbook:
    """Load and validate the playbook in `folder`; raise PlaybookError naming file and line."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PlaybookError(f"{folder}: playbook folder not found")
    toml_path = folder / "playbook.toml"
    data, text = _read_toml(toml_path, required=True)
    bases = _parse_bases(toml_path, text, data)
    steps = _parse_steps(toml_path, text, data, [b.id for b in bases])
    outcomes = _parse_outcomes(toml_path, text, data)
    roles = _parse_roles(toml_path, text, data, {s.id for s in steps}, {b.id for b in bases})
    labels = {s.id for s in steps} | set(OUTCOMES)
    patterns = _parse_patterns(folder / "patterns.jsonl", labels)
    negation = _parse_negation(folder / "negation.toml")
    examples, digest = _parse_examples(folder / EXAMPLES, {s.id for s in steps})
    return Playbook(
        name=str(data.get("name", folder.name)),
        bases=bases,
        steps=steps,
        outcomes=outcomes,
        patterns=patterns,
        negation=negation,
        source=folder,
        roles=roles,
        examples=examples,
        examples_digest=digest,
    )


def _read_toml(path: Path, *, required: bool) -> tuple[dict, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise PlaybookError(f"{path}: file not found") from None
        return {}, ""
    except (OSError, UnicodeDecodeError) as exc:
        raise PlaybookError(f"{path}: cannot read: {exc}") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already says "(at line N, column M)".
        raise PlaybookError(f"{path}: invalid TOML: {exc}") from None


def _line_of(text: str, value: str, nth: int = 1) -> int:
    """The line of a TOML text where `value` appears as a quoted string for the nth time (1 if none)."""
    needle = re.compile(r"""["']""" + re.escape(value) + r"""["']""")
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if needle.search(line)]
    return hits[min(nth, len(hits)) - 1] if hits else 1


def _fail(path: Path, line: int, problem: str) -> PlaybookError:
    return PlaybookError(f"{path}:{line}: {problem}")


def _parse_bases(path: Path, text: str, data: dict) -> tuple[Base, ...]:
    raw = data.get("bases")
    if not isinstance(raw, list) or not raw:
        raise _fail(path, 1, "no [[bases]] defined")
    bases, seen = [], set()
    for entry in raw:
        base_id = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(base_id, str) or not base_id:
            raise _fail(path, 1, "a [[bases]] entry has no id")
        if base_id in seen:
            raise _fail(path, _line_of(text, base_id), f"duplicate base id {base_id!r}")
        seen.add(base_id)
        bases.append(Base(base_id, str(entry.get("name", base_id)), str(entry.get("goal", ""))))
    return tuple(bases)


def _parse_steps(path: Path, text: str, data: dict, base_ids: list[str]) -> tuple[Step, ...]:
    raw = data.get("steps")
    if not isinstance(raw, list) or not raw:
        raise _fail(path, 1, "no [[steps]] defined")
    steps: list[Step] = []
    seen: set[str] = set()
    for entry in raw:
        step_id = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(step_id, str) or not step_id:
            raise _fail(path, 1, "a [[steps]] entry has no id")
        line = _line_of(text, step_id)
        if step_id in seen:
            raise _fail(path, _line_of(text, step_id, nth=2), f"duplicate step id {step_id!r}")
        seen.add(step_id)
        base = entry.get("base")
        if base not in base_ids:
            raise _fail(path, line, f"step {step_id!r} names unknown base {base!r}")
        implied_by = entry.get("implied_by", "none")
        if implied_by not in IMPLIED_BY:
            raise _fail(path, line, f"step {step_id!r}: implied_by must be one of {', '.join(IMPLIED_BY)}")
        required = entry.get("required", False)
        if not isinstance(required, bool):
            raise _fail(path, line, f"step {step_id!r}: required must be true or false")
        questions = entry.get("questions", [])
        if not isinstance(questions, list) or not questions or not all(isinstance(q, str) for q in questions):
            raise _fail(path, line, f"step {step_id!r}: questions must be a non-empty list of strings")
        advice = entry.get("advice")
        if not isinstance(advice, str) or not advice.strip():
            raise _fail(path, line, f"step {step_id!r}: advice is missing")
        words = {}
        for key in ("topic", "whether", "check"):
            value = entry.get(key, "")
            if not isinstance(value, str):
                raise _fail(path, line, f"step {step_id!r}: {key} must be a string")
            words[key] = value.strip()
        name = str(entry.get("name", step_id))
        words["whether"] = words["whether"] or f"this happened: {name}"
        words["check"] = words["check"] or f"Did this happen: {name}?"
        steps.append(Step(step_id, base, name, required, implied_by, advice.strip(), tuple(questions), **words))
    _check_base_order(path, text, steps, base_ids)
    return tuple(steps)


def _check_base_order(path: Path, text: str, steps: list[Step], base_ids: list[str]) -> None:
    """Steps must be listed base by base, in base order: the walk relies on playbook order."""
    for before, step in zip(steps, steps[1:]):
        if base_ids.index(step.base) < base_ids.index(before.base):
            raise _fail(path, _line_of(text, step.id),
                        f"step {step.id!r} on base {step.base!r} comes after a step on base {before.base!r}")


def _parse_outcomes(path: Path, text: str, data: dict) -> dict[str, str]:
    raw = data.get("outcomes", {})
    if not isinstance(raw, dict):
        raise _fail(path, 1, "[outcomes] must be a table")
    for key in raw:
        if key not in OUTCOMES:
            raise _fail(path, _line_of_key(text, key), f"unknown outcome {key!r} (known: {', '.join(OUTCOMES)})")
    return {name: str(raw.get(name, name)) for name in OUTCOMES}


def _parse_roles(path: Path, text: str, data: dict, step_ids: set[str], base_ids: set[str]) -> Roles:
    raw = data.get("roles")
    if not isinstance(raw, dict):
        raise _fail(path, 1, "no [roles] table: the walk needs to know which step is "
                             f"{', '.join(ROLE_STEPS)} and which base is {', '.join(ROLE_BASES)}")
    for key in raw:
        if key not in ROLE_STEPS + ROLE_BASES:
            raise _fail(path, _line_of_key(text, key), f"unknown role {key!r} (known: {', '.join(ROLE_STEPS + ROLE_BASES)})")
    for role in ROLE_STEPS + ROLE_BASES:
        if role not in raw:
            raise _fail(path, _line_of_key(text, "[roles]"), f"[roles] lacks {role!r}, which the walk's rules need")
        known, what = (step_ids, "step") if role in ROLE_STEPS else (base_ids, "base")
        if raw[role] not in known:
            raise _fail(path, _line_of_key(text, role), f"role {role!r} names unknown {what} {raw[role]!r}")
    return Roles(**{role: raw[role] for role in ROLE_STEPS + ROLE_BASES})


def _line_of_key(text: str, key: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip().startswith(f"{key} ") or line.strip().startswith(f"{key}="):
            return number
    return 1


def _parse_patterns(path: Path, labels: set[str]) -> tuple[Pattern, ...]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise PlaybookError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlaybookError(f"{path}: cannot read: {exc}") from None
    patterns = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _fail(path, number, f"malformed JSON: {exc.msg}") from None
        patterns.append(_parse_pattern(path, number, entry, labels))
    if not patterns:
        raise PlaybookError(f"{path}: no patterns")
    return tuple(patterns)


def _parse_pattern(path: Path, number: int, entry: object, labels: set[str]) -> Pattern:
    if not isinstance(entry, dict):
        raise _fail(path, number, "each line must be a JSON object")
    label = entry.get("label")
    if label not in labels:
        raise _fail(path, number, f"unknown label {label!r}: not a step id or an outcome")
    polarity = entry.get("id", "done")
    if polarity not in POLARITIES:
        raise _fail(path, number, f"id must be 'done' or 'missed', not {polarity!r}")
    if label in OUTCOMES and polarity != "done":
        raise _fail(path, number, f"outcome {label!r} cannot have id 'missed'")
    pattern = entry.get("pattern")
    if isinstance(pattern, str):
        if not pattern.strip():
            raise _fail(path, number, "empty phrase pattern")
    elif isinstance(pattern, list) and pattern:
        for token in pattern:
            problem = _token_problem(token)
            if problem:
                raise _fail(path, number, f"malformed pattern: {problem}")
    else:
        raise _fail(path, number, "pattern must be a phrase string or a non-empty list of token objects")
    return Pattern(label, pattern, polarity, number)


def _token_problem(token: object) -> str | None:
    if not isinstance(token, dict):
        return f"token {token!r} is not an object"
    for key, value in token.items():
        if key not in TOKEN_KEYS:
            return f"unknown token attribute {key!r}"
        if key == "OP" and not (isinstance(value, str) and OPS.match(value)):
            return f"unknown operator {value!r}"
        if isinstance(value, dict) and not set(value) <= {"IN", "NOT_IN", "REGEX", "FUZZY", "==", ">=", "<=", ">", "<", "!="}:
            return f"unknown predicate in {key}: {sorted(value)}"
    return None


def _parse_negation(path: Path) -> dict[str, list[str]] | None:
    data, text = _read_toml(path, required=False)
    if not data:
        return None
    for key in data:
        if key not in NEGATION_KEYS:
            raise _fail(path, _line_of_key(text, key), f"unknown key {key!r} (known: {', '.join(NEGATION_KEYS)})")
    terms = {}
    for key in NEGATION_KEYS:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise _fail(path, _line_of_key(text, key), f"{key} must be a list of phrases")
        terms[key] = value
    return terms


def _parse_examples(path: Path, step_ids: set[str]) -> tuple[tuple[Example, ...], str]:
    """The reader's labelled examples; none (the rules alone) when the file is absent."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return (), ""
    except OSError as exc:
        raise PlaybookError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise PlaybookError(f"{path}: not a UTF-8 text file") from None
    outcomes = set(OUTCOMES) - {"unknown"}
    examples = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _fail(path, number, f"malformed JSON: {exc.msg}") from None
        if not isinstance(entry, dict):
            raise _fail(path, number, "each line must be a JSON object")
        text, label, polarity = entry.get("text"), entry.get("label"), entry.get("polarity")
        if not isinstance(text, str) or not text.strip():
            raise _fail(path, number, "empty text")
        if label in step_ids:
            if polarity not in POLARITIES:
                raise _fail(path, number, f"step {label!r} needs polarity 'done' or 'missed', not {polarity!r}")
        elif label in outcomes or label == OTHER:
            if polarity is not None:
                raise _fail(path, number, f"{label!r} takes no polarity (only steps are done or missed)")
        else:
            raise _fail(path, number, f"unknown label {label!r}: not a step id, an outcome "
                                      f"({', '.join(sorted(outcomes))}) or {OTHER!r}")
        examples.append(Example(text.strip(), label, polarity, number))
    return tuple(examples), hashlib.sha256(data).hexdigest()
