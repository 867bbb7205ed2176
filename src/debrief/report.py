"""Per rep, from the history: the step that keeps going wrong, and whether coaching it worked.

For each rep, over their analyzed calls in time order:

* the step to fix most often (a tie goes to the earlier step: bases are run in order, so the
  earlier miss is the likelier cause of the later one);
* how many calls had their fix on each base, and how many had nothing to fix; a call with not
  enough in it to coach (rule 7: "hello", a voicemail greeting) is counted apart, in no statistic;
* the last coached step, "fix that, move on": the fix of the latest call that has calls after
  it, and whether it came back in those calls; it has "stopped" only after `STOPPED_AFTER` calls
  without it, since one call is too few to tell.

`build_report` is pure (history entries in, `RepReport`s out); `render` draws a terminal table
and `to_html` a page with a bar chart per rep as inline SVG (no scripts, opens anywhere).

Touches: the HTML file it is asked to write (through a temporary file and a rename).
"""

from __future__ import annotations

import html
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from debrief.errors import OutputError
from debrief.playbook import Playbook
from debrief.store import Entry

BASES = ("first", "second", "third", "home")
STOPPED_AFTER = 2  # calls since the coaching without the step, before it counts as stopped
NOTHING = "none"  # a call with nothing to fix
NO_REP = "(no rep)"
BASE_COLOURS = {"first": "#4e79a7", "second": "#f28e2b", "third": "#59a14f", "home": "#e15759",
                NOTHING: "#bab0ac"}


@dataclass(frozen=True)
class Call:
    """One analyzed call on a rep's timeline."""

    date: str
    path: str
    fix: str | None
    outcome: str | None
    fix_confirmed: bool | None = None


@dataclass
class RepReport:
    """What a coach needs to know about one rep."""

    rep: str
    calls: list[Call] = field(default_factory=list)
    failed: int = 0
    not_enough: int = 0  # calls with nothing to coach: counted apart, in no statistic
    fixes: Counter = field(default_factory=Counter)
    bases: Counter = field(default_factory=Counter)
    top: str | None = None
    last_coached: str | None = None
    coached_on: str | None = None
    calls_since: int = 0
    came_back: int = 0

    @property
    def verdict(self) -> str:
        """'stopped', 'recurring', 'too early' (fewer than STOPPED_AFTER calls since, none of them
        with the step) or 'nothing coached'."""
        if self.last_coached is None:
            return "nothing coached"
        if self.came_back:
            return "recurring"
        return "stopped" if self.calls_since >= STOPPED_AFTER else "too early"

    @property
    def since_text(self) -> str:
        """The verdict in words, as the table and the page show it."""
        if self.verdict == "nothing coached":
            return "nothing to fix yet"
        calls = f"{self.calls_since} call{'s' if self.calls_since != 1 else ''} since"
        if self.verdict == "too early":
            return f"too early: {calls}" if self.calls_since else "too early: no calls since"
        if self.verdict == "stopped":
            return f"stopped: not back in {calls}"
        return f"still recurring: back in {self.came_back} of {calls}"


def build_report(entries: Iterable[Entry], playbook: Playbook) -> list[RepReport]:
    """One `RepReport` per rep (sorted by name) from history entries, which come oldest first."""
    order = {step.id: index for index, step in enumerate(playbook.steps)}
    reports: dict[str, RepReport] = {}
    for entry in entries:
        report = reports.setdefault(entry.rep or NO_REP, RepReport(entry.rep or NO_REP))
        if entry.status == "error":
            report.failed += 1
        elif entry.status == "done" and not_enough_to_coach(entry):
            report.not_enough += 1
        elif entry.status == "done":
            fix = (entry.result or {}).get("fix") or {}
            report.calls.append(Call(_when(entry), entry.path, entry.fix, entry.outcome, fix.get("confirmed")))
    for report in reports.values():
        report.calls.sort(key=lambda call: call.date)
        report.fixes = Counter(call.fix for call in report.calls if call.fix)
        report.bases = Counter(_base(call.fix) for call in report.calls)
        if report.fixes:
            report.top = min(report.fixes, key=lambda step: (-report.fixes[step], order.get(step, len(order)), step))
        _last_coached(report)
    return [reports[rep] for rep in sorted(reports)]


def _last_coached(report: RepReport) -> None:
    """The fix of the latest call that has calls after it; else the last call's, too early to judge."""
    with_fix = [i for i, call in enumerate(report.calls) if call.fix]
    if not with_fix:
        return
    judged = [i for i in with_fix if i < len(report.calls) - 1]
    index = judged[-1] if judged else with_fix[-1]
    coached = report.calls[index]
    later = report.calls[index + 1:]
    report.last_coached, report.coached_on = coached.fix, coached.date
    report.calls_since = len(later)
    report.came_back = sum(call.fix == coached.fix for call in later)


def _when(entry: Entry) -> str:
    return entry.recorded_at or entry.added_at or ""


def not_enough_to_coach(entry: Entry) -> bool:
    """Rule 7: nothing in it to coach. Results saved before `status` existed: no fix, no endpoint,
    and no win."""
    result = entry.result or {}
    if "status" in result:
        return result["status"] == "not_enough"
    return entry.fix is None and entry.endpoint is None and entry.outcome != "won"


def _base(step: str | None) -> str:
    return step.split(".")[0] if step else NOTHING


# --------------------------------------------------------------------------- terminal


def render(reports: list[RepReport], playbook: Playbook, console) -> None:
    """The terminal view: one row per rep, steps in plain words."""
    from rich.table import Table

    table = Table(title="Per rep: the step that keeps going wrong", title_justify="left", box=None,
                  pad_edge=False, show_edge=False)
    counted = ("calls", "failed", "not enough", *BASES, NOTHING)
    for column in ("rep", *counted[:3], "most often", *BASES, NOTHING, "last coached", "since then"):
        table.add_column(column, no_wrap=column not in ("since then",),
                         justify="right" if column in counted else "left")
    for r in reports:
        top = f"{named(playbook, r.top)} ({r.fixes[r.top]})" if r.top else "-"
        coached = f"{named(playbook, r.last_coached)} ({r.coached_on[:10]})" if r.last_coached else "-"
        table.add_row(r.rep, str(len(r.calls)), str(r.failed), str(r.not_enough), top,
                      *(str(r.bases[b]) for b in BASES), str(r.bases[NOTHING]), coached, r.since_text)
    console.print(table)


def named(playbook: Playbook, step_id: str | None) -> str:
    """A step in plain words ("who decides"); a step another playbook had, by its id."""
    if step_id is None:
        return "-"
    return next((s.plain for s in playbook.steps if s.id == step_id), step_id)


# --------------------------------------------------------------------------- HTML

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 60rem; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; margin: 2rem 0 .3rem; }
.meta, .note { color: #666; } table { border-collapse: collapse; margin: 1rem 0; }
th, td { padding: .25rem .5rem; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
td:last-child { min-width: 10rem; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.stopped { color: #2e7d32; } .recurring { color: #c62828; font-weight: 600; }
svg text { font: 12px system-ui, sans-serif; fill: #333; } svg .count { fill: #111; font-weight: 600; }
.legend span { display: inline-block; margin-right: 1rem; }
.legend i { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem; vertical-align: -1px; }
"""

LABEL_W, BAR_W, ROW_H = 320, 340, 22  # label, longest bar, row height (px)


def to_html(reports: list[RepReport], playbook: Playbook, *, title: str = "debrief report",
            filters: str = "") -> str:
    """A self-contained page: the table, then per rep a bar per step and the calls in order."""
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">{len(reports)} rep{"s" if len(reports) != 1 else ""}'
        f'{", " + _e(filters) if filters else ""}; made {generated}</p>',
        _legend(), _summary_table(reports, playbook),
    ]
    for report in reports:
        parts.append(f'<section class="rep" id="rep-{_e(report.rep)}"><h2>{_e(report.rep)}</h2>')
        parts.append(f'<p class="note">{len(report.calls)} calls analyzed'
                     f'{f", {report.failed} failed" if report.failed else ""}'
                     f'{f", {report.not_enough} with not enough to coach" if report.not_enough else ""}. '
                     f'Last coached: <b>{_e(named(playbook, report.last_coached))}</b>, '
                     f'<span class="{report.verdict}">{_e(report.since_text)}</span>.</p>')
        parts.append(_bars(report, playbook))
        parts.append(_timeline(report, playbook))
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(path: str | Path, page: str) -> Path:
    """Write the page through a temporary file and a rename, so a reader never sees half of it.

    Raises:
      OutputError: the file cannot be written.
    """
    path = Path(path).expanduser()
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temp.write_text(page, encoding="utf-8")
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write the report ({exc.strerror or exc})") from None
    return path


def _summary_table(reports: list[RepReport], playbook: Playbook) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("rep", "calls", "not enough to coach", "most often", *BASES,
                                             "nothing to fix", "last coached", "since then"))
    rows = []
    for r in reports:
        top = f"{_e(named(playbook, r.top))} ({r.fixes[r.top]})" if r.top else "-"
        cells = [f"<td>{_e(r.rep)}</td>", f'<td class="n">{len(r.calls)}</td>',
                 f'<td class="n">{r.not_enough}</td>', f"<td>{top}</td>",
                 *(f'<td class="n">{r.bases[b]}</td>' for b in (*BASES, NOTHING)),
                 f"<td>{_e(named(playbook, r.last_coached))}</td>",
                 f'<td class="{r.verdict}">{_e(r.since_text)}</td>']
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="summary"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _legend() -> str:
    keys = [(base, f"{base} base" if base != "home" else "home") for base in BASES] + [(NOTHING, "nothing to fix")]
    return '<p class="legend">' + "".join(
        f'<span><i style="background:{BASE_COLOURS[k]}"></i>{label}</span>' for k, label in keys) + "</p>"


def _bars(report: RepReport, playbook: Playbook) -> str:
    """A horizontal bar per step of the playbook (steps from another playbook after them)."""
    steps = [(s.id, s.base, s.plain) for s in playbook.steps]
    known = {s[0] for s in steps}
    steps += [(step, _base(step), step) for step in sorted(report.fixes) if step not in known]
    most = max(report.fixes.values(), default=0) or 1
    height = ROW_H * len(steps) + 10
    rows = []
    for row, (step, base, name) in enumerate(steps):
        y, count = row * ROW_H + 5, report.fixes[step]
        width = round(BAR_W * count / most)
        marks = ((" - most often" if step == report.top else "")
                 + (" - last coached" if step == report.last_coached else ""))
        outline = ' stroke="#111" stroke-width="2"' if step == report.top else ""
        rows.append(
            f'<g class="step" data-step="{_e(step)}" data-count="{count}">'
            f'<title>{_e(name)} ({_e(step)}): the fix in {count} call{"s" if count != 1 else ""}{marks}</title>'
            f'<text x="{LABEL_W - 8}" y="{y + 15}" text-anchor="end">{_e(name)}</text>'
            f'<rect class="track" x="{LABEL_W}" y="{y + 3}" width="{BAR_W}" height="{ROW_H - 6}" '
            f'fill="{BASE_COLOURS.get(base, "#888")}" opacity="0.12"></rect>'
            f'<rect class="bar" x="{LABEL_W}" y="{y + 3}" width="{width}" height="{ROW_H - 6}" '
            f'fill="{BASE_COLOURS.get(base, "#888")}"{outline}></rect>'
            f'<text class="count" x="{LABEL_W + width + 6}" y="{y + 15}">{count or ""}'
            f'{" ◆ last coached" if step == report.last_coached else ""}</text></g>')
    label = f"{report.rep}: how often each step was the one to fix, over {len(report.calls)} calls"
    return (f'<svg class="chart" role="img" aria-label="{_e(label)}" width="{LABEL_W + BAR_W + 140}" '
            f'height="{height}" viewBox="0 0 {LABEL_W + BAR_W + 140} {height}" '
            f'xmlns="http://www.w3.org/2000/svg">{"".join(rows)}</svg>')


def _timeline(report: RepReport, playbook: Playbook) -> str:
    """The calls in order, one square each, coloured by the base of their fix."""
    size, gap = 14, 4
    squares = [
        f'<rect x="{i * (size + gap)}" y="2" width="{size}" height="{size}" rx="2" '
        f'fill="{BASE_COLOURS.get(_base(call.fix), "#888")}"><title>{_e(call.date[:10])}: '
        f'{_e(named(playbook, call.fix) if call.fix else "nothing to fix")} ({_e(call.outcome or "")})</title></rect>'
        for i, call in enumerate(report.calls)]
    width = max(len(report.calls) * (size + gap), 1)
    return (f'<p class="note">Calls in order, oldest first:</p><svg class="timeline" role="img" '
            f'aria-label="{_e(report.rep)}: the base of each call\'s fix, oldest first" width="{width}" '
            f'height="{size + 4}" xmlns="http://www.w3.org/2000/svg">{"".join(squares)}</svg>')


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
