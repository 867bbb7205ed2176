"""The last stage: what is shown, printed as JSON, or said aloud.

Touches: the console it is given; nothing on disk.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from debrief.pipeline import Result
from debrief.playbook import base_name
from debrief.walk import MISSED, NOT_ENOUGH, SILENT, Diagnosis, Evidence, StepStatus

STATUS_STYLE = {"done": "green", "missed": "bold red", "silent": "yellow"}


def to_dict(result: Result) -> dict:
    """The JSON object for one analyzed input (the `--json` contract)."""
    diagnosis = result.diagnosis
    playbook_steps = {s.step.id: s for s in diagnosis.steps}
    fix = diagnosis.fix
    return {
        "source": result.source,
        "transcript": result.transcript.text,
        "segments": [{"start": round(s.start, 2), "end": round(s.end, 2), "text": s.text}
                     for s in result.transcript.segments],
        "duration": round(result.transcript.duration, 2),
        "outcome": diagnosis.outcome,
        "outcome_evidence": _evidence(diagnosis.outcome_evidence),
        "endpoint": diagnosis.endpoint,
        "status": diagnosis.status,
        "fix": None if fix is None else {
            "step": fix.step.id,
            "base": fix.step.base,
            "name": fix.step.name,
            "topic": fix.step.plain,
            "status": fix.status,
            "confirmed": diagnosis.confirmed,
            "check": fix.step.check,
            "advice": fix.step.advice,
            "question": fix.step.questions[0],
            "questions": list(fix.step.questions),
            "evidence": [_evidence(e) for e in fix.evidence],
        },
        "then": None if diagnosis.then is None else {
            "step": diagnosis.then.step.id,
            "topic": diagnosis.then.step.plain,
            "status": diagnosis.then.status,
            "evidence": [_evidence(e) for e in diagnosis.then.evidence],
        },
        "reason": diagnosis.reason,
        "walk": [{"step": s.step.id, "status": s.status, "implied": s.implied,
                  "evidence": [_evidence(e) for e in s.evidence]} for s in diagnosis.walk],
        "steps": {step_id: {"status": s.status, "implied": s.implied, "required": s.step.required,
                            "evidence": [_evidence(e) for e in s.evidence]}
                  for step_id, s in playbook_steps.items()},
        "timings": {name: round(seconds, 4) for name, seconds in result.timings.items()},
    }


def fix_words(result: dict) -> str:
    """A saved result's fix in a few plain words, for lists of calls: "who decides",
    "what their problem is (unconfirmed)", "nothing to fix", "not enough to coach"."""
    if result.get("status") == "not_enough":
        return "not enough to coach"
    fix = result.get("fix")
    if not fix:
        return "nothing to fix"
    return (fix.get("topic") or fix["step"]) + ("" if fix.get("confirmed", True) else " (unconfirmed)")


def error_dict(source: str, message: str, exit_code: int) -> dict:
    """The JSON object for an input that could not be analyzed."""
    return {"source": source, "error": message, "exit_code": exit_code}


def _evidence(evidence: Evidence | None) -> dict | None:
    if evidence is None:
        return None
    found = {"text": evidence.text, "start": evidence.start, "end": evidence.end}
    if evidence.speaker:
        found["speaker"] = evidence.speaker
    return found


def spoken(diagnosis: Diagnosis) -> str:
    """What to say aloud: the fix and the question to lead with next time, in plain words.

    A fix on a step nobody mentioned is said as one (rule 6): what was not said, and, when a later
    step was admitted missed, that this is the one to fix if the first did happen."""
    fix = diagnosis.fix
    if fix is None:
        if diagnosis.status == NOT_ENOUGH:
            return ("That's not enough to coach. Tell me where the call ended up, then what happened "
                    "before that: who you met, what their problem is, who decides.")
        if diagnosis.outcome == "won":
            return "You won it. Nothing to fix. Move on."
        return "Nothing to fix before where the call ended up. Move on."
    advice = f"{fix.step.advice} Next time, ask: {fix.step.questions[0]}"
    if diagnosis.confirmed:
        return advice
    return f"{unconfirmed(diagnosis)} If you didn't, start there: {advice}"


def unconfirmed(diagnosis: Diagnosis) -> str:
    """Rule 6 in words: what the rep did not say, and the fix if that step did happen."""
    then = diagnosis.then
    return unconfirmed_words(diagnosis.fix.step.whether, then.step.plain if then else None,
                             then.evidence[0].text if then and then.evidence else None)


def unconfirmed_words(whether: str, then: str | None, quote: str | None) -> str:
    """ "You didn't say whether you found out what their problem is. If you did, the one to fix is
    who decides: you said "I never asked who signs"." (also the web desk's, from the JSON)."""
    said = f"You didn't say whether {whether}."
    if then is None:
        return said
    return f"{said} If you did, the one to fix is {then}" + (f': you said "{quote}"' if quote else ".")


def render(result: Result, console: Console) -> None:
    """The human view: where it ended up, the walk back, and the one step to fix."""
    diagnosis = result.diagnosis
    header = Text(result.source, style="bold")
    if result.transcript.duration:
        header.append(f"  ({result.transcript.duration:.1f} s of audio)", style="dim")
    console.print(header)
    ended = Text("Where it ended up: ", style="bold")
    ended.append(diagnosis.outcome.replace("_", " "))
    if diagnosis.outcome_evidence:
        ended.append(f'  "{diagnosis.outcome_evidence.text}"', style="italic")
    console.print(ended)
    if diagnosis.walk:
        console.print(_walk_table(diagnosis))
    fix = diagnosis.fix
    if fix is None:
        console.print(Text(spoken(diagnosis), style="bold green"))
    else:
        title = Text("The one step to fix: " if diagnosis.confirmed else "The one step to fix, unconfirmed: ",
                     style="bold")
        title.append(f"{fix.step.plain} ({base_name(fix.step.base)})", style="bold red")
        title.append(f"  [{fix.step.id}]", style="dim")
        console.print(title)
        if diagnosis.confirmed:
            console.print(Text(f"  Why: {diagnosis.reason}"))
        else:
            console.print(Text(f"  {unconfirmed(diagnosis)}"))
        console.print(Text(f"  Next time: {fix.step.advice}"))
        console.print(Text(f'  Lead with: "{fix.step.questions[0]}"', style="bold"))
    console.print()


def _walk_table(diagnosis: Diagnosis) -> Table:
    table = Table(title="The walk back, from where it ended up", title_justify="left", show_edge=False,
                  pad_edge=False, box=None)
    table.add_column("step", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("what shows it")
    for status in diagnosis.walk:
        # Optional steps nobody mentioned are not part of the story; leave them out.
        if status.status == SILENT and not status.step.required and status is not diagnosis.fix:
            continue
        label = status.status + (" (implied)" if status.implied else "")
        marker = " <- fix" if status is diagnosis.fix else ""
        table.add_row(status.step.plain, Text(label + marker, style=STATUS_STYLE[status.status]),
                      _shown(status))
    return table


def _shown(status: StepStatus) -> str:
    if status.evidence:
        return f'"{status.evidence[0].text}"'
    if status.implied:
        return "not mentioned; later steps show it happened"
    return "never came up" if status.status != MISSED else ""

